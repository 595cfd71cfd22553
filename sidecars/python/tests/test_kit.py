"""The kit as a whole: a real sidecar process (the conformance plugin) against a real nats-server."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Any, Dict, Iterator

import grpc
import nats
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2

from pluginbridge.v1 import coordination_pb2, plugin_pb2, task_pb2

from helpers import (
    NatsServer,
    Sidecar,
    audit_lines,
    eventually,
    eventually_async,
    kv_get,
    start_sidecar,
    task_context,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture()
def audit(workdir: Path) -> Path:
    return workdir / "audit.log"


@pytest.fixture()
def sidecar(nats_server: NatsServer, workdir: Path, audit: Path) -> Iterator[Sidecar]:
    car = start_sidecar(
        "plugin_bridge.conformance",
        nats_url=nats_server.url,
        socket_dir=workdir,
        instance_id="conf-a",
        env={"CONFORMANCE_AUDIT_FILE": str(audit)},
    )
    try:
        yield car
    finally:
        car.stop()


async def stream_config(url: str, stream: str) -> Any:
    client = await nats.connect(url)
    try:
        return (await client.jetstream().stream_info(stream)).config
    finally:
        await client.close()


def test_describe_gives_a_resolvable_specification(sidecar: Sidecar) -> None:
    response = sidecar.methods("PluginMetadataService")["Describe"](plugin_pb2.DescribeRequest(), timeout=5)
    plugin = response.plugin
    assert plugin.name == "conformance-python"
    assert plugin.kind == plugin_pb2.PLUGIN_KIND_ASYNC
    assert [(t.type, t.version) for t in plugin.task_types] == [("conformance-python", 1)]
    assert plugin.properties.resync_interval.ToMilliseconds() == 200
    assert plugin.properties.get_timeout.ToMilliseconds() == 2000
    assert plugin.properties.max_system_failures == 2
    spec = plugin.specification
    assert spec.message_name == "pluginbridge.conformance.v1.Script"
    # A fresh pool, as a host or SDK without our code has: every dependency must come first in the set.
    pool = descriptor_pool.DescriptorPool()
    for file in spec.file_descriptor_set.file:
        pool.Add(file)
    script_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(spec.message_name))
    message = json_format.ParseDict({"echo": "hé", "polls": 2, "get": "BEHAVIOR_CRASH"}, script_cls())
    assert message.polls == 2


def test_health_serving_and_unknown_service(sidecar: Sidecar) -> None:
    for service in ("", "pluginbridge.v1.PluginMetadataService", "pluginbridge.v1.AsyncPluginService", "grpc.health.v1.Health"):
        assert sidecar.health(service) == SERVING
    with pytest.raises(grpc.RpcError) as raised:
        sidecar.health("no.such.Service")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_announcement_appears_and_heartbeat_advances(sidecar: Sidecar, nats_server: NatsServer) -> None:
    async def announcement() -> coordination_pb2.PluginAnnouncement | None:
        value = await kv_get(nats_server.url, "pb_plugins", "conformance-python.conf-a")
        return coordination_pb2.PluginAnnouncement.FromString(value) if value else None

    first = await eventually_async(announcement, 20, what="the announcement")
    assert first.ttl_seconds == 10
    # No token: unsigned, the instance in the clear.
    assert (first.signed_instance, first.key_id, first.signature) == (b"", "", b"")
    assert first.instance.instance_id == "conf-a"
    assert first.instance.endpoint == sidecar.endpoint
    assert first.instance.endpoint.startswith("unix:/")
    assert not first.instance.draining
    assert first.instance.descriptor.name == "conformance-python"
    assert first.instance.descriptor.specification.message_name == "pluginbridge.conformance.v1.Script"

    async def advanced() -> bool:
        later = await announcement()
        return later is not None and later.instance.heartbeat_at.ToNanoseconds() > first.instance.heartbeat_at.ToNanoseconds()

    await eventually_async(advanced, 15, what="the heartbeat to advance")
    # The bucket as the host expects it (created by whoever came first: here the kit).
    config = await stream_config(nats_server.url, "KV_pb_plugins")
    assert config.max_msgs_per_subject == 1
    assert config.max_age == 15
    assert config.subject_delete_marker_ttl == 5
    assert config.allow_msg_ttl is True


def test_bad_custom_is_invalid_argument_naming_the_field(sidecar: Sidecar, audit: Path) -> None:
    methods = sidecar.methods("AsyncPluginService")
    for custom, field in (({"polls": "many"}, "template.custom.polls"), ({"nope": 1}, "template.custom.nope")):
        with pytest.raises(grpc.RpcError) as raised:
            methods["Create"](plugin_pb2.CreateRequest(context=task_context("bad-1", custom)), timeout=5)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details().startswith(field), raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        methods["Get"](plugin_pb2.GetRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert audit_lines(audit) == []


def test_a_raising_plugin_is_internal_and_the_sidecar_keeps_serving(sidecar: Sidecar) -> None:
    methods = sidecar.methods("AsyncPluginService")
    script = {"get": "BEHAVIOR_CRASH", "message": "boom ü"}
    with pytest.raises(grpc.RpcError) as raised:
        methods["Get"](plugin_pb2.GetRequest(context=task_context("crash-1", script)), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert raised.value.details() == "boom ü"
    with pytest.raises(grpc.RpcError) as raised:
        methods["Get"](plugin_pb2.GetRequest(context=task_context("crash-1", {"get": "BEHAVIOR_USER_ERROR", "message": "yours"})), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "yours"
    # The next call still works.
    response = methods["Get"](plugin_pb2.GetRequest(context=task_context("crash-2", {"echo": "still here"})), timeout=5)
    assert response.phase_info.phase == task_pb2.PHASE_SUCCESS
    outputs = json_format.MessageToDict(response.outputs)
    assert outputs == {"language": "python", "instance": "conf-a", "echo": "still here", "gets": 1}
    retryable = methods["Get"](plugin_pb2.GetRequest(context=task_context("crash-3", {"get": "BEHAVIOR_RETRYABLE", "message": "again"})), timeout=5)
    assert retryable.phase_info.phase == task_pb2.PHASE_RETRYABLE_FAILURE
    assert (retryable.phase_info.error.code, retryable.phase_info.error.kind) == ("Scripted", task_pb2.ERROR_KIND_SYSTEM)
    assert sidecar.health("") == SERVING


def test_hang_sees_the_deadline(sidecar: Sidecar) -> None:
    methods = sidecar.methods("AsyncPluginService")
    with pytest.raises(grpc.RpcError) as raised:
        methods["Get"](plugin_pb2.GetRequest(context=task_context("hang-1", {"get": "BEHAVIOR_HANG"})), timeout=0.5)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    response = methods["Get"](plugin_pb2.GetRequest(context=task_context("hang-2", {})), timeout=5)
    assert response.phase_info.phase == task_pb2.PHASE_SUCCESS


def test_create_is_idempotent_in_process_and_across_processes(
    sidecar: Sidecar, nats_server: NatsServer, workdir: Path, audit: Path
) -> None:
    methods = sidecar.methods("AsyncPluginService")
    context = task_context("exec-1", {"createDelayMs": 300}, attempt=2)
    # Concurrent duplicates share one run ...
    results: Dict[int, bytes] = {}

    def call(index: int) -> None:
        results[index] = methods["Create"](plugin_pb2.CreateRequest(context=context), timeout=10).resource_meta

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert len(results) == 4 and len(set(results.values())) == 1
    meta = results[0]
    assert json_format.json.loads(meta) == {"execution": "exec-1", "attempt": 2}
    # ... a later retry is answered from the store ...
    assert methods["Create"](plugin_pb2.CreateRequest(context=context), timeout=10).resource_meta == meta
    # ... under the key every kit uses.
    stored = asyncio.run(kv_get(nats_server.url, "pb_creates", "conformance-python.exec-1.2"))
    assert stored == meta
    # ... and a second process does not run create again.
    other = start_sidecar(
        "plugin_bridge.conformance",
        nats_url=nats_server.url,
        socket_dir=workdir,
        instance_id="conf-b",
        env={"CONFORMANCE_AUDIT_FILE": str(audit)},
    )
    try:
        again = other.methods("AsyncPluginService")["Create"](plugin_pb2.CreateRequest(context=context), timeout=10)
        assert again.resource_meta == meta
        # A new attempt is a new Create.
        fresh = other.methods("AsyncPluginService")["Create"](
            plugin_pb2.CreateRequest(context=task_context("exec-1", {}, attempt=3)), timeout=10
        )
        assert json_format.json.loads(fresh.resource_meta)["attempt"] == 3
    finally:
        other.stop()
    creates = [line for line in audit_lines(audit) if line[0] == "create"]
    assert creates == [["create", "exec-1", "2", "conf-a"], ["create", "exec-1", "3", "conf-b"]]


def test_create_without_the_store_is_unavailable_and_runs_nothing(workdir: Path, audit: Path) -> None:
    # NATS at a port where nothing listens: the sidecar serves, but cannot know whether a Create already ran.
    from helpers import free_port

    car = start_sidecar(
        "plugin_bridge.conformance",
        nats_url=f"nats://127.0.0.1:{free_port()}",
        socket_dir=workdir,
        instance_id="conf-nostore",
        env={"CONFORMANCE_AUDIT_FILE": str(audit)},
    )
    try:
        with pytest.raises(grpc.RpcError) as raised:
            car.methods("AsyncPluginService")["Create"](
                plugin_pb2.CreateRequest(context=task_context("nostore-1", {})), timeout=5
            )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert audit_lines(audit) == []
    finally:
        assert car.stop() == 0


def test_sync_kind_serves_do(nats_server: NatsServer, workdir: Path, audit: Path) -> None:
    car = start_sidecar(
        "plugin_bridge.conformance",
        nats_url=nats_server.url,
        socket_dir=workdir,
        instance_id="conf-sync",
        env={"CONFORMANCE_AUDIT_FILE": str(audit), "CONFORMANCE_KIND": "sync"},
    )
    try:
        assert car.health("pluginbridge.v1.SyncPluginService") == SERVING
        with pytest.raises(grpc.RpcError) as raised:
            car.health("pluginbridge.v1.AsyncPluginService")
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        described = car.methods("PluginMetadataService")["Describe"](plugin_pb2.DescribeRequest(), timeout=5).plugin
        assert (described.name, described.kind) == ("conformance-sync-python", plugin_pb2.PLUGIN_KIND_SYNC)
        context = task_context("do-1", {"echo": "ok", "outputBytes": 3}, task_type="conformance-sync-python")
        response = car.methods("SyncPluginService")["Do"](plugin_pb2.DoRequest(context=context), timeout=5)
        assert response.phase_info.phase == task_pb2.PHASE_SUCCESS
        assert json_format.MessageToDict(response.outputs) == {
            "language": "python",
            "instance": "conf-sync",
            "echo": "ok",
            "payload": "xxx",
        }
        permanent = car.methods("SyncPluginService")["Do"](
            plugin_pb2.DoRequest(context=task_context("do-2", {"do": "BEHAVIOR_PERMANENT", "message": "no"})), timeout=5
        )
        assert permanent.phase_info.phase == task_pb2.PHASE_PERMANENT_FAILURE
        assert (permanent.phase_info.error.code, permanent.phase_info.error.kind) == ("Scripted", task_pb2.ERROR_KIND_USER)
        assert audit_lines(audit) == [["do", "do-1", "1", "conf-sync"], ["do", "do-2", "1", "conf-sync"]]
    finally:
        car.stop()


def test_drain_on_sigterm(nats_server: NatsServer, workdir: Path, audit: Path) -> None:
    car = start_sidecar(
        "plugin_bridge.conformance",
        nats_url=nats_server.url,
        socket_dir=workdir,
        instance_id="conf-drain",
        env={"CONFORMANCE_AUDIT_FILE": str(audit)},
    )
    key = "conformance-python.conf-drain"
    try:
        eventually(lambda: asyncio.run(kv_get(nats_server.url, "pb_plugins", key)), 20, what="the announcement")
        methods = car.methods("AsyncPluginService")
        # An in-flight call: a Create that takes 2.5 s, still running when SIGTERM arrives.
        result: Dict[str, Any] = {}

        def slow_create() -> None:
            try:
                result["meta"] = methods["Create"](
                    plugin_pb2.CreateRequest(context=task_context("drain-1", {"createDelayMs": 2500})), timeout=20
                ).resource_meta
            except grpc.RpcError as error:
                result["error"] = error

        thread = threading.Thread(target=slow_create)
        thread.start()
        eventually(lambda: "create" in car.logs(), 10, what="the create to start")
        car.signal(signal.SIGTERM)

        def draining_announced() -> bool:
            value = asyncio.run(kv_get(nats_server.url, "pb_plugins", key))
            return value is not None and coordination_pb2.PluginAnnouncement.FromString(value).instance.draining

        eventually(draining_announced, 10, what="draining=true")
        # New plugin calls are refused while the old one finishes.
        with pytest.raises(grpc.RpcError) as raised:
            methods["Get"](plugin_pb2.GetRequest(context=task_context("drain-2", {})), timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert raised.value.details() == "draining"
        assert car.health("") == NOT_SERVING
        thread.join(20)
        assert "meta" in result, result
        assert car.wait(40) == 0
        assert asyncio.run(kv_get(nats_server.url, "pb_plugins", key)) is None
        assert [line[0] for line in audit_lines(audit)] == ["create"]
        assert not Path(car.endpoint[len("unix:"):]).exists()
    finally:
        car.stop()


async def test_a_sidecar_started_before_nats_announces_once_it_appears(workdir: Path, audit: Path) -> None:
    from helpers import NATS_SERVER

    if not NATS_SERVER.exists():
        pytest.skip("nats-server missing")
    late_dir = workdir / "late"
    late_dir.mkdir()
    server: NatsServer | None = None
    # The sidecar first, pointed at a port where nothing listens yet.
    from helpers import free_port

    port = free_port()
    car = start_sidecar(
        "plugin_bridge.conformance",
        nats_url=f"nats://127.0.0.1:{port}",
        socket_dir=workdir,
        instance_id="conf-late",
        env={"CONFORMANCE_AUDIT_FILE": str(audit)},
    )
    try:
        await asyncio.sleep(2.5)
        server = NatsServer(late_dir, port=port)

        async def announced() -> bool:
            return await kv_get(server.url, "pb_plugins", "conformance-python.conf-late") is not None

        await eventually_async(announced, 30, interval=0.3, what="the late announcement")
    finally:
        car.stop()
        if server is not None:
            server.stop()
