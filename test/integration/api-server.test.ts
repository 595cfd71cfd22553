// The public API port speaks Connect (JSON, binary), gRPC and gRPC-Web over HTTP/1.1 and h2c, all on one
// port, and fails bad input with precise codes. Real sockets on 127.0.0.1, real clients (curl, connect-node,
// grpc-js).
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import {
  CreateTaskRequestSchema,
  CreateTaskResponseSchema,
  GetTaskRequestSchema,
  GetTaskResponseSchema,
  TaskService,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { PluginRegistryService } from "@plugin-bridge/protocol/pluginbridge/v1/registry_service_pb.js";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import { startApiServer, type ApiLog, type ApiServer } from "../../src/api/server.js";
import { HealthStatus } from "../../src/api/health-service.js";
import { codeOf } from "../helpers/clients.js";
import { curlPost } from "../helpers/api-curl.js";
import { createGrpcJsClient, grpcJsServerStream, grpcJsUnary } from "../helpers/api-grpc-js.js";
import { SLOW_TASK_ID, STUCK_TASK_ID, testTaskServiceRoutes } from "../helpers/api-test-task-service.js";

const GET_TASK = "/pluginbridge.v1.TaskService/GetTask";
const CREATE_TASK = "/pluginbridge.v1.TaskService/CreateTask";
const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
const HEALTH_WATCH = "/grpc.health.v1.Health/Watch";

// Kept, not printed: a failing test can show them, a passing one stays quiet.
const logLines: string[] = [];
const log: ApiLog = (level, message, fields) => {
  logLines.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ""}`);
};

/** Every client flavour the public port must serve. */
function transports(baseUrl: string): Record<string, Transport> {
  return {
    "connect binary http/1.1": createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
    "connect json http/1.1": createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false }),
    "connect binary h2c": createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
    "connect json h2c": createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false }),
    "grpc h2c": createGrpcTransport({ baseUrl }),
    "grpc-web http/1.1": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
    "grpc-web h2c": createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
  };
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
}

/** A raw HTTP/1.1 connection, to control exactly which socket a request travels on. */
async function openHttp1Connection(port: number): Promise<{ post(path: string, body: string): Promise<string>; destroy(): void }> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  return {
    post(path, body) {
      return new Promise((resolve, reject) => {
        let received = "";
        const onData = (chunk: Buffer): void => {
          received += chunk.toString("latin1");
          const headerEnd = received.indexOf("\r\n\r\n");
          if (headerEnd < 0) return;
          const length = Number(/content-length: *(\d+)/i.exec(received.slice(0, headerEnd))?.[1] ?? 0);
          if (received.length < headerEnd + 4 + length) return;
          socket.off("data", onData);
          socket.off("close", onClose);
          resolve(received);
        };
        const onClose = (): void => reject(new Error(`connection closed after: ${received}`));
        socket.on("data", onData);
        socket.once("close", onClose);
        socket.write(
          `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      });
    },
    destroy: () => socket.destroy(),
  };
}

