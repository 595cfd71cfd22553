// A SERVER span for every call of the public API, a child of the caller's span when its headers carry one (W3C
// traceparent, as the SDKs send it). The handler runs inside the span, so CreateTask stores it in the new
// execution's record and ExecuteTask's fast path calls the plugin under it. Health checks and reflection are
// probes and tools, not work: they get no spans.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { context, SpanKind, trace, type Context, type Span } from "@opentelemetry/api";
import { contextFromHeaders, endRpcSpan, startRpcSpan } from "../observability/tracing.js";

const UNTRACED_SERVICES = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

export function traceRequests(): Interceptor {
  return (next) => async (request) => {
    if (UNTRACED_SERVICES.has(request.service.typeName)) return await next(request);
    const parent = contextFromHeaders(request.header);
    // gRPC and gRPC-Web requests say so in their content type; anything else on the port is the Connect protocol.
    const system = (request.header.get("content-type") ?? "").startsWith("application/grpc") ? "grpc" : "connect_rpc";
    const span = startRpcSpan(request.service.typeName, request.method.name, SpanKind.SERVER, parent, system);
    const active = trace.setSpan(parent, span);
    let response;
    try {
      response = await context.with(active, () => next(request));
    } catch (error) {
      endWithError(span, error);
      throw error;
    }
    if (!response.stream) {
      endRpcSpan(span, 0);
      return response;
    }
    return { ...response, message: inSpan(response.message, span, active) };
  };
}

/**
 * A server stream whose every step runs in the span's context (a handler's generator runs only as the stream is
 * read, outside the interceptor's call), ending the span when the stream ends, fails or is cut off.
 */
async function* inSpan<T>(messages: AsyncIterable<T>, span: Span, active: Context): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let ended = false;
  try {
    for (;;) {
      const next = await context.with(active, () => iterator.next());
      if (next.done) break;
      yield next.value;
    }
    ended = true;
    endRpcSpan(span, 0);
  } catch (error) {
    ended = true;
    endWithError(span, error);
    throw error;
  } finally {
    if (!ended) {
      // The reader stopped early (the client left, the server is stopping): let the handler clean up.
      endRpcSpan(span, Code.Canceled, "stream cut off");
      await context.with(active, async () => await iterator.return?.());
    }
  }
}

function endWithError(span: Span, error: unknown): void {
  const connectError = ConnectError.from(error);
  endRpcSpan(span, connectError.code, connectError.rawMessage, error);
}
