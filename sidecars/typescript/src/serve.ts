// Runs a declared plugin as a sidecar: binds the gRPC server, turns health SERVING, then announces itself on
// NATS and keeps heartbeating. On SIGTERM/SIGINT it drains: refuses new calls, turns NOT_SERVING, announces
// draining, lets calls in flight finish (bounded), withdraws its announcement, exports the last spans (when it
// traces; tracing.ts), shuts down and exits 0. Given a token, it signs its announcements and pushes
// (sidecar-token.ts). Given NATS credentials or TLS files, it connects with them (nats-security.ts).
import { randomBytes } from "node:crypto";
import { existsSync, unlinkSync } from "node:fs";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Server, ServerCredentials, status } from "@grpc/grpc-js";
import { Health } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import { PushedStatusSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import {
  AsyncPluginService,
  CorePluginService,
  PluginMetadataService,
  SyncPluginService,
} from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Announcer } from "./announce.js";
import { pluginDescriptor } from "./descriptor.js";
import {
  bindAddress,
  defaultEndpoint,
  dialAddress,
  parseEndpoint,
  removeStaleSocket,
  type Endpoint,
} from "./endpoint.js";
import { PluginError, quoteInput } from "./errors.js";
import { EXECUTION_ID_RULE, isExecutionId } from "./execution-id.js";
import { grpcServiceDefinition, type CallGate } from "./grpc-service.js";
import { HealthState, healthService, ServingStatus } from "./health.js";
import {
  CREATE_CALL,
  FINALIZE_CALL,
  IdempotentCalls,
  KvIdempotencyStore,
  MemoryIdempotencyStore,
} from "./idempotency.js";
import { kvKey } from "./keys.js";
import { createLogger } from "./log.js";
import {
  CREATES_BUCKET,
  CREATES_BUCKET_OPTIONS,
  NatsLink,
  PLUGINS_BUCKET,
  PLUGINS_BUCKET_OPTIONS,
} from "./nats.js";
import { natsSecurity, type NatsSecuritySettings } from "./nats-security.js";
import type { PhaseResult } from "./phases.js";
import { asyncService, coreService, metadataService, phaseResponse, syncService } from "./plugin-services.js";
import type { Plugin } from "./plugin.js";
import { sidecarToken } from "./sidecar-token.js";
import { startTracing } from "./tracing.js";

export interface ServeOptions extends NatsSecuritySettings {
  /**
   * NATS server URL(s), comma-separated. Default: $PLUGIN_BRIDGE_NATS_URL, else $NATS_URL, else
   * nats://127.0.0.1:4222. `false` runs without NATS: no announcement, and Create and Finalize are idempotent
   * only within the process (for local development).
   */
  natsUrl?: string | false;
  /** "unix:/path" or "host:port". Default: $PLUGIN_BRIDGE_ENDPOINT, else a unix socket in os.tmpdir(). */
  endpoint?: string;
  /** Letters, digits, '-' and '_'. Default: $PLUGIN_BRIDGE_INSTANCE_ID, else `<name>-<random hex>`. */
  instanceId?: string;
  /** How long a drain waits for calls in flight. Default 30 s. */
  drainTimeoutMs?: number;
  /** Default 3 s. */
  heartbeatIntervalMs?: number;
  /** Drain and exit on SIGTERM and SIGINT. Default true. */
  handleSignals?: boolean;
  /**
   * The secret this sidecar signs its announcements and pushes with. Default: $PLUGIN_BRIDGE_TOKEN. Needs
   * `tokenId`; without either, nothing is signed.
   */
  token?: string;
  /** The name the token was issued for, sent with every signature. Default: $PLUGIN_BRIDGE_TOKEN_ID. */
  tokenId?: string;
}

export interface ServeHandle {
  /** The endpoint as announced and as a host dials it: "unix:/abs/path" or "127.0.0.1:port". */
  readonly endpoint: string;
  readonly instanceId: string;
  /** Resolves once the first announcement is stored in NATS (never, when run without NATS). */
  readonly announced: Promise<void>;
  /**
   * Tells the hosts of a phase change now, between polls (an async plugin's remote work, a core plugin's attempt):
   * the host applies it as it would the next Get's or Handle's report. Polling stays the fallback, so a push that
   * is lost only waits for the next resync. Throws while NATS is not connected, or without NATS.
   */
  push(execution: { executionId: string; attempt: number }, result: PhaseResult): void;
  /** Graceful: stops taking calls, waits for calls in flight (bounded), withdraws, shuts down. */
  drain(): Promise<void>;
  /** Immediate: withdraws and shuts down without waiting for calls in flight. */
  stop(): Promise<void>;
}

