// OpenTelemetry traces of the plugin calls. Each plugin-operation call gets a SERVER span, the child of the host's
// client span whose context arrives in the call's gRPC metadata (W3C traceparent, tracestate, baggage), and that
// span is the active context while the author's method runs, so the author's own spans and instrumented clients
// nest under it. The kit installs the OpenTelemetry SDK (OTLP over gRPC, batched) only when the standard OTEL_*
// environment asks for it and the application has not installed a tracer provider of its own; with neither, no
// span is started at all. The span names and attributes are the same in every kit (the README's "Traces").
import { status, type Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  context,
  createContextKey,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type TextMapGetter,
  type Tracer,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import {
  defaultResource,
  detectResources,
  resourceAttributesEnvDetector,
  resourceFromAttributes,
} from "@opentelemetry/resources";
import { BatchSpanProcessor, TracerProvider, type BatchSpanProcessorOptions } from "@opentelemetry/sdk-trace";
import { PhaseSchema, type Phase, type TaskContext } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { isPluginError } from "./errors.js";
import type { CallObserver, ObservedCall } from "./grpc-service.js";
import type { Logger } from "./log.js";

/** The instrumentation scope of the kit's spans. */
export const KIT_TRACER_NAME = "plugin-bridge-kit";

/** How long a drain or stop waits for the last spans to be exported. */
const SHUTDOWN_TIMEOUT_MS = 5_000;

/** Who the spans are from: the resource of an installed provider, and attributes of every span. */
export interface TracedPlugin {
  readonly name: string;
  readonly version: string;
  readonly instanceId: string;
}

export interface KitTracing {
  /** Wraps each plugin-operation call in its span; undefined when nothing traces. */
  readonly observe: CallObserver | undefined;
  /** Exports what is left and shuts down the provider the kit installed (at most 5 s); nothing else. */
  shutdown(): Promise<void>;
}

/**
 * Whether the environment asks the kit to export traces: an OTLP endpoint is set, the SDK is not disabled, and
 * the traces exporter is OTLP (the only one the kit ships).
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter && exporter !== "otlp") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/**
 * The batch span processor's settings from the standard OTEL_BSP_* variables, which the 3.x SDK no longer reads
 * by itself: schedule delay, export timeout, queue and batch sizes. A value that is not a positive number is left
 * to the SDK's default.
 */
export function batchOptionsFromEnv(env: NodeJS.ProcessEnv): Omit<BatchSpanProcessorOptions, "exporter"> {
  const positive = (name: string): number | undefined => {
    const value = Number(env[name]);
    return Number.isFinite(value) && value > 0 ? value : undefined;
  };
  const options = {
    scheduledDelayMillis: positive("OTEL_BSP_SCHEDULE_DELAY"),
    exportTimeoutMillis: positive("OTEL_BSP_EXPORT_TIMEOUT"),
    maxQueueSize: positive("OTEL_BSP_MAX_QUEUE_SIZE"),
    maxExportBatchSize: positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
  };
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

/**
 * Whether the application registered a global tracer provider. The API hands out its ProxyTracerProvider either
 * way; a registered provider is the proxy's delegate, and the proxy has a delegate tracer only then.
 */
function applicationTracerProvider(): boolean {
  const global = trace.getTracerProvider();
  return !(global instanceof ProxyTracerProvider) || global.getDelegateTracer(KIT_TRACER_NAME) !== undefined;
}

const PROBE = createContextKey("plugin-bridge-kit context manager probe");

/** Whether a context manager is registered: the API's no-op one never makes a context active. */
function contextManagerRegistered(): boolean {
  return context.with(ROOT_CONTEXT.setValue(PROBE, true), () => context.active().getValue(PROBE) === true);
}

/**
 * What the kit's spans need and an application may not have set up: a context manager, so that the call's span
 * stays active across the author's awaits, and the W3C propagators, so that the host's context is read from the
 * metadata. Whatever the application registered is kept.
 */
function completeGlobals(): void {
  if (!contextManagerRegistered()) context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  // The API's no-op propagator reads no fields at all.
  if (propagation.fields().length === 0) {
    propagation.setGlobalPropagator(
      new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    );
  }
}

/** An SDK tracer provider exporting to the OTLP endpoint of the environment, as this plugin's service. */
function installProvider(plugin: TracedPlugin, env: NodeJS.ProcessEnv): TracerProvider {
  const resource = defaultResource()
    .merge(detectResources({ detectors: [resourceAttributesEnvDetector] }))
    .merge(
      resourceFromAttributes({
        "service.name": env.OTEL_SERVICE_NAME?.trim() || plugin.name,
        "service.version": plugin.version,
        "service.instance.id": plugin.instanceId,
      }),
    );
  // The exporter reads the OTEL_EXPORTER_OTLP_* variables itself: endpoint, headers, insecure, timeout.
  const exporter = new OTLPTraceExporter();
  return new TracerProvider({ resource, spanProcessors: [new BatchSpanProcessor({ exporter, ...batchOptionsFromEnv(env) })] });
}

/** Reads a call's gRPC metadata for the propagators; binary (-bin) values carry no trace context. */
const metadataGetter: TextMapGetter<Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get: (metadata, key) => {
    const values = metadata.get(key).filter((value): value is string => typeof value === "string");
    return values.length > 0 ? values : undefined;
  },
};

/** The Phase enum value's name as the proto declares it, such as "PHASE_RUNNING". */
function phaseName(phase: Phase): string {
  return PhaseSchema.value[phase]?.name ?? String(phase);
}

/** A CallObserver that gives every call its SERVER span, named `<service>/<method>` as the host's client span is. */
function spanObserver(tracer: Tracer, plugin: TracedPlugin): CallObserver {
  const pluginAttributes: Attributes = {
    "pluginbridge.plugin": plugin.name,
    "pluginbridge.plugin_version": plugin.version,
    "pluginbridge.instance_id": plugin.instanceId,
  };
  return (method, call): ObservedCall => {
    const service = method.parent.typeName;
    const parent = propagation.extract(ROOT_CONTEXT, call.metadata, metadataGetter);
    const execution = (call.request as { context?: TaskContext }).context?.executionId;
    const span: Span = tracer.startSpan(
      `${service}/${method.name}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.system": "grpc",
          "rpc.service": service,
          "rpc.method": method.name,
          ...pluginAttributes,
          ...(execution && { "pluginbridge.execution_id": execution.id, "pluginbridge.attempt": execution.attempt }),
        },
      },
      parent,
    );
    const active = trace.setSpan(parent, span);
    return {
      run: (handle) => context.with(active, handle),
      succeeded(response) {
        const phase = (response as { phaseInfo?: { phase: Phase } }).phaseInfo?.phase;
        if (phase !== undefined) span.setAttribute("pluginbridge.phase", phaseName(phase));
        span.setAttribute("rpc.grpc.status_code", 0);
        span.end();
      },
      failed(answer: Partial<ServiceError>, thrown: unknown) {
        // A PluginError is the answer the plugin (or the kit) chose; anything else thrown is a crash.
        if (!isPluginError(thrown)) span.recordException(thrown instanceof Error ? thrown : String(thrown));
        span.setAttribute("rpc.grpc.status_code", answer.code ?? status.UNKNOWN);
        span.setStatus({ code: SpanStatusCode.ERROR, message: answer.details ?? "" });
        span.end();
      },
    };
  };
}

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. */
async function bounded(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * Decides how the plugin's calls are traced, once, as serve() starts: with the application's tracer provider when
 * it registered one, else with one the kit installs when the environment asks for it, else not at all.
 */
export function startTracing(plugin: TracedPlugin, log: Logger, env: NodeJS.ProcessEnv = process.env): KitTracing {
  const fromApplication = applicationTracerProvider();
  if (!fromApplication && !tracingRequested(env)) return { observe: undefined, shutdown: async () => undefined };

  let installed: TracerProvider | undefined;
  if (!fromApplication) {
    installed = installProvider(plugin, env);
    // Refused only when another copy of the API, of a version this one cannot use, holds the registration.
    if (!trace.setGlobalTracerProvider(installed)) {
      log("warn", "traces are off: another OpenTelemetry API registered the global tracer provider");
      void installed.shutdown();
      return { observe: undefined, shutdown: async () => undefined };
    }
    log("info", "exporting traces over OTLP", {
      endpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim(),
    });
  }
  completeGlobals();
  const observe = spanObserver(trace.getTracer(KIT_TRACER_NAME), plugin);
  return {
    observe,
    async shutdown() {
      if (!installed) return;
      const provider = installed;
      installed = undefined;
      await bounded(
        provider.forceFlush().then(() => provider.shutdown()),
        SHUTDOWN_TIMEOUT_MS,
      );
      // Unregistered, so that a later serve() in this process decides afresh rather than take the shut-down
      // provider for the application's.
      const global = trace.getTracerProvider();
      if (global instanceof ProxyTracerProvider && global.getDelegate() === provider) trace.disable();
    },
  };
}
