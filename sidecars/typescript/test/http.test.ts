// The http example as a real sidecar process, calling a local HTTP server on loopback.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import { createGrpcClient, type MethodsOf, type PromiseClient } from "@plugin-bridge/kit";
import { PluginKind, PluginMetadataService, SyncPluginService } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { ErrorKind, Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startNatsServer, type NatsServerProcess } from "../../../src/coordination/nats-server-process.js";
import { examplesMain, grpcError, startSidecar, taskContext, tempDir, type Sidecar } from "./helpers.js";

describe("http example sidecar", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let nats: NatsServerProcess;
  let sidecar: Sidecar;
  let web: Server;
  let base: string;
  let plugin: PromiseClient<MethodsOf<typeof SyncPluginService>>;
  let metadata: PromiseClient<MethodsOf<typeof PluginMetadataService>>;

  beforeAll(async () => {
    dir = await tempDir("http");
    nats = await startNatsServer({ dataDir: path.join(dir.path, "nats") });
    web = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString()));
      request.on("end", () => {
        if (request.url === "/echo") {
          response.writeHead(201, { "content-type": "application/json", "x-seen-method": request.method ?? "" });
          response.end(JSON.stringify({ body, header: request.headers["x-token"] ?? null }));
        } else if (request.url === "/big") {
          response.writeHead(200);
          response.end("x".repeat(4096));
        } else {
          response.writeHead(404);
          response.end("no such page");
        }
      });
    });
    await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
    sidecar = await startSidecar(examplesMain.http, { natsUrl: nats.url, socketDir: dir.path, instanceId: "http-a" });
    plugin = createGrpcClient(SyncPluginService, sidecar.endpoint, credentials.createInsecure());
    metadata = createGrpcClient(PluginMetadataService, sidecar.endpoint, credentials.createInsecure());
  });

  afterAll(async () => {
    plugin?.close();
    metadata?.close();
    await sidecar?.stop();
    await new Promise((resolve) => web?.close(resolve));
    await nats?.stop();
    await dir?.remove();
  });

  it("describes a sync plugin with the HttpRequest specification", async () => {
    const { plugin: descriptor } = await metadata.describe({});
    expect(descriptor?.kind).toBe(PluginKind.SYNC);
    expect(descriptor?.specification?.messageName).toBe("pluginbridge.plugins.http.v1.HttpRequest");
  });

  it("makes the call and returns status, headers and body", async () => {
    const response = await plugin.do({
      context: taskContext("http-ok", {
        url: `${base}/echo`,
        method: "post",
        headers: { "x-token": "t1" },
        body: "ping",
        successStatuses: [201],
      }),
    });
    expect(response.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(response.outputs?.status).toBe(201);
    expect(response.outputs?.headers).toMatchObject({ "x-seen-method": "POST" });
    expect(JSON.parse(response.outputs?.body as string)).toEqual({ body: "ping", header: "t1" });
  });

  it("fails permanently with HttpStatus404 on a 404", async () => {
    const response = await plugin.do({ context: taskContext("http-404", { url: `${base}/missing` }) });
    expect(response.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(response.phaseInfo?.error?.code).toBe("HttpStatus404");
    expect(response.phaseInfo?.error?.kind).toBe(ErrorKind.USER);
  });

  it("fails permanently when the body exceeds max_body_bytes", async () => {
    const response = await plugin.do({ context: taskContext("http-big", { url: `${base}/big`, maxBodyBytes: 100 }) });
    expect(response.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(response.phaseInfo?.error?.code).toBe("BodyTooLarge");
  });

  it("fails retryably when nothing listens", async () => {
    const closedPort = await freePort();
    const response = await plugin.do({ context: taskContext("http-down", { url: `http://127.0.0.1:${closedPort}/` }) });
    expect(response.phaseInfo?.phase).toBe(Phase.RETRYABLE_FAILURE);
    expect(response.phaseInfo?.error?.code).toBe("NetworkError");
    expect(response.phaseInfo?.error?.kind).toBe(ErrorKind.SYSTEM);
  });

  it("refuses a URL that is not http or https with INVALID_ARGUMENT", async () => {
    const error = await grpcError(plugin.do({ context: taskContext("http-file", { url: "file:///etc/passwd" }) }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toContain("template.custom.url");
  });

  it("refuses a custom that does not fit HttpRequest, naming the field", async () => {
    const error = await grpcError(plugin.do({ context: taskContext("http-bad", { url: base, timeout: 5 }) }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toContain("template.custom.timeout");
  });
});
