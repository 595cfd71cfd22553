// One fuzz case for an RPC: a method and a valid seed message, then a body (the seed as is, mutated, a structured
// hostile input, random bytes or nothing), its framing under the protocol (gRPC and gRPC-Web length-prefixed
// envelopes, Connect unary bodies, Connect stream envelopes; sometimes with a length that lies, the compressed
// flag set, two messages for a unary method, a header cut short), and headers (sometimes a wrong content type,
// a timeout, an encoding nobody supports, hundreds of headers, very large ones). The case says which answers the
// oracle may accept, from the method's own codes and what the mutation broke.
import { toBinary, toJsonString, type DescMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import { gzipSync } from "node:zlib";
import type { CodeName, Expectation, Protocol } from "./oracle.js";
import { hostileInput } from "./hostile.js";
import { mutateBinary, mutateJson } from "./mutate.js";
import { Random } from "./random.js";
import { concat } from "./protowire.js";
import type { RawRequest } from "./wire.js";

/** A method the fuzzer calls, with the valid messages mutations start from and the codes it may answer. */
export interface MethodTarget {
  method: DescMethod;
  seeds: readonly Message[];
  /** Codes the method answers to input it refuses, besides those every case allows. */
  codes: readonly CodeName[];
  /** How often it is picked, relative to the others. */
  weight: number;
}

export interface RpcCase {
  /** Human-readable: the protocol, the method, and what the case did to it. */
  method: string;
  how: string;
  request: RawRequest;
  /** Needs an HTTP/2 session of its own (it may make the server end the session). */
  ownSession: boolean;
  expectation: Expectation;
}

export interface RpcCaseOptions {
  protocol: "grpc" | "grpc-web" | "connect";
  json: boolean;
  /** The server's read limit for one message. */
  readLimit: number;
  /** Whether the connection is HTTP/1.1 (bidi streams need HTTP/2). */
  http1: boolean;
  /** INTERNAL answers allowed when their message matches: the gRPC library's words for a message it cannot decode. */
  libraryInternal?: RegExp;
  /**
   * INTERNAL answers allowed, when the request broke the protocol's framing, headers or HTTP, with a message that
   * matches: the gRPC library's words for those (grpc-go's "unexpected EOF", grpcio's "Error parsing 'grpc-timeout'").
   */
  libraryProtocolInternal?: RegExp;
  /** Chance that a case is a large structured input (megabytes, 10,000 deep); kept small to bound the run. */
  heavyChance: number;
  deadlineMs: number;
  heavyDeadlineMs: number;
  /** Headers every request carries unless a mutation drops them (a kit call's grpc-timeout). */
  baseHeaders?: Record<string, string>;
  /** Codes every case of this target may answer besides OK, INVALID_ARGUMENT and RESOURCE_EXHAUSTED. */
  extraCodes?: readonly CodeName[];
}

const ALWAYS: readonly CodeName[] = ["OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"];

/** A length-prefixed message (gRPC, gRPC-Web, Connect streams): flags, a 4-byte length (which may lie), the data. */
export function envelope(flags: number, data: Uint8Array, declaredLength = data.length): Uint8Array {
  const header = new Uint8Array(5);
  header[0] = flags;
  new DataView(header.buffer).setUint32(1, declaredLength >>> 0);
  return concat([header, data]);
}

const encodings = new WeakMap<Message, { binary: Uint8Array; json: string }>();

/** A seed's binary and JSON encodings, computed once: seeds never change. */
function encoded(input: DescMessage, seed: Message): { binary: Uint8Array; json: string } {
  let both = encodings.get(seed);
  if (!both) encodings.set(seed, (both = { binary: toBinary(input, seed), json: toJsonString(input, seed) }));
  return both;
}

interface Body {
  bytes: Uint8Array;
  how: string;
  heavy: boolean;
}

/** How a case's body is made: the cumulative shares of the seed as is, mutated, hostile and random bytes (the rest: empty). */
const BODY_SHARES = { seed: 0.06, mutated: 0.8, hostile: 0.93, random: 0.98 } as const;

function body(random: Random, target: MethodTarget, json: boolean, options: RpcCaseOptions): Body {
  const input: DescMessage = target.method.input;
  const { binary, json: jsonText } = encoded(input, random.pick(target.seeds));
  const mutated = (): Body => ({ ...(json ? mutateJson(jsonText, random) : mutateBinary(binary, random)), heavy: false });
  const roll = random.float();
  if (roll < BODY_SHARES.seed) return { bytes: json ? new TextEncoder().encode(jsonText) : binary, how: "seed", heavy: false };
  if (roll < BODY_SHARES.mutated) return mutated();
  if (roll < BODY_SHARES.hostile) {
    // Large inputs only now and then: each costs the servers (and the fuzzer) megabytes and milliseconds.
    const heavy = random.chance(options.heavyChance / (BODY_SHARES.hostile - BODY_SHARES.mutated));
    const hostile = hostileInput(random, input, { binary, json: jsonText }, json, options.readLimit, heavy);
    return hostile ? { bytes: hostile.bytes, how: hostile.how, heavy: hostile.heavy } : mutated();
  }
  if (roll < BODY_SHARES.random) {
    const length = random.pick([1, 2, 5, 16, 64, 256, 1024]);
    return { bytes: random.bytes(length), how: `random(${length})`, heavy: false };
  }
  const empty = json ? random.pick(["", "{}", "null", "[]", '""', "0"]) : "";
  return { bytes: new TextEncoder().encode(empty), how: `empty(${JSON.stringify(empty)})`, heavy: false };
}

interface Framed {
  bytes: Uint8Array;
  how: string;
  broken: boolean;
  compressed: boolean;
  empty: boolean;
}

/** The envelope(s) around a message for gRPC, gRPC-Web and Connect streams; sometimes wrong on purpose. */
function framed(random: Random, message: Uint8Array, singleRequest: boolean, endStreamFlag: boolean): Framed {
  if (!random.chance(0.15)) return { bytes: envelope(0, message), how: "", broken: false, compressed: false, empty: false };
  const kind = random.int(9);
  switch (kind) {
    case 0:
      return { bytes: envelope(0, message, message.length + random.pick([1, 100, 65_536])), how: "frame-longer", broken: true, compressed: false, empty: false };
    case 1:
      return { bytes: envelope(0, message, Math.max(0, message.length - random.range(1, 4))), how: "frame-shorter", broken: true, compressed: false, empty: false };
    case 2:
      return { bytes: envelope(1, message), how: "frame-compressed-flag", broken: true, compressed: true, empty: false };
    case 3: {
      const flags = random.pick([0x02, 0x04, 0x80, 0xff, 0x7e]);
      return { bytes: envelope(flags, message), how: `frame-flags(${flags})`, broken: true, compressed: (flags & 1) === 1, empty: false };
    }
    case 4:
      return { bytes: concat([envelope(0, message), envelope(0, message)]), how: "frame-twice", broken: singleRequest, compressed: false, empty: false };
    case 5: {
      const cut = random.range(1, 4);
      return { bytes: envelope(0, message).subarray(0, cut), how: `frame-header-cut(${cut})`, broken: true, compressed: false, empty: false };
    }
    case 6:
      return { bytes: new Uint8Array(), how: "frame-none", broken: true, compressed: false, empty: true };
    case 7:
      return { bytes: envelope(0, message, 0xffffffff), how: "frame-length-4GiB", broken: true, compressed: false, empty: false };
    default: {
      // A Connect end-stream flag, or trailing garbage after a whole message.
      if (endStreamFlag) return { bytes: concat([envelope(0, message), envelope(2, new TextEncoder().encode("{}"))]), how: "frame-end-stream", broken: true, compressed: false, empty: false };
      return { bytes: concat([envelope(0, message), random.bytes(random.range(1, 3))]), how: "frame-trailing-garbage", broken: true, compressed: false, empty: false };
    }
  }
}

interface Headers {
  headers: Record<string, string | string[]>;
  how: string;
  httpMalformed: boolean;
  /** A gRPC or Connect header with a value the protocol does not define (a timeout of "abc", an unknown encoding). */
  metadataMalformed?: boolean;
  headerBomb: boolean;
  timeout: boolean;
  encoding: boolean;
  method?: string;
}

function contentTypeOf(protocol: Protocol, json: boolean, web: boolean): string {
  if (protocol === "grpc") return web ? `application/grpc-web+${json ? "json" : "proto"}` : json ? "application/grpc+json" : "application/grpc";
  if (protocol === "grpc-web") return `application/grpc-web+${json ? "json" : "proto"}`;
  if (protocol === "connect-stream") return json ? "application/connect+json" : "application/connect+proto";
  return json ? "application/json" : "application/proto";
}

function headers(random: Random, protocol: Protocol, json: boolean, extra: Record<string, string>): Headers {
  const base: Record<string, string | string[]> = { "content-type": contentTypeOf(protocol, json, false), ...extra };
  if (protocol === "grpc") base["te"] = "trailers";
  if (protocol === "grpc-web") base["x-grpc-web"] = "1";
  if (protocol === "connect-unary" || protocol === "connect-stream") base["connect-protocol-version"] = "1";
  const out: Headers = { headers: base, how: "", httpMalformed: false, headerBomb: false, timeout: false, encoding: false };
  if (!random.chance(0.18)) return out;
  const kind = random.int(11);
  const timeoutHeader = protocol === "grpc" || protocol === "grpc-web" ? "grpc-timeout" : "connect-timeout-ms";
  switch (kind) {
    case 0: {
      const contentType = random.pick(["", "text/plain", "application/grpc+json", "application/grpc-web-text", "application/json; charset=latin1", "APPLICATION/GRPC", "application/proto; charset=utf-8", "application/x-protobuf", "multipart/form-data; boundary=x"]);
      if (contentType) out.headers["content-type"] = contentType;
      else delete out.headers["content-type"];
      return { ...out, how: `content-type(${contentType || "none"})`, httpMalformed: true };
    }
    case 1: {
      const valid = timeoutHeader === "grpc-timeout" ? ["1n", "1m", "200m", "5S", "1H"] : ["1", "200", "0"];
      const value = random.pick([...valid, ...(timeoutHeader === "grpc-timeout" ? ["abc", "-1S", "999999999S", "1X", ""] : ["-5", "abc", "99999999999", "1.5", ""])]);
      out.headers[timeoutHeader] = value;
      return { ...out, how: `${timeoutHeader}(${value})`, timeout: true, metadataMalformed: !valid.includes(value) };
    }
    case 2: {
      const encoding = random.pick(["gzip", "br", "snappy", "identity", "gzip, br", "x-nonsense"]);
      out.headers[protocol === "connect-unary" ? "content-encoding" : protocol === "connect-stream" ? "connect-content-encoding" : "grpc-encoding"] = encoding;
      return { ...out, how: `encoding(${encoding})`, encoding: true, metadataMalformed: encoding !== "gzip" && encoding !== "identity" };
    }
    case 3: {
      const method = random.pick(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]);
      return { ...out, how: `method(${method})`, httpMalformed: true, method };
    }
    case 4: {
      const count = random.pick([100, 300, 1_000]);
      for (let i = 0; i < count; i++) out.headers[`x-fuzz-${i}`] = random.word(16);
      return { ...out, how: `headers(${count})`, headerBomb: true };
    }
    case 5: {
      const size = random.pick([8 * 1024, 17 * 1024, 64 * 1024, 256 * 1024]);
      out.headers[random.pick(["x-fuzz-large", "traceparent", "baggage", "authorization", "grpc-message", "user-agent"])] = "a".repeat(size);
      return { ...out, how: `large-header(${size})`, headerBomb: true };
    }
    case 6: {
      const value = random.pick(["00-zzzz-zzzz-01", "00-00000000000000000000000000000000-0000000000000000-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", ",,,,"]);
      out.headers["traceparent"] = value;
      out.headers["tracestate"] = random.pick(["=", "a=" + "b".repeat(600), ",,,"]);
      out.headers["baggage"] = random.pick(["%%%", "k=v;;;", "k=" + "%ZZ".repeat(100)]);
      return { ...out, how: "trace-headers" };
    }
    case 7: {
      const values = Array.from({ length: random.pick([2, 50]) }, () => random.word(8));
      out.headers["x-fuzz-repeated"] = values;
      const acceptEncoding = random.pick(["", "gzip,gzip,gzip", "☃"]);
      out.headers["grpc-accept-encoding"] = acceptEncoding;
      // A header value that is not ASCII makes the request malformed HTTP/2 (RFC 9113, section 8.2.1).
      return { ...out, how: `repeated-header(${values.length},${JSON.stringify(acceptEncoding)})`, httpMalformed: acceptEncoding === "☃" };
    }
    case 8: {
      out.headers["connect-protocol-version"] = random.pick(["0", "2", "", "1.0"]);
      return { ...out, how: "connect-protocol-version", httpMalformed: protocol === "connect-unary" || protocol === "connect-stream" };
    }
    case 9: {
      delete out.headers["te"];
      delete out.headers["x-grpc-web"];
      // gRPC requires "te: trailers"; a server may refuse a request without it.
      return { ...out, how: "no-te", metadataMalformed: protocol === "grpc" };
    }
    default: {
      out.headers["authorization"] = random.pick(["Bearer", "Bearer " + "x".repeat(4096), "Basic ???", "bearer  a b c"]);
      return { ...out, how: "authorization" };
    }
  }
}

