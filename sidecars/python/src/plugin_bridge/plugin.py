"""What a plugin author declares: identity, the task types served, the Plugin Specification message and the
methods. :class:`AsyncPlugin`, :class:`SyncPlugin` and :class:`CorePlugin` only check and hold the declaration;
:func:`serve` turns it into gRPC services.

Methods may be ``async def`` (preferred) or plain functions; a plain function runs on the event loop, so it
must not block (hand blocking work to a thread, as the ``sql`` example does).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Awaitable, Callable, Dict, Generic, Literal, Mapping, Optional, Sequence, TypeVar, Union

from google.protobuf.message import Message

from pluginbridge.v1 import task_pb2

from .log import KitLogger
from .phases import PhaseResult
from .state import PluginState

SpecT = TypeVar("SpecT", bound=Message)

#: A duration in a declaration: seconds (int or float) or a timedelta.
Seconds = Union[int, float, timedelta]

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class TaskType:
    """One (type, type_version) pair the plugin serves, as in TaskTemplate.type and type_version."""

    type: str
    version: int = 1
    #: The oldest type version also accepted: the host sends tasks of a version from here up to ``version`` to this
    #: plugin when no live plugin serves their exact version (the newest such plugin wins). None: ``version`` only.
    min_version: Optional[int] = None


@dataclass(frozen=True)
class RateLimit:
    """A token bucket on one kind of call, held by each host: ``qps`` calls a second on average, up to ``burst``
    at once (0: max(1, ceil(qps)))."""

    qps: float
    burst: int = 0


@dataclass(frozen=True)
class ResourceQuota:
    """How many executions may hold the plugin at once, across all hosts: ``total`` in all, ``per_namespace`` in
    any one namespace (0: no bound)."""

    total: int = 0
    per_namespace: int = 0


@dataclass(frozen=True)
class Properties:
    """How the host should drive the plugin; durations in seconds (or timedelta). Unset values take the host's
    defaults (resync 5 s, create 30 s, get 10 s, delete 30 s, do 60 s, handle 10 s, abort 30 s, finalize 30 s,
    5 system failures). Each ``*_timeout`` is the deadline of one call of that method."""

    resync_interval: Optional[Seconds] = None
    create_timeout: Optional[Seconds] = None
    get_timeout: Optional[Seconds] = None
    delete_timeout: Optional[Seconds] = None
    do_timeout: Optional[Seconds] = None
    max_system_failures: Optional[int] = None
    handle_timeout: Optional[Seconds] = None
    abort_timeout: Optional[Seconds] = None
    finalize_timeout: Optional[Seconds] = None
    #: How often each host may call Get. None: no limit.
    read_limit: Optional[RateLimit] = None
    #: How often each host may call Create, Delete, Do, Handle, Abort and Finalize. None: no limit.
    write_limit: Optional[RateLimit] = None
    #: How many executions may hold the plugin at once. None: no quota.
    quota: Optional[ResourceQuota] = None


#: The duration fields of :class:`Properties`, named as in the PluginProperties message.
DURATION_PROPERTIES = (
    "resync_interval",
    "create_timeout",
    "get_timeout",
    "delete_timeout",
    "do_timeout",
    "handle_timeout",
    "abort_timeout",
    "finalize_timeout",
)


@dataclass
class PluginContext(Generic[SpecT]):
    """Everything one plugin call gets."""

    #: ``template.custom``, decoded into the plugin's specification message.
    spec: SpecT
    #: The execution's id; with ``attempt``, the idempotency key of the call.
    execution_id: str
    #: The attempt, starting at 1.
    attempt: int
    #: The task template as submitted.
    template: task_pb2.TaskTemplate
    #: The task's inputs, as JSON.
    inputs: Dict[str, Any]
    #: Namespace, labels, owner and the like.
    metadata: task_pb2.TaskExecutionMetadata
    #: The secrets the template requested, resolved by the host, keyed "group/key".
    secrets: Dict[str, str]
    #: Set when the host cancels the call or its deadline passes: stop work and return (or raise).
    cancelled: asyncio.Event
    #: The call's deadline as a ``time.time()`` value, or None when the caller set none.
    deadline: Optional[float]
    #: The raw TaskContext message, for anything not lifted above.
    task_context: task_pb2.TaskContext
    #: Writes to stderr, tagged with the plugin's name; keyword arguments become fields.
    log: KitLogger
    #: This sidecar instance's id (as announced).
    instance_id: str = ""
    #: The sidecar's push (:meth:`plugin_bridge.Sidecar.push`); set by the kit, None in a context built by hand.
    _push: Optional["PushFn"] = field(default=None, repr=False, compare=False)

    def time_remaining(self) -> Optional[float]:
        """Seconds until the deadline (never negative), or None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - time.time())

    async def push(self, result: PhaseResult) -> None:
        """Tells the hosts of a phase change of this call's execution and attempt now, between polls: the host
        applies ``result`` as it would the next Get's or Handle's report. Usable after the call has returned
        (keep the context, as a task that watches the remote work would); must run on the sidecar's event loop.
        Raises as :meth:`plugin_bridge.Sidecar.push` does (no NATS, NATS not connected, a bad result)."""
        if self._push is None:
            raise RuntimeError("push needs a context the kit built for a call")
        await self._push(self.execution_id, self.attempt, result)


