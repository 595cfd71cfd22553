// The `http` plugin: one HTTP call per task, made with Node's fetch. A sync plugin, after Flyte's webapi
// SyncPlugin: Do makes the call and returns how the task ended, with status, headers and body as outputs.
import { durationMs } from "@bufbuild/protobuf/wkt";
import {
  defineSyncPlugin,
  GrpcStatus,
  phasePermanentFailure,
  phaseRetryableFailure,
  phaseSuccess,
  PluginError,
  type PhaseResult,
} from "@plugin-bridge/kit";
import { ErrorKind } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import {
  HttpRequestSchema,
  type HttpRequest,
} from "@plugin-bridge/protocol/pluginbridge/plugins/http/v1/http_pb.js";

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

class BodyTooLarge extends Error {}

/** Checks the parts of the spec fetch would reject, so the submitter gets INVALID_ARGUMENT with the field. */
function validate(spec: HttpRequest): { url: URL; method: string } {
  let url: URL;
  try {
    url = new URL(spec.url);
  } catch {
    throw new PluginError(GrpcStatus.INVALID_ARGUMENT, `template.custom.url: ${JSON.stringify(spec.url)} is not an absolute URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new PluginError(GrpcStatus.INVALID_ARGUMENT, `template.custom.url: scheme ${url.protocol} is not http or https`);
  }
  const method = (spec.method || "GET").toUpperCase();
  if (!/^[A-Z]+$/.test(method)) {
    throw new PluginError(GrpcStatus.INVALID_ARGUMENT, `template.custom.method: ${JSON.stringify(spec.method)} is not an HTTP method`);
  }
  if (spec.body && (method === "GET" || method === "HEAD")) {
    throw new PluginError(GrpcStatus.INVALID_ARGUMENT, `template.custom.body: a ${method} request cannot carry a body`);
  }
  return { url, method };
}

/** Reads at most `limit` bytes; throws BodyTooLarge beyond, without buffering the rest. */
async function readLimited(response: Response, limit: number): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new BodyTooLarge(`the response body exceeds ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function isSuccess(statusCode: number, successStatuses: number[]): boolean {
  return successStatuses.length > 0 ? successStatuses.includes(statusCode) : statusCode >= 200 && statusCode <= 299;
}

/** Makes the call that `spec` describes and reports how it ended. Exported for tests and reuse. */
export async function performHttpRequest(spec: HttpRequest, callSignal: AbortSignal): Promise<PhaseResult> {
  const { url, method } = validate(spec);
  const timeoutMs = spec.timeout ? durationMs(spec.timeout) : DEFAULT_TIMEOUT_MS;
  const maxBodyBytes = spec.maxBodyBytes || DEFAULT_MAX_BODY_BYTES;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = AbortSignal.any([callSignal, timeout]);
  try {
    const response = await fetch(url, {
      method,
      headers: spec.headers,
      body: spec.body ? spec.body : undefined,
      signal,
      redirect: "follow",
    });
    const body = await readLimited(response, maxBodyBytes);
    if (!isSuccess(response.status, spec.successStatuses)) {
      return phasePermanentFailure(
        `HttpStatus${response.status}`,
        `${method} ${url.href} answered ${response.status} ${response.statusText}`.trim(),
        ErrorKind.USER,
        { customInfo: { status: response.status } },
      );
    }
    return phaseSuccess({
      status: response.status,
      headers: Object.fromEntries(response.headers.entries()),
      body: new TextDecoder().decode(body),
    });
  } catch (error) {
    // The host cancelled the call: let the kit answer CANCELLED; the result would be dropped anyway.
    if (callSignal.aborted) throw callSignal.reason;
    if (error instanceof BodyTooLarge) {
      return phasePermanentFailure("BodyTooLarge", error.message, ErrorKind.USER);
    }
    if (timeout.aborted) {
      return phaseRetryableFailure("Timeout", `${method} ${url.href} took longer than ${timeoutMs} ms`);
    }
    // DNS failures, refused connections, resets: the network may be better on the next attempt.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (error as Error).message;
    return phaseRetryableFailure("NetworkError", `${method} ${url.href} failed: ${detail}`);
  }
}

export const httpPlugin = defineSyncPlugin({
  name: "http",
  version: "1.0.0",
  taskTypes: [{ type: "http", version: 1 }],
  specification: HttpRequestSchema,
  properties: { doTimeout: 120_000 },
  do: (ctx) => performHttpRequest(ctx.spec, ctx.signal),
});
