// The SDK client against a TaskService served by connect-node in this test, over Connect, gRPC and gRPC-Web:
// proves the wiring of transports, requests and streams. The host's own behaviour is tested with the host.
import { createServer as createHttp1Server, type Server as Http1Server } from "node:http";
import { createServer as createHttp2Server, type Http2Server, type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createBridgeClient, taskTemplate, type BridgeProtocol } from "@plugin-bridge/kit/sdk";
import { HttpRequestSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/http/v1/http_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import {
  TaskEventSchema,
  TaskExecutionSchema,
  TaskService,
  type CreateTaskRequest,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

describe("taskTemplate", () => {
  it("fills custom with the spec's proto3 JSON", () => {
    const template = taskTemplate(
      HttpRequestSchema,
      { type: "http", version: 1 },
      { url: "https://example.com", timeout: { seconds: 5n }, successStatuses: [200, 204] },
      { config: { team: "a" } },
    );
    expect(template.type).toBe("http");
    expect(template.typeVersion).toBe(1);
    expect(template.custom).toEqual({ url: "https://example.com", timeout: "5s", successStatuses: [200, 204] });
    expect(template.config).toEqual({ team: "a" });
  });
});

describe("createBridgeClient", () => {
  const received: CreateTaskRequest[] = [];
  const executed: string[] = [];
  const events = (id: string) =>
    [Phase.QUEUED, Phase.RUNNING, Phase.SUCCESS].map((phase, index) =>
      create(TaskEventSchema, {
        executionId: id,
        sequence: BigInt(index + 1),
        attempt: 1,
        phaseInfo: { phase },
        outputs: phase === Phase.SUCCESS ? { ok: true } : undefined,
      }),
    );
  const impl: Partial<ServiceImpl<typeof TaskService>> = {
    async createTask(request) {
      received.push(request);
      return { execution: { id: `exec-${received.length}`, attempt: 1, template: request.template }, created: true };
    },
    async getTask(request) {
      return { execution: { id: request.id, phaseInfo: { phase: Phase.RUNNING } } };
    },
    async *watchTask(request) {
      for (const event of events(request.id)) if (event.sequence >= request.fromSequence) yield { event };
    },
    async abortTask(request) {
      return { execution: { id: request.id, abortRequested: true, phaseInfo: { phase: Phase.ABORTED, reason: request.reason } } };
    },
    async listTasks(request) {
      const all = ["a", "b", "c"].map((id) => create(TaskExecutionSchema, { id }));
      const start = request.pageToken ? Number(request.pageToken) : 0;
      const next = start + 2 < all.length ? String(start + 2) : "";
      return { executions: all.slice(start, start + 2), nextPageToken: next };
    },
    async *executeTask(request) {
      executed.push(request.template?.type ?? "");
      for (const event of events("exec-run")) yield { event };
    },
  };
  const handler = connectNodeAdapter({ routes: (router) => router.service(TaskService, impl) });
  let http1: Http1Server;
  let http2: Http2Server;
  const sessions = new Set<ServerHttp2Session>();
  let http1Url: string;
  let http2Url: string;

  beforeAll(async () => {
    http1 = createHttp1Server(handler);
    http2 = createHttp2Server(handler);
    // The clients keep their connections alive; closing the servers must end them.
    http2.on("session", (session) => sessions.add(session));
    await new Promise<void>((resolve) => http1.listen(0, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => http2.listen(0, "127.0.0.1", resolve));
    http1Url = `http://127.0.0.1:${(http1.address() as AddressInfo).port}`;
    http2Url = `http://127.0.0.1:${(http2.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    http1?.closeAllConnections();
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => http1?.close(resolve));
    await new Promise((resolve) => http2?.close(resolve));
  });

  for (const protocol of ["connect", "grpc", "grpc-web"] as BridgeProtocol[]) {
    it(`submits, watches, runs, gets, aborts and lists over ${protocol}`, async () => {
      const client = createBridgeClient(
        protocol === "grpc" ? { baseUrl: http2Url, protocol } : { baseUrl: http1Url, protocol, useBinaryFormat: protocol === "grpc-web" },
      );
      const template = taskTemplate(HttpRequestSchema, { type: "http", version: 1 }, { url: "https://example.com" });
      const execution = await client.submit(template, { inputs: { n: 1 }, idempotencyKey: "key-1", metadata: { namespace: "team-a" } });
      expect(execution.id).toMatch(/^exec-/);
      const sent = received.at(-1)!;
      expect(sent.idempotencyKey).toBe("key-1");
      expect(sent.inputs).toEqual({ n: 1 });
      expect(sent.metadata?.namespace).toBe("team-a");
      expect(sent.template?.custom).toEqual({ url: "https://example.com" });

      const watched = [];
      for await (const event of client.watch(execution.id, { fromSequence: 2 })) watched.push(event.phaseInfo?.phase);
      expect(watched).toEqual([Phase.RUNNING, Phase.SUCCESS]);

      const seen: Phase[] = [];
      const last = await client.run(template, { onEvent: (event) => seen.push(event.phaseInfo!.phase) });
      expect(seen).toEqual([Phase.QUEUED, Phase.RUNNING, Phase.SUCCESS]);
      expect(last.outputs).toEqual({ ok: true });
      expect(executed.at(-1)).toBe("http");

      expect((await client.get("x")).phaseInfo?.phase).toBe(Phase.RUNNING);
      expect((await client.abort("x", "no longer needed")).phaseInfo?.reason).toBe("no longer needed");
      expect((await client.list({ pageSize: 2 })).nextPageToken).toBe("2");
      const ids = [];
      for await (const listed of client.listAll()) ids.push(listed.id);
      expect(ids).toEqual(["a", "b", "c"]);
    });
  }

  it("refuses gRPC over HTTP/1.1", () => {
    expect(() => createBridgeClient({ baseUrl: http1Url, protocol: "grpc", httpVersion: "1.1" })).toThrow(/HTTP\/2/);
  });
});
