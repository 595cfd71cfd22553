// The fuzzer's judge: turns what a server sent back (oracle input: a RawAnswer) into the status it means under the
// protocol spoken (gRPC, gRPC-Web, Connect unary, Connect streaming), checks that the answer is well formed (a
// status present, envelopes whole, an OK message that decodes, the HTTP status the Connect spec pairs with the
// code), and says whether that status is one the case allows. Anything else is a finding.
import { fromBinary, fromJsonString, type DescMessage, type Message } from "@bufbuild/protobuf";
import type { RawAnswer } from "./wire.js";

export type Protocol = "grpc" | "grpc-web" | "connect-unary" | "connect-stream";

/** gRPC status codes by number (the Connect protocol spells the same codes in snake_case). */
export const CODE_NAMES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
  "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
] as const;
export type CodeName = (typeof CODE_NAMES)[number];

const CONNECT_CODES: Record<string, CodeName> = Object.fromEntries(
  CODE_NAMES.filter((name) => name !== "OK").map((name) => [name === "CANCELLED" ? "canceled" : name.toLowerCase(), name]),
);

/** The HTTP status the Connect protocol gives each error code (connectrpc.com/docs/protocol, "Error Codes"). */
const CONNECT_HTTP_STATUS: Record<Exclude<CodeName, "OK">, number> = {
  CANCELLED: 499, UNKNOWN: 500, INVALID_ARGUMENT: 400, DEADLINE_EXCEEDED: 504, NOT_FOUND: 404, ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403, RESOURCE_EXHAUSTED: 429, FAILED_PRECONDITION: 400, ABORTED: 409, OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501, INTERNAL: 500, UNAVAILABLE: 503, DATA_LOSS: 500, UNAUTHENTICATED: 401,
};

/** What an answer means: a status (a code name, or how the HTTP exchange ended without one) and what was wrong with it. */
export interface Verdict {
  /** A code name ("INVALID_ARGUMENT"), "HTTP 415", "RESET 11", "open-stream", "not-sent", "HANG", "DROPPED". */
  label: string;
  code?: CodeName;
  message?: string;
  /** Ways the answer breaks its protocol; empty for a well-formed one. */
  malformed: string[];
  /** The messages of an OK answer, decoded (to look further at what a call accepted). */
  answers?: Message[];
}

/** What one case may be answered with. */
export interface Expectation {
  protocol: Protocol;
  /** The method's output message, to check that OK answers carry one that decodes. */
  output: DescMessage;
  /** Whether the method streams its answers (so a stream the fuzzer cuts while open is fine). */
  serverStreaming: boolean;
  allowed: ReadonlySet<CodeName>;
  /** The request broke HTTP itself (method, content type, headers): an HTTP 4xx without a status is fine. */
  httpMalformed: boolean;
  /** So many or such large headers that the server may refuse at the HTTP layer (431, 400, a reset, GOAWAY). */
  headerBomb: boolean;
  /** INTERNAL is allowed when its message matches: a gRPC library's own words for a message it cannot decode. */
  libraryInternal?: RegExp;
  /**
   * The request sent a deadline: a stream reset with CANCEL (HTTP/2 code 8) is then the server enforcing it, as
   * grpc-go does when a call's deadline passes before its status is written (gRPC clients report it as
   * DEADLINE_EXCEEDED). Seen with `grpc-timeout: 1m` (one millisecond).
   */
  deadlineReset?: boolean;
  /** The HTTP method sent, when not POST. */
  method?: string;
  /**
   * The server may answer and close before reading the whole request (a body over its limit, a bidi call over
   * HTTP/1.1): an HTTP/1.1 client still writing then sees the connection drop instead of the answer.
   */
  earlyClose?: boolean;
  /** HTTP statuses besides 4xx that refuse the request by protocol (505: a bidi stream over HTTP/1.1). */
  httpRefusals?: readonly number[];
}

interface Envelope {
  flags: number;
  data: Buffer;
}

