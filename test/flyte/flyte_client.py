# A Flyte connector client built only on the published Python packages (flyteidl for v1, flyteidl2 for v2, grpcio),
# for the Flyte interop tests (issue 8): it talks to flytekit's connector server and to the bridge's Flyte endpoint
# alike. Run it with the venv scripts/setup.sh makes (.tools/flyte-venv/bin/python):
#
#   flyte_client.py --endpoint 127.0.0.1:PORT [--protocol v1|v2] [--timeout S] COMMAND
#     list                            v1 AgentMetadataService.ListAgents / v2 ConnectorMetadataService.ListConnectors
#                                     -> {"agents"|"connectors": [{"name", "is_sync" (v1 only), "task_categories":
#                                        [{"name", "version"}]}]}
#     run --type T [--version V] [--custom JSON] [--inputs JSON] [--no-interface] [--sync] [--poll-interval S]
#                                     CreateTask, then GetTask every --poll-interval (0.2 s) until SUCCEEDED, FAILED,
#                                     ABORTED or RETRYABLE_FAILED -> {"phase", "message", "outputs", "custom_info",
#                                     "resource_meta" (hex), "polls"}; exit 0 on SUCCEEDED, else 1.
#                                     --sync (v1 only): SyncAgentService.ExecuteTaskSync, sending the header and then
#                                     the inputs message (flytekit needs both) -> {"phase", "message", "outputs"}.
#     create --type T [--version V] [--custom JSON] [--inputs JSON] [--no-interface]   -> {"resource_meta": hex}
#     get --type T [--version V] --resource-meta HEX   one GetTask -> as run (without polls); exit 0 on SUCCEEDED
#     delete --type T [--version V] --resource-meta HEX                                 -> {"deleted": true}
#
# Each command prints exactly one JSON line on stdout. A gRPC error prints {"error": {"code", "details"}} and exits 2;
# a usage error (bad JSON, --sync with v2, ...) prints argparse's message on stderr and exits 2.
# Every call has wait_for_ready and a deadline of --timeout seconds (default 10).
#
# The request: TaskTemplate{id, type, task_type_version, custom (Struct from --custom), metadata.runtime, interface
# (inputs' types inferred from the --inputs JSON, see literal_json.py; left empty with --no-interface)}; v1 inputs are
# a core.LiteralMap, v2 inputs a task.Inputs (repeated NamedLiteral), v2 outputs a task.Outputs likewise. Note v2's
# core.VariableMap.variables is a repeated VariableEntry{key, value}, not a map as in v1.
import argparse
import json
import sys
import time
from typing import Any, Dict, Iterator, Tuple

import grpc
from google.protobuf import json_format, struct_pb2

import literal_json

TERMINAL = {"SUCCEEDED", "FAILED", "ABORTED", "RETRYABLE_FAILED"}


