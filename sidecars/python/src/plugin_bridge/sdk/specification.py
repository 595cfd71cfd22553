"""A task type's Plugin Specification, as the host's PluginRegistryService shows it.

The host checks ``template.custom`` against the specification of a live, non-draining instance that serves the
template's (type, type_version); each instance announces it as a FileDescriptorSet and a message name. The SDK
finds such an instance the same way, builds the message from the descriptor set without the plugin's code, and
keeps it for a short while, so it can check ``custom`` before submitting and show people what a plugin expects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Type

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from pluginbridge.v1 import plugin_pb2, registry_service_pb2

from .errors import BridgeError
from .schema import describe_message
from .validation import custom_problem

#: Fetches the live plugins serving a task type (ListPlugins), with a deadline in seconds or None.
ListPlugins = Callable[[str, Optional[float]], Sequence[registry_service_pb2.Plugin]]


@dataclass(frozen=True, eq=False)
class Specification:
    """What ``template.custom`` must be for one task type and version, and which instance said so.

    ``descriptor`` is None when the plugin declares no specification; the host then takes any ``custom``, and so
    does :meth:`problem`. ``str()`` gives :meth:`describe`.
    """

    task_type: str
    version: int
    plugin: str
    plugin_version: str
    instance_id: str
    #: The specification message, from a descriptor pool of its own.
    descriptor: Optional[Descriptor]
    #: The descriptor set's files, as announced (source info, and so comments, only if the plugin sent it).
    files: Tuple[descriptor_pb2.FileDescriptorProto, ...]

    @property
    def message_name(self) -> str:
        return str(self.descriptor.full_name) if self.descriptor is not None else ""

    @property
    def message_class(self) -> Optional[Type[Message]]:
        """A class for the message, to build or decode a ``custom`` in code; None without a specification."""
        return message_factory.GetMessageClass(self.descriptor) if self.descriptor is not None else None

    def problem(self, custom: Optional[Mapping[str, Any]]) -> Optional[str]:
        """``"template.custom.<path>: <problem>"`` when ``custom`` (proto3 JSON as a dict) does not fit, else None."""
        return custom_problem(self.descriptor, custom) if self.descriptor is not None else None

    def describe(self) -> str:
        """The specification for people: every field with its JSON name and type, then the messages and enums used."""
        head = f'task type "{self.task_type}" version {self.version}: plugin {self.plugin} {self.plugin_version}'
        if self.descriptor is None:
            return f"{head} declares no specification; any template.custom is accepted"
        body = describe_message(self.descriptor, self.files)
        return f"{head}; template.custom is {self.message_name} as proto3 JSON\n\n{body}"

    def __str__(self) -> str:
        return self.describe()


def _serves(instance: plugin_pb2.PluginInstance, task_type: str, version: Optional[int] = None) -> bool:
    return any(
        t.type == task_type and (version is None or t.version == version) for t in instance.descriptor.task_types
    )


def _resolve(spec: plugin_pb2.PluginSpecification) -> Optional[Descriptor]:
    """The message a specification names, or None when there is none; raises ValueError when it does not resolve."""
    if not spec.HasField("file_descriptor_set") or not spec.message_name:
        return None
    # A pool of its own per specification: two plugins (or two versions of one) may ship different files under
    # the same name, which one shared pool would refuse, and nothing of the SDK's own protocol can be shadowed.
    pool = descriptor_pool.DescriptorPool()
    try:
        for file in spec.file_descriptor_set.file:
            pool.Add(file)
    except TypeError as error:
        raise ValueError(str(error)) from None
    try:
        found: Descriptor = pool.FindMessageTypeByName(spec.message_name)
    except KeyError:
        raise ValueError(f"message {spec.message_name} is not in its file set") from None
    return found


def specification_for(plugins: Iterable[registry_service_pb2.Plugin], task_type: str, version: int) -> Specification:
    """The specification of the first live, non-draining instance serving exactly (``task_type``, ``version``).

    NOT_FOUND tells an unknown type from an unknown version (naming the versions that are live), as CreateTask
    does; a descriptor set that does not resolve is FAILED_PRECONDITION.
    """
    serving = [instance for plugin in plugins for instance in plugin.instances if _serves(instance, task_type)]
    usable = [instance for instance in serving if not instance.draining]
    chosen = next((instance for instance in usable if _serves(instance, task_type, version)), None)
    if chosen is None:
        if not serving:
            raise BridgeError(grpc.StatusCode.NOT_FOUND, f'no live plugin serves task type "{task_type}"')
        versions = sorted({t.version for i in usable for t in i.descriptor.task_types if t.type == task_type})
        live = ", ".join(str(v) for v in versions) if versions else "none (every instance is draining)"
        raise BridgeError(
            grpc.StatusCode.NOT_FOUND,
            f'task type "{task_type}" has no live plugin for type_version {version}; live versions: {live}',
        )
    spec = chosen.descriptor.specification
    try:
        descriptor = _resolve(spec)
    except ValueError as error:
        raise BridgeError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f'the plugin for "{task_type}" declares an unusable specification: {error}',
        ) from None
    return Specification(
        task_type=task_type,
        version=version,
        plugin=chosen.descriptor.name,
        plugin_version=chosen.descriptor.version,
        instance_id=chosen.instance_id,
        descriptor=descriptor,
        files=tuple(spec.file_descriptor_set.file) if descriptor is not None else (),
    )


class SpecificationCache:
    """Specifications by (task type, version), each kept ``ttl`` seconds (0: not kept).

    Validating a run of submits asks the host once, and a plugin upgraded meanwhile is seen soon after. Failures
    are not kept, so a plugin that has just started is found by the next call. Two threads missing at once both
    ask the host; the later answer stays, which is as good as the earlier.
    """

    def __init__(self, list_plugins: ListPlugins, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0:
            raise ValueError("the specification cache time must not be negative")
        self._list_plugins = list_plugins
        self._ttl = ttl
        self._clock = clock
        self._entries: Dict[Tuple[str, int], Tuple[float, Specification]] = {}

    def get(self, task_type: str, version: int, timeout: Optional[float]) -> Specification:
        if not task_type:
            # ListPlugins reads an empty type as "every plugin", so it must not be asked.
            raise BridgeError(grpc.StatusCode.INVALID_ARGUMENT, "a task type is required")
        key = (task_type, version)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        found = specification_for(self._list_plugins(task_type, timeout), task_type, version)
        if self._ttl > 0:
            self._entries[key] = (now + self._ttl, found)
        return found