function envelopes(body: Buffer): { frames: Envelope[]; truncated: boolean } {
  const frames: Envelope[] = [];
  let offset = 0;
  while (offset + 5 <= body.length) {
    const length = body.readUInt32BE(offset + 1);
    if (offset + 5 + length > body.length) return { frames, truncated: true };
    frames.push({ flags: body[offset]!, data: body.subarray(offset + 5, offset + 5 + length) });
    offset += 5 + length;
  }
  return { frames, truncated: offset !== body.length };
}

function grpcCode(value: string | undefined): CodeName | undefined {
  if (value === undefined || !/^\d{1,2}$/.test(value)) return undefined;
  return CODE_NAMES[Number(value)];
}

/** A message of an OK answer, decoded, or why it does not decode. */
function decode(output: DescMessage, data: Uint8Array, json: boolean): { message: Message } | { problem: string } {
  try {
    return { message: json ? fromJsonString(output, new TextDecoder("utf-8", { fatal: true }).decode(data)) : fromBinary(output, data) };
  } catch (error) {
    return { problem: `the OK answer does not decode as ${output.typeName}: ${String(error).slice(0, 200)}` };
  }
}

/** Decodes the messages of an OK answer: the decoded ones, and a problem for each that does not decode. */
function decodeAll(output: DescMessage, datas: readonly Uint8Array[], json: boolean, malformed: string[]): Message[] {
  const answers: Message[] = [];
  for (const data of datas) {
    const decoded = decode(output, data, json);
    if ("problem" in decoded) malformed.push(decoded.problem);
    else answers.push(decoded.message);
  }
  return answers;
}