const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";
const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** The largest gRPC message either way; the same in every kit and in the host's client. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

function resolveOptions(plugin: Plugin, options: ServeOptions) {
  const env = process.env;
  const instanceId = options.instanceId ?? env.PLUGIN_BRIDGE_INSTANCE_ID ?? `${plugin.name}-${randomBytes(4).toString("hex")}`;
  // The id is a NATS key token in the announcement key, as the host builds it: refuse anything else up front.
  if (!/^[A-Za-z0-9_-]+$/.test(instanceId)) {
    throw new Error(`instance id ${JSON.stringify(instanceId)} must be letters, digits, '-' and '_'`);
  }
  const endpointText = options.endpoint ?? env.PLUGIN_BRIDGE_ENDPOINT;
  const endpoint: Endpoint = endpointText ? parseEndpoint(endpointText) : defaultEndpoint(instanceId);
  const natsUrl: string | false =
    options.natsUrl === false ? false : (options.natsUrl ?? env.PLUGIN_BRIDGE_NATS_URL ?? env.NATS_URL ?? DEFAULT_NATS_URL);
  return {
    instanceId,
    endpoint,
    natsUrl,
    // Without NATS there is nothing to secure, and nothing to read.
    natsSecurity: natsUrl === false ? {} : natsSecurity(options, env),
    drainTimeoutMs: options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    handleSignals: options.handleSignals ?? true,
    token: sidecarToken(options, env),
  };
}

function bind(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );
}

