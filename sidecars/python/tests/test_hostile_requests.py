"""Requests no host sends, to a sidecar served in-process against a real nats-server: an execution id too long or
odd for a NATS name is refused before NATS sees it, a request that does not decode is INTERNAL as gRPC's status
code table has it (grpc.aio would answer UNKNOWN), no status message repeats more than a bounded part of the request; and when NATS closes
the connection for good after a protocol error, the sidecar connects anew and keeps announcing itself."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import grpc
import nats
import pytest

from pluginbridge.conformance.v1.conformance_pb2 import Script
from pluginbridge.v1 import plugin_pb2

from helpers import NatsServer, eventually_async, kv_get, task_context
from plugin_bridge import (
    AsyncPlugin,
    GrpcStatus,
    PluginContext,
    PluginError,
    ServeOptions,
    Sidecar,
    TaskType,
    phase_success,
    start,
)
from plugin_bridge.errors import status_of
from plugin_bridge.grpc_service import client_methods
from plugin_bridge.plugin_services import ASYNC_SERVICE

LONG = "x" * (64 * 1024)


async def _get(ctx: PluginContext[Script], _meta: Any) -> Any:
    if ctx.spec.message == "repeat":
        # A plugin that repeats its input whole in an error, as plugins do.
        raise PluginError(GrpcStatus.FAILED_PRECONDITION, f"cannot run {ctx.spec.echo}")
    return phase_success()


async def _nothing(*_args: Any) -> None:
    return None


PLUGIN = AsyncPlugin(
    name="hostile",
    version="1.0.0",
    task_types=[TaskType("hostile", 1)],
    specification=Script,
    create=lambda ctx: {"execution": ctx.execution_id},
    get=_get,
    delete=_nothing,
)


@asynccontextmanager
async def serving(workdir: Path, nats_url: Any) -> AsyncIterator[Sidecar]:
    options = ServeOptions(
        nats_url=nats_url, endpoint=f"unix:{workdir / 'hostile.sock'}", instance_id="hostile-1", handle_signals=False
    )
    sidecar = await start(PLUGIN, options)
    try:
        yield sidecar
    finally:
        await sidecar.stop()


@asynccontextmanager
async def channel_to(sidecar: Sidecar) -> AsyncIterator[grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(sidecar.endpoint)
    try:
        yield channel
    finally:
        await channel.close()


async def refused(call: Callable[[], Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call()
    return raised.value


def context(execution_id: str, custom: Any = None, attempt: int = 1) -> Any:
    return task_context(execution_id, custom or {}, attempt=attempt, task_type="hostile")


async def test_execution_ids_a_host_cannot_give_are_refused_before_nats(nats_server: NatsServer, workdir: Path) -> None:
    async with serving(workdir, nats_server.url) as sidecar, channel_to(sidecar) as channel:
        await asyncio.wait_for(sidecar.announced.wait(), 20)
        connection = sidecar._nats._client  # type: ignore[union-attr]
        create = client_methods(channel, ASYNC_SERVICE)["Create"]

        error = await refused(lambda: create(plugin_pb2.CreateRequest(context=context(LONG)), timeout=5))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == (
            f'context.execution_id.id "{"x" * 80}"… (65536 characters) is not an execution id: 1 to 64 letters, digits, \'-\' and \'_\''
        )
        for bad_id in ["a.b", "a b", "a*", ">", "exé", "x" * 65]:
            error = await refused(lambda: create(plugin_pb2.CreateRequest(context=context(bad_id)), timeout=5))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, bad_id
            assert "is not an execution id" in (error.details() or ""), bad_id
        error = await refused(lambda: create(plugin_pb2.CreateRequest(context=context("e-0", attempt=0)), timeout=5))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == "context.execution_id.attempt must be at least 1"

        # The longest id a host gives goes through, on the connection the sidecar started with.
        response = await create(plugin_pb2.CreateRequest(context=context("y" * 64)), timeout=5)
        assert json.loads(response.resource_meta) == {"execution": "y" * 64}
        assert sidecar._nats._client is connection and connection.is_connected  # type: ignore[union-attr]


async def test_push_refuses_a_long_execution_id_repeating_80_characters(nats_server: NatsServer, workdir: Path) -> None:
    async with serving(workdir, nats_server.url) as sidecar:
        await asyncio.wait_for(sidecar.announced.wait(), 20)
        with pytest.raises(ValueError) as raised:
            await sidecar.push(LONG, 1, phase_success())
        assert str(raised.value) == (
            f'execution id "{"x" * 80}"… (65536 characters) is not one a host gives: 1 to 64 letters, digits, \'-\' and \'_\''
        )
        with pytest.raises(ValueError, match="is not one a host gives"):
            await sidecar.push("x" * 65, 1, phase_success())


async def test_undecodable_requests_are_internal_on_every_service(workdir: Path) -> None:
    # Field 1 (the context, or health's service name) declared longer than anything that follows.
    garbage = bytes([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
    identity: Callable[[bytes], bytes] = lambda data: data  # noqa: E731
    async with serving(workdir, False) as sidecar, channel_to(sidecar) as channel:
        for method, message in [
            ("/pluginbridge.v1.AsyncPluginService/Create", "pluginbridge.v1.CreateRequest"),
            ("/pluginbridge.v1.PluginMetadataService/Describe", "pluginbridge.v1.DescribeRequest"),
            ("/grpc.health.v1.Health/Check", "grpc.health.v1.HealthCheckRequest"),
        ]:
            call = channel.unary_unary(method, request_serializer=identity, response_deserializer=identity)
            error = await refused(lambda: call(garbage, timeout=5))
            assert error.code() == grpc.StatusCode.INTERNAL, method
            assert (error.details() or "").startswith(f"the request is not a valid {message}: "), method

        watch = channel.unary_stream(
            "/grpc.health.v1.Health/Watch", request_serializer=identity, response_deserializer=identity
        )

        async def watch_garbage() -> None:
            async for _ in watch(garbage, timeout=5):
                pass

        error = await refused(watch_garbage)
        assert error.code() == grpc.StatusCode.INTERNAL

        # A request that decodes is served as before.
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=identity, response_deserializer=identity)
        assert await check(b"", timeout=5) == b"\x08\x01"  # SERVING


async def test_status_messages_repeat_a_bounded_part_of_the_request(workdir: Path) -> None:
    async with serving(workdir, False) as sidecar, channel_to(sidecar) as channel:
        get = client_methods(channel, ASYNC_SERVICE)["Get"]
        error = await refused(lambda: get(plugin_pb2.GetRequest(context=context("e-key", {LONG: 1})), timeout=5))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == (
            f'template.custom."{"x" * 80}"… (65536 characters): unknown field (expected pluginbridge.conformance.v1.Script)'
        )

        # The plugin's own message, repeating a 64 KiB input, is cut: the answer still fits its trailer.
        request = plugin_pb2.GetRequest(context=context("e-long", {"message": "repeat", "echo": LONG}), resource_meta=b"{}")
        error = await refused(lambda: get(request, timeout=5))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        prefix = "cannot run "
        assert error.details() == f"{prefix}{'x' * (2000 - len(prefix))}… (cut from 65547 characters)"


def test_status_messages_are_encodable() -> None:
    code, message = status_of(PluginError(GrpcStatus.NOT_FOUND, "lone \udc80, pair \U0001f600"))
    assert (code, message) == (GrpcStatus.NOT_FOUND, "lone ?, pair \U0001f600")
    assert status_of(ValueError("")) == (GrpcStatus.INTERNAL, "ValueError")


async def test_the_sidecar_connects_anew_after_nats_closed_its_connection_for_good(
    nats_server: NatsServer, workdir: Path
) -> None:
    async with serving(workdir, nats_server.url) as sidecar, channel_to(sidecar) as channel:
        await asyncio.wait_for(sidecar.announced.wait(), 20)
        link = sidecar._nats
        assert link is not None
        first = link._client
        assert first is not None

        # A subject longer than the server's control line: nats-server drops the connection with a protocol error,
        # and nats-py closes it for good instead of reconnecting.
        await first.publish("pb.push." + LONG, b"")
        await eventually_async(lambda: _true(first.is_closed), 10, what="NATS to close the connection")
        assert "maximum control line exceeded" in str(first.last_error)

        await eventually_async(
            lambda: _true(link._client is not None and link._client is not first and link.is_connected),
            10,
            what="a new connection",
        )
        # The store and the announcement work on it: a Create is stored, the heartbeat goes on.
        create = client_methods(channel, ASYNC_SERVICE)["Create"]
        await create(plugin_pb2.CreateRequest(context=context("after-redial")), timeout=5)
        assert await kv_get(nats_server.url, "pb_creates", "hostile.after-redial.1") is not None
        client = await nats.connect(nats_server.url)
        try:
            kv = await client.jetstream().key_value("pb_plugins")
            revision = (await kv.get("hostile.hostile-1")).revision

            async def heartbeat() -> bool:
                return (await kv.get("hostile.hostile-1")).revision > revision  # type: ignore[operator]

            await eventually_async(heartbeat, 10, what="a heartbeat on the new connection")
        finally:
            await client.close()


async def _true(value: bool) -> bool:
    return value
