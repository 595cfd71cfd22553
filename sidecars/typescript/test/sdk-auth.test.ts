// The SDK's credentials against a TaskService served by connect-node in this test: the bearer token on every call
// (from the option, else PLUGIN_BRIDGE_API_TOKEN, never PLUGIN_BRIDGE_TOKEN), and TLS for https:// base URLs with a
// CA and a client certificate made here by the openssl CLI, over Connect, gRPC and gRPC-Web.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer as createHttp1Server, type Server as Http1Server } from "node:http";
import { createSecureServer, type Http2SecureServer } from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { createBridgeClient, type BridgeClientOptions, type BridgeProtocol } from "@plugin-bridge/kit/sdk";
import { TaskService } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { tempDir } from "./helpers.js";

/** The authorization header of every request the servers answered, in order. */
const authorizations: Array<string | null> = [];
const impl: Partial<ServiceImpl<typeof TaskService>> = {
  async getTask(request, call) {
    authorizations.push(call.requestHeader.get("authorization"));
    return { execution: { id: request.id } };
  },
  async *watchTask(request, call) {
    authorizations.push(call.requestHeader.get("authorization"));
    yield { event: { executionId: request.id, sequence: 1n } };
  },
};
const handler = connectNodeAdapter({ routes: (router) => router.service(TaskService, impl) });

/** Every way the SDK reaches a host: gRPC over HTTP/2, Connect and gRPC-Web over both HTTP versions. */
const ways: Array<{ protocol: BridgeProtocol; httpVersion: "1.1" | "2" }> = [
  { protocol: "connect", httpVersion: "1.1" },
  { protocol: "connect", httpVersion: "2" },
  { protocol: "grpc", httpVersion: "2" },
  { protocol: "grpc-web", httpVersion: "1.1" },
  { protocol: "grpc-web", httpVersion: "2" },
];

/** Open connections of a server, which the clients keep alive: closing the server must end them. */
function tracked(server: Http1Server | Http2SecureServer): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return sockets;
}

async function listen(server: Http1Server | Http2SecureServer, scheme: "http" | "https"): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Http1Server | Http2SecureServer | undefined, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server?.close(resolve));
}

/** A unary call and a stream; resolves when both succeed. */
async function callBoth(options: BridgeClientOptions): Promise<void> {
  const client = createBridgeClient(options);
  expect((await client.get("unary-1")).id).toBe("unary-1");
  for await (const event of client.watch("stream-1")) expect(event.executionId).toBe("stream-1");
}

describe("the SDK's bearer token", () => {
  let server: Http1Server;
  let sockets: Set<Socket>;
  let baseUrl: string;

  beforeAll(async () => {
    // Over HTTP/1.1 here; the tests over TLS below send the token on every protocol and HTTP version.
    server = createHttp1Server(handler);
    sockets = tracked(server);
    baseUrl = await listen(server, "http");
  });

  afterEach(() => {
    vi.unstubAllEnvs();
    authorizations.length = 0;
  });

  afterAll(async () => {
    await close(server, sockets);
  });

  it("sends the token option on every call, unary and streaming", async () => {
    for (const protocol of ["connect", "grpc-web"] as const) {
      await callBoth({ baseUrl, protocol, token: "caller-token" });
    }
    expect(authorizations).toEqual(Array(4).fill("Bearer caller-token"));
  });

  it("sends no authorization without a token, and never PLUGIN_BRIDGE_TOKEN, a sidecar's", async () => {
    vi.stubEnv("PLUGIN_BRIDGE_API_TOKEN", "");
    vi.stubEnv("PLUGIN_BRIDGE_TOKEN", "sidecar-secret");
    await callBoth({ baseUrl });
    expect(authorizations).toEqual([null, null]);
  });

  it("falls back to PLUGIN_BRIDGE_API_TOKEN, which the option overrides", async () => {
    vi.stubEnv("PLUGIN_BRIDGE_API_TOKEN", "from-env");
    await callBoth({ baseUrl });
    await callBoth({ baseUrl, token: "from-option" });
    // An authorization of the caller's own is theirs: the environment does not replace it.
    await callBoth({ baseUrl, headers: { Authorization: "Basic abc" } });
    expect(authorizations).toEqual(["Bearer from-env", "Bearer from-env", "Bearer from-option", "Bearer from-option", "Basic abc", "Basic abc"]);
  });

  it("adds the token to a transport the application built", async () => {
    await callBoth({ baseUrl, token: "own-transport", transport: createConnectTransport({ baseUrl, httpVersion: "1.1" }) });
    expect(authorizations).toEqual(["Bearer own-transport", "Bearer own-transport"]);
  });

  it("refuses a token given twice", () => {
    expect(() => createBridgeClient({ baseUrl, token: "a", headers: { authorization: "Bearer b" } })).toThrow(/give the token once/);
  });
});

