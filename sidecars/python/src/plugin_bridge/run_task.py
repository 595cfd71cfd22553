"""Runs one task through a plugin-bridge host and prints its final event; used by the cross-language matrix
test and handy at a terminal:

    python -m plugin_bridge.run_task --base-url http://127.0.0.1:8080 --type sql \\
        --spec '{"database": "/tmp/db.sqlite", "query": "select 1 as one"}'

``--spec`` is the proto3 JSON of the type's specification message (parsed into the typed class, so a
misspelt field fails here). A task type without a specification here, such as a Flyte connector's, takes
``--custom`` instead: a JSON object sent as the template's ``custom`` as it is (``--type-version`` sets its
version, default 1)::

    python -m plugin_bridge.run_task --type bridge_echo --type-version 0 --custom '{"prefix": "hi"}' \
        --inputs '{"name": "bridge"}'

Prints the final TaskEvent as proto3 JSON on stdout. Exit code: 0 when the final phase is SUCCESS, 1 for any
other final phase, 2 for usage errors and SDK errors (gRPC code and message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List, Optional, Type

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from pluginbridge.plugins.batch.v1.batch_pb2 import BatchJob
from pluginbridge.plugins.http.v1.http_pb2 import HttpRequest
from pluginbridge.plugins.sensor.v1.sensor_pb2 import FileSensor
from pluginbridge.plugins.sql.v1.sql_pb2 import SqlQuery
from pluginbridge.v1 import task_pb2

from .sdk import BridgeClient, BridgeError, task_template

#: The example task types, each with its specification class; all at type version 1.
SPECS: Dict[str, Type[Message]] = {
    "http": HttpRequest,
    "sensor": FileSensor,
    "sql": SqlQuery,
    "batch": BatchJob,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m plugin_bridge.run_task", description="Run one task and print its final event.")
    parser.add_argument("--base-url", default="http://127.0.0.1:8080", help="the host's public address")
    parser.add_argument("--type", required=True, help=f"the task type: {', '.join(sorted(SPECS))}, or any with --custom")
    parser.add_argument("--type-version", type=int, default=1, help="the task type's version (default 1)")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--spec", help="the specification as proto3 JSON")
    given.add_argument("--custom", help="the template's custom as a JSON object, sent as it is")
    parser.add_argument("--inputs", default=None, help="the task's inputs as a JSON object")
    parser.add_argument("--namespace", default="", help="the execution's namespace (default: the host's)")
    parser.add_argument("--idempotency-key", default="", help="makes the submit safe to repeat")
    parser.add_argument("--retries", type=int, default=0, help="new attempts after a retryable failure")
    parser.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    return parser


def _json_object(flag: str, text: str) -> Optional[Dict[str, object]]:
    """The flag's JSON object; None (after saying why on stderr) when it is not one."""
    try:
        value = json.loads(text)
    except ValueError as error:
        sys.stderr.write(f"{flag} is not JSON: {error}\n")
        return None
    if not isinstance(value, dict):
        sys.stderr.write(f"{flag} must be a JSON object\n")
        return None
    return value


def _template(args: argparse.Namespace) -> Optional[task_pb2.TaskTemplate]:
    metadata = task_pb2.TaskMetadata(retries=args.retries)
    if args.custom is not None:
        custom = _json_object("--custom", args.custom)
        if custom is None:
            return None
        struct = struct_pb2.Struct()
        struct.update(custom)
        return task_pb2.TaskTemplate(type=args.type, type_version=args.type_version, custom=struct, metadata=metadata)
    spec_cls = SPECS.get(args.type)
    if spec_cls is None:
        sys.stderr.write(f"--spec needs a type with a specification here ({', '.join(sorted(SPECS))}); use --custom\n")
        return None
    try:
        spec = json_format.Parse(args.spec, spec_cls())
    except json_format.ParseError as error:
        sys.stderr.write(f"--spec is not a valid {spec_cls.DESCRIPTOR.full_name}: {error}\n")
        return None
    return task_template(spec, args.type, args.type_version, metadata=metadata)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    template = _template(args)
    if template is None:
        return 2
    inputs = None
    if args.inputs is not None:
        inputs = _json_object("--inputs", args.inputs)
        if inputs is None:
            return 2
    metadata = task_pb2.TaskExecutionMetadata(namespace=args.namespace) if args.namespace else None
    try:
        with BridgeClient(args.base_url) as client:
            event = client.run(
                template, inputs=inputs, metadata=metadata, idempotency_key=args.idempotency_key, timeout=args.timeout
            )
    except BridgeError as error:
        sys.stderr.write(f"{error.code.name}: {error.message}\n")
        return 2
    except ValueError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    sys.stdout.write(json_format.MessageToJson(event) + "\n")
    return 0 if event.phase_info.phase == task_pb2.PHASE_SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