class V1:
    """flyteidl (1.x): flyteidl.service.{AsyncAgentService, SyncAgentService, AgentMetadataService}."""

    def __init__(self, channel: grpc.Channel) -> None:
        from flyteidl.admin import agent_pb2
        from flyteidl.core import execution_pb2, identifier_pb2, interface_pb2, literals_pb2, tasks_pb2, types_pb2
        from flyteidl.service import agent_pb2_grpc

        self.a, self.ex, self.ident, self.iface = agent_pb2, execution_pb2, identifier_pb2, interface_pb2
        self.lit, self.tasks, self.types = literals_pb2, tasks_pb2, types_pb2
        self.meta = agent_pb2_grpc.AgentMetadataServiceStub(channel)
        self.tasks_stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        self.sync = agent_pb2_grpc.SyncAgentServiceStub(channel)

    def list(self, **call: Any) -> Dict[str, Any]:
        agents = self.meta.ListAgents(self.a.ListAgentsRequest(), **call).agents
        return {"agents": [_agent(x, is_sync=x.is_sync) for x in agents]}

    def variables(self, inputs: Dict[str, Any]) -> Any:
        return self.iface.VariableMap(
            variables={k: self.iface.Variable(type=literal_json.literal_type(v, self.types)) for k, v in inputs.items()}
        )

    def create_request(self, template: Any, inputs: Dict[str, Any]) -> Any:
        return self.a.CreateTaskRequest(
            template=template, inputs=literal_json.to_literal_map(inputs, self.lit), output_prefix=OUTPUT_PREFIX
        )

    def category(self, name: str, version: int) -> Any:
        return self.a.TaskCategory(name=name, version=version)

    def outputs(self, resource: Any) -> Dict[str, Any]:
        return literal_json.literal_map_to_json(resource.outputs)

    def run_sync(self, template: Any, inputs: Dict[str, Any], **call: Any) -> Dict[str, Any]:
        def requests() -> Iterator[Any]:
            header = self.a.CreateRequestHeader(template=template, output_prefix=OUTPUT_PREFIX)
            yield self.a.ExecuteTaskSyncRequest(header=header)
            yield self.a.ExecuteTaskSyncRequest(inputs=literal_json.to_literal_map(inputs, self.lit))

        resource, outputs = None, None
        for res in self.sync.ExecuteTaskSync(requests(), **call):
            if res.WhichOneof("res") == "header":
                resource = res.header.resource
            elif res.WhichOneof("res") == "outputs":  # flytekit never sends this part; other servers may
                outputs = literal_json.literal_map_to_json(res.outputs)
        if resource is None:
            raise RuntimeError("ExecuteTaskSync answered without a header")
        out = _resource(self, resource)
        if outputs is not None:
            out["outputs"] = {**out["outputs"], **outputs}
        return out


class V2:
    """flyteidl2: flyteidl2.connector.{AsyncConnectorService, ConnectorMetadataService} (there is no sync service)."""

    def __init__(self, channel: grpc.Channel) -> None:
        from flyteidl2.connector import connector_pb2, service_pb2_grpc
        from flyteidl2.core import execution_pb2, identifier_pb2, interface_pb2, literals_pb2, tasks_pb2, types_pb2
        from flyteidl2.task import common_pb2

        self.a, self.ex, self.ident, self.iface = connector_pb2, execution_pb2, identifier_pb2, interface_pb2
        self.lit, self.tasks, self.types, self.common = literals_pb2, tasks_pb2, types_pb2, common_pb2
        self.meta = service_pb2_grpc.ConnectorMetadataServiceStub(channel)
        self.tasks_stub = service_pb2_grpc.AsyncConnectorServiceStub(channel)

    def list(self, **call: Any) -> Dict[str, Any]:
        connectors = self.meta.ListConnectors(self.a.ListConnectorsRequest(), **call).connectors
        return {"connectors": [_agent(x) for x in connectors]}

    def variables(self, inputs: Dict[str, Any]) -> Any:
        entries = [
            self.iface.VariableEntry(key=k, value=self.iface.Variable(type=literal_json.literal_type(v, self.types)))
            for k, v in inputs.items()
        ]
        return self.iface.VariableMap(variables=entries)

    def create_request(self, template: Any, inputs: Dict[str, Any]) -> Any:
        lit = self.lit
        named = [self.common.NamedLiteral(name=k, value=literal_json.to_literal(v, lit)) for k, v in inputs.items()]
        return self.a.CreateTaskRequest(
            template=template, inputs=self.common.Inputs(literals=named), output_prefix=OUTPUT_PREFIX
        )

    def category(self, name: str, version: int) -> Any:
        return self.a.TaskCategory(name=name, version=version)

    def outputs(self, resource: Any) -> Dict[str, Any]:
        return literal_json.named_literals_to_json(resource.outputs.literals)


OUTPUT_PREFIX = "file:///tmp/flyte-client-outputs"


def _agent(x: Any, **extra: Any) -> Dict[str, Any]:
    cats = [{"name": c.name, "version": c.version} for c in x.supported_task_categories]
    return {"name": x.name, **extra, "task_categories": cats}


def _resource(api: Any, resource: Any) -> Dict[str, Any]:
    return {
        "phase": api.ex.TaskExecution.Phase.Name(resource.phase),
        "message": resource.message,
        "outputs": api.outputs(resource),
        "custom_info": json_format.MessageToDict(resource.custom_info),
    }


