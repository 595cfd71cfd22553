"""A test plugin whose specification nests messages, lists, maps, an enum, a oneof and well-known types, so the
SDK's validation can be checked against a real host on deep field paths (the example plugins' specifications are
flat). Run as ``python -m job_plugin`` with this directory on PYTHONPATH; it serves task type ``sdk-job`` at type
versions 1 and 3 and echoes a little of the spec.

The specification is built here as a FileDescriptorProto rather than a .proto file: it exists for these tests
only, and the repository's protos and generated code stay as they are.
"""

from __future__ import annotations

# job.proto imports duration.proto, which importing duration_pb2 puts into the default pool.
import google.protobuf.duration_pb2  # noqa: F401
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from plugin_bridge import PhaseResult, PluginContext, SyncPlugin, TaskType, phase_success, serve

TYPE = "sdk-job"
VERSIONS = (1, 3)

_F = descriptor_pb2.FieldDescriptorProto


def _field(message: descriptor_pb2.DescriptorProto, name: str, number: int, kind: int, type_name: str = "",
           repeated: bool = False, json_name: str = "", oneof: int = -1) -> None:
    field = message.field.add(
        name=name, number=number, type=kind, json_name=json_name or name,
        label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
    )
    if type_name:
        field.type_name = type_name
    if oneof >= 0:
        field.oneof_index = oneof


def job_file() -> descriptor_pb2.FileDescriptorProto:
    """``sdktest/v1/job.proto``: message ``sdktest.v1.Job``, as protoc would describe it (json names set)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="sdktest/v1/job.proto", package="sdktest.v1", syntax="proto3",
        dependency=["google/protobuf/duration.proto"],
    )
    job = file.message_type.add(name="Job")
    _field(job, "name", 1, _F.TYPE_STRING)
    _field(job, "resources", 2, _F.TYPE_MESSAGE, ".sdktest.v1.Job.Resources")
    _field(job, "steps", 3, _F.TYPE_MESSAGE, ".sdktest.v1.Job.Step", repeated=True)
    _field(job, "pools", 4, _F.TYPE_MESSAGE, ".sdktest.v1.Job.PoolsEntry", repeated=True)
    _field(job, "mode", 5, _F.TYPE_ENUM, ".sdktest.v1.Job.Mode")
    _field(job, "timeout", 6, _F.TYPE_MESSAGE, ".google.protobuf.Duration")
    _field(job, "max_bytes", 7, _F.TYPE_INT64, json_name="maxBytes")
    _field(job, "url", 8, _F.TYPE_STRING, oneof=0)
    _field(job, "path", 9, _F.TYPE_STRING, oneof=0)
    job.oneof_decl.add(name="target")

    resources = job.nested_type.add(name="Resources")
    _field(resources, "cpu", 1, _F.TYPE_UINT32)
    _field(resources, "memory", 2, _F.TYPE_STRING)

    step = job.nested_type.add(name="Step")
    _field(step, "command", 1, _F.TYPE_STRING)
    _field(step, "args", 2, _F.TYPE_STRING, repeated=True)
    _field(step, "resources", 3, _F.TYPE_MESSAGE, ".sdktest.v1.Job.Resources")

    pools = job.nested_type.add(name="PoolsEntry")
    pools.options.map_entry = True
    _field(pools, "key", 1, _F.TYPE_STRING)
    _field(pools, "value", 2, _F.TYPE_MESSAGE, ".sdktest.v1.Job.Resources")

    mode = job.enum_type.add(name="Mode")
    for number, name in enumerate(("MODE_UNSPECIFIED", "MODE_FAST", "MODE_CAREFUL")):
        mode.value.add(name=name, number=number)
    return file


def _job_class() -> type[Message]:
    # The default pool, as for generated code: the kit describes a specification from its class's file and the
    # files that file imports, found through the class's descriptor.
    pool = descriptor_pool.Default()
    pool.Add(job_file())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("sdktest.v1.Job"))


Job = _job_class()


async def do(ctx: PluginContext[Message]) -> PhaseResult:
    spec = ctx.spec
    return phase_success({"name": getattr(spec, "name"), "steps": len(getattr(spec, "steps"))})


def build_plugin() -> SyncPlugin:
    return SyncPlugin("sdk-job", "0.1.0", [TaskType(TYPE, version) for version in VERSIONS], Job, do=do)


if __name__ == "__main__":
    serve(build_plugin())
