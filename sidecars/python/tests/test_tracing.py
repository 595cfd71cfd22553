"""The kit's traces from real sidecar processes (the conformance plugin) to the project's test OTLP receiver: the
server span of each plugin call, its parent from the call's metadata, its attributes and status, the resource,
the flush on drain; and nothing exported unless the environment asks for it."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import grpc
import pytest

from pluginbridge.v1 import plugin_pb2

from helpers import NatsServer, OtlpReceiver, Sidecar, start_sidecar, task_context, without_otel_env

SPAN_KIND_SERVER = 2
STATUS_UNSET, STATUS_ERROR = 0, 2
ASYNC = "pluginbridge.v1.AsyncPluginService"


@pytest.fixture()
def receiver(workdir: Path) -> Iterator[OtlpReceiver]:
    running = OtlpReceiver(workdir / "spans.jsonl")
    try:
        yield running
    finally:
        running.stop()


def traceparent() -> Tuple[str, str, List[Tuple[str, str]]]:
    """A new caller's span: its trace id, its span id, and the metadata that carries it."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, [("traceparent", f"00-{trace_id}-{span_id}-01")]


def traced_sidecar(nats_server: NatsServer, workdir: Path, receiver: OtlpReceiver, **env: str) -> Sidecar:
    return start_sidecar(
        "plugin_bridge.conformance",
        nats_url=nats_server.url,
        socket_dir=workdir,
        instance_id="traced-1",
        env=without_otel_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            # Nothing is exported on a schedule during the test: the spans arrive only if the drain flushes them.
            OTEL_BSP_SCHEDULE_DELAY="600000",
            **env,
        ),
    )


def drained(sidecar: Sidecar) -> None:
    """SIGTERM, then the exit: the drain has exported the spans by the time the process is gone."""
    sidecar.signal()
    assert sidecar.wait(40) == 0, sidecar.logs()


def by_execution(spans: List[Dict[str, Any]]) -> Dict[Tuple[str, str], Dict[str, Any]]:
    return {(span["name"], span["attributes"].get("pluginbridge.execution_id")): span for span in spans}


