// The public API port: Connect (JSON and binary), gRPC and gRPC-Web on ONE TCP port, over HTTP/1.1 and
// cleartext HTTP/2 (h2c). Node cannot serve both HTTP versions in cleartext on one server (`allowHTTP1` needs
// TLS), so a plain net.Server reads the first bytes of each connection and hands the socket to an http or an
// http2 server that never listen themselves. Besides the RPCs: gRPC server reflection for every service
// registered, and Prometheus metrics on GET /metrics. With TLS configured the port speaks TLS only: one http2
// secure server that also takes HTTP/1.1 (ALPN), and asks for client certificates when a client CA is given.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { JsonReadOptions, JsonWriteOptions } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { MetricsEndpoint } from "../observability/metrics.js";
import { PEER, peerOf } from "./auth.js";
import { sendableErrors } from "./error-text.js";
import { registerHealthService, type HealthStatus } from "./health-service.js";
import { strictJsonText } from "./json-text.js";
import { registerReflectionService } from "./reflection-service.js";
import {
  ABORTED_CALLS_ANSWER_MS,
  CONNECTION_PREFACE_TIMEOUT_MS,
  DEFAULT_READ_MAX_BYTES,
  DEFAULT_SHUTDOWN_GRACE_MS,
} from "./limits.js";

export type ApiLogLevel = "debug" | "info" | "warn" | "error";
export type ApiLog = (level: ApiLogLevel, message: string, fields?: Record<string, unknown>) => void;

export interface ApiServerOptions {
  /** Interface to bind; default 127.0.0.1 (nothing public unless asked for). */
  host?: string;
  /** TCP port; 0 (the default) picks a free one, read it back from ApiServer.port. */
  port?: number;
  /** Registers the services. The health service is registered by the server itself, backed by `health`. */
  routes: (router: ConnectRouter) => void;
  /** Largest request message accepted; larger ones fail with RESOURCE_EXHAUSTED. Default 4 MiB. */
  readMaxBytes?: number;
  /** What grpc.health.v1.Health reports; close() turns it NOT_SERVING. */
  health: HealthStatus;
  log: ApiLog;
  /** How long close() waits for calls in flight before cutting connections. Default 10 s. */
  shutdownGraceMs?: number;
  /** Server interceptors (authentication, logging), applied to every call. */
  interceptors?: Interceptor[];
  /** Served as Prometheus text on GET /metrics; without it that path is an RPC path like any other (404). */
  metrics?: MetricsEndpoint;
  /** TLS on the port (PEM): the server's certificate chain and key, and the CA that signs client certificates. */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
}

export interface ApiServer {
  readonly port: number;
  /** Base URL for clients, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /**
   * Health NOT_SERVING, stop accepting, end server streams, let unary calls finish (bounded by
   * shutdownGraceMs), then destroy what is left. Safe to call more than once.
   */
  close(): Promise<void>;
}

/**
 * connect-es passes its JSON options on to its serialization, text decoder included, though the handler options'
 * type names only protobuf-es's part (test/integration/hostile-json.test.ts shows it is used).
 */
const JSON_OPTIONS: Partial<JsonReadOptions & JsonWriteOptions> & { textDecoder: typeof strictJsonText } = { textDecoder: strictJsonText };

/** What an HTTP/2 client sends first when it speaks HTTP/2 without TLS or an Upgrade (RFC 9113 §3.4). */
const HTTP2_CONNECTION_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