/** How a host or kit path is spelled wrong: a method that does not exist, a service that does not, or worse. */
function path(random: Random, method: DescMethod): { path: string; how: string; wrong: boolean } {
  const good = `/${method.parent.typeName}/${method.name}`;
  if (!random.chance(0.03)) return { path: good, how: "", wrong: false };
  const wrong = random.pick([
    `/${method.parent.typeName}/${method.name}x`,
    `/${method.parent.typeName}x/${method.name}`,
    `/${method.parent.typeName}/${method.name.toLowerCase()}`,
    `${good}/`,
    `${good}?x=1`,
    "/",
    `/${method.parent.typeName}`,
    `/%2e%2e/${method.parent.typeName}/${method.name}`,
    `/${"a".repeat(4096)}`,
  ]);
  return { path: wrong, how: `path(${wrong.slice(0, 60)})`, wrong: true };
}

/** The INTERNAL messages a case allows: the library's for undecodable messages, and for what the case broke. */
function libraryInternal(options: RpcCaseOptions, compression: boolean, protocolBroken: boolean): RegExp | undefined {
  const sources = [
    options.libraryInternal?.source,
    // Compression that fails (a flag without an encoding, bytes that are not gzip) is INTERNAL in gRPC's own table.
    compression ? "compress" : undefined,
    protocolBroken ? options.libraryProtocolInternal?.source : undefined,
  ].filter(Boolean);
  return sources.length > 0 ? new RegExp(sources.join("|"), "i") : undefined;
}

