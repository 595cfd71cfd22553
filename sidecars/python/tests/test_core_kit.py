"""The kit's side of core plugins, in process: what it checks in Handle's results, how it hands the state over,
Finalize's sharing, memory and cancellation, no store, and draining. A real grpcio server and client on a unix
socket; the plugin is declared here, so each test can make it misbehave on purpose."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Tuple

import grpc
import pytest

from pluginbridge.conformance.v1.conformance_pb2 import Script
from pluginbridge.v1 import plugin_pb2, task_pb2

from helpers import free_port, task_context
from plugin_bridge import (
    CorePlugin,
    GrpcStatus,
    HandleResult,
    PhaseResult,
    PluginContext,
    PluginError,
    PluginState,
    ServeOptions,
    Sidecar,
    TaskType,
    phase_running,
    phase_success,
    start,
)
from plugin_bridge.grpc_service import client_methods
from plugin_bridge.plugin_services import CORE_SERVICE


async def _nothing(*_args: Any) -> None:
    return None


def core_plugin(**methods: Any) -> CorePlugin:
    """A core plugin whose methods default to doing nothing (handle: success)."""
    return CorePlugin(
        name="core-kit",
        version="1.0.0",
        task_types=[TaskType("core-kit", 1)],
        specification=Script,
        handle=methods.get("handle", lambda _ctx, _state: phase_success()),
        abort=methods.get("abort", _nothing),
        finalize=methods.get("finalize", _nothing),
    )


@asynccontextmanager
async def serving(
    plugin: CorePlugin, workdir: Path, nats_url: Any = False
) -> AsyncIterator[Tuple[Sidecar, Dict[str, Any]]]:
    options = ServeOptions(
        nats_url=nats_url, endpoint=f"unix:{workdir / 'core.sock'}", instance_id="core-kit-1", handle_signals=False
    )
    sidecar = await start(plugin, options)
    channel = grpc.aio.insecure_channel(sidecar.endpoint)
    try:
        yield sidecar, client_methods(channel, CORE_SERVICE)
    finally:
        await channel.close()
        await sidecar.stop()


def ctx_for(execution_id: str, attempt: int = 1) -> task_pb2.TaskContext:
    return task_context(execution_id, {}, attempt=attempt, task_type="core-kit")


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def refused(call: Any, request: Any, timeout: float = 5) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(request, timeout=timeout)
    return raised.value


async def test_handle_gets_and_returns_state(workdir: Path) -> None:
    seen: List[Optional[PluginState]] = []

    # A plain function: the kit accepts those as well as coroutines.
    def handle(ctx: PluginContext[Script], state: Optional[PluginState]) -> Any:
        seen.append(state)
        if ctx.execution_id == "keep":
            return phase_running("no new state")
        count = 0 if state is None else state.as_json()["count"]
        return HandleResult(phase_running("counting"), PluginState.of_json({"count": count + 1, "note": "é"}, version=7))

    async with serving(core_plugin(handle=handle), workdir) as (_, core):
        first = await core["Handle"](plugin_pb2.HandleRequest(context=ctx_for("count")), timeout=5)
        assert first.HasField("state")
        assert (first.state.version, first.state.data) == (7, '{"count":1,"note":"é"}'.encode())
        second = await core["Handle"](plugin_pb2.HandleRequest(context=ctx_for("count"), state=first.state), timeout=5)
        assert PluginState(second.state.version, second.state.data).as_json() == {"count": 2, "note": "é"}
        kept = await core["Handle"](plugin_pb2.HandleRequest(context=ctx_for("keep"), state=second.state), timeout=5)
        assert kept.phase_info.reason == "no new state"
        assert not kept.HasField("state")
        # An empty state is still a state: only an unset one is None.
        empty = plugin_pb2.PluginState()
        await core["Handle"](plugin_pb2.HandleRequest(context=ctx_for("keep"), state=empty), timeout=5)
    assert seen == [
        None,
        PluginState.of_json({"count": 1, "note": "é"}, version=7),
        PluginState.of_json({"count": 2, "note": "é"}, version=7),
        PluginState(0, b""),
    ]


async def test_handle_results_are_checked(workdir: Path) -> None:
    returns: Dict[str, Any] = {
        "nothing": None,
        "no-phase": HandleResult(None),  # type: ignore[arg-type]
        "unspecified": HandleResult(PhaseResult(task_pb2.PhaseInfo())),
        "list-outputs": HandleResult(PhaseResult(phase_success().phase_info, [1, 2])),  # type: ignore[arg-type]
        "text-state": HandleResult(phase_running(), "3"),  # type: ignore[arg-type]
    }

    async def handle(ctx: PluginContext[Script], _state: Optional[PluginState]) -> Any:
        if ctx.execution_id == "bad-version":
            return HandleResult(phase_running(), PluginState(-1))
        if ctx.execution_id == "user":
            raise PluginError(GrpcStatus.FAILED_PRECONDITION, "not like this")
        return returns[ctx.execution_id]

    async with serving(core_plugin(handle=handle), workdir) as (_, core):
        expected = {
            "nothing": "handle returned no HandleResult",
            "no-phase": "handle returned no PhaseResult",
            "unspecified": "handle returned PHASE_UNSPECIFIED",
            "list-outputs": "outputs must be a JSON object",
            "text-state": "handle returned a state that is not a PluginState",
            "bad-version": "PluginState.version must be an int",
        }
        for execution_id, message in expected.items():
            error = await refused(core["Handle"], plugin_pb2.HandleRequest(context=ctx_for(execution_id)))
            assert error.code() == grpc.StatusCode.INTERNAL, execution_id
            assert error.details().startswith(message), (execution_id, error.details())
        user = await refused(core["Handle"], plugin_pb2.HandleRequest(context=ctx_for("user")))
        assert (user.code(), user.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "not like this")


async def test_abort_gets_state_and_reason(workdir: Path) -> None:
    seen: List[Tuple[str, Optional[PluginState], str]] = []

    async def abort(ctx: PluginContext[Script], state: Optional[PluginState], reason: str) -> None:
        seen.append((ctx.execution_id, state, reason))

    async with serving(core_plugin(abort=abort), workdir) as (_, core):
        await core["Abort"](plugin_pb2.AbortRequest(context=ctx_for("a"), reason="asked"), timeout=5)
        state = plugin_pb2.PluginState(version=1, data=b"x")
        await core["Abort"](plugin_pb2.AbortRequest(context=ctx_for("a"), state=state, reason="timeout"), timeout=5)
    assert seen == [("a", None, "asked"), ("a", PluginState(1, b"x"), "timeout")]


async def test_finalize_shares_one_run_and_remembers_only_success(workdir: Path) -> None:
    runs: List[Tuple[str, int, Optional[PluginState]]] = []
    release = asyncio.Event()
    failures = {"flaky": 1}

    async def finalize(ctx: PluginContext[Script], state: Optional[PluginState]) -> None:
        runs.append((ctx.execution_id, ctx.attempt, state))
        if failures.get(ctx.execution_id, 0) > 0:
            failures[ctx.execution_id] -= 1
            raise RuntimeError("cleanup failed")
        await release.wait()

    async with serving(core_plugin(finalize=finalize), workdir) as (_, core):
        request = plugin_pb2.FinalizeRequest(context=ctx_for("dup", 2), state=plugin_pb2.PluginState(version=1, data=b"s"))
        duplicates = [asyncio.ensure_future(core["Finalize"](request, timeout=10)) for _ in range(3)]
        await until(lambda: len(runs) == 1, "the finalize to start")
        await asyncio.sleep(0.5)  # lets the other duplicates arrive and join the run in progress
        release.set()
        await asyncio.gather(*duplicates)
        await core["Finalize"](request, timeout=5)
        assert runs == [("dup", 2, PluginState(1, b"s"))]
        # Another attempt is another Finalize.
        await core["Finalize"](plugin_pb2.FinalizeRequest(context=ctx_for("dup", 3)), timeout=5)
        assert len(runs) == 2

        flaky = plugin_pb2.FinalizeRequest(context=ctx_for("flaky"))
        error = await refused(core["Finalize"], flaky)
        assert (error.code(), error.details()) == (grpc.StatusCode.INTERNAL, "cleanup failed")
        await core["Finalize"](flaky, timeout=5)
        await core["Finalize"](flaky, timeout=5)
        assert [run[0] for run in runs].count("flaky") == 2


async def test_finalize_sees_cancellation_when_its_caller_leaves(workdir: Path) -> None:
    cancelled = asyncio.Event()
    runs = 0

    async def finalize(ctx: PluginContext[Script], _state: Optional[PluginState]) -> None:
        nonlocal runs
        runs += 1
        await ctx.cancelled.wait()
        cancelled.set()
        raise PluginError(GrpcStatus.CANCELLED, "cancelled")

    async with serving(core_plugin(finalize=finalize), workdir) as (_, core):
        request = plugin_pb2.FinalizeRequest(context=ctx_for("leaving"))
        error = await refused(core["Finalize"], request, timeout=0.3)
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.wait_for(cancelled.wait(), 5)
        # It ended in failure, so nothing is remembered: the next Finalize runs it again.
        await refused(core["Finalize"], request, timeout=0.3)
        await until(lambda: runs == 2, "a second run")


async def test_finalize_without_the_store_is_unavailable(workdir: Path) -> None:
    ran = False

    async def finalize(_ctx: PluginContext[Script], _state: Optional[PluginState]) -> None:
        nonlocal ran
        ran = True

    unreachable = f"nats://127.0.0.1:{free_port()}"
    async with serving(core_plugin(finalize=finalize), workdir, nats_url=unreachable) as (_, core):
        error = await refused(core["Finalize"], plugin_pb2.FinalizeRequest(context=ctx_for("nostore")))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert error.details().startswith("finalize idempotency store unavailable")
        # Handle and Abort need no store.
        await core["Handle"](plugin_pb2.HandleRequest(context=ctx_for("nostore")), timeout=5)
    assert not ran


async def test_drain_refuses_new_core_calls_and_waits_for_the_one_in_flight(workdir: Path) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def handle(_ctx: PluginContext[Script], _state: Optional[PluginState]) -> Any:
        entered.set()
        await release.wait()
        return HandleResult(phase_success({"done": True}), PluginState.of_text("end"))

    async with serving(core_plugin(handle=handle), workdir) as (sidecar, core):
        in_flight = asyncio.ensure_future(core["Handle"](plugin_pb2.HandleRequest(context=ctx_for("slow")), timeout=10))
        await asyncio.wait_for(entered.wait(), 5)
        draining = asyncio.ensure_future(sidecar.drain())
        await asyncio.sleep(0.2)
        for request, method in (
            (plugin_pb2.HandleRequest(context=ctx_for("late")), "Handle"),
            (plugin_pb2.AbortRequest(context=ctx_for("late")), "Abort"),
            (plugin_pb2.FinalizeRequest(context=ctx_for("late")), "Finalize"),
        ):
            error = await refused(core[method], request)
            assert (error.code(), error.details()) == (grpc.StatusCode.UNAVAILABLE, "draining")
        release.set()
        answer = await in_flight
        assert answer.phase_info.phase == task_pb2.PHASE_SUCCESS
        assert PluginState(answer.state.version, answer.state.data).as_text() == "end"
        await asyncio.wait_for(draining, 15)