function serverShuttingDown(): ConnectError {
  // UNAVAILABLE is the code gRPC and Connect clients treat as "retry, possibly elsewhere".
  return new ConnectError("server is shutting down", Code.Unavailable);
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const host = options.host ?? "127.0.0.1";
  const shutdownGraceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  const { log, health } = options;

  // Two phases of shutdown, two signals: streams are told at once (they would otherwise run forever),
  // unary calls only when the grace period is over (they are expected to finish by themselves).
  const streamsEnd = new AbortController();
  const everythingEnds = new AbortController();

  const handleRpc = connectNodeAdapter({
    routes: (router) => {
      registerHealthService(router, health);
      options.routes(router);
      // Reflection describes whatever the router serves at this point: health and the caller's services.
      registerReflectionService(router, [...new Set(router.handlers.map((handler) => handler.service))]);
    },
    readMaxBytes: options.readMaxBytes ?? DEFAULT_READ_MAX_BYTES,
    jsonOptions: JSON_OPTIONS,
    grpc: true,
    grpcWeb: true,
    connect: true,
    shutdownSignal: everythingEnds.signal,
    // Outermost, so that what any other interceptor or handler throws leaves sendable.
    interceptors: [sendableErrors(), endStreamsOn(streamsEnd.signal), ...(options.interceptors ?? [])],
    // The verified client certificate, for authentication (auth.ts): only the socket knows it.
    contextValues: (request) => createContextValues().set(PEER, peerOf(request)),
  });

  const inFlight = new InFlightRequests();
  let closing = false;

  function serveRequest(
    request: http.IncomingMessage | http2.Http2ServerRequest,
    response: http.ServerResponse | http2.Http2ServerResponse,
  ): void {
    if (closing) {
      refuseWhileClosing(response);
      return;
    }
    inFlight.track(response);
    if (options.metrics && isMetricsRequest(request)) serveMetrics(options.metrics, response, log);
    else handleRpc(request, response);
  }

  // http2's own close() waits for every session to end by itself, idle ones included: track and end them.
  const sessions = new Set<http2.ServerHttp2Session>();
  const trackSessions = (server: http2.Http2Server | http2.Http2SecureServer): void => {
    server.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
      session.on("error", (error) => log("debug", "http/2 session error", { error: String(error) }));
    });
  };
  const sockets = new Set<net.Socket>();
  const trackSocket = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // Without a listener an ECONNRESET before the hand-off would crash the process.
    socket.on("error", (error) => log("debug", "api socket error", { error: String(error) }));
  };
  const listener = options.tls ? tlsListener(options.tls) : cleartextListener();

  function tlsListener(tls: NonNullable<ApiServerOptions["tls"]>): net.Server {
    const server = http2.createSecureServer(
      {
        cert: tls.cert,
        key: tls.key,
        allowHTTP1: true,
        // A certificate is asked for, never required: a caller may use a bearer token instead. Only a
        // certificate the CA verified names an identity (auth.ts reads socket.authorized).
        ...(tls.clientCa && { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false }),
      },
      serveRequest,
    );
    trackSessions(server);
    server.on("connection", trackSocket);
    server.on("tlsClientError", (error) => log("debug", "tls handshake failed", { error: String(error) }));
    return server;
  }

  function cleartextListener(): net.Server {
    const http1Server = http.createServer(serveRequest);
    const http2Server = http2.createServer(serveRequest);
    trackSessions(http2Server);
    http1Server.on("clientError", (error, socket) => {
      log("debug", "http/1.1 client error", { error: String(error) });
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      else socket.destroy();
    });
    // noDelay: small RPC frames go out at once instead of waiting on Nagle (http.createServer does the same).
    return net.createServer({ noDelay: true }, (socket) => {
      trackSocket(socket);
      routeByPreface(socket, {
        http1: (s) => http1Server.emit("connection", s),
        http2: (s) => http2Server.emit("connection", s),
        silent: (s) => {
          log("debug", "api connection sent nothing, dropped", { remote: s.remoteAddress });
          s.destroy();
        },
      });
    });
  }

  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(options.port ?? 0, host, () => {
      listener.off("error", reject);
      resolve();
    });
  });
  listener.on("error", (error) => log("error", "api listener error", { error: String(error) }));

  const address = listener.address() as net.AddressInfo;
  const url = `${options.tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
  log("info", "api server listening", { url });

  let closed: Promise<void> | undefined;
  async function close(): Promise<void> {
    closing = true;
    health.shutdown();
    const listenerClosed = new Promise<void>((resolve) => listener.close(() => resolve()));
    // GOAWAY: HTTP/2 clients open no new streams here and move on; HTTP/1.1 requests get 503 (serveRequest).
    for (const session of sessions) session.close();
    streamsEnd.abort(serverShuttingDown());
    const drained = await inFlight.drained(shutdownGraceMs);
    if (!drained) log("warn", "api calls still running after the shutdown grace period", { count: inFlight.size });
    everythingEnds.abort(serverShuttingDown());
    // Handlers that honour the signal answer UNAVAILABLE (retryable) if we let them write it before the cut.
    if (!drained) await inFlight.drained(ABORTED_CALLS_ANSWER_MS);
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
    await listenerClosed;
    log("info", "api server closed", { url });
  }

  return {
    port: address.port,
    url,
    close: () => (closed ??= close()),
  };
}

/**
 * Gives streaming calls a signal that also aborts when the server starts closing. connect-node's own
 * shutdownSignal reaches unary calls too, which should instead get the grace period to finish.
 */
function endStreamsOn(shutdown: AbortSignal): Interceptor {
  return (next) => (request) => {
    if (!request.stream) return next(request);
    return next({ ...request, signal: AbortSignal.any([request.signal, shutdown]) });
  };
}

/** Counts requests whose responses are not finished, so close() knows when draining is done. */
class InFlightRequests {
  #count = 0;
  #onIdle: (() => void) | undefined;

  get size(): number {
    return this.#count;
  }

  track(response: http.ServerResponse | http2.Http2ServerResponse): void {
    this.#count++;
    // 'close' fires once per response, whether it finished or the connection died.
    response.once("close", () => {
      this.#count--;
      if (this.#count === 0) this.#onIdle?.();
    });
  }

  /** Resolves true when nothing is in flight, false when the time ran out first. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.#count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#onIdle = undefined;
        resolve(false);
      }, timeoutMs);
      this.#onIdle = () => {
        clearTimeout(timer);
        this.#onIdle = undefined;
        resolve(true);
      };
    });
  }
}

/** GET /metrics (any query string): the scrape, answered before the Connect adapter sees the request. */
function isMetricsRequest(request: http.IncomingMessage | http2.Http2ServerRequest): boolean {
  if (request.method !== "GET") return false;
  const url = request.url ?? "";
  const query = url.indexOf("?");
  return (query < 0 ? url : url.slice(0, query)) === METRICS_PATH;
}

const METRICS_PATH = "/metrics";

function serveMetrics(metrics: MetricsEndpoint, response: http.ServerResponse | http2.Http2ServerResponse, log: ApiLog): void {
  // The request has no body to wait for: a GET's end of stream has arrived or will, and is not needed.
  const answer = (status: number, contentType: string, body: string): void => {
    try {
      response.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
      response.end(body);
    } catch (error) {
      // The client left while the registry was collected.
      log("debug", "metrics scrape not answered", { error: String(error) });
    }
  };
  metrics.render().then(
    (text) => answer(200, metrics.contentType, text),
    (error: unknown) => {
      log("warn", "could not collect metrics", { error: String(error) });
      answer(500, "text/plain; charset=utf-8", "could not collect metrics\n");
    },
  );
}

/**
 * A request that arrives on an open connection while the server closes: 503 maps to UNAVAILABLE in both
 * the Connect and the gRPC protocol, which clients retry elsewhere.
 */
function refuseWhileClosing(response: http.ServerResponse | http2.Http2ServerResponse): void {
  const headers: Record<string, string> = { "content-type": "application/json" };
  // HTTP/1.1 only: the header is forbidden in HTTP/2, where GOAWAY already said it.
  if (response instanceof http.ServerResponse) headers["connection"] = "close";
  response.writeHead(503, headers);
  response.end(JSON.stringify({ code: "unavailable", message: "server is shutting down" }));
}

/**
 * Reads a connection's first bytes: the HTTP/2 preface goes to `http2`, anything else to `http1`. The bytes
 * read are put back (unshift) so the chosen server parses the stream from its start.
 */
function routeByPreface(
  socket: net.Socket,
  servers: {
    http1: (socket: net.Socket) => void;
    http2: (socket: net.Socket) => void;
    /** Called when no decision was possible within CONNECTION_PREFACE_TIMEOUT_MS. */
    silent: (socket: net.Socket) => void;
  },
): void {
  let received: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => servers.silent(socket), CONNECTION_PREFACE_TIMEOUT_MS);
  const stopWaiting = (): void => {
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("close", stopWaiting);
  };
  function onData(chunk: Buffer): void {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const compared = Math.min(received.length, HTTP2_CONNECTION_PREFACE.length);
    const looksLikeHttp2 = received
      .subarray(0, compared)
      .equals(HTTP2_CONNECTION_PREFACE.subarray(0, compared));
    // A prefix of the preface is not yet a decision: the client may send it in pieces.
    if (looksLikeHttp2 && received.length < HTTP2_CONNECTION_PREFACE.length) return;
    stopWaiting();
    socket.pause();
    socket.unshift(received);
    if (looksLikeHttp2) {
      // http2 reads the socket's handle directly and takes the unshifted bytes from the buffer on the next
      // tick; resuming here would emit them as 'data' to nobody.
      servers.http2(socket);
    } else {
      servers.http1(socket);
      // The http server listens for 'data' but does not undo our pause().
      socket.resume();
    }
  }
  socket.on("data", onData);
  socket.once("close", stopWaiting);
}
