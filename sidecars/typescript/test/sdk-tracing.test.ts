// The SDK's calls carry the application's trace context: against a TaskService served by connect-node in this
// test, which records each request's headers, over Connect, gRPC and gRPC-Web and through a transport the
// application built itself; unary calls and streams alike. Without an application-configured OpenTelemetry, no
// header is added. OpenTelemetry's globals are per process: this file registers them and is the only test in its
// worker.
import { createServer, type Http2Server, type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { TracerProvider } from "@opentelemetry/sdk-trace";
import { createBridgeClient, type BridgeClient, type BridgeClientOptions } from "@plugin-bridge/kit/sdk";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { TaskService } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** The trace headers of one request the server received. */
interface Seen {
  readonly traceparent: string | null;
  readonly baggage: string | null;
}

describe("the SDK's trace context", () => {
  const seen: Seen[] = [];
  const record = (header: Headers): void => {
    seen.push({ traceparent: header.get("traceparent"), baggage: header.get("baggage") });
  };
  const impl: Partial<ServiceImpl<typeof TaskService>> = {
    async getTask(request, call) {
      record(call.requestHeader);
      return { execution: { id: request.id } };
    },
    async *watchTask(request, call) {
      record(call.requestHeader);
      yield { event: { executionId: request.id, sequence: 1n, phaseInfo: { phase: Phase.SUCCESS } } };
    },
  };
  let server: Http2Server;
  const sessions = new Set<ServerHttp2Session>();
  let baseUrl: string;

  /** Every way the SDK reaches the host, all over HTTP/2 to the one server. */
  const clients = (): Array<[string, BridgeClient]> => {
    const options = (extra: Partial<BridgeClientOptions>): BridgeClientOptions => ({ baseUrl, httpVersion: "2", ...extra });
    return [
      ["connect", createBridgeClient(options({ protocol: "connect" }))],
      ["grpc", createBridgeClient(options({ protocol: "grpc" }))],
      ["grpc-web", createBridgeClient(options({ protocol: "grpc-web" }))],
      ["own transport", createBridgeClient(options({ transport: createConnectTransport({ baseUrl, httpVersion: "2" }) }))],
    ];
  };
  /** A unary call and a stream with each client; the headers each of them sent. */
  const callAll = async (): Promise<Array<[string, Seen[]]>> => {
    const result: Array<[string, Seen[]]> = [];
    for (const [name, client] of clients()) {
      seen.length = 0;
      await client.get("unary-1");
      for await (const event of client.watch("stream-1")) expect(event.executionId).toBe("stream-1");
      result.push([name, [...seen]]);
    }
    return result;
  };

  beforeAll(async () => {
    server = createServer(connectNodeAdapter({ routes: (router) => router.service(TaskService, impl) }));
    // The clients keep their connections alive; closing the server must end them.
    server.on("session", (session) => sessions.add(session));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => server?.close(resolve));
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it("adds no header while the application has not configured OpenTelemetry", async () => {
    for (const [name, requests] of await callAll()) {
      expect(requests, name).toEqual([
        { traceparent: null, baggage: null },
        { traceparent: null, baggage: null },
      ]);
    }
  });

  it("sends the active span's context and baggage with every unary call and stream", async () => {
    // What an application's OpenTelemetry setup registers; the SDK itself registers nothing.
    const provider = new TracerProvider();
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(
      new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    );
    const baggage = propagation.createBaggage({ tenant: { value: "team-a" } });

    const { spanContext, results } = await context.with(propagation.setBaggage(context.active(), baggage), () =>
      trace.getTracer("the-application").startActiveSpan("submit work", async (span) => {
        try {
          return { spanContext: span.spanContext(), results: await callAll() };
        } finally {
          span.end();
        }
      }),
    );
    const expected = { traceparent: `00-${spanContext.traceId}-${spanContext.spanId}-01`, baggage: "tenant=team-a" };
    for (const [name, requests] of results) expect(requests, name).toEqual([expected, expected]);

    // Outside the span there is nothing to send.
    for (const [name, requests] of await callAll()) {
      expect(requests.map((request) => request.traceparent), name).toEqual([null, null]);
    }
    await provider.shutdown();
  });
});
