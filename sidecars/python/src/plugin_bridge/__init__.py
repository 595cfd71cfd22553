"""plugin-bridge Python kit: write a workflow-engine backend plugin as a gRPC sidecar.

Declare the plugin (:class:`AsyncPlugin`, :class:`SyncPlugin` or :class:`CorePlugin` with a generated protobuf
message as its specification), implement its methods, call :func:`serve`. The SDK half (submit tasks to a host) is
:mod:`plugin_bridge.sdk`.
"""

from .context import decode_specification
from .descriptor import file_descriptor_set_for, plugin_descriptor
from .errors import GrpcStatus, PluginError
from .keys import kv_key
from .log import get_logger
from .nats_link import NatsUnavailable
from .phases import (
    ErrorKind,
    Phase,
    PhaseResult,
    is_terminal_phase,
    phase_initializing,
    phase_permanent_failure,
    phase_queued,
    phase_retryable_failure,
    phase_running,
    phase_success,
    phase_waiting_for_resources,
)
from .plugin import AsyncPlugin, CorePlugin, Plugin, PluginContext, Properties, RateLimit, ResourceQuota, SyncPlugin, TaskType
from .serve import ServeOptions, Sidecar, serve, start
from .state import HandleResult, PluginState

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
    "HandleResult",
    "PluginState",
    "Phase",
    "ErrorKind",
    "phase_success",
    "phase_running",
    "phase_initializing",
    "phase_queued",
    "phase_waiting_for_resources",
    "phase_permanent_failure",
    "phase_retryable_failure",
    "is_terminal_phase",
    "PluginError",
    "GrpcStatus",
    "NatsUnavailable",
    "serve",
    "start",
    "ServeOptions",
    "Sidecar",
    "decode_specification",
    "file_descriptor_set_for",
    "plugin_descriptor",
    "kv_key",
    "get_logger",
]