Awaitable_ = Union[Awaitable[Any], Any]
CreateFn = Callable[[PluginContext[Any]], Any]
GetFn = Callable[[PluginContext[Any], Any], Any]
DeleteFn = Callable[[PluginContext[Any], Any], Any]
DoFn = Callable[[PluginContext[Any]], Any]
HandleFn = Callable[[PluginContext[Any], Optional[PluginState]], Any]
AbortFn = Callable[[PluginContext[Any], Optional[PluginState], str], Any]
FinalizeFn = Callable[[PluginContext[Any], Optional[PluginState]], Any]
#: The sidecar's push: ``(execution_id, attempt, result)``.
PushFn = Callable[[str, int, PhaseResult], Awaitable[None]]


def _seconds(value: Optional[Seconds], what: str, plugin: str) -> None:
    if value is None:
        return
    number = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0 or number != number:
        raise ValueError(f"plugin {plugin}: properties.{what} must be a non-negative number of seconds")


@dataclass
class _Declaration:
    name: str
    version: str
    task_types: Sequence[TaskType]
    specification: type[Message]
    properties: Properties = field(default_factory=Properties)
    #: Also serve every task type no live plugin claims (Flyte's default plugin).
    default_for_unclaimed_types: bool = False

    def _check(self) -> None:
        # Checked at declaration time so a bad plugin fails when it starts, not at its first call.
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"plugin name {self.name!r} must be letters, digits, '-' and '_'")
        if not self.version:
            raise ValueError(f"plugin {self.name}: version must not be empty")
        if not self.task_types:
            raise ValueError(f"plugin {self.name}: task_types must name at least one task type")
        self.task_types = [t if isinstance(t, TaskType) else TaskType(*t) for t in self.task_types]
        for task_type in self.task_types:
            if not task_type.type:
                raise ValueError(f"plugin {self.name}: a task type must not be empty")
            if not isinstance(task_type.version, int) or not 0 <= task_type.version <= 2**31 - 1:
                raise ValueError(f"plugin {self.name}: task type {task_type.type} has an invalid version")
            low = task_type.min_version
            if low is not None and (isinstance(low, bool) or not isinstance(low, int) or not 0 <= low <= task_type.version):
                raise ValueError(
                    f"plugin {self.name}: task type {task_type.type} has min_version {low!r}, not 0…{task_type.version}"
                )
        if not (isinstance(self.specification, type) and issubclass(self.specification, Message)):
            raise ValueError(f"plugin {self.name}: specification must be a generated protobuf message class")
        props = self.properties or Properties()
        self.properties = props
        for what in DURATION_PROPERTIES:
            _seconds(getattr(props, what), what, self.name)
        if props.max_system_failures is not None and (
            not isinstance(props.max_system_failures, int) or props.max_system_failures < 0
        ):
            raise ValueError(f"plugin {self.name}: properties.max_system_failures must be a non-negative int")
        for what in ("read_limit", "write_limit"):
            limit = getattr(props, what)
            if limit is None:
                continue
            if (
                not isinstance(limit, RateLimit)
                or isinstance(limit.qps, bool)
                or not isinstance(limit.qps, (int, float))
                or not limit.qps > 0
                or limit.qps == float("inf")
                or isinstance(limit.burst, bool)
                or not isinstance(limit.burst, int)
                or not 0 <= limit.burst <= 2**32 - 1
            ):
                raise ValueError(f"plugin {self.name}: properties.{what} must be a RateLimit with qps > 0 and a whole burst >= 0")
        quota = props.quota
        if quota is not None and (
            not isinstance(quota, ResourceQuota)
            or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 2**32 - 1 for v in (quota.total, quota.per_namespace))
        ):
            raise ValueError(f"plugin {self.name}: properties.quota must be a ResourceQuota of whole numbers >= 0")


