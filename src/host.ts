// The host as a whole: NATS (its own child or the one it is given), the JetStream layout, the routing table,
// the worker that runs steps, and the API port. Everything it knows lives in NATS; it can die at any point.
import path from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { KvIdempotencyStore } from "@plugin-bridge/kit";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import { PluginRegistryService } from "@plugin-bridge/protocol/pluginbridge/v1/registry_service_pb.js";
import { TaskService } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { SidecarService } from "@plugin-bridge/protocol/pluginbridge/v1/sidecar_service_pb.js";
import { HealthStatus, WHOLE_SERVER } from "./api/health-service.js";
import { createRegistryService } from "./api/registry-service.js";
import { createSidecarService } from "./api/sidecar-service.js";
import { startApiServer, type ApiLog, type ApiServer } from "./api/server.js";
import { DirectSync } from "./api/direct-sync.js";
import { createTaskService } from "./api/task-service.js";
import { registerFlyteServices } from "./flyte/serving/register.js";
import type { HostConfig } from "./config.js";
import type { SidecarSpec } from "./config-file.js";
import { EventLog } from "./coordination/event-log.js";
import { ExecutionStore } from "./coordination/execution-store.js";
import { listenForPushes } from "./coordination/push-listener.js";
import { ensureLayout } from "./coordination/layout.js";
import { startNatsServer, type NatsServerProcess } from "./coordination/nats-server-process.js";
import { WorkQueue } from "./coordination/work-queue.js";
import type { Logger } from "./log.js";
import { QuotaStore } from "./coordination/quota-store.js";
import { Executor } from "./machinery/executor.js";
import { isFinalPhase } from "./machinery/phases.js";
import { Quotas } from "./machinery/quotas.js";
import { SecretAccess } from "./machinery/secret-access.js";
import { SecretResolver } from "./machinery/secrets.js";
import { Worker } from "./machinery/worker.js";
import { Metrics } from "./observability/metrics.js";
import { startTracing } from "./observability/tracing.js";
import { traceRequests } from "./api/tracing-interceptor.js";
import { natsFailuresAreUnavailable } from "./api/infrastructure-errors.js";
import { RemoteFlyteConnector } from "./supervisor/remote-flyte-connector.js";
import { Supervisor } from "./supervisor/supervisor.js";
import { FlyteAgentCalls } from "./flyte/driving/agent-calls.js";
import { PluginClients } from "./registry/plugin-client.js";
import { RoutingTable } from "./registry/routing-table.js";
import { SidecarAuth } from "./registry/sidecar-auth.js";
import { Authenticator } from "./api/auth.js";
import { Specifications } from "./registry/specifications.js";

export interface Host {
  /** The API's base URL, such as http://127.0.0.1:8080. */
  readonly url: string;
  readonly port: number;
  /** The NATS the host uses (its own child's URL in one-machine mode). */
  readonly natsUrl: string;
  /** Stops gracefully: health NOT_SERVING, no new calls or steps, steps in flight finish, then NATS is drained. */
  stop(): Promise<void>;
  /** Applies a new list of supervised sidecars: changed ones are upgraded (new replicas first, then the old drain). */
  reloadSidecars(sidecars: HostConfig["sidecars"]): Promise<void>;
  /** Replaces a supervised sidecar's replicas with fresh ones (new first, then the old drain). */
  restartSidecar(name: string): Promise<void>;
}

/** NATS connection options from the configured credentials and TLS files (read at start). */
function natsSecurity(nats: HostConfig["security"]["nats"]): Partial<ConnectionOptions> {
  const text = (bytes: Buffer | undefined): string | undefined => bytes?.toString("utf8");
  return {
    ...(nats.credentials && { authenticator: credsAuthenticator(nats.credentials) }),
    ...(nats.tls && {
      tls: Object.fromEntries(Object.entries({ ca: text(nats.tls.ca), cert: text(nats.tls.cert), key: text(nats.tls.key) }).filter(([, value]) => value !== undefined)),
    }),
  };
}

export interface HostOptions {
  /**
   * The sidecars as the configuration file reads now, for UpgradeSidecar; throws when the file does not load.
   * Default: the specs the supervisor runs (a host started without a file).
   */
  readSidecars?: () => readonly SidecarSpec[];
}

/** Room left in a NATS message for headers when a record is stored. */
const HEADER_ROOM_BYTES = 4096;