/** grpc-web trailers: "name: value" lines. */
function parseTrailerBlock(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of data.toString("latin1").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

function percentDecoded(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The status of a gRPC (HTTP/2) or gRPC-Web answer with HTTP status 200. */
function grpcVerdict(answer: RawAnswer, expectation: Expectation, web: boolean): Verdict {
  const malformed: string[] = [];
  const contentType = answer.headers["content-type"] ?? "";
  if (!contentType.startsWith(web ? "application/grpc-web" : "application/grpc")) malformed.push(`content-type "${contentType}"`);
  const { frames, truncated } = envelopes(answer.body);
  if (truncated && !answer.cut) malformed.push("a truncated envelope");
  let trailers = answer.trailers;
  const messages = frames.filter((frame) => (frame.flags & 0x80) === 0);
  if (web) {
    const trailerFrames = frames.filter((frame) => (frame.flags & 0x80) !== 0);
    if (trailerFrames.length > 1) malformed.push("more than one trailer frame");
    if (trailerFrames[0]) trailers = parseTrailerBlock(trailerFrames[0].data);
  }
  // Trailers-only: the status rides on the headers.
  const status = trailers["grpc-status"] ?? answer.headers["grpc-status"];
  const message = percentDecoded(trailers["grpc-message"] ?? answer.headers["grpc-message"]);
  if (status === undefined) {
    if (answer.cut === "stream-open" && expectation.serverStreaming) return { label: "open-stream", malformed };
    malformed.push(answer.cut ? "no status before the call was cut" : "no grpc-status");
    return { label: answer.cut === "deadline" ? "HANG" : "NO-STATUS", malformed };
  }
  const code = grpcCode(status);
  if (!code) {
    malformed.push(`grpc-status "${status}"`);
    return { label: `grpc-status ${status}`, malformed };
  }
  for (const frame of messages) if ((frame.flags & 0x01) !== 0 && !answer.headers["grpc-encoding"]) malformed.push("a compressed message without grpc-encoding");
  if (code === "OK") {
    const json = /^application\/grpc(-web)?\+json/.test(contentType);
    if (!expectation.serverStreaming && messages.length !== 1 && !expectation.output.typeName.includes("Reflection")) {
      malformed.push(`OK with ${messages.length} messages for a unary method`);
    }
    const answers = decodeAll(expectation.output, messages.filter((frame) => (frame.flags & 0x01) === 0).map((frame) => frame.data), json, malformed);
    return { label: code, code, message, malformed, answers };
  }
  return { label: code, code, message, malformed };
}

/** The status of a Connect unary answer. */
function connectUnaryVerdict(answer: RawAnswer, expectation: Expectation): Verdict {
  const status = answer.status!;
  const contentType = answer.headers["content-type"] ?? "";
  if (status === 200) {
    const json = contentType.startsWith("application/json");
    if (!json && !contentType.startsWith("application/proto")) return { label: "OK", code: "OK", malformed: [`content-type "${contentType}"`] };
    const malformed: string[] = [];
    const answers = answer.headers["content-encoding"] ? [] : decodeAll(expectation.output, [answer.body], json, malformed);
    return { label: "OK", code: "OK", malformed, answers };
  }
  return connectErrorVerdict(answer, status);
}

/** A Connect error body (unary, or a stream refused before it started); otherwise a bare HTTP status. */
function connectErrorVerdict(answer: RawAnswer, status: number): Verdict {
  const contentType = answer.headers["content-type"] ?? "";
  if (contentType.startsWith("application/json")) {
    try {
      const error = JSON.parse(answer.body.toString("utf8")) as { code?: unknown; message?: unknown };
      const code = typeof error.code === "string" ? CONNECT_CODES[error.code] : undefined;
      if (code) {
        const malformed: string[] = [];
        if (CONNECT_HTTP_STATUS[code as Exclude<CodeName, "OK">] !== status) {
          malformed.push(`HTTP ${status} with code ${error.code} (the Connect protocol pairs it with ${CONNECT_HTTP_STATUS[code as Exclude<CodeName, "OK">]})`);
        }
        return { label: code, code, message: typeof error.message === "string" ? error.message : undefined, malformed };
      }
    } catch {
      // Not a Connect error: judged by its HTTP status below.
    }
  }
  return { label: `HTTP ${status}`, malformed: [] };
}

function connectStreamVerdict(answer: RawAnswer, expectation: Expectation): Verdict {
  const status = answer.status!;
  if (status !== 200) return connectErrorVerdict(answer, status);
  const malformed: string[] = [];
  const contentType = answer.headers["content-type"] ?? "";
  const json = contentType.startsWith("application/connect+json");
  if (!json && !contentType.startsWith("application/connect+proto")) malformed.push(`content-type "${contentType}"`);
  const { frames, truncated } = envelopes(answer.body);
  if (truncated && !answer.cut) malformed.push("a truncated envelope");
  const end = frames.find((frame) => (frame.flags & 0x02) !== 0);
  if (!end) {
    if (answer.cut === "stream-open") return { label: "open-stream", malformed };
    malformed.push(answer.cut ? "no end-stream message before the call was cut" : "no end-stream message");
    return { label: answer.cut === "deadline" ? "HANG" : "NO-STATUS", malformed };
  }
  let parsed: { error?: { code?: unknown; message?: unknown } };
  try {
    parsed = JSON.parse(end.data.toString("utf8")) as typeof parsed;
  } catch {
    return { label: "NO-STATUS", malformed: [...malformed, "an end-stream message that is not JSON"] };
  }
  if (!parsed.error) {
    const datas = frames.filter((frame) => frame !== end && (frame.flags & 0x01) === 0).map((frame) => frame.data);
    return { label: "OK", code: "OK", malformed, answers: decodeAll(expectation.output, datas, json, malformed) };
  }
  const code = typeof parsed.error.code === "string" ? CONNECT_CODES[parsed.error.code] : undefined;
  if (!code) return { label: "NO-STATUS", malformed: [...malformed, `end-stream error code ${JSON.stringify(parsed.error.code)}`] };
  return { label: code, code, message: typeof parsed.error.message === "string" ? parsed.error.message : undefined, malformed };
}

/** The protocol a response's content type belongs to. */
function protocolOf(contentType: string): Protocol | undefined {
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  if (contentType.startsWith("application/connect+")) return "connect-stream";
  if (contentType.startsWith("application/json") || contentType.startsWith("application/proto")) return "connect-unary";
  return undefined;
}

/** What the answer means under the protocol it was given in. */
export function verdictOf(answer: RawAnswer, expectation: Expectation): Verdict {
  if (answer.notSent) return { label: "not-sent", malformed: [] };
  if (answer.status === undefined) {
    if (answer.cut === "deadline") return { label: "HANG", malformed: ["no answer before the deadline"] };
    if (answer.resetCode !== undefined) return { label: `RESET ${answer.resetCode}`, malformed: [] };
    return { label: "DROPPED", malformed: [`no answer: ${answer.error ?? "the connection closed"}`] };
  }
  if (answer.cut === "deadline" && !(expectation.serverStreaming && answer.status === 200)) {
    return { label: "HANG", malformed: ["the answer did not finish before the deadline"] };
  }
  if (answer.status !== 200) {
    // gRPC answers every call with HTTP 200; anything else is the HTTP layer refusing the request.
    if (expectation.protocol === "connect-unary" || expectation.protocol === "connect-stream") return connectErrorVerdict(answer, answer.status);
    return { label: `HTTP ${answer.status}`, malformed: [] };
  }
  // The server speaks the protocol the request's content type named, which a mutation may have changed.
  switch (protocolOf(answer.headers["content-type"] ?? "") ?? expectation.protocol) {
    case "grpc":
      return grpcVerdict(answer, expectation, false);
    case "grpc-web":
      return grpcVerdict(answer, expectation, true);
    case "connect-unary":
      return connectUnaryVerdict(answer, expectation);
    case "connect-stream":
      return connectStreamVerdict(answer, expectation);
  }
}

/** Why an answer is a finding: `kind` groups the same bug across cases and methods, `why` says it in full. */
export interface Judgement {
  kind: string;
  why: string;
}

/** The start of a message that names its cause ("parse binary: premature EOF" → "parse binary"). */
export function causeOf(message: string | undefined): string {
  if (!message) return "";
  // The first ": " past a short prefix ("grpc: failed to unmarshal …: proto: …" → "grpc: failed to unmarshal …").
  const colon = message.indexOf(": ", 10);
  return (colon > 0 && colon < 60 ? message.slice(0, colon) : message.slice(0, 40)).replace(/\d+/g, "N").replace(/"[^"]*"/g, '"…"');
}

/** Whether the verdict is a finding, and which; undefined for an answer the case allows. */
export function judge(verdict: Verdict, expectation: Expectation): Judgement | undefined {
  // A request that is not valid HTTP (or too large in its headers) may be refused by resetting its stream.
  const refused = (expectation.headerBomb || expectation.httpMalformed) && (verdict.label.startsWith("RESET") || verdict.label === "DROPPED");
  if (verdict.label === "not-sent" || refused) return undefined;
  if (expectation.deadlineReset && verdict.label === "RESET 8") return undefined;
  if (verdict.label === "DROPPED" && expectation.earlyClose && verdict.malformed.some((problem) => /EPIPE|ECONNRESET/.test(problem))) return undefined;
  // The answer to HEAD has no body by HTTP's rules, so no gRPC trailers either.
  if (expectation.method === "HEAD" && verdict.label === "NO-STATUS") return undefined;
  if (verdict.malformed.length > 0) {
    const kind = verdict.malformed.map((problem) => problem.replace(/\d+/g, "N").replace(/"[^"]*"/g, '"…"').slice(0, 60)).join("; ");
    return { kind: `${verdict.label}, malformed: ${kind}`, why: `malformed answer (${verdict.label}): ${verdict.malformed.join("; ")}` };
  }
  if (verdict.label === "open-stream") return undefined;
  if (verdict.code) {
    if (expectation.allowed.has(verdict.code)) return undefined;
    if (verdict.code === "INTERNAL" && expectation.libraryInternal?.test(verdict.message ?? "")) return undefined;
    return {
      kind: `${verdict.code} ${causeOf(verdict.message)}`,
      why: `code ${verdict.code} is not one this case allows (${[...expectation.allowed].join(", ")})${verdict.message ? `: ${verdict.message.slice(0, 300)}` : ""}`,
    };
  }
  const httpStatus = /^HTTP (\d+)$/.exec(verdict.label);
  if (httpStatus) {
    const status = Number(httpStatus[1]);
    if (status >= 400 && status < 500 && (expectation.httpMalformed || expectation.headerBomb)) return undefined;
    if (expectation.httpRefusals?.includes(status)) return undefined;
    return { kind: `HTTP ${status}`, why: `HTTP ${status} without a status, for a request that is well-formed HTTP` };
  }
  return { kind: verdict.label, why: `${verdict.label}: no status` };
}
