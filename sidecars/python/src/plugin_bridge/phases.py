"""Named constructors for what Get and Do return, after Flyte's PhaseInfoSuccess, PhaseInfoRunning,
PhaseInfoFailure and friends: a plugin writes ``return phase_running("waiting for the file")`` and never
assembles a PhaseInfo by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from google.protobuf import struct_pb2, timestamp_pb2

from pluginbridge.v1 import task_pb2

Phase = task_pb2.Phase
ErrorKind = task_pb2.ErrorKind

#: Phases that end an attempt: no more calls follow for it.
TERMINAL_PHASES = frozenset(
    {
        task_pb2.PHASE_SUCCESS,
        task_pb2.PHASE_RETRYABLE_FAILURE,
        task_pb2.PHASE_PERMANENT_FAILURE,
        task_pb2.PHASE_ABORTED,
    }
)


@dataclass
class PhaseResult:
    """What Get and Do return: the phase and, with PHASE_SUCCESS, the task's outputs (a JSON object)."""

    phase_info: task_pb2.PhaseInfo
    outputs: Optional[Mapping[str, Any]] = field(default=None)


def _struct(value: Optional[Mapping[str, Any]]) -> Optional[struct_pb2.Struct]:
    if value is None:
        return None
    message = struct_pb2.Struct()
    message.update(dict(value))
    return message


def _phase_info(
    phase: int,
    reason: str,
    *,
    version: int = 0,
    logs: Sequence[Mapping[str, str]] | Sequence[task_pb2.TaskLog] = (),
    custom_info: Optional[Mapping[str, Any]] = None,
    error: Optional[task_pb2.ExecutionError] = None,
) -> task_pb2.PhaseInfo:
    occurred_at = timestamp_pb2.Timestamp()
    occurred_at.GetCurrentTime()
    info = task_pb2.PhaseInfo(phase=phase, reason=reason, version=version, occurred_at=occurred_at)
    for log in logs:
        info.logs.append(log if isinstance(log, task_pb2.TaskLog) else task_pb2.TaskLog(**log))
    custom = _struct(custom_info)
    if custom is not None:
        info.custom_info.CopyFrom(custom)
    if error is not None:
        info.error.CopyFrom(error)
    return info


def phase_success(
    outputs: Optional[Mapping[str, Any]] = None, *, reason: str = "", **details: Any
) -> PhaseResult:
    """The task finished; ``outputs`` become the execution's outputs. ``details``: version, logs, custom_info."""
    return PhaseResult(_phase_info(task_pb2.PHASE_SUCCESS, reason, **details), dict(outputs or {}))


def phase_running(reason: str = "", **details: Any) -> PhaseResult:
    """The remote work is running; the host asks again after the plugin's resync interval."""
    return PhaseResult(_phase_info(task_pb2.PHASE_RUNNING, reason, **details))


def phase_initializing(reason: str = "", **details: Any) -> PhaseResult:
    """The remote work is being set up (Flyte's PhaseInitializing)."""
    return PhaseResult(_phase_info(task_pb2.PHASE_INITIALIZING, reason, **details))


def phase_queued(reason: str = "", **details: Any) -> PhaseResult:
    """The remote work waits in someone else's queue (Flyte's PhaseQueued)."""
    return PhaseResult(_phase_info(task_pb2.PHASE_QUEUED, reason, **details))


def phase_waiting_for_resources(reason: str = "", **details: Any) -> PhaseResult:
    """The remote work waits for a resource or a quota (Flyte's PhaseWaitingForResources)."""
    return PhaseResult(_phase_info(task_pb2.PHASE_WAITING_FOR_RESOURCES, reason, **details))


def phase_permanent_failure(
    code: str, message: str, kind: int = task_pb2.ERROR_KIND_USER, **details: Any
) -> PhaseResult:
    """The task failed and retrying will not help. ``kind`` defaults to USER: the input is at fault."""
    error = task_pb2.ExecutionError(code=code, message=message, kind=kind)
    return PhaseResult(_phase_info(task_pb2.PHASE_PERMANENT_FAILURE, message, error=error, **details))


def phase_retryable_failure(
    code: str, message: str, kind: int = task_pb2.ERROR_KIND_SYSTEM, **details: Any
) -> PhaseResult:
    """The attempt failed in a way a new attempt may fix. ``kind`` defaults to SYSTEM: the platform is at fault."""
    error = task_pb2.ExecutionError(code=code, message=message, kind=kind)
    return PhaseResult(_phase_info(task_pb2.PHASE_RETRYABLE_FAILURE, message, error=error, **details))


def is_terminal_phase(phase: int) -> bool:
    """True for phases that end an attempt."""
    return phase in TERMINAL_PHASES