export async function startHost(config: HostConfig, log: Logger, options: HostOptions = {}): Promise<Host> {
  let natsChild: NatsServerProcess | undefined;
  let natsUrl = config.natsUrl;
  if (!natsUrl) {
    const natsLog = log.child({ component: "nats-server" });
    natsChild = await startNatsServer({
      dataDir: path.join(config.dataDir, "nats"),
      port: config.embeddedNatsPort,
      onLog: (line) => natsLog.debug(line),
    });
    natsUrl = natsChild.url;
    log.info("started nats-server with JetStream", { url: natsUrl, dataDir: config.dataDir });
  }

  let nc: NatsConnection | undefined;
  let api: ApiServer | undefined;
  let worker: Worker | undefined;
  let routing: RoutingTable | undefined;
  let direct: DirectSync | undefined;
  let pushes: { stop(): void } | undefined;
  let supervisor: Supervisor | undefined;
  let remoteConnectors: RemoteFlyteConnector[] = [];
  // One registry per host, served on GET /metrics of the API port.
  const metrics = new Metrics();
  // Traces when the OTEL_* environment asks for them (docs/architecture.md, "Traces").
  const tracing = startTracing(process.env);
  if (tracing.enabled) log.info("exporting traces over OTLP", { endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT });
  // Flyte connectors the host announces (supervised and remote), with their output prefixes; their Creates are
  // remembered in pb_creates, opened once NATS is up (no call reaches a connector before that).
  const flyteOutputPrefixes = new Map<string, string>();
  let createsBucket: KV | undefined;
  const clients = new PluginClients(metrics, (transport) => new FlyteAgentCalls(transport, {
    creates: new KvIdempotencyStore(async () => {
      if (!createsBucket) throw new Error("NATS is not connected yet");
      return createsBucket;
    }),
    outputPrefixOf: (instanceId) => flyteOutputPrefixes.get(instanceId) ?? "",
    log: log.child({ component: "flyte-agents" }),
  }));
  const { security } = config;
  // The supervised sidecars' names are the keys their tokens are issued for (the supervisor hands them out); the
  // remote Flyte connectors' names are the keys the hosts sign their agents' announcements with. Both may announce
  // any plugin: only the hosts hold their tokens.
  const supervisedNames = (): Set<string> => new Set([
    ...(supervisor?.sidecars().map((sidecar) => sidecar.spec) ?? config.sidecars).map((spec) => spec.name),
    ...config.flyteConnectors.map((connector) => connector.name),
  ]);
  const sidecarAuth = new SidecarAuth(security.sidecarSecret, supervisedNames, security.remoteSidecars);
  const authenticator = new Authenticator(security.clients);
  try {
    nc = await connect({
      servers: natsUrl,
      name: "plugin-bridge-host",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
      // Without this the client builds an Error (with a stack trace) for every request in case it fails; the host's
      // CPU profile showed ~11 % spent there (docs/benchmarks.md). Errors keep their messages.
      noAsyncTraces: true,
      ...natsSecurity(security.nats),
    });
    metrics.countNatsReconnects(nc.status());
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const layout = await ensureLayout(nc, jsm, { ackWaitMs: config.ackWaitMs, eventsMaxAgeMs: config.eventsMaxAgeMs, replicas: config.natsReplicas });
    createsBucket = layout.creates;

    const specifications = new Specifications();
    routing = new RoutingTable(log.child({ component: "registry" }), Date.now, sidecarAuth);
    const table = routing;
    routing.onChange((instanceId, instance) => {
      if (instance) return;
      specifications.forget(instanceId);
      clients.releaseUnused(new Set(table.live().map((live) => live.endpoint)));
    });
    await routing.start(layout.plugins);

    const store = new ExecutionStore(layout.executions);
    const events = new EventLog(js, nc);
    const work = new WorkQueue(js);
    const secrets = new SecretResolver({
      directory: config.secretsDir,
      envPrefix: config.secretsEnvPrefix,
      access: SecretAccess.parse(config.secretAccess),
    });
    const maxRecordBytes = (nc.info?.max_payload ?? 1024 * 1024) - HEADER_ROOM_BYTES;
    const quotas = new Quotas(
      new QuotaStore(layout.quotas),
      async (executionId) => {
        const phase = (await store.get(executionId))?.record.phaseInfo?.phase;
        return phase !== undefined && !isFinalPhase(phase);
      },
      log.child({ component: "quotas" }),
    );
    const executor = new Executor(quotas, store, events, routing, clients, secrets, log.child({ component: "executor" }), {
      orphanGraceMs: config.orphanGraceMs,
      noInstanceRetryMs: config.noInstanceRetryMs,
      maxRecordBytes,
      metrics,
    });
    const pushLog = log.child({ component: "push" });
    pushes = listenForPushes(nc, async ({ status, payload, headers }) => {
      if (!sidecarAuth.pushAllowed(payload, headers, table.keyIdOf(status.instanceId))) {
        pushLog.warn("ignoring a pushed status without a valid signature of its instance's key", { execution: status.executionId, instance: status.instanceId.slice(0, 100) });
        return;
      }
      await executor.applyPushed(status);
    }, pushLog);
    worker = new Worker(work, executor, log.child({ component: "worker" }), {
      concurrency: config.concurrency,
      ackWaitMs: config.ackWaitMs,
      metrics,
    });
    await worker.start();

    const health = new HealthStatus(ServingStatus.NOT_SERVING);
    const apiLog = log.child({ component: "api" });
    const apiEvents: ApiLog = (level, message, fields) => apiLog[level](message, fields);
    direct = new DirectSync({ store, work, events, executor, log: apiLog, metrics });
    const directRuns = direct;
    let flyteServices: string[] = [];
    api = await startApiServer({
      host: config.listenHost,
      port: config.listenPort,
      readMaxBytes: config.readMaxBytes,
      shutdownGraceMs: config.shutdownGraceMs,
      health,
      metrics,
      interceptors: [traceRequests(), authenticator.interceptor(), natsFailuresAreUnavailable(apiEvents)],
      ...(security.tls && { tls: security.tls }),
      log: apiEvents,
      routes: (router) => {
        const tasks = createTaskService({
          store,
          work,
          events,
          executor,
          routing: table,
          specifications,
          secrets,
          maxRecordBytes,
          direct: directRuns,
          log: apiLog,
          metrics,
        });
        router.service(TaskService, tasks);
        router.service(PluginRegistryService, createRegistryService(table));
        flyteServices = registerFlyteServices(router, { tasks, routing: table });
        router.service(SidecarService, createSidecarService({
          supervisor: () => supervisor,
          readSidecars: options.readSidecars ?? (() => supervisor?.sidecars().map((sidecar) => sidecar.spec) ?? []),
        }));
      },
    });
    for (const service of [WHOLE_SERVER, TaskService.typeName, PluginRegistryService.typeName, SidecarService.typeName, ...flyteServices]) {
      health.set(service, ServingStatus.SERVING);
    }
    log.info("serving", { url: api.url, nats: natsUrl });
    // The configured sidecars and remote connectors last: they are announced to a host that already routes.
    const flyteAnnouncing = { plugins: layout.plugins, calls: clients, outputPrefixes: flyteOutputPrefixes };
    supervisor = await Supervisor.start(config.sidecars, {
      natsUrl,
      natsTlsCa: config.natsTlsCa,
      natsReplicas: config.natsReplicas,
      log,
      metrics,
      ...(sidecarAuth.required && { tokenFor: (name: string) => sidecarAuth.tokenFor(name) }),
      flyte: flyteAnnouncing,
    });
    remoteConnectors = config.flyteConnectors.map((spec) => new RemoteFlyteConnector(
      spec,
      flyteAnnouncing,
      sidecarAuth.required ? sidecarAuth.tokenFor(spec.name) : undefined,
      log.child({ component: "flyte-connectors" }),
    ));
    for (const connector of remoteConnectors) connector.start();
  } catch (error) {
    await Promise.all(remoteConnectors.map((connector) => connector.stop()));
    await supervisor?.stop();
    await api?.close();
    pushes?.stop();
    await worker?.stop(0);
    routing?.stop();
    clients.close();
    await nc?.close();
    await natsChild?.stop();
    await tracing.shutdown();
    throw error;
  }

  const started = { api, worker, routing, nc, direct, pushes, supervisor };
  let stopping: Promise<void> | undefined;
  return {
    url: api.url,
    port: api.port,
    natsUrl,
    reloadSidecars: (sidecars) => started.supervisor.reload(sidecars),
    restartSidecar: (name) => started.supervisor.replace(name),
    stop() {
      stopping ??= (async () => {
        log.info("stopping: finishing calls and steps in flight");
        started.pushes.stop();
        await Promise.all([started.api.close(), started.worker.stop(config.shutdownGraceMs)]);
        // A sync call whose caller left still stores its outcome: NATS must stay up for it.
        await started.direct.drain(config.shutdownGraceMs);
        // No more steps call them: the sidecars drain idle. The remote connectors' announcements stay for the other
        // hosts (the TTL ends them if none is left).
        await Promise.all([started.supervisor.stop(), ...remoteConnectors.map((connector) => connector.stop())]);
        started.routing.stop();
        clients.close();
        await started.nc.drain();
        await natsChild?.stop();
        // Last: the spans of the final steps and calls go out before the process ends.
        await tracing.shutdown();
        log.info("stopped");
      })();
      return stopping;
    },
  };
}
