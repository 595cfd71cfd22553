# Test connectors for the Flyte interop tests (issue 8), written against real flytekit's connector API
# (flytekit.extend.backend.base_connector) and served by flytekit's own `pyflyte serve connector` (through
# serve_connector.py, which keeps it on loopback). Importing this module registers them:
#
#   bridge_echo (task_type_version 0), async. create() starts an in-memory "job"; get() answers RUNNING for the first
#     `polls` polls (custom, default 1), then SUCCEEDED with outputs
#       greeting: str        "<custom.prefix, default 'hello'> <input name, default 'world'>"
#       polls: int           the number of get() calls the job has seen
#       numbers: List[int]   the input `numbers`, if given
#       tags: Dict[str,str]  the input `tags`, if given
#     and custom_info {job_id, polls, inputs_via, created_with}, created_with being what create() was given besides the
#     task: {output_prefix, execution (the task execution id's workflow execution name), retry_attempt, namespace,
#     labels}. With custom `fail: "msg"` the last poll answers FAILED "msg" instead;
#     with custom `create_error: "msg"` create() raises (flytekit answers INTERNAL); with custom `output_blob: "<uri>"`
#     the outputs also hold `report`, a blob literal (a file reference, which has no JSON form). get() after delete()
#     answers ABORTED; get() of an unknown job answers FAILED.
#   bridge_echo_sync (task_type_version 0), sync. do() answers SUCCEEDED at once with outputs {greeting}.
#
# If the environment has BRIDGE_CONNECTOR_AUDIT=<file>, every call appends a line "<method> <job id>" to it (create,
# get, delete, do; do's id is fresh per call), so tests can count creates and deletes.
#
# What flytekit hands a connector: task_template.custom is a dict (MessageToDict of the Struct, so every number is a
# float), inputs a flytekit.models LiteralMap (or None), task_template.interface is always there (empty if the client
# sent none). Inputs are read the idiomatic way (TypeEngine with the template's interface) when the interface
# declares every input, and straight from the literals otherwise; custom_info.inputs_via says which ("interface" or
# "literals"), so a test can check that the caller filled in the interface. Outputs are a LiteralMap built by
# TypeEngine with explicit type hints: a plain dict in Resource.outputs would be type-guessed (untyped lists fail,
# dicts become msgpack binary scalars).
import os
import threading
import typing
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from flyteidl.core.execution_pb2 import TaskExecution
from flytekit import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.extend.backend.base_connector import (
    AsyncConnectorBase,
    ConnectorRegistry,
    Resource,
    ResourceMeta,
    SyncConnectorBase,
)
from flytekit.models.core.types import BlobType
from flytekit.models.literals import Blob, BlobMetadata, Literal, LiteralMap, Scalar
from flytekit.models.task import TaskTemplate

_audit_lock = threading.Lock()


def _audit(method: str, job_id: str) -> None:
    path = os.environ.get("BRIDGE_CONNECTOR_AUDIT")
    if path:
        with _audit_lock, open(path, "a", encoding="utf-8") as f:
            f.write(f"{method} {job_id}\n")


def _plain(lit: Literal) -> Any:
    """A literal without type information as a Python value: primitives, none, collections and maps of them."""
    if lit.collection is not None:
        return [_plain(x) for x in lit.collection.literals]
    if lit.map is not None:
        return {k: _plain(v) for k, v in lit.map.literals.items()}
    if lit.scalar is not None and lit.scalar.primitive is not None:
        return lit.scalar.primitive.value
    if lit.scalar is not None and lit.scalar.none_type is not None:
        return None
    raise ValueError(f"bridge_connectors cannot read this literal without an interface: {lit}")


def _read_inputs(task_template: TaskTemplate, inputs: Optional[LiteralMap]) -> typing.Tuple[Dict[str, Any], str]:
    if inputs is None or not inputs.literals:
        return {}, "none"
    declared = task_template.interface.inputs if task_template.interface else {}
    if declared and all(name in declared for name in inputs.literals):
        ctx = FlyteContextManager.current_context()
        return TypeEngine.literal_map_to_kwargs(ctx, inputs, literal_types=declared), "interface"
    return {name: _plain(lit) for name, lit in inputs.literals.items()}, "literals"


def _greeting(custom: Dict[str, Any], values: Dict[str, Any]) -> str:
    return f"{custom.get('prefix', 'hello')} {values.get('name') or 'world'}"


def _outputs(values: Dict[str, Any], types: Dict[str, type]) -> LiteralMap:
    return TypeEngine.dict_to_literal_map(FlyteContextManager.current_context(), values, type_hints=types)


def _created_with(output_prefix: str, metadata: Any) -> Dict[str, Any]:
    """What create() learnt of the attempt besides the task: where it may write, and Flyte's execution metadata."""
    seen: Dict[str, Any] = {"output_prefix": output_prefix}
    if metadata is not None:
        task_execution = metadata.task_execution_id
        seen.update(
            execution=task_execution.node_execution_id.execution_id.name,
            retry_attempt=task_execution.retry_attempt,
            namespace=metadata.namespace,
            labels=dict(metadata.labels or {}),
        )
    return seen