@dataclass
class AsyncPlugin(_Declaration):
    """An async plugin, after Flyte's webapi.AsyncPlugin: create remote work, poll it, delete it.

    - ``create(ctx) -> meta``: starts the remote work and returns what is needed to find it again. The kit makes
      it idempotent by execution id and attempt: it runs at most once per attempt, across restarts and instances.
    - ``get(ctx, meta) -> PhaseResult``: reports the remote work's phase; return ``phase_success(outputs)`` when done.
    - ``delete(ctx, meta) -> None``: stops the remote work; must tolerate work that has already finished.

    ``resource_meta="json"`` (default) JSON-encodes what ``create`` returns and hands ``get``/``delete`` the parsed
    value; ``"bytes"`` passes ``bytes`` through untouched.
    """

    create: Optional[CreateFn] = None
    get: Optional[GetFn] = None
    delete: Optional[DeleteFn] = None
    resource_meta: Literal["json", "bytes"] = "json"
    kind: Literal["async"] = field(default="async", init=False)

    def __post_init__(self) -> None:
        self._check()
        for method in ("create", "get", "delete"):
            if not callable(getattr(self, method)):
                raise ValueError(f"plugin {self.name}: {method} must be a function")
        if self.resource_meta not in ("json", "bytes"):
            raise ValueError(f"plugin {self.name}: resource_meta must be 'json' or 'bytes'")


@dataclass
class SyncPlugin(_Declaration):
    """A sync plugin, after Flyte's webapi.SyncPlugin: ``do(ctx) -> PhaseResult`` runs the whole task and must
    return a terminal phase (success, retryable or permanent failure)."""

    do: Optional[DoFn] = None
    kind: Literal["sync"] = field(default="sync", init=False)

    def __post_init__(self) -> None:
        self._check()
        if not callable(self.do):
            raise ValueError(f"plugin {self.name}: do must be a function")


@dataclass
class CorePlugin(_Declaration):
    """A core plugin, after Flyte's core plugin interface: the host drives an attempt by calling ``handle`` again
    and again (every resync interval) with the state the previous call returned, until it reports a terminal
    phase; then ``finalize``.

    - ``handle(ctx, state) -> HandleResult``: advances the attempt and reports its phase with the new state
      (``state`` is None on the attempt's first Handle). Must be idempotent by execution id, attempt and the
      state passed in: after a host crash the same Handle may come again. Returning a bare PhaseResult keeps the
      state.
    - ``abort(ctx, state, reason) -> None``: stops the attempt's work (AbortTask, or the template's timeout);
      ``finalize`` follows. Must tolerate no state (no work yet) and work that has already ended.
    - ``finalize(ctx, state) -> None``: releases what the attempt holds, after its terminal phase or its abort.
      The kit makes it run once per execution id and attempt, across retries, restarts and instances.
    """

    handle: Optional[HandleFn] = None
    abort: Optional[AbortFn] = None
    finalize: Optional[FinalizeFn] = None
    kind: Literal["core"] = field(default="core", init=False)

    def __post_init__(self) -> None:
        self._check()
        for method in ("handle", "abort", "finalize"):
            if not callable(getattr(self, method)):
                raise ValueError(f"plugin {self.name}: {method} must be a function")


Plugin = Union[AsyncPlugin, SyncPlugin, CorePlugin]


async def call_method(method: Callable[..., Any], *args: Any) -> Any:
    """Calls a plugin method that may be sync or async."""
    result = method(*args)
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        return await result
    return result


__all__ = [
    "AsyncPlugin",
    "SyncPlugin",
    "CorePlugin",
    "Plugin",
    "PluginContext",
    "Properties",
    "RateLimit",
    "ResourceQuota",
    "TaskType",
    "PhaseResult",

]
