"""The Python kit's conformance reference plugin: acts out the task's ``pluginbridge.conformance.v1.Script``
exactly as the comment of ``proto/pluginbridge/conformance/v1/conformance.proto`` specifies (and as
``sidecars/typescript/conformance/main.ts`` does), so one suite can hold every kit to the same behaviour.
With ``push_after_ms`` > 0, async Create and the attempt's first core Handle schedule a push (``ctx.push``) of
PHASE_SUCCESS that many milliseconds later.

Runs as the async plugin ``conformance-python`` or, with ``CONFORMANCE_KIND=sync``, as ``conformance-sync-python``,
or with ``CONFORMANCE_KIND=core`` as ``conformance-core-python`` (task types of the same names, version 1). Every
effective call appends
``"<call> <execution id> <attempt> <instance id>"`` to ``$CONFORMANCE_AUDIT_FILE`` once it has done its work.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Dict, Mapping, Optional, Set, Tuple

import grpc

from pluginbridge.conformance.v1 import conformance_pb2
from pluginbridge.conformance.v1.conformance_pb2 import Script

from .. import (
    AsyncPlugin,
    CorePlugin,
    ErrorKind,
    HandleResult,
    PhaseResult,
    PluginContext,
    PluginError,
    PluginState,
    Properties,
    RateLimit,
    ResourceQuota,
    SyncPlugin,
    TaskType,
    phase_permanent_failure,
    phase_retryable_failure,
    phase_running,
    phase_success,
)
from ..plugin import Plugin

LANGUAGE = "python"


def _audit(call: str, ctx: PluginContext[Script]) -> None:
    path = os.environ.get("CONFORMANCE_AUDIT_FILE")
    if path:
        # One short append per line: concurrent writers (several instances) never interleave within a line.
        with open(path, "a", encoding="utf-8") as audit:
            when = f" {time.time_ns() // 1_000_000}" if os.environ.get("CONFORMANCE_AUDIT_TIMES") == "1" else ""
            audit.write(f"{call} {ctx.execution_id} {ctx.attempt} {ctx.instance_id}{when}\n")


def _outputs(ctx: PluginContext[Script], extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    result: Dict[str, Any] = {"language": LANGUAGE, "instance": ctx.instance_id, "echo": ctx.spec.echo}
    result.update(extra or {})
    if ctx.spec.output_bytes > 0:
        result["payload"] = "x" * ctx.spec.output_bytes
    # Which secrets arrived, and how long each is: proof of delivery without the values.
    if ctx.secrets:
        result["secrets"] = {name: len(value) for name, value in ctx.secrets.items()}
    return result


#: Pushes waiting for their time: held here, since the event loop keeps only weak references to tasks.
_scheduled: "Set[asyncio.Task[None]]" = set()


def _schedule_push(ctx: PluginContext[Script], extra: Optional[Mapping[str, Any]] = None) -> None:
    """Script.push_after_ms: a push of PHASE_SUCCESS that much later, with the usual outputs plus "pushed": true,
    as a plugin that learns of the end between polls would send it."""
    delay_ms = ctx.spec.push_after_ms
    if delay_ms <= 0:
        return

    async def push_later() -> None:
        await asyncio.sleep(delay_ms / 1000)
        try:
            await ctx.push(phase_success(_outputs(ctx, {**(extra or {}), "pushed": True})))
        except Exception as error:  # noqa: BLE001 - a lost push only waits for the next poll
            ctx.log.warning("push failed", execution=ctx.execution_id, attempt=ctx.attempt, error=str(error))

    task = asyncio.ensure_future(push_later())
    _scheduled.add(task)
    task.add_done_callback(_scheduled.discard)


async def act(behavior: int, ctx: PluginContext[Script]) -> Optional[PhaseResult]:
    """Acts out a behavior: returns a failure phase to report, or None to go on and succeed."""
    message = ctx.spec.message or "scripted failure"
    if behavior in (conformance_pb2.BEHAVIOR_UNSPECIFIED, conformance_pb2.BEHAVIOR_OK):
        return None
    if behavior == conformance_pb2.BEHAVIOR_HANG:
        # Never answers in time: even after the call is cancelled it waits 2 s more, so the host always sees its
        # own deadline pass, never a CANCELLED that raced it on a loaded machine.
        await ctx.cancelled.wait()
        await asyncio.sleep(2.0)
        raise PluginError(grpc.StatusCode.CANCELLED, "cancelled")
    if behavior == conformance_pb2.BEHAVIOR_CRASH:
        raise RuntimeError(message)
    if behavior == conformance_pb2.BEHAVIOR_USER_ERROR:
        raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, message)
    if behavior == conformance_pb2.BEHAVIOR_RETRYABLE:
        return phase_retryable_failure("Scripted", message, ErrorKind.ERROR_KIND_SYSTEM)
    if behavior == conformance_pb2.BEHAVIOR_PERMANENT:
        return phase_permanent_failure("Scripted", message, ErrorKind.ERROR_KIND_USER)
    raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown behavior {behavior}")


def _pair(variable: str) -> Optional[Tuple[float, float]]:
    """``"<a>/<b>"`` from the environment as two numbers, or None when the variable is unset."""
    value = os.environ.get(variable)
    if not value:
        return None
    try:
        a, b = (float(part) for part in value.split("/"))
    except ValueError:
        raise ValueError(f'{variable} must be "<number>/<number>", not "{value}"') from None
    return a, b


def _properties() -> Properties:
    quota = _pair("CONFORMANCE_QUOTA")
    read_limit = _pair("CONFORMANCE_READ_LIMIT")
    write_limit = _pair("CONFORMANCE_WRITE_LIMIT")
    return Properties(
        resync_interval=int(os.environ.get("CONFORMANCE_RESYNC_MS", "200")) / 1000,
        create_timeout=2,
        get_timeout=2,
        delete_timeout=2,
        do_timeout=2,
        handle_timeout=2,
        abort_timeout=2,
        finalize_timeout=2,
        max_system_failures=2,
        quota=quota and ResourceQuota(total=int(quota[0]), per_namespace=int(quota[1])),
        read_limit=read_limit and RateLimit(qps=read_limit[0], burst=int(read_limit[1])),
        write_limit=write_limit and RateLimit(qps=write_limit[0], burst=int(write_limit[1])),
    )


#: The only layout of the core plugin's state: the attempt's Handle count as decimal ASCII.
STATE_VERSION = 1


def _handles_so_far(state: Optional[PluginState]) -> int:
    """The Handle count a state holds (0 without one); a state of another layout is refused, as the contract says."""
    if state is None:
        return 0
    if state.version != STATE_VERSION:
        raise PluginError(grpc.StatusCode.FAILED_PRECONDITION, f"unknown state version {state.version}")
    text = state.data.decode("ascii", errors="replace")
    if not text.isdigit():
        # Not a state this plugin wrote: as unusable as an unknown version.
        raise PluginError(grpc.StatusCode.FAILED_PRECONDITION, f"state version 1 holds no Handle count: {text!r}")
    return int(text)


def _core_plugin() -> CorePlugin:
    async def handle(ctx: PluginContext[Script], state: Optional[PluginState]) -> HandleResult:
        handles = _handles_so_far(state) + 1
        counted = PluginState.of_text(str(handles), STATE_VERSION)
        if handles == 1:
            _schedule_push(ctx, {"handles": handles})
        if handles <= ctx.spec.polls:
            _audit("handle", ctx)
            return HandleResult(phase_running("polling"), counted)
        if ctx.spec.wait_for_file and not os.path.exists(ctx.spec.wait_for_file):
            _audit("handle", ctx)
            return HandleResult(phase_running("waiting"), counted)
        failed = await act(ctx.spec.handle, ctx)
        _audit("handle", ctx)
        return HandleResult(failed or phase_success(_outputs(ctx, {"handles": handles})), counted)

    async def abort(ctx: PluginContext[Script], _state: Optional[PluginState], _reason: str) -> None:
        if await act(ctx.spec.abort, ctx):
            raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "Abort cannot report a phase")
        _audit("abort", ctx)

    async def finalize(ctx: PluginContext[Script], _state: Optional[PluginState]) -> None:
        if await act(ctx.spec.finalize, ctx):
            raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "Finalize cannot report a phase")
        _audit("finalize", ctx)

    return CorePlugin(
        name=f"conformance-core-{LANGUAGE}",
        version="1.0.0",
        task_types=[TaskType(f"conformance-core-{LANGUAGE}", 1)],
        specification=Script,
        properties=_properties(),
        handle=handle,
        abort=abort,
        finalize=finalize,
    )


def build_plugin(kind: Optional[str] = None) -> Plugin:
    """The reference plugin; ``kind`` "async", "sync" or "core" (default: $CONFORMANCE_KIND, else async)."""
    kind = kind or os.environ.get("CONFORMANCE_KIND") or "async"
    if kind == "core":
        return _core_plugin()
    if kind == "sync":

        async def do(ctx: PluginContext[Script]) -> PhaseResult:
            failed = await act(ctx.spec.do, ctx)
            _audit("do", ctx)
            return failed or phase_success(_outputs(ctx))

        return SyncPlugin(
            name=f"conformance-sync-{LANGUAGE}",
            version="1.0.0",
            task_types=[TaskType(f"conformance-sync-{LANGUAGE}", 1)],
            specification=Script,
            properties=_properties(),
            do=do,
        )

    gets_by_attempt: Dict[str, int] = {}

    async def create(ctx: PluginContext[Script]) -> Dict[str, Any]:
        if await act(ctx.spec.create, ctx):
            raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "Create cannot report a phase")
        if ctx.spec.create_delay_ms > 0:
            await asyncio.sleep(ctx.spec.create_delay_ms / 1000)
        _audit("create", ctx)
        _schedule_push(ctx)
        return {"execution": ctx.execution_id, "attempt": ctx.attempt}

    async def get(ctx: PluginContext[Script], _meta: Any) -> PhaseResult:
        key = f"{ctx.execution_id}/{ctx.attempt}"
        gets = gets_by_attempt.get(key, 0) + 1
        gets_by_attempt[key] = gets
        if ctx.spec.wait_for_file and not os.path.exists(ctx.spec.wait_for_file):
            _audit("get", ctx)
            return phase_running("waiting")
        if gets <= ctx.spec.polls:
            _audit("get", ctx)
            return phase_running("polling")
        failed = await act(ctx.spec.get, ctx)
        _audit("get", ctx)
        return failed or phase_success(_outputs(ctx, {"gets": gets}))

    async def delete(ctx: PluginContext[Script], _meta: Any) -> None:
        if await act(ctx.spec.delete, ctx):
            raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "Delete cannot report a phase")
        _audit("delete", ctx)

    return AsyncPlugin(
        name=f"conformance-{LANGUAGE}",
        version="1.0.0",
        task_types=[TaskType(f"conformance-{LANGUAGE}", 1)],
        specification=Script,
        properties=_properties(),
        create=create,
        get=get,
        delete=delete,
    )
