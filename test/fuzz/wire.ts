// Raw HTTP for the fuzzer: one request as exact bytes and headers over HTTP/2 (h2c, TCP or unix socket) or
// HTTP/1.1, and what came back (status, headers, body, trailers, a reset or a dropped connection), without any
// RPC library in between to tidy either side. Decoding the answer into a status is oracle.ts's job.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";

/** What a server did with one request. */
export interface RawAnswer {
  httpVersion: "1.1" | "2";
  /** The HTTP status; undefined when no response head arrived. */
  status?: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
  /** The stream ended normally (END_STREAM, or the HTTP/1.1 body's end). */
  ended: boolean;
  /** HTTP/2 RST_STREAM code, when the server reset the stream. */
  resetCode?: number;
  /** A transport error: the connection dropped, the session went away. */
  error?: string;
  /** The fuzzer cut the call: `deadline` (it took too long) or `stream-open` (a stream still open, by design). */
  cut?: "deadline" | "stream-open";
  /** Node refused to send the request (a header it will not write): nothing reached the server. */
  notSent?: string;
  /** The server answered in full while the request was still being sent (HTTP/2): the fuzzer reset the stream. */
  requestUnfinished?: boolean;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Uint8Array;
  /** The whole call may take this long; then it is cut and reported as `deadline`. */
  deadlineMs: number;
  /**
   * A server stream that has answered (head received) and then stays quiet this long is cut as `stream-open`:
   * WatchTask on a running execution and health's Watch never end by themselves.
   */
  quietCutMs?: number;
}

function flatHeaders(headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

/** A pool of HTTP/2 sessions to one server: calls spread over them, a session that fails is replaced. */
export class Http2Pool {
  private readonly sessions: Array<http2.ClientHttp2Session | undefined>;
  private next = 0;
  /** GOAWAY frames the server sent on pooled sessions, by error code: a server that ends shared sessions hurts every call on them. */
  readonly goaways = new Map<number, number>();

  constructor(
    private readonly connect: () => http2.ClientHttp2Session,
    size: number,
  ) {
    this.sessions = new Array(size).fill(undefined);
  }

  /** HTTP/2 to `url` (http://host:port) or, given `socketPath`, to a unix socket. */
  static to(target: { url: string } | { socketPath: string }, size = 4): Http2Pool {
    const options: http2.ClientSessionOptions = {
      // Let the fuzzer send header blocks as large as it likes: the server's limits are what is under test.
      maxSendHeaderBlockLength: 4 * 1024 * 1024,
      maxHeaderListPairs: 100_000,
      maxSessionMemory: 256,
      peerMaxConcurrentStreams: 1000,
    };
    return new Http2Pool(
      () =>
        "url" in target
          ? http2.connect(target.url, options)
          : http2.connect("http://localhost", { ...options, createConnection: () => net.connect(target.socketPath) }),
      size,
    );
  }

  session(): http2.ClientHttp2Session {
    const index = this.next++ % this.sessions.length;
    let session = this.sessions[index];
    if (!session || session.closed || session.destroyed) {
      session = this.connect();
      // Errors surface on the streams; the session's own 'error' must not crash the fuzzer.
      session.on("error", () => undefined);
      session.on("goaway", (errorCode: number) => {
        this.goaways.set(errorCode, (this.goaways.get(errorCode) ?? 0) + 1);
        if (this.sessions[index] === session) this.sessions[index] = undefined;
      });
      session.on("close", () => {
        if (this.sessions[index] === session) this.sessions[index] = undefined;
      });
      this.sessions[index] = session;
    }
    return session;
  }

  /** A session of its own, for requests that may make the server end the whole session (header bombs). */
  fresh(): http2.ClientHttp2Session {
    const session = this.connect();
    session.on("error", () => undefined);
    return session;
  }

  close(): void {
    for (const session of this.sessions) session?.destroy();
    this.sessions.fill(undefined);
  }
}

export function http2Call(session: http2.ClientHttp2Session, request: RawRequest): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const answer: RawAnswer = { httpVersion: "2", headers: {}, trailers: {}, body: Buffer.alloc(0), ended: false };
    const chunks: Buffer[] = [];
    let stream: http2.ClientHttp2Stream;
    let settled = false;
    let quietTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(quietTimer);
      answer.body = Buffer.concat(chunks);
      resolve(answer);
    };
    const cut = (why: RawAnswer["cut"]): void => {
      if (settled) return;
      answer.cut = why;
      stream?.close(http2.constants.NGHTTP2_CANCEL);
      finish();
    };
    const deadline = setTimeout(() => cut("deadline"), request.deadlineMs);
    const quiet = (): void => {
      if (request.quietCutMs === undefined || answer.status === undefined) return;
      clearTimeout(quietTimer);
      quietTimer = setTimeout(() => cut("stream-open"), request.quietCutMs);
    };
    try {
      stream = session.request(
        { ":method": request.method ?? "POST", ":path": request.path, ...request.headers },
        { endStream: false },
      );
    } catch (error) {
      answer.notSent = String(error);
      finish();
      return;
    }
    stream.on("response", (headers) => {
      answer.status = Number(headers[":status"]);
      answer.headers = flatHeaders(headers);
      quiet();
    });
    stream.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      quiet();
    });
    stream.on("trailers", (trailers) => {
      answer.trailers = flatHeaders(trailers);
    });
    stream.on("end", () => {
      answer.ended = true;
      // The answer is complete. A server may answer before it has read the whole request (one over the read
      // limit) and leave the request side open; a client then resets the stream, as gRPC clients do.
      if (!stream.writableFinished) {
        answer.requestUnfinished = true;
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
      finish();
    });
    stream.on("error", (error: Error) => {
      answer.error = String(error);
    });
    stream.on("close", () => {
      if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) answer.resetCode = stream.rstCode;
      finish();
    });
    // The server may answer (and reset) before it has read a large body; the write error is then no news.
    stream.on("frameError", (_type: number, code: number) => {
      answer.error ??= `frame error ${code}`;
    });
    // One write: HEADERS, then DATA with END_STREAM, without a small separate frame for the end.
    stream.end(request.body);
  });
}

