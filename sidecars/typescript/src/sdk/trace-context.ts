// The SDK's part in tracing: every call to the host carries the application's active trace context (W3C
// traceparent, tracestate and baggage, by the global propagator), so the host's span for the call joins the
// application's trace. The SDK is a library inside the application: it never installs an OpenTelemetry SDK, and
// without the application's, the API's no-op propagator adds no header.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { context, propagation, type TextMapSetter } from "@opentelemetry/api";
import { addingHeaders, withHeaders } from "./request-headers.js";

const headersSetter: TextMapSetter<Headers> = {
  set: (headers, key, value) => headers.set(key, value),
};

function injectTraceContext(headers: Headers): void {
  propagation.inject(context.active(), headers, headersSetter);
}

/**
 * Adds the active trace context to each request's headers, unary and streaming alike. It goes last among the
 * interceptors, so that a span an application's interceptor starts around the call is the one sent.
 */
export const traceContextInterceptor: Interceptor = addingHeaders(injectTraceContext);

/** `transport` with the active trace context added to every call's headers: for a transport the SDK did not build. */
export function withTraceContext(transport: Transport): Transport {
  return withHeaders(transport, injectTraceContext);
}