describe("api server: one port, every protocol", () => {
  let server: ApiServer;
  let health: HealthStatus;
  let grpcJs: grpc.Client;

  beforeAll(async () => {
    health = new HealthStatus();
    server = await startApiServer({ port: 0, routes: testTaskServiceRoutes().routes, health, log });
    grpcJs = createGrpcJsClient(server.port);
  });

  afterAll(async () => {
    grpcJs?.close();
    await server?.close();
  });

  it("answers Connect JSON from curl over HTTP/1.1", async () => {
    const result = await curlPost({ url: server.url + GET_TASK, body: '{"id":"x"}' });
    expect(result.httpVersion).toBe("1.1");
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ execution: { id: "x" } });
  });

  it("answers Connect JSON from curl over h2c (prior knowledge)", async () => {
    const result = await curlPost({ url: server.url + GET_TASK, body: '{"id":"y"}', http2PriorKnowledge: true });
    expect(result.httpVersion).toBe("2");
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ execution: { id: "y" } });
  });

  it("answers Connect (binary, JSON), gRPC and gRPC-Web clients over HTTP/1.1 and h2c", async () => {
    for (const [name, transport] of Object.entries(transports(server.url))) {
      const client = createClient(TaskService, transport);
      const response = await client.getTask({ id: name });
      expect(response.execution?.id, name).toBe(name);
      // A second call on the same connection: the hand-off from the preface sniffer must not be one-shot.
      const again = await client.getTask({ id: `${name} again` });
      expect(again.execution?.id, name).toBe(`${name} again`);
      expect(await codeOf(client.createTask({})), name).toBe(Code.InvalidArgument);
    }
  });

  it("answers grpc-js, the reference gRPC client, with results and status codes", async () => {
    const ok = await grpcJsUnary(grpcJs, GET_TASK, GetTaskRequestSchema, GetTaskResponseSchema, { id: "grpc-js" });
    expect(ok.response?.execution?.id).toBe("grpc-js");
    const invalid = await grpcJsUnary(grpcJs, CREATE_TASK, CreateTaskRequestSchema, CreateTaskResponseSchema, {});
    expect(invalid.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(invalid.error?.details).toBe("template.type is required");
  });

  it("serves grpc.health.v1 Check over gRPC and Connect JSON", async () => {
    const serving = await grpcJsUnary(grpcJs, HEALTH_CHECK, HealthCheckRequestSchema, HealthCheckResponseSchema, {});
    expect(serving.response?.status).toBe(ServingStatus.SERVING);
    const unknown = await grpcJsUnary(grpcJs, HEALTH_CHECK, HealthCheckRequestSchema, HealthCheckResponseSchema, {
      service: "no.such.Service",
    });
    expect(unknown.error?.code).toBe(grpc.status.NOT_FOUND);

    const curl = await curlPost({ url: server.url + HEALTH_CHECK, body: "{}" });
    expect(JSON.parse(curl.body)).toEqual({ status: "SERVING" });
    const curlUnknown = await curlPost({ url: server.url + HEALTH_CHECK, body: '{"service":"no.such.Service"}' });
    expect(curlUnknown.status).toBe(404);
    expect(JSON.parse(curlUnknown.body).code).toBe("not_found");
  });

  it("streams health changes to a Watch until the client leaves (Connect h2c)", async () => {
    const service = "pluginbridge.v1.TaskService";
    const client = createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
    const leave = new AbortController();
    const updates = client.watch({ service }, { signal: leave.signal })[Symbol.asyncIterator]();

    expect((await updates.next()).value?.status).toBe(ServingStatus.SERVICE_UNKNOWN);
    health.set(service, ServingStatus.SERVING);
    expect((await updates.next()).value?.status).toBe(ServingStatus.SERVING);
    health.set(service, ServingStatus.NOT_SERVING);
    expect((await updates.next()).value?.status).toBe(ServingStatus.NOT_SERVING);

    leave.abort();
    expect(await codeOf(updates.next())).toBe(Code.Canceled);
  });

  it("streams health to a grpc-js Watch", async () => {
    const service = "watched.by.grpc-js";
    health.set(service, ServingStatus.SERVING);
    const stream = grpcJsServerStream(grpcJs, HEALTH_WATCH, HealthCheckRequestSchema, HealthCheckResponseSchema, {
      service,
    });
    stream.on("error", () => {}); // cancel() below ends it with CANCELLED
    const seen: ServingStatus[] = [];
    for await (const update of stream) {
      seen.push(update.status);
      if (seen.length === 1) health.set(service, ServingStatus.NOT_SERVING);
      if (seen.length === 2) break; // leaving the loop cancels the call
    }
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
  });
});

