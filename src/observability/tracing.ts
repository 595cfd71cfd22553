// OpenTelemetry traces of the host: one trace follows a task from the caller (its SDK's span, from the request's
// W3C headers) through the host's API span and every plugin call the task's steps make, into the sidecar (the
// context goes along in the call's gRPC metadata) and back. Turned on by the standard OTEL_* environment, as
// operators configure every other OpenTelemetry-instrumented service; off, the API is a no-op and costs nearly
// nothing. The span names and attributes every kit shares are in docs/architecture.md ("Traces").
import { randomUUID } from "node:crypto";
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { envDetector, detectResources, resourceFromAttributes } from "@opentelemetry/resources";
import { batchOptionsFromEnv, tracingRequested } from "@plugin-bridge/kit";
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from "@opentelemetry/sdk-trace";

/** The host's tracer; a no-op one until `startTracing` installs a provider. */
export const tracer = (): ReturnType<typeof trace.getTracer> => trace.getTracer("plugin-bridge");

export interface Tracing {
  /** Whether spans are exported. */
  readonly enabled: boolean;
  /** Exports what is left (bounded) and stops. */
  shutdown(): Promise<void>;
}

const SHUTDOWN_TIMEOUT_MS = 5_000;

/** OTEL_TRACES_SAMPLER and its argument, for the samplers that need no extra package; default parent-based on. */
function samplerOf(env: NodeJS.ProcessEnv): Sampler | undefined {
  const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG ?? "1");
  const bounded = Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 1;
  switch (env.OTEL_TRACES_SAMPLER?.trim().toLowerCase()) {
    case "traceidratio":
      return new TraceIdRatioBasedSampler(bounded);
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(bounded) });
    default:
      return undefined;
  }
}

/** Installs the OpenTelemetry SDK when the environment asks for it (OTLP over gRPC, batched). */
export function startTracing(env: NodeJS.ProcessEnv = process.env, version = ""): Tracing {
  if (!tracingRequested(env)) return { enabled: false, shutdown: async () => {} };
  const sampler = samplerOf(env);
  const provider = new TracerProvider({
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win over the defaults.
    resource: resourceFromAttributes({
      "service.name": "plugin-bridge",
      "service.instance.id": randomUUID(),
      ...(version && { "service.version": version }),
    }).merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), ...batchOptionsFromEnv(env) })],
    ...(sampler && { sampler }),
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  trace.setGlobalTracerProvider(provider);
  return {
    enabled: true,
    async shutdown() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        provider.shutdown().catch(() => {}),
        new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/** Reads a Fetch API `Headers` (what Connect gives a server interceptor) for the propagator. */
const headersGetter: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};

/** The caller's trace context from a request's headers (W3C traceparent, tracestate, baggage). */
export function contextFromHeaders(headers: Headers): Context {
  return propagation.extract(ROOT_CONTEXT, headers, headersGetter);
}

/** The active context as a carrier to store (an execution record's `trace_context`); empty when nothing traces. */
export function currentTraceCarrier(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** A stored carrier back as a context to run a step in. */
export function contextFromCarrier(carrier: Record<string, string>): Context {
  return Object.keys(carrier).length === 0 ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, carrier);
}

/** Starts a span for one RPC, `<service>/<method>`, the name every kit uses for the same call. */
export function startRpcSpan(service: string, method: string, kind: SpanKind, parent: Context, system = "grpc"): Span {
  return tracer().startSpan(
    `${service}/${method}`,
    { kind, attributes: { "rpc.system": system, "rpc.service": service, "rpc.method": method } },
    parent,
  );
}

/** Ends an RPC span with its status code (gRPC and Connect share the numbers) and, on failure, the message. */
export function endRpcSpan(span: Span, code: number, message?: string, error?: unknown): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0) {
    if (error instanceof Error) span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, ...(message !== undefined && { message }) });
  }
  span.end();
}

