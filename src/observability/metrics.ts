// The host's Prometheus metrics: one registry per host (never prom-client's global one, so that tests may run
// several hosts in one process), served as text on GET /metrics of the API port (src/api/server.ts). The rest of
// the code reports through the small typed interface below and never touches prom-client itself. Labels stay of
// low cardinality: plugin names, operations, phases, gRPC codes; never an execution id. docs/architecture.md
// ("Metrics") lists every series.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";

/** The calls a host makes to a plugin, by their method's name in plugin.proto (lower case). */
export const PLUGIN_OPERATIONS = ["create", "get", "delete", "do", "handle", "abort", "finalize"] as const;
export type PluginOperation = (typeof PLUGIN_OPERATIONS)[number];

export const isPluginOperation = (name: string): name is PluginOperation => (PLUGIN_OPERATIONS as readonly string[]).includes(name);

/** Which of a plugin's declared rate limits a call waited for: `read_limit` (Get) or `write_limit` (the rest). */
export type RateLimitKind = "read" | "write";

/** What the host's code reports. Every method is cheap and synchronous. */
export interface HostMetrics {
  /** An execution of `plugin` entered `phase`: one phase-change event the host stored (queued or sync fast path). */
  phaseReached(plugin: string, phase: Phase): void;
  /** A call to `plugin` ended after `seconds`; `failedWith` is the gRPC status code (grpc-js `status`) when it failed. */
  pluginCall(plugin: string, operation: PluginOperation, seconds: number, failedWith?: number): void;
  /** An execution of `plugin` entered WAITING_FOR_RESOURCES: its quota had no token. */
  quotaWait(plugin: string): void;
  /** A call to `plugin` found no token in its read or write rate limit and has to wait. */
  rateLimitWait(plugin: string, kind: RateLimitKind): void;
  /** A step began; call what it returns when the step has ended. */
  stepStarted(): () => void;
  /** The supervisor restarts a replica of `sidecar` that crashed or stopped answering (src/supervisor/). */
  sidecarRestart(sidecar: string): void;
}

/** What the API port serves on GET /metrics. */
export interface MetricsEndpoint {
  readonly contentType: string;
  /** The whole registry in Prometheus' text format. */
  render(): Promise<string>;
}

/** gRPC status code names as the gRPC spec writes them (the label value of `code`). */
const GRPC_CODES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
  "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];
const grpcCodeName = (code: number): string => GRPC_CODES[code] ?? `CODE_${code}`;

/**
 * Plugin calls run from well under a millisecond (a sidecar on a unix socket) up to a Do's default deadline of
 * 60 s; prom-client's default buckets stop at 10 s and start at 5 ms.
 */
const CALL_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricsOptions {
  /** prom-client's default process and Node.js metrics (`process_*`, `nodejs_*`); default true. */
  defaultMetrics?: boolean;
}

export class Metrics implements HostMetrics, MetricsEndpoint {
  readonly registry = new Registry();

  private readonly phases = new Counter({
    name: "plugin_bridge_execution_phases_total",
    help: "Phase changes of executions the host stored (one per event: queued path, sync fast path, aborts), by plugin and the phase entered.",
    labelNames: ["plugin", "phase"] as const,
    registers: [this.registry],
  });

  private readonly callSeconds = new Histogram({
    name: "plugin_bridge_plugin_call_duration_seconds",
    help: "Duration of the host's calls to plugins (a step's call, or the sync fast path's Do), as the host sees it, failed calls included.",
    labelNames: ["plugin", "operation"] as const,
    buckets: CALL_SECONDS_BUCKETS,
    registers: [this.registry],
  });

  private readonly callErrors = new Counter({
    name: "plugin_bridge_plugin_call_errors_total",
    help: "Calls to plugins that failed, by plugin, operation and gRPC status code (including the channel's own, such as UNAVAILABLE or DEADLINE_EXCEEDED).",
    labelNames: ["plugin", "operation", "code"] as const,
    registers: [this.registry],
  });

  private readonly quotaWaits = new Counter({
    name: "plugin_bridge_quota_waits_total",
    help: "Executions that entered WAITING_FOR_RESOURCES because the plugin's quota had no free token.",
    labelNames: ["plugin"] as const,
    registers: [this.registry],
  });

  private readonly rateLimitWaits = new Counter({
    name: "plugin_bridge_rate_limit_waits_total",
    help: "Calls to a plugin that found its read or write rate limit empty and waited (a step handed back, or the sync fast path pausing).",
    labelNames: ["plugin", "kind"] as const,
    registers: [this.registry],
  });

  private readonly natsReconnects = new Counter({
    name: "plugin_bridge_nats_reconnects_total",
    help: "Times the host's NATS connection reconnected.",
    registers: [this.registry],
  });

  private readonly sidecarRestarts = new Counter({
    name: "plugin_bridge_sidecar_restarts_total",
    help: "Restarts of supervised sidecar replicas that crashed, did not serve within their start timeout, or failed their health probes.",
    labelNames: ["sidecar"] as const,
    registers: [this.registry],
  });

  private readonly stepsInFlight = new Gauge({
    name: "plugin_bridge_steps_in_flight",
    help: "Steps of executions this host is running right now.",
    registers: [this.registry],
  });

  constructor(options: MetricsOptions = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  phaseReached(plugin: string, phase: Phase): void {
    this.phases.inc({ plugin, phase: Phase[phase] ?? String(phase) });
  }

  pluginCall(plugin: string, operation: PluginOperation, seconds: number, failedWith?: number): void {
    this.callSeconds.observe({ plugin, operation }, seconds);
    if (failedWith !== undefined) this.callErrors.inc({ plugin, operation, code: grpcCodeName(failedWith) });
  }

  quotaWait(plugin: string): void {
    this.quotaWaits.inc({ plugin });
  }

  rateLimitWait(plugin: string, kind: RateLimitKind): void {
    this.rateLimitWaits.inc({ plugin, kind });
  }

  sidecarRestart(sidecar: string): void {
    this.sidecarRestarts.inc({ sidecar });
  }

  stepStarted(): () => void {
    this.stepsInFlight.inc();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.stepsInFlight.dec();
    };
  }

  /**
   * Counts the reconnects among a NATS connection's status events (`nc.status()`); runs in the background until
   * the connection closes and its status stream ends.
   */
  countNatsReconnects(statuses: AsyncIterable<{ type: string }>): void {
    void (async () => {
      try {
        for await (const status of statuses) if (status.type === "reconnect") this.natsReconnects.inc();
      } catch {
        // The connection closed under the iterator: nothing left to count.
      }
    })();
  }
}

/** Reports nowhere: for code run outside a host (tests, benchmarks) that takes metrics optionally. */
export const NO_METRICS: HostMetrics = {
  phaseReached: () => {},
  pluginCall: () => {},
  quotaWait: () => {},
  rateLimitWait: () => {},
  stepStarted: () => () => {},
  sidecarRestart: () => {},
};
