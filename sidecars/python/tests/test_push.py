"""Push status: ``Sidecar.push`` and ``ctx.push`` publish a PushedStatus on ``pb.push.<execution id>`` (read back
with nats-py from a real nats-server, as a host would), the refusals, and the conformance plugin's scheduled push
(Script.push_after_ms) from a real sidecar process."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, List, Optional, Tuple

import grpc
import nats
import pytest
from google.protobuf import json_format

from pluginbridge.conformance.v1.conformance_pb2 import Script
from pluginbridge.v1 import coordination_pb2, plugin_pb2, task_pb2

from helpers import NatsServer, free_port, start_sidecar, task_context
from plugin_bridge import (
    AsyncPlugin,
    GrpcStatus,
    HandleResult,
    NatsUnavailable,
    PhaseResult,
    PluginContext,
    PluginError,
    ServeOptions,
    Sidecar,
    TaskType,
    phase_running,
    phase_success,
    start,
)
from plugin_bridge.grpc_service import client_methods
from plugin_bridge.plugin_services import ASYNC_SERVICE, CORE_SERVICE

Pushed = Tuple[str, coordination_pb2.PushedStatus, float]


class PushListener:
    """Subscribes to ``pb.push.>`` as a host would and collects (subject, status, arrival time)."""

    def __init__(self) -> None:
        self.received: List[Pushed] = []
        self._client: Any = None

    async def start(self, url: str) -> "PushListener":
        self._client = await nats.connect(url)

        async def on_message(message: Any) -> None:
            status = coordination_pb2.PushedStatus.FromString(message.data)
            self.received.append((message.subject, status, time.monotonic()))

        await self._client.subscribe("pb.push.>", cb=on_message)
        await self._client.flush()
        return self

    async def next(self, timeout: float = 10) -> Pushed:
        deadline = time.monotonic() + timeout
        while not self.received:
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for a push")
            await asyncio.sleep(0.02)
        return self.received.pop(0)

    async def assert_quiet(self, seconds: float = 0.3) -> None:
        await asyncio.sleep(seconds)
        assert self.received == []

    async def close(self) -> None:
        await self._client.close()


@asynccontextmanager
async def listening(url: str) -> AsyncIterator[PushListener]:
    listener = await PushListener().start(url)
    try:
        yield listener
    finally:
        await listener.close()


async def _nothing(*_args: Any) -> None:
    return None


def async_plugin(get: Any = None) -> AsyncPlugin:
    return AsyncPlugin(
        name="push-kit",
        version="1.0.0",
        task_types=[TaskType("push-kit", 1)],
        specification=Script,
        create=lambda _ctx: {"ok": True},
        get=get or (lambda _ctx, _meta: phase_running()),
        delete=_nothing,
    )


@asynccontextmanager
async def serving(plugin: AsyncPlugin, workdir: Path, nats_url: Any) -> AsyncIterator[Sidecar]:
    options = ServeOptions(
        nats_url=nats_url, endpoint=f"unix:{workdir / 'push.sock'}", instance_id="push-kit-1", handle_signals=False
    )
    sidecar = await start(plugin, options)
    try:
        yield sidecar
    finally:
        await sidecar.stop()


async def connected(sidecar: Sidecar) -> None:
    # The announcement follows the connection, so once it is stored NATS is up.
    await asyncio.wait_for(sidecar.announced.wait(), 20)


async def test_push_publishes_a_pushed_status_on_the_execution_subject(nats_server: NatsServer, workdir: Path) -> None:
    async with serving(async_plugin(), workdir, nats_server.url) as sidecar, listening(nats_server.url) as listener:
        await connected(sidecar)
        await sidecar.push("exec_1-A", 2, phase_success({"rows": [1, 2], "name": "x"}, reason="done"))
        subject, status, _ = await listener.next()
        assert subject == "pb.push.exec_1-A"
        assert (status.execution_id, status.attempt, status.instance_id) == ("exec_1-A", 2, "push-kit-1")
        assert status.phase_info.phase == task_pb2.PHASE_SUCCESS
        assert status.phase_info.reason == "done"
        assert status.phase_info.HasField("occurred_at")
        assert json_format.MessageToDict(status.outputs) == {"rows": [1, 2], "name": "x"}

        # A non-terminal phase without outputs; a PhaseInfo without a time gets one, as a Get's answer does.
        await sidecar.push("exec-2", 1, PhaseResult(task_pb2.PhaseInfo(phase=task_pb2.PHASE_RUNNING, reason="half")))
        subject, status, _ = await listener.next()
        assert subject == "pb.push.exec-2"
        assert (status.phase_info.phase, status.phase_info.reason) == (task_pb2.PHASE_RUNNING, "half")
        assert status.phase_info.occurred_at.seconds > 0
        assert not status.HasField("outputs")


async def test_ctx_push_uses_the_calls_execution_and_attempt(nats_server: NatsServer, workdir: Path) -> None:
    async def get(ctx: PluginContext[Script], _meta: Any) -> PhaseResult:
        await ctx.push(phase_running("pushed from get"))
        return phase_running("polled")

    async with serving(async_plugin(get), workdir, nats_server.url) as sidecar, listening(nats_server.url) as listener:
        await connected(sidecar)
        channel = grpc.aio.insecure_channel(sidecar.endpoint)
        try:
            methods = client_methods(channel, ASYNC_SERVICE)
            request = plugin_pb2.GetRequest(
                context=task_context("from-get", {}, attempt=3, task_type="push-kit"), resource_meta=b"{}"
            )
            response = await methods["Get"](request, timeout=5)
        finally:
            await channel.close()
        assert response.phase_info.reason == "polled"
        subject, status, _ = await listener.next()
        assert subject == "pb.push.from-get"
        assert (status.execution_id, status.attempt, status.instance_id) == ("from-get", 3, "push-kit-1")
        assert status.phase_info.reason == "pushed from get"


async def test_push_refuses_bad_ids_attempts_and_results(nats_server: NatsServer, workdir: Path) -> None:
    async with serving(async_plugin(), workdir, nats_server.url) as sidecar, listening(nats_server.url) as listener:
        await connected(sidecar)
        ok = phase_success({"a": 1})
        for bad_id in ["", "a.b", "a b", "a*", ">", "exé", "pb.push.x", 7]:
            with pytest.raises(ValueError, match="is not one a host gives"):
                await sidecar.push(bad_id, 1, ok)  # type: ignore[arg-type]
        for bad_attempt in [0, -1, True, 1.5, 2**32]:
            with pytest.raises(ValueError, match="attempt"):
                await sidecar.push("exec", bad_attempt, ok)  # type: ignore[arg-type]
        bad_results: List[Tuple[Any, str]] = [
            (None, "push was given no PhaseResult"),
            (HandleResult(ok), "push was given no PhaseResult"),
            (PhaseResult(None), "push was given no PhaseResult"),  # type: ignore[arg-type]
            (PhaseResult(task_pb2.PhaseInfo()), "push was given PHASE_UNSPECIFIED"),
            (PhaseResult(ok.phase_info, ["not", "an", "object"]), "outputs must be a JSON object"),  # type: ignore[arg-type]
        ]
        for result, message in bad_results:
            with pytest.raises(PluginError) as raised:
                await sidecar.push("exec", 1, result)
            assert raised.value.code == GrpcStatus.INTERNAL
            assert message in raised.value.message
        await listener.assert_quiet()

        # After the sidecar stops, NATS is closed: refused at once.
        await sidecar.stop()
        with pytest.raises(NatsUnavailable):
            await sidecar.push("exec", 1, ok)


async def test_push_refuses_without_nats_and_while_not_connected(workdir: Path) -> None:
    async with serving(async_plugin(), workdir, False) as sidecar:
        with pytest.raises(RuntimeError, match="push needs NATS"):
            await sidecar.push("exec", 1, phase_success())

    nowhere = f"nats://127.0.0.1:{free_port()}"
    async with serving(async_plugin(), workdir, nowhere) as sidecar:
        with pytest.raises(NatsUnavailable):
            await sidecar.push("exec", 1, phase_success())


async def test_a_failed_ctx_push_fails_the_call_as_internal(workdir: Path) -> None:
    async def get(ctx: PluginContext[Script], _meta: Any) -> PhaseResult:
        await ctx.push(phase_success())
        return phase_running()

    async with serving(async_plugin(get), workdir, False) as sidecar:
        channel = grpc.aio.insecure_channel(sidecar.endpoint)
        try:
            request = plugin_pb2.GetRequest(context=task_context("e", {}, task_type="push-kit"), resource_meta=b"{}")
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await client_methods(channel, ASYNC_SERVICE)["Get"](request, timeout=5)
        finally:
            await channel.close()
        assert raised.value.code() == grpc.StatusCode.INTERNAL
        assert "push needs NATS" in (raised.value.details() or "")


# The conformance reference plugin, as a real process.


@asynccontextmanager
async def aio_channel(endpoint: str) -> AsyncIterator[grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(endpoint)
    try:
        yield channel
    finally:
        await channel.close()


def _conformance(nats_server: NatsServer, workdir: Path, instance_id: str, kind: Optional[str] = None) -> Any:
    env = {"CONFORMANCE_AUDIT_FILE": str(workdir / "audit.log"), "CONFORMANCE_RESYNC_MS": "200"}
    if kind:
        env["CONFORMANCE_KIND"] = kind
    return start_sidecar(
        "plugin_bridge.conformance", nats_url=nats_server.url, socket_dir=workdir, instance_id=instance_id, env=env
    )


async def test_conformance_create_schedules_a_success_push(nats_server: NatsServer, workdir: Path) -> None:
    car = _conformance(nats_server, workdir, "conf-push")
    try:
        async with listening(nats_server.url) as listener, aio_channel(car.endpoint) as channel:
            methods = client_methods(channel, ASYNC_SERVICE)
            created_at = time.monotonic()
            await methods["Create"](
                plugin_pb2.CreateRequest(context=task_context("push-1", {"pushAfterMs": 400, "echo": "hi"}, attempt=2)),
                timeout=5,
            )
            # A repeated Create answers from the stored meta: it runs nothing, so it schedules no second push.
            await methods["Create"](
                plugin_pb2.CreateRequest(context=task_context("push-1", {"pushAfterMs": 400, "echo": "hi"}, attempt=2)),
                timeout=5,
            )
            # Get schedules nothing; neither does Create without push_after_ms.
            await methods["Get"](
                plugin_pb2.GetRequest(context=task_context("push-1", {"pushAfterMs": 400, "polls": 5}, attempt=2)),
                timeout=5,
            )
            await methods["Create"](plugin_pb2.CreateRequest(context=task_context("no-push", {})), timeout=5)
            subject, status, arrived = await listener.next()
            assert arrived - created_at >= 0.35
            assert subject == "pb.push.push-1"
            assert (status.execution_id, status.attempt, status.instance_id) == ("push-1", 2, "conf-push")
            assert status.phase_info.phase == task_pb2.PHASE_SUCCESS
            assert json_format.MessageToDict(status.outputs) == {
                "language": "python",
                "instance": "conf-push",
                "echo": "hi",
                "pushed": True,
            }
            await listener.assert_quiet(0.8)
    finally:
        assert car.stop() == 0


async def test_conformance_first_core_handle_schedules_a_success_push(nats_server: NatsServer, workdir: Path) -> None:
    car = _conformance(nats_server, workdir, "conf-core-push", kind="core")
    try:
        async with listening(nats_server.url) as listener, aio_channel(car.endpoint) as channel:
            methods = client_methods(channel, CORE_SERVICE)
            custom = {"pushAfterMs": 300, "polls": 10, "outputBytes": 2}

            def handle(state: Optional[bytes]) -> plugin_pb2.HandleRequest:
                request = plugin_pb2.HandleRequest(
                    context=task_context("core-push", custom, task_type="conformance-core-python")
                )
                if state is not None:
                    request.state.version = 1
                    request.state.data = state
                return request

            first = await methods["Handle"](handle(None), timeout=5)
            assert first.phase_info.phase == task_pb2.PHASE_RUNNING
            # The second Handle of the attempt schedules nothing.
            second = await methods["Handle"](handle(first.state.data), timeout=5)
            assert second.state.data == b"2"
            subject, status, _ = await listener.next()
            assert subject == "pb.push.core-push"
            assert (status.execution_id, status.attempt, status.instance_id) == ("core-push", 1, "conf-core-push")
            assert status.phase_info.phase == task_pb2.PHASE_SUCCESS
            assert json_format.MessageToDict(status.outputs) == {
                "language": "python",
                "instance": "conf-core-push",
                "echo": "",
                "handles": 1,
                "pushed": True,
                "payload": "xx",
            }
            await listener.assert_quiet(0.8)
    finally:
        assert car.stop() == 0
