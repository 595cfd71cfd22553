"""Runs one task through a plugin-bridge host and prints its final event; used by the cross-language matrix
test and handy at a terminal:

    python -m plugin_bridge.run_task --base-url http://127.0.0.1:8080 --type sql \\
        --spec '{"database": "/tmp/db.sqlite", "query": "select 1 as one"}'

``--spec`` is the proto3 JSON of the type's specification message (parsed into the typed class, so a
misspelt field fails here). Prints the final TaskEvent as proto3 JSON on stdout. Exit code: 0 when the final
phase is SUCCESS, 1 for any other final phase, 2 for usage errors and SDK errors (gRPC code and message on
stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List, Optional, Type

from google.protobuf import json_format
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
    parser.add_argument("--type", required=True, choices=sorted(SPECS), help="the task type (version 1)")
    parser.add_argument("--spec", required=True, help="the specification as proto3 JSON")
    parser.add_argument("--inputs", default=None, help="the task's inputs as a JSON object")
    parser.add_argument("--namespace", default="", help="the execution's namespace (default: the host's)")
    parser.add_argument("--idempotency-key", default="", help="makes the submit safe to repeat")
    parser.add_argument("--retries", type=int, default=0, help="new attempts after a retryable failure")
    parser.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    spec_cls = SPECS[args.type]
    try:
        spec = json_format.Parse(args.spec, spec_cls())
    except json_format.ParseError as error:
        sys.stderr.write(f"--spec is not a valid {spec_cls.DESCRIPTOR.full_name}: {error}\n")
        return 2
    inputs = None
    if args.inputs is not None:
        try:
            inputs = json.loads(args.inputs)
        except ValueError as error:
            sys.stderr.write(f"--inputs is not JSON: {error}\n")
            return 2
        if not isinstance(inputs, dict):
            sys.stderr.write("--inputs must be a JSON object\n")
            return 2
    template = task_template(spec, args.type, 1, metadata=task_pb2.TaskMetadata(retries=args.retries))
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
