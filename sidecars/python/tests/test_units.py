"""Pure functions of the kit, checked without processes."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from pluginbridge.conformance.v1.conformance_pb2 import Script
from pluginbridge.plugins.http.v1.http_pb2 import HttpRequest
from pluginbridge.plugins.sql.v1.sql_pb2 import SqlQuery
from pluginbridge.v1 import plugin_pb2, task_pb2

from plugin_bridge import (
    AsyncPlugin,
    CorePlugin,
    PluginError,
    PluginState,
    Properties,
    SyncPlugin,
    TaskType,
    decode_specification,
    file_descriptor_set_for,
    kv_key,
    phase_permanent_failure,
    phase_success,
    plugin_descriptor,
)
from plugin_bridge.endpoint import dial_address, parse_endpoint
from plugin_bridge.meta import decode_resource_meta, encode_resource_meta
from plugin_bridge.sdk import grpc_target, task_template


def test_kv_key_escapes_like_the_typescript_kit() -> None:
    assert kv_key("sensor", "run.1", 2) == "sensor.run=2E1.2"
    assert kv_key("a", "") == "a.="
    assert kv_key("é", "a b", "x=y", "ok_-9") == "=C3=A9.a=20b.x=3Dy.ok_-9"


def test_decode_specification_names_the_field() -> None:
    assert decode_specification(SqlQuery, {"database": "/d", "maxRows": 3.0}).max_rows == 3
    cases = {
        "template.custom.max_rows": {"maxRows": "x"},
        "template.custom.bogus": {"bogus": 1},
        "template.custom.timeout": {"url": "http://x", "timeout": "abc"},
    }
    for prefix, custom in cases.items():
        cls = HttpRequest if "url" in custom else SqlQuery
        with pytest.raises(PluginError) as raised:
            decode_specification(cls, custom)
        assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.message.startswith(prefix + ":"), raised.value.message


def test_decode_specification_names_a_field_inside_a_list_of_messages() -> None:
    from pluginbridge.v1.task_pb2 import TaskTemplate

    with pytest.raises(PluginError) as raised:
        decode_specification(TaskTemplate, {"type": "t", "secrets": [{"group": "g", "key": "k"}, {"group": {"x": 1}}]})
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message.startswith("template.custom.secrets[1].group:"), raised.value.message


def test_file_descriptor_set_lists_dependencies_first() -> None:
    names = [f.name for f in file_descriptor_set_for(HttpRequest).file]
    assert names == ["google/protobuf/duration.proto", "pluginbridge/plugins/http/v1/http.proto"]
    assert [f.name for f in file_descriptor_set_for(Script).file] == ["pluginbridge/conformance/v1/conformance.proto"]


def test_endpoints() -> None:
    assert dial_address(parse_endpoint("unix:///tmp/x.sock"), 0) == "unix:/tmp/x.sock"
    assert dial_address(parse_endpoint(":0"), 4321) == "127.0.0.1:4321"
    assert dial_address(parse_endpoint("0.0.0.0:5000"), 5000) == "127.0.0.1:5000"
    with pytest.raises(ValueError):
        parse_endpoint("nonsense")
    assert grpc_target("http://127.0.0.1:8080") == "127.0.0.1:8080"
    assert grpc_target("http://localhost") == "localhost:80"


def test_resource_meta_round_trips() -> None:
    assert decode_resource_meta("json", encode_resource_meta("json", {"id": "ü"})) == {"id": "ü"}
    assert encode_resource_meta("json", b"\x00raw") == b"\x00raw"
    assert decode_resource_meta("json", b"\xffraw") == b"\xffraw"
    assert decode_resource_meta("bytes", b"{}") == b"{}"
    with pytest.raises(PluginError):
        encode_resource_meta("bytes", {"not": "bytes"})


def test_declarations_are_checked() -> None:
    async def do(_ctx: object) -> object:
        return phase_success()

    with pytest.raises(ValueError):
        SyncPlugin("bad name", "1", [TaskType("t")], SqlQuery, do=do)
    with pytest.raises(ValueError):
        SyncPlugin("ok", "1", [], SqlQuery, do=do)
    with pytest.raises(ValueError):
        AsyncPlugin("ok", "1", [TaskType("t")], SqlQuery, Properties(resync_interval=-1), create=do, get=do, delete=do)
    with pytest.raises(ValueError):
        AsyncPlugin("ok", "1", [TaskType("t")], SqlQuery)  # methods missing


def test_version_ranges_and_the_default_flag_are_described() -> None:
    async def do(_ctx: object) -> object:
        return phase_success()

    plugin = SyncPlugin(
        "ranged",
        "2.0.0",
        [TaskType("ranged", 3, min_version=1), TaskType("other", 0)],
        SqlQuery,
        default_for_unclaimed_types=True,
        do=do,
    )
    descriptor = plugin_descriptor(plugin)
    assert descriptor.default_for_unclaimed_types
    assert [(t.type, t.version, t.HasField("min_version") and t.min_version) for t in descriptor.task_types] == [
        ("ranged", 3, 1),
        ("other", 0, False),
    ]
    with pytest.raises(ValueError, match="has min_version 4, not 0…3"):
        SyncPlugin("ranged", "2.0.0", [TaskType("ranged", 3, min_version=4)], SqlQuery, do=do)


def test_rate_limits_are_described_and_checked() -> None:
    from plugin_bridge import RateLimit

    async def do(_ctx: object) -> object:
        return phase_success()

    props = Properties(read_limit=RateLimit(5), write_limit=RateLimit(0.5, burst=3))
    descriptor = plugin_descriptor(SyncPlugin("limited", "1", [TaskType("t")], SqlQuery, props, do=do))
    assert (descriptor.properties.read_limit.qps, descriptor.properties.read_limit.burst) == (5.0, 0)
    assert (descriptor.properties.write_limit.qps, descriptor.properties.write_limit.burst) == (0.5, 3)
    assert not plugin_descriptor(SyncPlugin("free", "1", [TaskType("t")], SqlQuery, do=do)).properties.HasField("read_limit")
    from plugin_bridge import ResourceQuota

    quota = plugin_descriptor(
        SyncPlugin("q", "1", [TaskType("t")], SqlQuery, Properties(quota=ResourceQuota(total=4, per_namespace=1)), do=do)
    ).properties.quota
    assert (quota.total, quota.per_namespace) == (4, 1)
    with pytest.raises(ValueError, match="quota must be a ResourceQuota"):
        SyncPlugin("q", "1", [TaskType("t")], SqlQuery, Properties(quota=ResourceQuota(total=-1)), do=do)
    with pytest.raises(ValueError, match="write_limit must be a RateLimit"):
        SyncPlugin("bad", "1", [TaskType("t")], SqlQuery, Properties(write_limit=RateLimit(0)), do=do)


def test_phase_constructors_and_templates() -> None:
    failure = phase_permanent_failure("Bad", "it broke")
    assert failure.phase_info.phase == task_pb2.PHASE_PERMANENT_FAILURE
    assert failure.phase_info.error.kind == task_pb2.ERROR_KIND_USER
    assert failure.phase_info.reason == "it broke"
    template = task_template(SqlQuery(database="/d", query="q", max_rows=5), "sql", 1)
    assert (template.type, template.type_version) == ("sql", 1)
    assert dict(template.custom) == {"database": "/d", "query": "q", "maxRows": 5.0}


def test_plugin_state_values() -> None:
    state = PluginState.of_json({"step": 2, "name": "é"})
    assert (state.version, state.data) == (1, '{"step":2,"name":"é"}'.encode())
    assert state.as_json() == {"step": 2, "name": "é"}
    assert PluginState.of_text("3", version=4) == PluginState(4, b"3")
    assert PluginState(2**32 - 1).as_text() == ""
    for version in (-1, 2**32, True, 1.0):
        with pytest.raises(ValueError):
            PluginState(version)  # type: ignore[arg-type]
    for data in ("text", bytearray(b"ab")):
        with pytest.raises(ValueError):
            PluginState(1, data)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PluginState(1, b"\xff").as_text()


def test_core_declaration_and_descriptor() -> None:
    async def nothing(*_args: object) -> None:
        return None

    properties = Properties(handle_timeout=timedelta(seconds=3), abort_timeout=1.5, finalize_timeout=4)
    plugin = CorePlugin("core", "1", [TaskType("core")], SqlQuery, properties, handle=nothing, abort=nothing, finalize=nothing)
    descriptor = plugin_descriptor(plugin)
    assert descriptor.kind == plugin_pb2.PLUGIN_KIND_CORE
    props = descriptor.properties
    assert (props.handle_timeout.ToMilliseconds(), props.abort_timeout.ToMilliseconds()) == (3000, 1500)
    assert props.finalize_timeout.ToMilliseconds() == 4000
    assert not props.HasField("get_timeout")
    with pytest.raises(ValueError):
        CorePlugin("core", "1", [TaskType("core")], SqlQuery, handle=nothing, abort=nothing)  # finalize missing
    with pytest.raises(ValueError):
        CorePlugin(
            "core", "1", [TaskType("core")], SqlQuery, Properties(finalize_timeout=-1),
            handle=nothing, abort=nothing, finalize=nothing,
        )