/** Resolves after `ms`, or at once when `promise` settles first; never rejects. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  if (timer) clearTimeout(timer);
  return finished;
}

/** Serves `plugin` until drained or stopped. Resolves once the gRPC server is bound and SERVING. */
export async function serve(plugin: Plugin, options: ServeOptions = {}): Promise<ServeHandle> {
  const config = resolveOptions(plugin, options);
  const log = createLogger(plugin.name);
  const descriptor = pluginDescriptor(plugin);
  const startedAt = timestampNow();

  const pluginService = { async: AsyncPluginService, sync: SyncPluginService, core: CorePluginService }[plugin.kind];
  const servedNames = [PluginMetadataService.typeName, pluginService.typeName, Health.typeName];
  const health = new HealthState(servedNames);

  let stopping: Promise<void> | undefined;

  // Every plugin call passes this gate: refused while draining, counted while in flight.
  let draining = false;
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const gate: CallGate = () => {
    if (draining) throw new PluginError(status.UNAVAILABLE, "draining");
    inFlight += 1;
    return () => {
      inFlight -= 1;
      if (inFlight === 0) idle?.();
    };
  };

  const tracing = startTracing({ name: plugin.name, version: plugin.version, instanceId: config.instanceId }, log);

  const nats = config.natsUrl === false ? undefined : new NatsLink(config.natsUrl, config.instanceId, log, config.natsSecurity);
  if (!nats) {
    log("warn", "running without NATS: no announcement, Create and Finalize idempotent within this process only");
  }
  if (config.token) log("info", "signing announcements and pushes", { keyId: config.token.id });
  const store = nats
    ? new KvIdempotencyStore(() => nats.bucket(CREATES_BUCKET, CREATES_BUCKET_OPTIONS))
    : new MemoryIdempotencyStore();

  // The host sends requests of up to its own limit (4 MiB by default, configurable) plus the TaskContext around
  // them, and accepts 16 MiB answers: grpc-js's 4 MiB default receive limit would refuse the largest requests.
  const server = new Server({
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  });
  server.addService(grpcServiceDefinition(PluginMetadataService), metadataService(descriptor));
  if (plugin.kind === "async") {
    const creates = new IdempotentCalls(store, log, CREATE_CALL);
    server.addService(grpcServiceDefinition(AsyncPluginService), asyncService(plugin, creates, log, gate, tracing.observe));
  } else if (plugin.kind === "sync") {
    server.addService(grpcServiceDefinition(SyncPluginService), syncService(plugin, log, gate, tracing.observe));
  } else {
    const finalizes = new IdempotentCalls(store, log, FINALIZE_CALL);
    server.addService(grpcServiceDefinition(CorePluginService), coreService(plugin, finalizes, log, gate, tracing.observe));
  }
  server.addService(grpcServiceDefinition(Health), healthService(health));

  if (config.endpoint.kind === "unix") await removeStaleSocket(config.endpoint.path);
  let boundPort: number;
  try {
    boundPort = await bind(server, bindAddress(config.endpoint));
  } catch (error) {
    await nats?.close();
    await tracing.shutdown();
    throw new Error(`cannot listen on ${bindAddress(config.endpoint)}: ${(error as Error).message}`);
  }
  const endpoint = dialAddress(config.endpoint, boundPort);
  health.setAll(ServingStatus.SERVING);
  log("info", `serving on ${endpoint}`, {
    kind: plugin.kind,
    version: plugin.version,
    instance: config.instanceId,
    taskTypes: plugin.taskTypes.map((t) => `${t.type}@${t.version}`).join(","),
  });

  // Announced only now: bound and SERVING, so a host that sees the key can call at once.
  const announcer = nats
    ? new Announcer({
        key: kvKey(plugin.name, config.instanceId),
        instanceId: config.instanceId,
        endpoint,
        descriptor,
        startedAt,
        bucket: () => nats.bucket(PLUGINS_BUCKET, PLUGINS_BUCKET_OPTIONS),
        log,
        intervalMs: config.heartbeatIntervalMs,
        token: config.token,
      })
    : undefined;
  if (nats && announcer) {
    log("info", "waiting for NATS", { servers: nats.servers });
    void nats.connected().then((connection) => {
      if (connection && !stopping) announcer.start();
    });
  }

  const shutdown = (graceful: boolean): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      health.setAll(ServingStatus.NOT_SERVING);
      log("info", graceful ? "draining" : "stopping", { inFlight });
      if (announcer && nats?.isConnected) await within(announcer.setDraining(), 5_000);
      if (graceful && inFlight > 0) {
        const drained = await within(new Promise<void>((resolve) => (idle = resolve)), config.drainTimeoutMs);
        if (!drained) log("warn", "drain timeout passed with calls still in flight", { inFlight });
      }
      if (announcer && nats?.isConnected) await within(announcer.withdraw(), 5_000);
      health.close();
      const closed = await within(
        new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
        graceful ? 5_000 : 0,
      );
      if (!closed) server.forceShutdown();
      await nats?.close();
      // Every call has been answered and its span ended: export them before the process exits.
      await tracing.shutdown();
      if (config.endpoint.kind === "unix" && existsSync(config.endpoint.path)) {
        try {
          unlinkSync(config.endpoint.path);
        } catch {
          // Already gone, or not ours to remove; the next start handles a stale file.
        }
      }
      log("info", "stopped");
    })();
    return stopping;
  };

  if (config.handleSignals) {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        // The drain under way would still wait for calls in flight: a second signal means leave now. The
        // announcement expires with its ttl.
        log("warn", `${signal} again: exiting without waiting`);
        process.exit(1);
      }
      signalled = true;
      log("info", `${signal} received`);
      shutdown(true).then(
        () => process.exit(0),
        (error: unknown) => {
          log("error", "drain failed", { error });
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }

  return {
    endpoint,
    instanceId: config.instanceId,
    announced: announcer ? announcer.announced : new Promise<void>(() => undefined),
    push(execution, result) {
      if (!nats) throw new Error("push needs NATS; this sidecar runs without it");
      // The execution id is a NATS subject token, as the host builds it; anything else cannot be an execution of it.
      if (!isExecutionId(execution.executionId)) {
        throw new Error(`execution id ${quoteInput(execution.executionId)} is not one a host gives: ${EXECUTION_ID_RULE}`);
      }
      const { phaseInfo, outputs } = phaseResponse(result, "push");
      const status = create(PushedStatusSchema, { ...execution, instanceId: config.instanceId, phaseInfo, outputs });
      // The signature covers exactly the bytes published, so encode once.
      const payload = toBinary(PushedStatusSchema, status);
      nats.publish(`pb.push.${execution.executionId}`, payload, config.token?.pushHeaders(payload));
    },
    drain: () => shutdown(true),
    stop: () => shutdown(false),
  };
}