/** One request over HTTP/1.1 on a keep-alive agent (or a fresh connection). */
export function http1Call(target: { host: string; port: number; agent: http.Agent | false }, request: RawRequest): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const answer: RawAnswer = { httpVersion: "1.1", headers: {}, trailers: {}, body: Buffer.alloc(0), ended: false };
    const chunks: Buffer[] = [];
    let settled = false;
    let quietTimer: NodeJS.Timeout | undefined;
    let outgoing: http.ClientRequest | undefined;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(quietTimer);
      answer.body = Buffer.concat(chunks);
      resolve(answer);
    };
    const cut = (why: RawAnswer["cut"]): void => {
      if (settled) return;
      answer.cut = why;
      outgoing?.destroy();
      finish();
    };
    const deadline = setTimeout(() => cut("deadline"), request.deadlineMs);
    const quiet = (): void => {
      if (request.quietCutMs === undefined) return;
      clearTimeout(quietTimer);
      quietTimer = setTimeout(() => cut("stream-open"), request.quietCutMs);
    };
    try {
      outgoing = http.request({
        host: target.host,
        port: target.port,
        agent: target.agent,
        method: request.method ?? "POST",
        path: request.path,
        headers: { ...request.headers, "content-length": String(request.body.length) },
      });
    } catch (error) {
      answer.notSent = String(error);
      finish();
      return;
    }
    outgoing.on("response", (response) => {
      answer.status = response.statusCode;
      answer.headers = flatHeaders(response.headers);
      quiet();
      response.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        quiet();
      });
      response.on("end", () => {
        answer.ended = true;
        answer.trailers = flatHeaders(response.trailers);
        finish();
      });
      response.on("error", (error) => {
        answer.error ??= String(error);
        finish();
      });
      response.on("close", finish);
    });
    outgoing.on("error", (error) => {
      // A response that arrived before the server stopped reading the body still counts.
      answer.error ??= String(error);
      if (answer.status === undefined) finish();
    });
    outgoing.end(request.body);
  });
}