def _blob(uri: str) -> Literal:
    """A single-file blob literal, as a connector writing a file under its output prefix would return it."""
    blob_type = BlobType(format="csv", dimensionality=BlobType.BlobDimensionality.SINGLE)
    return Literal(scalar=Scalar(blob=Blob(metadata=BlobMetadata(type=blob_type), uri=uri)))


@dataclass
class BridgeEchoMeta(ResourceMeta):
    # flytekit serializes this as JSON ({"job_id": "..."}) into resource_meta; callers hand it back unchanged.
    job_id: str


@dataclass
class _Job:
    greeting: str
    polls_before_done: int
    fail: Optional[str]
    output_blob: Optional[str]
    numbers: Optional[List[int]]
    tags: Optional[Dict[str, str]]
    inputs_via: str
    created_with: Dict[str, Any]
    polls: int = 0
    deleted: bool = False


class BridgeEchoConnector(AsyncConnectorBase):
    name = "Bridge Echo Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name="bridge_echo", task_type_version=0, metadata_type=BridgeEchoMeta)
        self._jobs: Dict[str, _Job] = {}
        self._lock = threading.Lock()

    # Plain (not async) methods: flytekit runs them in its executor, so TypeEngine's synchronous helpers are safe here.
    def create(
        self,
        task_template: TaskTemplate,
        output_prefix: str,
        inputs: Optional[LiteralMap] = None,
        task_execution_metadata: Any = None,
        **kwargs: Any,
    ) -> BridgeEchoMeta:
        custom = task_template.custom or {}
        job_id = str(uuid.uuid4())
        _audit("create", job_id)
        if custom.get("create_error"):
            raise RuntimeError(str(custom["create_error"]))
        values, via = _read_inputs(task_template, inputs)
        job = _Job(
            greeting=_greeting(custom, values),
            polls_before_done=int(custom.get("polls", 1)),  # a Struct number: arrives as a float
            fail=str(custom["fail"]) if custom.get("fail") else None,
            output_blob=str(custom["output_blob"]) if custom.get("output_blob") else None,
            numbers=[int(n) for n in values["numbers"]] if values.get("numbers") is not None else None,
            tags={str(k): str(v) for k, v in values["tags"].items()} if values.get("tags") is not None else None,
            inputs_via=via,
            created_with=_created_with(output_prefix, task_execution_metadata),
        )
        with self._lock:
            self._jobs[job_id] = job
        return BridgeEchoMeta(job_id=job_id)

    def get(self, resource_meta: BridgeEchoMeta, **kwargs: Any) -> Resource:
        job_id = resource_meta.job_id
        _audit("get", job_id)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return Resource(phase=TaskExecution.FAILED, message=f"unknown job {job_id}")
            if job.deleted:
                return Resource(phase=TaskExecution.ABORTED, message=f"job {job_id} was deleted")
            job.polls += 1
            polls = job.polls
        info = {"job_id": job_id, "polls": polls, "inputs_via": job.inputs_via, "created_with": job.created_with}
        if polls <= job.polls_before_done:
            return Resource(phase=TaskExecution.RUNNING, message=f"poll {polls}", custom_info=info)
        if job.fail:
            return Resource(phase=TaskExecution.FAILED, message=job.fail, custom_info=info)
        values: Dict[str, Any] = {"greeting": job.greeting, "polls": polls}
        types: Dict[str, type] = {"greeting": str, "polls": int}
        if job.numbers is not None:
            values["numbers"], types["numbers"] = job.numbers, List[int]
        if job.tags is not None:
            values["tags"], types["tags"] = job.tags, Dict[str, str]
        outputs = _outputs(values, types)
        if job.output_blob is not None:
            outputs.literals["report"] = _blob(job.output_blob)
        return Resource(
            phase=TaskExecution.SUCCEEDED,
            message=f"done after {polls} polls",
            outputs=outputs,
            custom_info=info,
        )

    def delete(self, resource_meta: BridgeEchoMeta, **kwargs: Any) -> None:
        _audit("delete", resource_meta.job_id)
        with self._lock:
            job = self._jobs.get(resource_meta.job_id)
            if job is not None:
                job.deleted = True


class BridgeEchoSyncConnector(SyncConnectorBase):
    name = "Bridge Echo Sync Connector"

    def __init__(self) -> None:
        super().__init__(task_type_name="bridge_echo_sync", task_type_version=0)

    def do(
        self, task_template: TaskTemplate, output_prefix: str, inputs: Optional[LiteralMap] = None, **kwargs: Any
    ) -> Resource:
        _audit("do", str(uuid.uuid4()))
        values, _ = _read_inputs(task_template, inputs)
        greeting = _greeting(task_template.custom or {}, values)
        return Resource(
            phase=TaskExecution.SUCCEEDED, message="done", outputs=_outputs({"greeting": greeting}, {"greeting": str})
        )


ConnectorRegistry.register(BridgeEchoConnector())
ConnectorRegistry.register(BridgeEchoSyncConnector())