/** One case: `target`'s method under `options.protocol`, made from `random`. */
export function rpcCase(random: Random, targets: readonly MethodTarget[], options: RpcCaseOptions): RpcCase {
  const target = random.weighted(targets.map((t) => [t.weight, t] as const));
  const method = target.method;
  const streaming = method.methodKind !== "unary";
  const protocol: Protocol =
    options.protocol === "connect" ? (streaming ? "connect-stream" : "connect-unary") : options.protocol;
  const json = options.json;
  const made = body(random, target, json, options);
  const enveloped = protocol !== "connect-unary";
  const framing = enveloped ? framed(random, made.bytes, method.methodKind === "unary" || method.methodKind === "server_streaming", protocol === "connect-stream") : undefined;
  let bytes = framing ? framing.bytes : made.bytes;
  const head = headers(random, protocol, json, options.baseHeaders ?? {});
  const where = path(random, method);
  // A compressed flag with gzip announced: sometimes really gzip (decodes), sometimes not (cannot decompress).
  if (framing?.compressed && head.encoding && random.chance(0.5)) bytes = envelope(1, gzipSync(made.bytes));
  if (protocol === "grpc-web" && random.chance(0.05)) {
    head.headers["content-type"] = "application/grpc-web-text";
    bytes = new TextEncoder().encode(Buffer.from(bytes).toString("base64") + random.pick(["", "=", "!!", "\n"]));
    head.how += "+web-text";
    // connect-es does not speak grpc-web-text: an unsupported media type, refused at the HTTP layer.
    head.httpMalformed = true;
  }
  const allowed = new Set<CodeName>([...ALWAYS, ...target.codes, ...(options.extraCodes ?? [])]);
  const broken = Boolean(framing?.broken) || where.wrong || head.httpMalformed || (enveloped && framing?.empty) || (made.bytes.length === 0 && enveloped);
  // gRPC's rule for a request stream with the wrong number of messages (and Connect's for paths and methods); a
  // bidi stream is more than gRPC-Web and HTTP/1.1 can carry.
  if (broken || method.methodKind === "bidi_streaming") allowed.add("UNIMPLEMENTED");
  if (head.timeout) allowed.add("DEADLINE_EXCEEDED");
  if (head.encoding || framing?.compressed) allowed.add("UNIMPLEMENTED");
  const hows = [protocol + (json ? "+json" : ""), made.how, framing?.how, head.how, where.how].filter(Boolean);
  return {
    method: `${method.parent.name}/${method.name}`,
    how: hows.join(" "),
    request: {
      method: head.method,
      path: where.path,
      headers: head.headers,
      body: bytes,
      deadlineMs: made.heavy ? options.heavyDeadlineMs : options.deadlineMs,
      quietCutMs: streaming ? 500 : undefined,
    },
    // A request that breaks HTTP or gRPC's headers gets a connection of its own: a server may end the connection
    // for it, or (grpcio) misread later requests on it, and either would be blamed on innocent cases.
    ownSession: head.headerBomb || head.httpMalformed || Boolean(head.metadataMalformed),
    expectation: {
      protocol,
      method: head.method,
      earlyClose: bytes.length > options.readLimit || (method.methodKind === "bidi_streaming" && options.http1),
      output: method.output,
      serverStreaming: streaming,
      allowed,
      httpMalformed: head.httpMalformed || where.wrong || Boolean(head.metadataMalformed),
      headerBomb: head.headerBomb,
      deadlineReset: Boolean(head.timeout),
      // connect-es answers a bidi stream over HTTP/1.1 with 505 HTTP Version Not Supported.
      httpRefusals: method.methodKind === "bidi_streaming" && options.http1 ? [505] : [],
      libraryInternal: libraryInternal(options, Boolean(framing?.compressed || head.encoding), Boolean(broken || head.metadataMalformed)),
    },
  };
}