describe("api server: bad input fails precisely and the server keeps serving", () => {
  let server: ApiServer;
  let grpcJs: grpc.Client;

  beforeAll(async () => {
    server = await startApiServer({
      port: 0,
      routes: testTaskServiceRoutes().routes,
      health: new HealthStatus(),
      log,
      readMaxBytes: 1024,
    });
    grpcJs = createGrpcJsClient(server.port);
  });

  afterAll(async () => {
    grpcJs?.close();
    await server?.close();
  });

  async function stillServes(): Promise<void> {
    const result = await curlPost({ url: server.url + GET_TASK, body: '{"id":"after"}' });
    expect(JSON.parse(result.body)).toEqual({ execution: { id: "after" } });
  }

  it("malformed JSON: 400 invalid_argument", async () => {
    const result = await curlPost({ url: server.url + GET_TASK, body: '{"id":' });
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body).code).toBe("invalid_argument");
    await stillServes();
  });

  it("a JSON field of the wrong type: 400 invalid_argument", async () => {
    const result = await curlPost({ url: server.url + GET_TASK, body: '{"id":42}' });
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body).code).toBe("invalid_argument");
    await stillServes();
  });

  it("text/plain: 415 Unsupported Media Type", async () => {
    const result = await curlPost({ url: server.url + GET_TASK, body: '{"id":"x"}', contentType: "text/plain" });
    expect(result.status).toBe(415);
    await stillServes();
  });

  it("a message over readMaxBytes: resource_exhausted over Connect, gRPC and gRPC-Web", async () => {
    const big = "x".repeat(2048);
    const curl = await curlPost({ url: server.url + GET_TASK, body: JSON.stringify({ id: big }) });
    expect(curl.status).toBe(429); // Connect's HTTP status for resource_exhausted
    expect(JSON.parse(curl.body).code).toBe("resource_exhausted");

    for (const [name, transport] of Object.entries(transports(server.url))) {
      const client = createClient(TaskService, transport);
      expect(await codeOf(client.getTask({ id: big })), name).toBe(Code.ResourceExhausted);
    }
    const grpcJsBig = await grpcJsUnary(grpcJs, GET_TASK, GetTaskRequestSchema, GetTaskResponseSchema, { id: big });
    expect(grpcJsBig.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await stillServes();
  });

  it("an unknown method: 404, which clients read as unimplemented", async () => {
    const curl = await curlPost({ url: server.url + "/pluginbridge.v1.TaskService/NoSuchMethod", body: "{}" });
    expect(curl.status).toBe(404);

    const unknown = await grpcJsUnary(
      grpcJs,
      "/pluginbridge.v1.TaskService/NoSuchMethod",
      GetTaskRequestSchema,
      GetTaskResponseSchema,
      {},
    );
    expect(unknown.error?.code).toBe(grpc.status.UNIMPLEMENTED);

    // A service nobody registered is just an unknown path.
    for (const [name, transport] of Object.entries(transports(server.url))) {
      const registry = createClient(PluginRegistryService, transport);
      expect(await codeOf(registry.listPlugins({})), name).toBe(Code.Unimplemented);
    }
    await stillServes();
  });

  it("a method the registered service leaves out: unimplemented", async () => {
    for (const [name, transport] of Object.entries(transports(server.url))) {
      const client = createClient(TaskService, transport);
      expect(await codeOf(client.listTasks({})), name).toBe(Code.Unimplemented);
    }
  });

  it("an HTTP/2 preface that arrives in pieces still reaches the HTTP/2 server", async () => {
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
    const emptySettingsFrame = Buffer.from([0, 0, 0, 0x04, 0, 0, 0, 0, 0]);
    const firstFrame = await new Promise<Buffer>((resolve, reject) => {
      const socket = net.connect(server.port, "127.0.0.1");
      socket.setNoDelay(true);
      let received = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length >= 9) {
          socket.destroy();
          resolve(received.subarray(0, 9));
        }
      });
      socket.on("error", reject);
      socket.once("connect", () => {
        socket.write(preface.subarray(0, 5));
        // A pause so the first piece is read on its own (if the kernel still merges them, the test is weaker,
        // not wrong).
        setTimeout(() => socket.write(Buffer.concat([preface.subarray(5), emptySettingsFrame])), 20);
      });
    });
    expect(firstFrame[3]).toBe(0x04); // the server's SETTINGS frame: an HTTP/2 server got the connection
    await stillServes();
  });

  it("a connection that speaks neither HTTP version gets 400 and is closed; others are not affected", async () => {
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(server.port, "127.0.0.1", () => socket.write("HELLO\r\n\r\n"));
      let received = "";
      socket.on("data", (chunk) => (received += chunk.toString("latin1")));
      socket.on("close", () => resolve(received));
      socket.on("error", () => {});
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    await stillServes();
  });
});

