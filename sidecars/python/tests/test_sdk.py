"""The SDK half and the run_task CLI against a real host (``node bin/plugin-bridge.js serve``), a real
nats-server and real sidecars (sql, conformance)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from pluginbridge.conformance.v1.conformance_pb2 import Script
from pluginbridge.plugins.sql.v1.sql_pb2 import SqlQuery
from pluginbridge.v1 import task_pb2

from helpers import NODE, PYTHON, Host, NatsServer, Sidecar, eventually, short_tempdir, start_sidecar
from plugin_bridge.sdk import BridgeClient, BridgeError, task_template


@pytest.fixture(scope="module")
def stack(nats_server: NatsServer) -> Iterator[tuple[Host, Path]]:
    if NODE is None:
        pytest.skip("node is not installed")
    workdir = short_tempdir("sdk")
    host = Host(nats_server.url, workdir)
    sidecars: list[Sidecar] = []
    try:
        sidecars.append(start_sidecar("plugin_bridge.examples.sql", nats_url=nats_server.url, socket_dir=workdir, instance_id="sdk-sql"))
        sidecars.append(
            start_sidecar(
                "plugin_bridge.conformance",
                nats_url=nats_server.url,
                socket_dir=workdir,
                instance_id="sdk-conf",
                env={"CONFORMANCE_AUDIT_FILE": str(workdir / "audit.log")},
            )
        )
        yield host, workdir
    finally:
        for car in sidecars:
            car.stop()
        host.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def database(stack: tuple[Host, Path]) -> Path:
    path = stack[1] / "numbers.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("create table n (v integer)")
        connection.executemany("insert into n values (?)", [(i,) for i in range(1, 6)])
    return path


def _run_until_routed(client: BridgeClient, template: task_pb2.TaskTemplate) -> object:
    """The host learns of sidecars from their announcements: until then CreateTask says NOT_FOUND."""
    def attempt() -> object:
        try:
            return client.run(template, timeout=60)
        except BridgeError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    return eventually(attempt, 30, interval=0.3, what="the host to route the task type")


def test_sql_task_runs_to_success(stack: tuple[Host, Path], database: Path) -> None:
    host, _ = stack
    phases: list[int] = []
    with BridgeClient(host.base_url) as client:
        template = task_template(
            SqlQuery(database=str(database), query="select sum(v) as total from n where v > :min",
                     parameters=json_format.ParseDict({"min": 2}, struct_pb2.Struct())),
            "sql",
            1,
        )
        event = _run_until_routed(client, template)
        assert event.phase_info.phase == task_pb2.PHASE_SUCCESS, event
        assert json_format.MessageToDict(event.outputs) == {"columns": ["total"], "rows": [[12]], "rowCount": 1}
        execution = client.get(event.execution_id)
        assert execution.phase_info.phase == task_pb2.PHASE_SUCCESS
        replay = list(client.watch(event.execution_id))
        phases = [e.phase_info.phase for e in replay]
        assert phases[0] == task_pb2.PHASE_QUEUED and phases[-1] == task_pb2.PHASE_SUCCESS
        assert any(e.id == event.execution_id for e in client.list(page_size=1000).executions)


def test_bad_spec_shows_invalid_argument_with_the_field(stack: tuple[Host, Path], database: Path) -> None:
    host, _ = stack
    with BridgeClient(host.base_url) as client:
        good = task_template(SqlQuery(database=str(database), query="select 1"), "sql", 1)
        _run_until_routed(client, good)
        bad = task_pb2.TaskTemplate()
        bad.CopyFrom(good)
        bad.custom.update({"maxRows": "lots"})
        with pytest.raises(BridgeError) as raised:
            client.submit(bad)
        assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
        # The host names the field by the key as submitted (proto3 JSON name).
        assert raised.value.message.startswith("template.custom.maxRows"), raised.value.message


def test_conformance_task_through_the_host(stack: tuple[Host, Path]) -> None:
    host, workdir = stack
    with BridgeClient(host.base_url) as client:
        template = task_template(Script(polls=2, echo="grüße ✓"), "conformance-python", 1)
        event = _run_until_routed(client, template)
        assert event.phase_info.phase == task_pb2.PHASE_SUCCESS, event
        outputs = json_format.MessageToDict(event.outputs)
        assert outputs == {"language": "python", "instance": "sdk-conf", "echo": "grüße ✓", "gets": 3}
    lines = (workdir / "audit.log").read_text().splitlines()
    assert [line.split(" ")[0] for line in lines if event.execution_id in line] == ["create", "get", "get", "get"]


def test_run_task_cli(stack: tuple[Host, Path], database: Path) -> None:
    host, _ = stack
    spec = json.dumps({"database": str(database), "query": "select count(*) as c from n"})
    command = [PYTHON, "-m", "plugin_bridge.run_task", "--base-url", host.base_url, "--type", "sql", "--spec", spec]

    def ran() -> subprocess.CompletedProcess[str] | None:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        return None if "NOT_FOUND" in done.stderr else done

    done = eventually(ran, 30, interval=0.5, what="run_task to find the sql plugin")
    assert done.returncode == 0, done.stderr
    event = json.loads(done.stdout)
    assert event["phaseInfo"]["phase"] == "PHASE_SUCCESS"
    assert event["outputs"]["rows"] == [[5]]

    failing = json.dumps({"database": str(database), "query": "select * from missing_table"})
    done = subprocess.run([*command[:-1], failing], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["phaseInfo"]["phase"] == "PHASE_PERMANENT_FAILURE"

    usage = subprocess.run([*command[:-1], '{"nope": 1}'], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "nope" in usage.stderr

    unknown_type = subprocess.run([*command[:5], "--type", "nosuch", "--spec", "{}"], capture_output=True, text=True, timeout=60)
    assert unknown_type.returncode == 2

    bad_for_host = json.dumps({"database": "relative.sqlite", "query": "select 1"})
    done = subprocess.run([*command[:-1], bad_for_host], capture_output=True, text=True, timeout=60)
    # The plugin refuses a relative path with INVALID_ARGUMENT: the host fails the task permanently.
    assert done.returncode == 1
    assert "template.custom.database" in done.stdout
