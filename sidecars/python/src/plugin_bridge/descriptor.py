"""Builds the PluginDescriptor that Describe returns and every announcement carries.

Its specification is a FileDescriptorSet with the spec message's file and all of its transitive imports
(well-known types too), each file after the files it imports, so a host or SDK can build a registry from it
and validate ``custom`` without the plugin's code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Optional, Type

from google.protobuf import descriptor_pb2, duration_pb2
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import Message

from pluginbridge.v1 import plugin_pb2

from .plugin import DURATION_PROPERTIES, Plugin, Seconds

_KINDS = {
    "async": plugin_pb2.PLUGIN_KIND_ASYNC,
    "sync": plugin_pb2.PLUGIN_KIND_SYNC,
    "core": plugin_pb2.PLUGIN_KIND_CORE,
}


def file_descriptor_set_for(message: Type[Message]) -> descriptor_pb2.FileDescriptorSet:
    """The message's file and its transitive dependencies, each once, dependencies first."""
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(file: FileDescriptor) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            visit(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        ordered.append(proto)

    visit(message.DESCRIPTOR.file)
    return descriptor_pb2.FileDescriptorSet(file=ordered)


def _duration(value: Optional[Seconds]) -> Optional[duration_pb2.Duration]:
    if value is None:
        return None
    duration = duration_pb2.Duration()
    duration.FromTimedelta(value if isinstance(value, timedelta) else timedelta(seconds=value))
    return duration


def plugin_descriptor(plugin: Plugin) -> plugin_pb2.PluginDescriptor:
    """The descriptor of a declared plugin."""
    props = plugin.properties
    properties = plugin_pb2.PluginProperties(max_system_failures=props.max_system_failures or 0)
    for name in ("read_limit", "write_limit"):
        limit = getattr(props, name)
        if limit is not None:
            getattr(properties, name).CopyFrom(plugin_pb2.RateLimit(qps=float(limit.qps), burst=limit.burst))
    if props.quota is not None:
        properties.quota.CopyFrom(plugin_pb2.ResourceQuota(total=props.quota.total, per_namespace=props.quota.per_namespace))
    for name in DURATION_PROPERTIES:
        duration = _duration(getattr(props, name))
        if duration is not None:
            getattr(properties, name).CopyFrom(duration)
    return plugin_pb2.PluginDescriptor(
        name=plugin.name,
        version=plugin.version,
        task_types=[
            plugin_pb2.SupportedTaskType(type=t.type, version=t.version, min_version=t.min_version) for t in plugin.task_types
        ],
        kind=_KINDS[plugin.kind],
        default_for_unclaimed_types=plugin.default_for_unclaimed_types,
        properties=properties,
        specification=plugin_pb2.PluginSpecification(
            file_descriptor_set=file_descriptor_set_for(plugin.specification),
            message_name=plugin.specification.DESCRIPTOR.full_name,
        ),
    )