def test_server_spans_of_plugin_calls_join_the_callers_trace(
    nats_server: NatsServer, workdir: Path, receiver: OtlpReceiver
) -> None:
    sidecar = traced_sidecar(nats_server, workdir, receiver)
    try:
        # Neither Describe nor health is a step of a task: no spans.
        sidecar.methods("PluginMetadataService")["Describe"](plugin_pb2.DescribeRequest(), timeout=5)
        sidecar.health("")
        calls = sidecar.methods("AsyncPluginService")
        trace_id, create_parent, metadata = traceparent()
        created = calls["Create"](
            plugin_pb2.CreateRequest(context=task_context("tr-ok", {"polls": 1}, attempt=2)), timeout=10, metadata=metadata
        )
        get_parent = secrets.token_hex(8)
        got = calls["Get"](
            plugin_pb2.GetRequest(context=task_context("tr-ok", {"polls": 1}, attempt=2), resource_meta=created.resource_meta),
            timeout=10,
            metadata=[("traceparent", f"00-{trace_id}-{get_parent}-01")],
        )
        assert got.phase_info.reason == "polling"
        failing_trace, failing_parent, failing_metadata = traceparent()
        with pytest.raises(grpc.RpcError) as raised:
            calls["Create"](
                plugin_pb2.CreateRequest(
                    context=task_context("tr-fail", {"create": "BEHAVIOR_USER_ERROR", "message": "no such table"})
                ),
                timeout=10,
                metadata=failing_metadata,
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # A call without a trace context starts a trace of its own.
        calls["Delete"](
            plugin_pb2.DeleteRequest(context=task_context("tr-ok", {}, attempt=2), resource_meta=created.resource_meta),
            timeout=10,
        )
    finally:
        drained(sidecar)

    spans = receiver.spans()
    assert sorted(span["name"] for span in spans) == [f"{ASYNC}/Create", f"{ASYNC}/Create", f"{ASYNC}/Delete", f"{ASYNC}/Get"]
    found = by_execution(spans)
    create, get = found[(f"{ASYNC}/Create", "tr-ok")], found[(f"{ASYNC}/Get", "tr-ok")]
    failed, delete = found[(f"{ASYNC}/Create", "tr-fail")], found[(f"{ASYNC}/Delete", "tr-ok")]
    for span in spans:
        assert span["kind"] == SPAN_KIND_SERVER
        assert span["service"] == "conformance-python"
        assert span["attributes"]["rpc.system"] == "grpc"
        assert span["attributes"]["rpc.service"] == ASYNC
        assert span["attributes"]["pluginbridge.plugin"] == "conformance-python"
        assert span["attributes"]["pluginbridge.plugin_version"] == "1.0.0"
        assert span["attributes"]["pluginbridge.instance_id"] == "traced-1"
    assert (create["traceId"], create["parentSpanId"]) == (trace_id, create_parent)
    assert (get["traceId"], get["parentSpanId"]) == (trace_id, get_parent)
    assert create["attributes"] == {
        "rpc.system": "grpc",
        "rpc.service": ASYNC,
        "rpc.method": "Create",
        "rpc.grpc.status_code": 0,
        "pluginbridge.plugin": "conformance-python",
        "pluginbridge.plugin_version": "1.0.0",
        "pluginbridge.instance_id": "traced-1",
        "pluginbridge.execution_id": "tr-ok",
        "pluginbridge.attempt": 2,
    }
    assert create["status"]["code"] == STATUS_UNSET
    assert get["attributes"]["rpc.method"] == "Get"
    assert get["attributes"]["pluginbridge.phase"] == "PHASE_RUNNING"
    assert get["attributes"]["rpc.grpc.status_code"] == 0
    assert (failed["traceId"], failed["parentSpanId"]) == (failing_trace, failing_parent)
    assert failed["status"] == {"code": STATUS_ERROR, "message": "no such table"}
    assert failed["attributes"]["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "pluginbridge.phase" not in failed["attributes"]
    assert delete["parentSpanId"] == ""
    assert delete["traceId"] not in (trace_id, failing_trace)


def test_sync_plugin_with_its_service_name_from_the_environment(
    nats_server: NatsServer, workdir: Path, receiver: OtlpReceiver
) -> None:
    sidecar = traced_sidecar(
        nats_server,
        workdir,
        receiver,
        CONFORMANCE_KIND="sync",
        OTEL_SERVICE_NAME="traced-conformance",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test",
    )
    try:
        trace_id, parent, metadata = traceparent()
        done = sidecar.methods("SyncPluginService")["Do"](
            plugin_pb2.DoRequest(context=task_context("tr-do", {}, task_type="conformance-sync-python")),
            timeout=10,
            metadata=metadata,
        )
        assert done.outputs["language"] == "python"
    finally:
        drained(sidecar)

    [span] = receiver.spans()
    assert span["name"] == "pluginbridge.v1.SyncPluginService/Do"
    assert (span["traceId"], span["parentSpanId"], span["service"]) == (trace_id, parent, "traced-conformance")
    assert span["attributes"]["pluginbridge.plugin"] == "conformance-sync-python"
    assert span["attributes"]["pluginbridge.phase"] == "PHASE_SUCCESS"


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="no-endpoint"),
        pytest.param({"OTEL_SDK_DISABLED": "true"}, id="sdk-disabled"),
        pytest.param({"OTEL_TRACES_EXPORTER": "none"}, id="other-exporter"),
    ],
)
def test_nothing_is_exported_unless_the_environment_asks(
    nats_server: NatsServer, workdir: Path, receiver: OtlpReceiver, settings: Dict[str, str]
) -> None:
    env = dict(settings)
    if settings:
        # The endpoint is there, so only the other setting keeps the spans from the receiver.
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    sidecar = start_sidecar(
        "plugin_bridge.conformance",
        nats_url=nats_server.url,
        socket_dir=workdir,
        instance_id="untraced-1",
        env=without_otel_env(**env),
    )
    try:
        _, _, metadata = traceparent()
        sidecar.methods("AsyncPluginService")["Create"](
            plugin_pb2.CreateRequest(context=task_context("untraced", {})), timeout=10, metadata=metadata
        )
    finally:
        drained(sidecar)
    assert receiver.spans() == []
