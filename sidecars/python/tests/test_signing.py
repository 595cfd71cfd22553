"""A sidecar given a token signs what it writes to NATS: every announcement in ``pb_plugins`` and every push.
Each signature is checked here with an HMAC of the test's own over the bytes the contract names, as a host
would; a real nats-server, the conformance plugin as a real process, and ``start()`` in-process for the options."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
import struct
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, List

import grpc
import nats
import pytest

from pluginbridge.conformance.v1.conformance_pb2 import Script
from pluginbridge.v1 import coordination_pb2, plugin_pb2

from helpers import NatsServer, eventually_async, kv_get, start_sidecar, task_context
from plugin_bridge import AsyncPlugin, ServeOptions, TaskType, phase_running, phase_success, start
from plugin_bridge.grpc_service import client_methods
from plugin_bridge.plugin_services import ASYNC_SERVICE
from plugin_bridge.signing import SidecarToken, resolve_token

TOKEN = "5f1c0ffee" + "0123456789abcdef" * 3 + "d00dfee"  # 64 hex characters, as a host issues them
assert len(TOKEN) == 64


def announcement_signature(token: str, ttl_seconds: int, signed_instance: bytes) -> bytes:
    return hmac.new(token.encode("utf-8"), b"pbv1" + struct.pack(">I", ttl_seconds) + signed_instance, hashlib.sha256).digest()


def push_signature(token: str, payload: bytes) -> str:
    return hmac.new(token.encode("utf-8"), b"pbv1push" + payload, hashlib.sha256).hexdigest()


def verified_instance(value: bytes, token: str, key_id: str) -> plugin_pb2.PluginInstance:
    """The instance of a signed announcement, once its signature holds."""
    announcement = coordination_pb2.PluginAnnouncement.FromString(value)
    assert not announcement.HasField("instance")
    assert announcement.ttl_seconds == 10
    assert announcement.key_id == key_id
    assert announcement.signed_instance
    assert hmac.compare_digest(
        announcement.signature, announcement_signature(token, announcement.ttl_seconds, announcement.signed_instance)
    )
    return plugin_pb2.PluginInstance.FromString(announcement.signed_instance)


class Collector:
    """Every message published on a subject (KV puts included: a put is a message on ``$KV.<bucket>.<key>``)."""

    def __init__(self) -> None:
        self.messages: List[Any] = []

    async def handle(self, message: Any) -> None:
        self.messages.append(message)

    async def at_least(self, count: int) -> bool:
        return len(self.messages) >= count

    async def deleted(self) -> bool:
        """Whether a KV delete came (the only write here with headers)."""
        return any(message.headers for message in self.messages)


@asynccontextmanager
async def collecting(url: str, subject: str) -> AsyncIterator[Collector]:
    client = await nats.connect(url)
    collector = Collector()
    try:
        await client.subscribe(subject, cb=collector.handle)
        await client.flush()
        yield collector
    finally:
        await client.close()


# The token and its id, from the options and the environment.


def test_options_override_the_environment_one_field_at_a_time() -> None:
    environ = {"PLUGIN_BRIDGE_TOKEN": "env-token", "PLUGIN_BRIDGE_TOKEN_ID": "env-id"}
    assert resolve_token(None, None, {}) is None
    assert resolve_token(None, None, {"PLUGIN_BRIDGE_TOKEN": "", "PLUGIN_BRIDGE_TOKEN_ID": ""}) is None
    from_env = resolve_token(None, None, environ)
    assert from_env is not None and from_env.key_id == "env-id"
    assert from_env.push_headers(b"x")["Pb-Signature"] == push_signature("env-token", b"x")
    mixed = resolve_token("option-token", None, environ)
    assert mixed is not None and mixed.key_id == "env-id"
    assert mixed.push_headers(b"x")["Pb-Signature"] == push_signature("option-token", b"x")
    both = resolve_token("option-token", "option-id", environ)
    assert both is not None and both.key_id == "option-id"


def test_a_token_without_its_id_or_an_id_without_its_token_is_refused_by_name() -> None:
    for token, token_id, environ, missing in [
        (None, None, {"PLUGIN_BRIDGE_TOKEN": TOKEN}, "PLUGIN_BRIDGE_TOKEN_ID"),
        (TOKEN, None, {}, "PLUGIN_BRIDGE_TOKEN_ID"),
        (None, None, {"PLUGIN_BRIDGE_TOKEN_ID": "sql"}, "PLUGIN_BRIDGE_TOKEN"),
        (None, "sql", {}, "PLUGIN_BRIDGE_TOKEN"),
    ]:
        with pytest.raises(ValueError) as raised:
            resolve_token(token, token_id, environ)
        assert f"set {missing} " in str(raised.value)
        assert TOKEN not in str(raised.value)
    with pytest.raises(ValueError, match="visible ASCII"):
        resolve_token(TOKEN, "two words", {})


def test_the_token_stays_out_of_reprs() -> None:
    assert TOKEN not in repr(SidecarToken("sql", TOKEN))
    assert TOKEN not in repr(ServeOptions(token=TOKEN, token_id="sql"))


# A real sidecar process, given its token in the environment.


async def test_a_sidecar_with_a_token_signs_every_announcement_and_push(nats_server: NatsServer, workdir: Path) -> None:
    key = "conformance-python.conf-signed"
    async with collecting(nats_server.url, f"$KV.pb_plugins.{key}") as writes, collecting(nats_server.url, "pb.push.>") as pushes:
        car = await asyncio.to_thread(
            start_sidecar,
            "plugin_bridge.conformance",
            nats_url=nats_server.url,
            socket_dir=workdir,
            instance_id="conf-signed",
            env={
                "PLUGIN_BRIDGE_TOKEN": TOKEN,
                "PLUGIN_BRIDGE_TOKEN_ID": "conformance",
                # Everything the kit can say, to show the token is in none of it.
                "PLUGIN_BRIDGE_LOG_LEVEL": "debug",
                "CONFORMANCE_AUDIT_FILE": str(workdir / "audit.log"),
            },
        )
        try:
            # The first write and at least one heartbeat (every 3 s).
            await eventually_async(lambda: writes.at_least(2), 20, what="a heartbeat")
            stored = await kv_get(nats_server.url, "pb_plugins", key)
            assert stored is not None
            instance = verified_instance(stored, TOKEN, "conformance")
            assert instance.instance_id == "conf-signed"
            assert instance.endpoint == car.endpoint
            assert instance.descriptor.name == "conformance-python"
            assert instance.descriptor.specification.message_name == "pluginbridge.conformance.v1.Script"
            assert not instance.draining

            # A push from the plugin (Create with push_after_ms), signed over the exact bytes published.
            channel = grpc.aio.insecure_channel(car.endpoint)
            try:
                request = plugin_pb2.CreateRequest(context=task_context("signed-push", {"pushAfterMs": 50}))
                await client_methods(channel, ASYNC_SERVICE)["Create"](request, timeout=5)
            finally:
                await channel.close()
            await eventually_async(lambda: pushes.at_least(1), 10, what="the push")
            [push] = pushes.messages
            assert push.subject == "pb.push.signed-push"
            assert push.headers["Pb-Key-Id"] == "conformance"
            assert push.headers["Pb-Signature"] == push_signature(TOKEN, push.data)
            assert coordination_pb2.PushedStatus.FromString(push.data).instance_id == "conf-signed"

            car.signal(signal.SIGTERM)
            assert await asyncio.to_thread(car.wait, 40) == 0
        finally:
            car.stop()
        await eventually_async(writes.deleted, 10, what="the delete")

    # Every write was signed: the first, the heartbeats, and the draining one just before the delete.
    puts = [message for message in writes.messages if not message.headers]
    instances = [verified_instance(message.data, TOKEN, "conformance") for message in puts]
    assert len(instances) >= 3
    assert [i.draining for i in instances[:-1]] == [False] * (len(instances) - 1)
    assert instances[-1].draining
    assert instances[-1].heartbeat_at.ToNanoseconds() > instances[0].heartbeat_at.ToNanoseconds()
    assert writes.messages[-1].headers.get("KV-Operation") == "DEL"
    logs = car.logs()
    assert "signing announcements and pushes keyId=conformance" in logs
    assert TOKEN not in logs


def test_a_sidecar_with_a_token_but_no_id_does_not_start(nats_server: NatsServer, workdir: Path) -> None:
    car = start_sidecar(
        "plugin_bridge.conformance",
        nats_url=nats_server.url,
        socket_dir=workdir,
        instance_id="conf-no-id",
        env={"PLUGIN_BRIDGE_TOKEN": TOKEN},
        wait_serving=False,
    )
    try:
        assert car.wait(30) != 0
    finally:
        car.stop(5)
    logs = car.logs()
    assert "a sidecar token was given without its id: set PLUGIN_BRIDGE_TOKEN_ID" in logs
    assert TOKEN not in logs
    assert not Path(car.endpoint[len("unix:"):]).exists()


# start() in-process: the options win over the environment.


async def _nothing(*_args: Any) -> None:
    return None


def _plugin() -> AsyncPlugin:
    return AsyncPlugin(
        name="signed-kit",
        version="1.0.0",
        task_types=[TaskType("signed-kit", 1)],
        specification=Script,
        create=lambda _ctx: {},
        get=lambda _ctx, _meta: phase_running(),
        delete=_nothing,
    )


async def test_serve_options_give_the_token(nats_server: NatsServer, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGIN_BRIDGE_TOKEN", "not-this-one")
    monkeypatch.setenv("PLUGIN_BRIDGE_TOKEN_ID", "nor-this-one")
    options = ServeOptions(
        nats_url=nats_server.url,
        endpoint=f"unix:{workdir / 'signed.sock'}",
        instance_id="signed-1",
        handle_signals=False,
        token=TOKEN,
        token_id="signed-kit",
    )
    async with collecting(nats_server.url, "pb.push.>") as pushes:
        sidecar = await start(_plugin(), options)
        try:
            await asyncio.wait_for(sidecar.announced.wait(), 20)
            stored = await kv_get(nats_server.url, "pb_plugins", "signed-kit.signed-1")
            assert stored is not None
            assert verified_instance(stored, TOKEN, "signed-kit").endpoint == sidecar.endpoint
            await sidecar.push("exec-1", 2, phase_success({"n": 1}))
            await eventually_async(lambda: pushes.at_least(1), 10, what="the push")
        finally:
            await sidecar.stop()
    [push] = pushes.messages
    assert dict(push.headers) == {"Pb-Key-Id": "signed-kit", "Pb-Signature": push_signature(TOKEN, push.data)}


async def test_without_a_token_nothing_is_signed(nats_server: NatsServer, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLUGIN_BRIDGE_TOKEN", raising=False)
    monkeypatch.delenv("PLUGIN_BRIDGE_TOKEN_ID", raising=False)
    options = ServeOptions(
        nats_url=nats_server.url, endpoint=f"unix:{workdir / 'plain.sock'}", instance_id="plain-1", handle_signals=False
    )
    async with collecting(nats_server.url, "pb.push.>") as pushes:
        sidecar = await start(_plugin(), options)
        try:
            await asyncio.wait_for(sidecar.announced.wait(), 20)
            stored = await kv_get(nats_server.url, "pb_plugins", "signed-kit.plain-1")
            assert stored is not None
            announcement = coordination_pb2.PluginAnnouncement.FromString(stored)
            assert announcement.instance.instance_id == "plain-1"
            assert (announcement.signed_instance, announcement.key_id, announcement.signature) == (b"", "", b"")
            await sidecar.push("exec-1", 1, phase_success())
            await eventually_async(lambda: pushes.at_least(1), 10, what="the push")
        finally:
            await sidecar.stop()
    [push] = pushes.messages
    assert not push.headers


async def test_start_refuses_an_id_without_a_token(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLUGIN_BRIDGE_TOKEN", raising=False)
    options = ServeOptions(nats_url=False, endpoint=f"unix:{workdir / 'x.sock'}", handle_signals=False, token_id="x")
    with pytest.raises(ValueError, match="set PLUGIN_BRIDGE_TOKEN "):
        await start(_plugin(), options)
