"""The ``sql`` example plugin end to end: a real sidecar process, a real SQLite file, grpcio calls."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Dict, Iterator

import grpc
import pytest
from google.protobuf import json_format

from pluginbridge.v1 import plugin_pb2, task_pb2

from helpers import NatsServer, Sidecar, eventually, start_sidecar, task_context


@pytest.fixture()
def database(workdir: Path) -> Path:
    path = workdir / "shop.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("create table items (id integer primary key, name text, price real)")
        connection.executemany(
            "insert into items (name, price) values (?, ?)", [("apple", 0.5), ("pear", 0.75), ("plum", 1.25)]
        )
    return path


@pytest.fixture()
def sql(nats_server: NatsServer, workdir: Path) -> Iterator[Sidecar]:
    car = start_sidecar("plugin_bridge.examples.sql", nats_url=nats_server.url, socket_dir=workdir, instance_id="sql-a")
    try:
        yield car
    finally:
        car.stop()


def _context(execution: str, custom: Dict[str, Any]) -> task_pb2.TaskContext:
    return task_context(execution, custom, task_type="sql")


def _poll_until_terminal(car: Sidecar, context: task_pb2.TaskContext, meta: bytes) -> plugin_pb2.GetResponse:
    get = car.methods("AsyncPluginService")["Get"]
    seen = []

    def terminal() -> plugin_pb2.GetResponse | None:
        response = get(plugin_pb2.GetRequest(context=context, resource_meta=meta), timeout=5)
        seen.append(response.phase_info.phase)
        return response if response.phase_info.phase != task_pb2.PHASE_RUNNING else None

    return eventually(terminal, 20, what="a terminal phase")


def test_describe(sql: Sidecar) -> None:
    plugin = sql.methods("PluginMetadataService")["Describe"](plugin_pb2.DescribeRequest(), timeout=5).plugin
    assert plugin.name == "sql" and plugin.kind == plugin_pb2.PLUGIN_KIND_ASYNC
    assert plugin.specification.message_name == "pluginbridge.plugins.sql.v1.SqlQuery"
    assert plugin.properties.resync_interval.ToMilliseconds() == 500
    files = [f.name for f in plugin.specification.file_descriptor_set.file]
    assert files == ["google/protobuf/struct.proto", "pluginbridge/plugins/sql/v1/sql.proto"]


def test_query_runs_to_success(sql: Sidecar, database: Path) -> None:
    custom = {
        "database": str(database),
        "query": "select name, price from items where price < :limit order by id",
        "parameters": {"limit": 1},
    }
    context = _context("sql-ok", custom)
    meta = sql.methods("AsyncPluginService")["Create"](plugin_pb2.CreateRequest(context=context), timeout=5).resource_meta
    assert set(json.loads(meta)) == {"queryId"}
    response = _poll_until_terminal(sql, context, meta)
    assert response.phase_info.phase == task_pb2.PHASE_SUCCESS
    assert json_format.MessageToDict(response.outputs) == {
        "columns": ["name", "price"],
        "rows": [["apple", 0.5], ["pear", 0.75]],
        "rowCount": 2,
    }


def test_sql_error_is_a_permanent_user_failure(sql: Sidecar, database: Path) -> None:
    context = _context("sql-bad", {"database": str(database), "query": "select nope from items"})
    meta = sql.methods("AsyncPluginService")["Create"](plugin_pb2.CreateRequest(context=context), timeout=5).resource_meta
    response = _poll_until_terminal(sql, context, meta)
    assert response.phase_info.phase == task_pb2.PHASE_PERMANENT_FAILURE
    assert response.phase_info.error.code == "SqlError"
    assert response.phase_info.error.kind == task_pb2.ERROR_KIND_USER
    assert "nope" in response.phase_info.error.message


def test_too_many_rows_fails(sql: Sidecar, database: Path) -> None:
    context = _context("sql-rows", {"database": str(database), "query": "select * from items", "maxRows": 2})
    meta = sql.methods("AsyncPluginService")["Create"](plugin_pb2.CreateRequest(context=context), timeout=5).resource_meta
    response = _poll_until_terminal(sql, context, meta)
    assert response.phase_info.phase == task_pb2.PHASE_PERMANENT_FAILURE
    assert response.phase_info.error.code == "TooManyRows"


def test_relative_database_is_invalid_argument(sql: Sidecar) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        sql.methods("AsyncPluginService")["Create"](
            plugin_pb2.CreateRequest(context=_context("sql-rel", {"database": "shop.sqlite", "query": "select 1"})),
            timeout=5,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("template.custom.database")


def test_unknown_query_is_a_retryable_failure(sql: Sidecar, database: Path) -> None:
    context = _context("sql-lost", {"database": str(database), "query": "select 1"})
    response = sql.methods("AsyncPluginService")["Get"](
        plugin_pb2.GetRequest(context=context, resource_meta=b'{"queryId":"gone"}'), timeout=5
    )
    assert response.phase_info.phase == task_pb2.PHASE_RETRYABLE_FAILURE
    assert response.phase_info.error.code == "QueryLost"


def test_delete_interrupts_a_long_query(sql: Sidecar, database: Path) -> None:
    endless = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"
    context = _context("sql-long", {"database": str(database), "query": endless})
    methods = sql.methods("AsyncPluginService")
    meta = methods["Create"](plugin_pb2.CreateRequest(context=context), timeout=5).resource_meta
    running = methods["Get"](plugin_pb2.GetRequest(context=context, resource_meta=meta), timeout=5)
    assert running.phase_info.phase == task_pb2.PHASE_RUNNING
    query_id = json.loads(meta)["queryId"]
    methods["Delete"](plugin_pb2.DeleteRequest(context=context, resource_meta=meta), timeout=10)
    # Delete answers once the worker has stopped: its log says so.
    logs = eventually(lambda: sql.logs() if f"query={query_id} workerStopped=True" in sql.logs() else None, 10, what="the worker to stop")
    assert f"query finished query={query_id} outcome=cancelled" in logs
    # Deleting again (the host may retry) is fine.
    methods["Delete"](plugin_pb2.DeleteRequest(context=context, resource_meta=meta), timeout=10)