describe("the SDK over TLS", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let serverCa: Buffer;
  let clientCert: Buffer;
  let clientKey: Buffer;
  /** TLS only: any client may connect. */
  let tls: Http2SecureServer;
  let tlsSockets: Set<Socket>;
  let tlsUrl: string;
  /** Mutual TLS: the handshake fails without a client certificate signed by the client CA. */
  let mtls: Http2SecureServer;
  let mtlsSockets: Set<Socket>;
  let mtlsUrl: string;
  /** The subject CN of each client certificate the mutual-TLS server accepted. */
  const presented: string[] = [];

  /** A self-signed P-256 certificate and its key, made by the openssl CLI; `san` for a server's. */
  const selfSigned = (name: string, subject: string, san?: string): { cert: Buffer; key: Buffer } => {
    const cert = path.join(dir.path, `${name}.pem`);
    const key = path.join(dir.path, `${name}-key.pem`);
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
        "-subj", subject, ...(san ? ["-addext", `subjectAltName=${san}`] : []), "-keyout", key, "-out", cert],
      { stdio: "ignore" },
    );
    return { cert: readFileSync(cert), key: readFileSync(key) };
  };

  beforeAll(async () => {
    dir = await tempDir("sdk-tls");
    const server = selfSigned("server", "/CN=127.0.0.1", "IP:127.0.0.1");
    const client = selfSigned("client", "/CN=sdk-client");
    serverCa = server.cert;
    clientCert = client.cert;
    clientKey = client.key;

    tls = createSecureServer({ cert: server.cert, key: server.key, allowHTTP1: true }, handler);
    tlsSockets = tracked(tls);
    tlsUrl = await listen(tls, "https");

    mtls = createSecureServer(
      { cert: server.cert, key: server.key, allowHTTP1: true, requestCert: true, rejectUnauthorized: true, ca: client.cert },
      (request, response) => {
        // Per request: a client reuses its connection across calls.
        presented.push(String((request.socket as TLSSocket).getPeerCertificate().subject.CN));
        handler(request, response);
      },
    );
    mtlsSockets = tracked(mtls);
    mtlsUrl = await listen(mtls, "https");
  });

  afterAll(async () => {
    await close(tls, tlsSockets);
    await close(mtls, mtlsSockets);
    await dir?.remove();
  });

  beforeEach(() => {
    authorizations.length = 0;
    presented.length = 0;
  });

  for (const { protocol, httpVersion } of ways) {
    it(`trusts the given CA and only it, over ${protocol} on HTTP/${httpVersion}`, async () => {
      await callBoth({ baseUrl: tlsUrl, protocol, httpVersion, tls: { ca: serverCa }, token: "over-tls" });
      expect(authorizations).toEqual(["Bearer over-tls", "Bearer over-tls"]);

      // Node's own roots do not hold the test's CA: the handshake fails on the certificate.
      const untrusted = createBridgeClient({ baseUrl: tlsUrl, protocol, httpVersion });
      await expect(untrusted.get("x")).rejects.toThrow(/self[- ]signed certificate/);
    });

    it(`presents the client certificate a mutual-TLS host requires, over ${protocol} on HTTP/${httpVersion}`, async () => {
      await callBoth({ baseUrl: mtlsUrl, protocol, httpVersion, tls: { ca: serverCa, cert: clientCert, key: clientKey } });
      expect(presented).toEqual(["sdk-client", "sdk-client"]);

      const anonymous = createBridgeClient({ baseUrl: mtlsUrl, protocol, httpVersion, tls: { ca: serverCa.toString() } });
      await expect(anonymous.get("x")).rejects.toThrow(/certificate required/);
      expect(presented).toHaveLength(2);
    });
  }

  it("refuses TLS options for a plaintext URL, and half a client certificate", () => {
    expect(() => createBridgeClient({ baseUrl: "http://127.0.0.1:1", tls: { ca: serverCa } })).toThrow(/https:\/\//);
    expect(() => createBridgeClient({ baseUrl: tlsUrl, tls: { cert: clientCert } })).toThrow(/tls\.cert and tls\.key/);
  });
});
