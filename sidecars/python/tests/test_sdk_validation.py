"""The SDK checks ``custom`` before submitting and shows a plugin's schema: against a real host, a real
nats-server and real sidecars (the ``sql`` example and ``job_plugin``, whose specification nests), and, for what
a live host cannot be made to show (draining instances, broken descriptor sets, the cache's clock), on registry
listings built here."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import grpc
import pytest
from google.protobuf import descriptor_pb2, json_format, struct_pb2

from pluginbridge.plugins.sql.v1.sql_pb2 import SqlQuery
from pluginbridge.v1 import plugin_pb2, registry_service_pb2, task_pb2

from helpers import KIT_ROOT, NODE, Host, NatsServer, Sidecar, eventually, short_tempdir, start_sidecar
from job_plugin import TYPE as JOB, build_plugin as build_job_plugin, job_file
from plugin_bridge.descriptor import plugin_descriptor
from plugin_bridge.sdk import BridgeClient, BridgeError, task_template
from plugin_bridge.sdk.specification import SpecificationCache, specification_for

#: Submits that must create nothing go to a namespace of their own, so "nothing was created" is a ListTasks away;
#: the good ones run in the default namespace.
NAMESPACE = "sdk-validate"
METADATA = task_pb2.TaskExecutionMetadata(namespace=NAMESPACE)

GOOD_JOB: Dict[str, Any] = {
    "name": "nightly",
    "resources": {"cpu": 2, "memory": "1Gi"},
    "steps": [{"command": "fetch", "args": ["--all"]}, {"command": "build", "resources": {"cpu": 4}}],
    "pools": {"gpu": {"cpu": 8}},
    "mode": "MODE_FAST",
    "timeout": "90s",
    "maxBytes": "12345678901",
    "url": "https://example.invalid/job",
}

#: Bad jobs and the path both the SDK and the host name for them.
BAD_JOBS: Dict[str, Dict[str, Any]] = {
    "template.custom.steps[1].resources.cpu": {"name": "j", "steps": [{"command": "a"}, {"resources": {"cpu": "lots"}}]},
    'template.custom.pools["gpu"].memory': {"pools": {"gpu": {"memory": 5}}},
    "template.custom.resources.cpus": {"resources": {"cpus": 2}},
    "template.custom.timeout": {"timeout": "soon"},
    "template.custom.mode": {"mode": "MODE_SLOW"},
}


def template_of(task_type: str, custom: Dict[str, Any], version: int = 1) -> task_pb2.TaskTemplate:
    return task_pb2.TaskTemplate(type=task_type, type_version=version, custom=json_format.ParseDict(custom, struct_pb2.Struct()))


def path_of(message: str) -> str:
    return message.split(": ", 1)[0]


# ---- against a real host ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host(nats_server: NatsServer) -> Iterator[Host]:
    if NODE is None:
        pytest.skip("node is not installed")
    workdir = short_tempdir("sdkv")
    host = Host(nats_server.url, workdir)
    sidecars: List[Sidecar] = []
    try:
        sidecars.append(start_sidecar("plugin_bridge.examples.sql", nats_url=nats_server.url, socket_dir=workdir, instance_id="sdkv-sql"))
        sidecars.append(
            start_sidecar(
                "job_plugin", nats_url=nats_server.url, socket_dir=workdir, instance_id="sdkv-job",
                env={"PYTHONPATH": str(KIT_ROOT / "tests")},
            )
        )
        with BridgeClient(host.base_url) as client:
            # The host learns of sidecars from their announcements.
            eventually(lambda: client.list_plugins("sql") and client.list_plugins(JOB), 30, 0.2, what="both plugins to be routed")
        yield host
    finally:
        for car in sidecars:
            car.stop()
        host.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture()
def client(host: Host) -> Iterator[BridgeClient]:
    with BridgeClient(host.base_url) as client:
        yield client


def created(client: BridgeClient) -> List[str]:
    return [execution.id for execution in client.list_all(namespace=NAMESPACE)]


def test_a_good_custom_passes_and_runs(client: BridgeClient, tmp_path: Path) -> None:
    database = tmp_path / "one.sqlite"
    sqlite3.connect(database).close()
    sql = task_template(SqlQuery(database=str(database), query="select 41 + 1 as answer"), "sql", 1)
    client.validate(sql)
    event = client.run(sql, validate=True, timeout=60)
    assert event.phase_info.phase == task_pb2.PHASE_SUCCESS, event
    assert json_format.MessageToDict(event.outputs)["rows"] == [[42]]

    job = template_of(JOB, GOOD_JOB, version=3)
    client.validate(job)
    execution = client.submit(job, validate=True)
    final = list(client.watch(execution.id, timeout=60))[-1]
    assert final.phase_info.phase == task_pb2.PHASE_SUCCESS, final
    assert json_format.MessageToDict(final.outputs) == {"name": "nightly", "steps": 2}


def test_a_bad_nested_field_is_named_as_the_host_names_it_and_nothing_is_sent(client: BridgeClient) -> None:
    for path, custom in BAD_JOBS.items():
        template = template_of(JOB, custom)
        for attempt in (client.validate, lambda t: client.submit(t, metadata=METADATA, validate=True),
                        lambda t: client.run(t, metadata=METADATA, validate=True, timeout=60)):
            with pytest.raises(BridgeError) as raised:
                attempt(template)
            assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert path_of(raised.value.message) == path, raised.value.message
            assert raised.value.message.endswith("(template.custom must parse as sdktest.v1.Job)"), raised.value.message
        # The host, asked directly, refuses the same custom at the same path.
        with pytest.raises(BridgeError) as by_host:
            client.submit(template, metadata=METADATA)
        assert by_host.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert path_of(by_host.value.message) == path, by_host.value.message
    assert created(client) == []


def test_unknown_type_and_version(client: BridgeClient) -> None:
    with pytest.raises(BridgeError) as raised:
        client.schema("no-such-type", 1)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.message == 'no live plugin serves task type "no-such-type"'

    template = template_of(JOB, GOOD_JOB, version=2)
    with pytest.raises(BridgeError) as raised:
        client.submit(template, metadata=METADATA, validate=True)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.message == f'task type "{JOB}" has no live plugin for type_version 2; live versions: 1, 3'
    assert created(client) == []


def test_schema_lists_the_fields(client: BridgeClient) -> None:
    sql = client.schema("sql", 1)
    text = str(sql)
    assert text.startswith('task type "sql" version 1: plugin sql ')
    for line in ("message pluginbridge.plugins.sql.v1.SqlQuery", "  database: string", "  query: string",
                 "  parameters: google.protobuf.Struct  [JSON: any JSON object]", "  maxRows (max_rows): uint32"):
        assert line in text.splitlines(), text
    assert sql.descriptor is not None and [f.json_name for f in sql.descriptor.fields] == ["database", "query", "parameters", "maxRows"]
    assert sql.instance_id == "sdkv-sql"

    job = client.schema(JOB, 1)
    lines = str(job).splitlines()
    for line in ("  steps: repeated sdktest.v1.Job.Step", "  pools: map<string, sdktest.v1.Job.Resources>",
                 "  mode: enum sdktest.v1.Job.Mode", "  maxBytes (max_bytes): int64  [JSON: a number or a decimal string]",
                 "  url: string  [oneof target]", "message sdktest.v1.Job.Resources", "  cpu: uint32",
                 "enum sdktest.v1.Job.Mode  [JSON: a value's name, or its number]", "  MODE_FAST = 1"):
        assert line in lines, "\n".join(lines)
    assert lines.count("message sdktest.v1.Job.Resources") == 1  # reached three times, described once
    assert job.message_class is not None
    decoded = json_format.ParseDict(GOOD_JOB, job.message_class())
    assert [step.command for step in getattr(decoded, "steps")] == ["fetch", "build"]


# ---- on listings built here ---------------------------------------------------------------------------------------


def instance(instance_id: str, versions: List[int], spec: Optional[plugin_pb2.PluginSpecification] = None,
             draining: bool = False, task_type: str = JOB) -> plugin_pb2.PluginInstance:
    descriptor = plugin_pb2.PluginDescriptor(
        name="p", version="1.0.0", task_types=[plugin_pb2.SupportedTaskType(type=task_type, version=v) for v in versions]
    )
    if spec is not None:
        descriptor.specification.CopyFrom(spec)
    return plugin_pb2.PluginInstance(instance_id=instance_id, descriptor=descriptor, draining=draining)


def listing(*instances: plugin_pb2.PluginInstance) -> List[registry_service_pb2.Plugin]:
    return [registry_service_pb2.Plugin(name="p", instances=list(instances))]


JOB_SPEC = plugin_descriptor(build_job_plugin()).specification


def test_draining_instances_are_passed_over() -> None:
    plugins = listing(instance("old", [1], JOB_SPEC, draining=True), instance("new", [1], JOB_SPEC))
    assert specification_for(plugins, JOB, 1).instance_id == "new"
    with pytest.raises(BridgeError) as raised:
        specification_for(listing(instance("old", [1], JOB_SPEC, draining=True)), JOB, 1)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.message.endswith("live versions: none (every instance is draining)")


def test_a_plugin_without_a_specification_takes_any_custom() -> None:
    spec = specification_for(listing(instance("bare", [1])), JOB, 1)
    assert spec.descriptor is None and spec.message_class is None
    assert spec.problem({"anything": ["at", "all"]}) is None
    assert "declares no specification" in str(spec)


def test_a_specification_that_does_not_resolve_is_failed_precondition() -> None:
    without_import = plugin_pb2.PluginSpecification(message_name="sdktest.v1.Job")
    without_import.file_descriptor_set.file.append(job_file())  # duration.proto left out
    misnamed = plugin_pb2.PluginSpecification(message_name="sdktest.v1.Nope")
    misnamed.file_descriptor_set.CopyFrom(JOB_SPEC.file_descriptor_set)
    for spec, says in ((without_import, "google/protobuf/duration.proto"), (misnamed, "message sdktest.v1.Nope is not in its file set")):
        with pytest.raises(BridgeError) as raised:
            specification_for(listing(instance("broken", [1], spec)), JOB, 1)
        assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert raised.value.message.startswith(f'the plugin for "{JOB}" declares an unusable specification: ')
        assert says in raised.value.message


def test_specifications_do_not_clash_across_plugins() -> None:
    # Two plugins ship different files under one name; each resolves on its own.
    other = descriptor_pb2.FileDescriptorProto(name="sdktest/v1/job.proto", package="sdktest.v1", syntax="proto3")
    other.message_type.add(name="Job").field.add(name="only", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
                                                 label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="only")
    other_spec = plugin_pb2.PluginSpecification(message_name="sdktest.v1.Job")
    other_spec.file_descriptor_set.file.append(other)
    first = specification_for(listing(instance("a", [1], JOB_SPEC)), JOB, 1)
    second = specification_for(listing(instance("b", [1], other_spec)), JOB, 1)
    assert first.problem({"only": True}) is not None and first.problem({"name": "x"}) is None
    assert second.problem({"only": True}) is None and second.problem({"name": "x"}) is not None


def test_comments_show_when_the_descriptor_set_carries_source_info() -> None:
    spec = plugin_pb2.PluginSpecification()
    spec.CopyFrom(JOB_SPEC)
    job = next(f for f in spec.file_descriptor_set.file if f.name == "sdktest/v1/job.proto")
    for path, text in (((4, 0), " A job of steps.\n"), ((4, 0, 2, 2), " Run in order.\n Each on its own.\n"),
                       ((4, 0, 4, 0, 2, 1), " Skip the checks.\n")):
        job.source_code_info.location.add(path=list(path), leading_comments=text)
    lines = str(specification_for(listing(instance("c", [1], spec)), JOB, 1)).splitlines()
    at = lines.index("message sdktest.v1.Job")
    assert lines[at - 1] == "// A job of steps."
    at = lines.index("  steps: repeated sdktest.v1.Job.Step")
    assert lines[at - 2:at] == ["  // Run in order.", "  // Each on its own."]
    assert lines[lines.index("  MODE_FAST = 1") - 1] == "  // Skip the checks."


def test_the_cache_keeps_a_specification_for_its_time() -> None:
    asked: List[str] = []
    now = [100.0]

    def list_plugins(task_type: str, timeout: Optional[float]) -> List[registry_service_pb2.Plugin]:
        asked.append(task_type)
        return listing(instance("a", [1], JOB_SPEC)) if len(asked) > 1 else []

    cache = SpecificationCache(list_plugins, ttl=5.0, clock=lambda: now[0])
    with pytest.raises(BridgeError):
        cache.get(JOB, 1, None)  # not live yet: a failure is not kept
    first = cache.get(JOB, 1, None)
    now[0] += 4.9
    assert cache.get(JOB, 1, None) is first and len(asked) == 2
    now[0] += 0.2
    assert cache.get(JOB, 1, None) is not first and len(asked) == 3
    with pytest.raises(BridgeError) as raised:
        cache.get("", 1, None)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT and len(asked) == 3


def test_validate_needs_a_task_type_before_asking_the_host() -> None:
    with BridgeClient("http://127.0.0.1:9") as client:  # nothing listens there: no call may be made
        with pytest.raises(BridgeError) as raised:
            client.validate(task_pb2.TaskTemplate())
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message == "template.type: is required"