describe("api server: close()", () => {
  it("finishes unary calls in flight, ends streams, reports NOT_SERVING, then refuses connections", async () => {
    const health = new HealthStatus();
    const { routes, controls } = testTaskServiceRoutes();
    const server = await startApiServer({ port: 0, routes, health, log, shutdownGraceMs: 30_000 });
    const h2 = createConnectTransport({ baseUrl: server.url, httpVersion: "2" });
    const grpcJs = createGrpcJsClient(server.port);
    try {
      const healthUpdates = createClient(Health, h2).watch({})[Symbol.asyncIterator]();
      expect((await healthUpdates.next()).value?.status).toBe(ServingStatus.SERVING);
      const taskEvents = createClient(TaskService, createGrpcTransport({ baseUrl: server.url }))
        .watchTask({ id: "w" })
        [Symbol.asyncIterator]();
      expect((await taskEvents.next()).value?.event?.executionId).toBe("w");
      const grpcJsWatch = grpcJsServerStream(grpcJs, HEALTH_WATCH, HealthCheckRequestSchema, HealthCheckResponseSchema, {});
      const grpcJsWatchEnded = new Promise<number>((resolve) => grpcJsWatch.on("error", (e: grpc.ServiceError) => resolve(e.code)));
      const grpcJsStatuses: ServingStatus[] = [];
      // grpc-js connects lazily: wait for its first update, or close() could beat the call to the server.
      await new Promise<void>((resolve) =>
        grpcJsWatch.on("data", (update: { status: ServingStatus }) => {
          grpcJsStatuses.push(update.status);
          resolve();
        }),
      );

      const slowCall = createClient(TaskService, h2).getTask({ id: SLOW_TASK_ID });
      await controls.slowCallStarted;

      const closed = server.close();
      // Streams end without waiting for the grace period: a watcher sees NOT_SERVING, then UNAVAILABLE.
      expect((await healthUpdates.next()).value?.status).toBe(ServingStatus.NOT_SERVING);
      expect(await codeOf(healthUpdates.next())).toBe(Code.Unavailable);
      expect(await codeOf(taskEvents.next())).toBe(Code.Unavailable);
      expect(await grpcJsWatchEnded).toBe(grpc.status.UNAVAILABLE);
      expect(grpcJsStatuses).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);

      // The unary call in flight still gets its answer.
      controls.release();
      expect((await slowCall).execution?.id).toBe(SLOW_TASK_ID);
      await closed;

      expect(await connectionRefused(server.port)).toBe(true);
      expect(health.get("")).toBe(ServingStatus.NOT_SERVING);
    } finally {
      grpcJs.close();
      await server.close();
    }
  });

  it("cuts a unary call that outlives the grace period, telling its handler through the signal", async () => {
    const { routes, controls } = testTaskServiceRoutes();
    const server = await startApiServer({ port: 0, routes, health: new HealthStatus(), log, shutdownGraceMs: 100 });
    const client = createClient(TaskService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    const stuckCall = codeOf(client.getTask({ id: STUCK_TASK_ID }));
    await controls.slowCallStarted;
    await server.close();
    // The handler gives up when its signal fires, and its UNAVAILABLE still reaches the client.
    expect(await stuckCall).toBe(Code.Unavailable);
    expect(await connectionRefused(server.port)).toBe(true);
  });

  it("answers a new HTTP/1.1 request on a kept-alive connection during close with 503 (unavailable)", async () => {
    const { routes, controls } = testTaskServiceRoutes();
    const server = await startApiServer({ port: 0, routes, health: new HealthStatus(), log, shutdownGraceMs: 30_000 });
    const keptAlive = await openHttp1Connection(server.port);
    try {
      expect(await keptAlive.post(GET_TASK, '{"id":"before"}')).toMatch(/^HTTP\/1\.1 200/);
      // A unary call in flight on another connection keeps close() draining while the kept-alive one is reused.
      const slowCall = createClient(TaskService, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }))
        .getTask({ id: SLOW_TASK_ID });
      await controls.slowCallStarted;
      const closed = server.close();

      const late = await keptAlive.post(GET_TASK, '{"id":"late"}');
      expect(late).toMatch(/^HTTP\/1\.1 503/);
      expect(late).toMatch(/connection: close/i);
      expect(late).toContain('"code":"unavailable"');

      controls.release();
      expect((await slowCall).execution?.id).toBe(SLOW_TASK_ID);
      await closed;
    } finally {
      keptAlive.destroy();
      await server.close();
    }
  });
});