def _template(api: Any, args: argparse.Namespace) -> Tuple[Any, Dict[str, Any]]:
    custom = struct_pb2.Struct()
    custom.update(json.loads(args.custom))
    inputs = json.loads(args.inputs)
    if not isinstance(inputs, dict):
        raise ValueError("--inputs must be a JSON object")
    T, I = api.tasks, api.ident
    template = T.TaskTemplate(
        id=I.Identifier(resource_type=I.TASK, project="bridge", domain="test", name=f"{args.type}_task", version="1"),
        type=args.type,
        task_type_version=args.version,
        custom=custom,
        metadata=T.TaskMetadata(runtime=T.RuntimeMetadata(type=T.RuntimeMetadata.FLYTE_SDK)),
    )
    if not args.no_interface:
        try:
            template.interface.inputs.CopyFrom(api.variables(inputs))
        except TypeError as e:
            raise ValueError(f"{e} (use --no-interface)") from e
    return template, inputs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--endpoint", required=True, help="host:port of a Flyte connector (agent) gRPC server")
    p.add_argument("--protocol", choices=("v1", "v2"), default="v1")
    p.add_argument("--timeout", type=float, default=10.0, help="deadline of each call, seconds")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    for name in ("run", "create", "get", "delete"):
        c = sub.add_parser(name)
        c.add_argument("--type", required=True)
        c.add_argument("--version", type=int, default=0)
        if name in ("run", "create"):
            c.add_argument("--custom", default="{}", help="JSON object: the template's custom Struct")
            c.add_argument("--inputs", default="{}", help="JSON object: the task's inputs")
            c.add_argument("--no-interface", action="store_true", help="leave template.interface empty")
        if name == "run":
            c.add_argument("--sync", action="store_true")
            c.add_argument("--poll-interval", type=float, default=0.2)
        if name in ("get", "delete"):
            c.add_argument("--resource-meta", required=True, help="hex, as create/run print it")
    args = p.parse_args()
    if args.command == "run" and args.sync and args.protocol == "v2":
        p.error("flyteidl2 has no sync connector service: --sync needs --protocol v1")

    channel = grpc.insecure_channel(args.endpoint)
    api = V1(channel) if args.protocol == "v1" else V2(channel)
    call = {"timeout": args.timeout, "wait_for_ready": True}
    try:
        if args.command == "list":
            return _print(api.list(**call), 0)
        if args.command == "delete":
            req = api.a.DeleteTaskRequest(
                task_category=api.category(args.type, args.version), resource_meta=bytes.fromhex(args.resource_meta)
            )
            api.tasks_stub.DeleteTask(req, **call)
            return _print({"deleted": True}, 0)
        if args.command == "get":
            req = api.a.GetTaskRequest(
                task_category=api.category(args.type, args.version), resource_meta=bytes.fromhex(args.resource_meta)
            )
            out = _resource(api, api.tasks_stub.GetTask(req, **call).resource)
            return _print(out, 0 if out["phase"] == "SUCCEEDED" else 1)
        try:
            template, inputs = _template(api, args)
        except ValueError as e:  # json.JSONDecodeError is one too
            p.error(str(e))
        if args.command == "run" and args.sync:
            out = api.run_sync(template, inputs, **call)
            return _print(out, 0 if out["phase"] == "SUCCEEDED" else 1)
        meta = api.tasks_stub.CreateTask(api.create_request(template, inputs), **call).resource_meta
        if args.command == "create":
            return _print({"resource_meta": meta.hex()}, 0)
        category, polls = api.category(args.type, args.version), 0
        while True:
            resource = api.tasks_stub.GetTask(
                api.a.GetTaskRequest(task_category=category, resource_meta=meta), **call
            ).resource
            polls += 1
            out = _resource(api, resource)
            if out["phase"] in TERMINAL:
                break
            time.sleep(args.poll_interval)
        out.update(resource_meta=meta.hex(), polls=polls)
        return _print(out, 0 if out["phase"] == "SUCCEEDED" else 1)
    except grpc.RpcError as e:
        return _print({"error": {"code": e.code().name, "details": e.details()}}, 2)
    finally:
        channel.close()


def _print(obj: Dict[str, Any], code: int) -> int:
    print(json.dumps(obj), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
