"""An OTLP trace receiver for the tests: serves OpenTelemetry's collector TraceService over gRPC on a loopback port,
the way a real collector receives spans from the host, the kits and the SDKs, and appends every span it receives to
a file as one JSON line:

    {"traceId", "spanId", "parentSpanId" (hex, "" for a root), "name", "kind" (OTLP SpanKind number),
     "service" (the resource's service.name), "attributes" {key: value}, "status" {"code", "message"}}

    python test/helpers/otlp_receiver.py <spans file>      # prints "listening <port>" once it serves

It uses the published opentelemetry-proto package (its generated code), so it decodes exactly what exporters send.
It stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from concurrent import futures
from typing import Any, Dict

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind) if kind else None


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext) -> Any:
        lines = []
        for resource_spans in request.resource_spans:
            resource = {item.key: _value(item.value) for item in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    line: Dict[str, Any] = {
                        "traceId": span.trace_id.hex(),
                        "spanId": span.span_id.hex(),
                        "parentSpanId": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "service": resource.get("service.name", ""),
                        "attributes": {item.key: _value(item.value) for item in span.attributes},
                        "status": {"code": span.status.code, "message": span.status.message},
                    }
                    lines.append(json.dumps(line) + "\n")
        with self._lock, open(self._path, "a", encoding="utf-8") as spans:
            spans.writelines(lines)
        return trace_service_pb2.ExportTraceServiceResponse()


def main() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(sys.argv[1]), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"listening {port}", flush=True)
    stop.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
