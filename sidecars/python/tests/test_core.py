"""Core plugins end to end: the conformance plugin run with CONFORMANCE_KIND=core as real processes against a real
nats-server, called over grpcio as the host calls them."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2

from pluginbridge.v1 import plugin_pb2, task_pb2

from helpers import NatsServer, Sidecar, audit_lines, kv_get, start_sidecar, task_context

SERVING = health_pb2.HealthCheckResponse.SERVING
TASK_TYPE = "conformance-core-python"


@pytest.fixture()
def audit(workdir: Path) -> Path:
    return workdir / "audit.log"


def start_core(nats_server: NatsServer, workdir: Path, audit: Path, instance_id: str) -> Sidecar:
    return start_sidecar(
        "plugin_bridge.conformance",
        nats_url=nats_server.url,
        socket_dir=workdir,
        instance_id=instance_id,
        env={"CONFORMANCE_AUDIT_FILE": str(audit), "CONFORMANCE_KIND": "core"},
    )


@pytest.fixture()
def core(nats_server: NatsServer, workdir: Path, audit: Path) -> Iterator[Sidecar]:
    car = start_core(nats_server, workdir, audit, "core-a")
    try:
        yield car
    finally:
        car.stop()


def context(execution_id: str, custom: Dict[str, Any], attempt: int = 1) -> task_pb2.TaskContext:
    return task_context(execution_id, custom, attempt=attempt, task_type=TASK_TYPE)


def handle(
    car: Sidecar, ctx: task_pb2.TaskContext, state: Optional[plugin_pb2.PluginState] = None, timeout: float = 5
) -> plugin_pb2.HandleResponse:
    request = plugin_pb2.HandleRequest(context=ctx, state=state)
    response: plugin_pb2.HandleResponse = car.methods("CorePluginService")["Handle"](request, timeout=timeout)
    return response


def finalize(car: Sidecar, ctx: task_pb2.TaskContext) -> None:
    car.methods("CorePluginService")["Finalize"](plugin_pb2.FinalizeRequest(context=ctx), timeout=10)


def calls(audit: Path, call: str) -> List[List[str]]:
    return [line for line in audit_lines(audit) if line[0] == call]


def test_describe_says_core_and_health_lists_the_core_service(core: Sidecar) -> None:
    plugin = core.methods("PluginMetadataService")["Describe"](plugin_pb2.DescribeRequest(), timeout=5).plugin
    assert (plugin.name, plugin.kind) == (TASK_TYPE, plugin_pb2.PLUGIN_KIND_CORE)
    assert [(t.type, t.version) for t in plugin.task_types] == [(TASK_TYPE, 1)]
    properties = plugin.properties
    assert properties.resync_interval.ToMilliseconds() == 200
    for timeout in (properties.handle_timeout, properties.abort_timeout, properties.finalize_timeout):
        assert timeout.ToMilliseconds() == 2000
    assert properties.max_system_failures == 2
    assert plugin.specification.message_name == "pluginbridge.conformance.v1.Script"
    for service in ("", "pluginbridge.v1.PluginMetadataService", "pluginbridge.v1.CorePluginService", "grpc.health.v1.Health"):
        assert core.health(service) == SERVING
    for service in ("pluginbridge.v1.AsyncPluginService", "pluginbridge.v1.SyncPluginService"):
        with pytest.raises(grpc.RpcError) as raised:
            core.health(service)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_handle_counts_in_the_state_it_hands_back(core: Sidecar, audit: Path, workdir: Path) -> None:
    flag = workdir / "go"
    ctx = context("core-1", {"polls": 2, "waitForFile": str(flag), "echo": "hé ✓", "outputBytes": 2}, attempt=3)
    state: Optional[plugin_pb2.PluginState] = None
    for expected in ("polling", "polling", "waiting"):
        response = handle(core, ctx, state)
        assert (response.phase_info.phase, response.phase_info.reason) == (task_pb2.PHASE_RUNNING, expected)
        assert response.state.version == 1
        state = response.state
    assert state is not None and state.data == b"3"
    flag.touch()
    done = handle(core, ctx, state)
    assert done.phase_info.phase == task_pb2.PHASE_SUCCESS
    assert (done.state.version, done.state.data) == (1, b"4")
    expected_outputs = {"language": "python", "instance": "core-a", "echo": "hé ✓", "handles": 4, "payload": "xx"}
    assert json_format.MessageToDict(done.outputs) == expected_outputs
    # The same Handle again (a host that crashed before storing the answer) answers the same.
    again = handle(core, ctx, state)
    assert json_format.MessageToDict(again.outputs) == expected_outputs
    assert calls(audit, "handle") == [["handle", "core-1", "3", "core-a"]] * 5


def test_handle_failures(core: Sidecar, audit: Path) -> None:
    def refused(ctx: task_pb2.TaskContext, state: Optional[plugin_pb2.PluginState] = None) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as raised:
            handle(core, ctx, state)
        return raised.value

    unknown = refused(context("fail-1", {}), plugin_pb2.PluginState(version=2, data=b"1"))
    assert (unknown.code(), unknown.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "unknown state version 2")
    garbled = refused(context("fail-1", {}), plugin_pb2.PluginState(version=1, data=b"three"))
    assert garbled.code() == grpc.StatusCode.FAILED_PRECONDITION
    crash = refused(context("fail-2", {"handle": "BEHAVIOR_CRASH", "message": "boom ü"}))
    assert (crash.code(), crash.details()) == (grpc.StatusCode.INTERNAL, "boom ü")
    user = refused(context("fail-3", {"handle": "BEHAVIOR_USER_ERROR", "message": "yours"}))
    assert (user.code(), user.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "yours")
    bad_custom = refused(context("fail-4", {"polls": "many"}))
    assert bad_custom.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_custom.details().startswith("template.custom.polls"), bad_custom.details()
    with pytest.raises(grpc.RpcError) as raised:
        core.methods("CorePluginService")["Handle"](plugin_pb2.HandleRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as raised:
        handle(core, context("fail-5", {"handle": "BEHAVIOR_HANG"}), timeout=0.5)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    retryable = handle(core, context("fail-6", {"handle": "BEHAVIOR_RETRYABLE", "message": "again"}))
    assert retryable.phase_info.phase == task_pb2.PHASE_RETRYABLE_FAILURE
    assert (retryable.phase_info.error.code, retryable.phase_info.error.kind) == ("Scripted", task_pb2.ERROR_KIND_SYSTEM)
    permanent = handle(core, context("fail-7", {"handle": "BEHAVIOR_PERMANENT", "message": "no"}))
    assert permanent.phase_info.phase == task_pb2.PHASE_PERMANENT_FAILURE
    assert (permanent.phase_info.error.code, permanent.phase_info.error.kind) == ("Scripted", task_pb2.ERROR_KIND_USER)
    # Still serving, and only the calls that did their work were audited.
    assert handle(core, context("fail-8", {})).phase_info.phase == task_pb2.PHASE_SUCCESS
    assert [line[1] for line in calls(audit, "handle")] == ["fail-6", "fail-7", "fail-8"]


def test_abort(core: Sidecar, audit: Path) -> None:
    abort = core.methods("CorePluginService")["Abort"]
    # No state yet (aborted before its first Handle), then with one: each Abort does its work.
    abort(plugin_pb2.AbortRequest(context=context("abort-1", {}), reason="user asked"), timeout=5)
    state = plugin_pb2.PluginState(version=1, data=b"2")
    abort(plugin_pb2.AbortRequest(context=context("abort-1", {}), state=state, reason="timeout"), timeout=5)
    for behavior, code in (("BEHAVIOR_USER_ERROR", grpc.StatusCode.INVALID_ARGUMENT), ("BEHAVIOR_CRASH", grpc.StatusCode.INTERNAL)):
        with pytest.raises(grpc.RpcError) as raised:
            abort(plugin_pb2.AbortRequest(context=context("abort-2", {"abort": behavior, "message": "m"})), timeout=5)
        assert (raised.value.code(), raised.value.details()) == (code, "m")
    assert calls(audit, "abort") == [["abort", "abort-1", "1", "core-a"]] * 2


def test_finalize_runs_once_per_attempt_across_duplicates_and_restarts(
    nats_server: NatsServer, workdir: Path, audit: Path
) -> None:
    first = start_core(nats_server, workdir, audit, "core-fin-a")
    ctx = context("fin-1", {}, attempt=2)
    try:
        # Concurrent duplicates ...
        errors: List[BaseException] = []

        def call() -> None:
            try:
                finalize(first, ctx)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        assert errors == []
        # ... and later repeats answer OK without running it again.
        finalize(first, ctx)
        stored = asyncio.run(kv_get(nats_server.url, "pb_creates", "conformance-core-python.fin-1.2.finalize"))
        assert stored == b"finalized"
        # A Finalize that failed is not remembered: its retry runs.
        crashing = context("fin-1", {"finalize": "BEHAVIOR_CRASH", "message": "not yet"}, attempt=3)
        with pytest.raises(grpc.RpcError) as raised:
            finalize(first, crashing)
        assert (raised.value.code(), raised.value.details()) == (grpc.StatusCode.INTERNAL, "not yet")
        finalize(first, context("fin-1", {}, attempt=3))
    finally:
        assert first.stop() == 0
    # A restarted (or any other) instance finds the marker: no second run.
    second = start_core(nats_server, workdir, audit, "core-fin-b")
    try:
        finalize(second, ctx)
        finalize(second, context("fin-1", {}, attempt=3))
        finalize(second, context("fin-1", {}, attempt=4))
    finally:
        second.stop()
    assert calls(audit, "finalize") == [
        ["finalize", "fin-1", "2", "core-fin-a"],
        ["finalize", "fin-1", "3", "core-fin-a"],
        ["finalize", "fin-1", "4", "core-fin-b"],
    ]
