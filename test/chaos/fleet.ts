// The scale-out fleet on loopback: several hosts (`plugin-bridge serve`), each on its own NATS node, and replicas of
// every kit's async and sync reference plugin, spread over the nodes too. Each replica audits into its own file with
// call times (CONFORMANCE_AUDIT_TIMES=1), and each host's /metrics is read every second so that a host killed later
// still has its share counted up to its last reading.
import path from "node:path";
import { eventually, registryClient } from "../helpers/clients.js";
import { KITS, type Kit } from "../helpers/kits.js";
import { startHost, type RunningProcess, type TestHost } from "../helpers/processes.js";

export type PluginKind = "async" | "sync";

export interface FleetOptions {
  /** The NATS nodes' client URLs; hosts and sidecars are assigned to them in turn. */
  natsUrls: string[];
  hosts: number;
  /** Replicas of each reference plugin. */
  replicas: number;
  /** The hosts' --nats-replicas: the copies of every stream and bucket they create. */
  natsReplicas: number;
  ackWaitMs: number;
  /** The reference plugins' resync interval (CONFORMANCE_RESYNC_MS): how often an async execution is polled. */
  resyncMs: number;
  /** Where the audit files go. */
  workDir: string;
}

export interface FleetHost {
  readonly name: string;
  readonly natsUrl: string;
  readonly process: TestHost;
  readonly url: string;
  /** False once the suite killed it. */
  alive: boolean;
  /** The last /metrics reading: plugin calls by "plugin operation", and phases stored by "plugin phase". */
  calls: Map<string, number>;
  phases: Map<string, number>;
}

export interface FleetSidecar {
  readonly language: string;
  readonly kind: PluginKind;
  readonly plugin: string;
  readonly instanceId: string;
  readonly auditFile: string;
  readonly natsUrl: string;
  readonly process: RunningProcess;
  alive: boolean;
}

export interface Fleet {
  readonly hosts: FleetHost[];
  readonly sidecars: FleetSidecar[];
  /** The plugin names served (conformance-<language> and conformance-sync-<language>). */
  readonly plugins: string[];
  liveHosts(): FleetHost[];
  /** Reads every live host's /metrics once more (also done every second in the background). */
  scrape(): Promise<void>;
  stop(): Promise<void>;
}

export function pluginName(language: string, kind: PluginKind): string {
  return kind === "sync" ? `conformance-sync-${language}` : `conformance-${language}`;
}

const METRIC_LINE = /^(plugin_bridge_plugin_call_duration_seconds_count|plugin_bridge_execution_phases_total)\{([^}]*)\} ([0-9.e+]+)$/;

/** Picks the two series the suite reports from Prometheus text. */
export function parseMetrics(text: string): { calls: Map<string, number>; phases: Map<string, number> } {
  const calls = new Map<string, number>();
  const phases = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = METRIC_LINE.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((label) => [label[1], label[2]]));
    if (match[1] === "plugin_bridge_plugin_call_duration_seconds_count") calls.set(`${labels.plugin} ${labels.operation}`, Number(match[3]));
    else phases.set(`${labels.plugin} ${labels.phase}`, Number(match[3]));
  }
  return { calls, phases };
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const hosts: FleetHost[] = [];
  const sidecars: FleetSidecar[] = [];
  const nodeOf = (index: number): string => options.natsUrls[index % options.natsUrls.length]!;
  let scraping: NodeJS.Timeout | undefined;

  const scrapeHost = async (host: FleetHost): Promise<void> => {
    if (!host.alive) return;
    try {
      const response = await fetch(`${host.url}/metrics`, { signal: AbortSignal.timeout(2_000) });
      if (!response.ok) return;
      const { calls, phases } = parseMetrics(await response.text());
      host.calls = calls;
      host.phases = phases;
    } catch {
      // Busy or gone: the previous reading stays.
    }
  };
  const fleet: Fleet = {
    hosts,
    sidecars,
    plugins: KITS.flatMap((kit) => (["async", "sync"] as const).map((kind) => pluginName(kit.language, kind))),
    liveHosts: () => hosts.filter((host) => host.alive),
    scrape: async () => void (await Promise.all(hosts.map(scrapeHost))),
    async stop() {
      clearInterval(scraping);
      await Promise.all(sidecars.map((sidecar) => sidecar.process.stop("SIGTERM", 10_000)));
      await Promise.all(hosts.map((host) => host.process.stop("SIGTERM", 15_000)));
    },
  };
  try {
    // Hosts first, so that they create the buckets and streams (with their replicas) before any kit does.
    for (let index = 0; index < options.hosts; index++) {
      const natsUrl = nodeOf(index);
      const process = await startHost(natsUrl, { "ack-wait-ms": String(options.ackWaitMs), "nats-replicas": String(options.natsReplicas) });
      hosts.push({ name: `host-${index}`, natsUrl, process, url: process.url, alive: true, calls: new Map(), phases: new Map() });
    }
    await Promise.all(KITS.map((kit) => kit.prepare()));
    let placed = 0;
    for (const kit of KITS) {
      for (const kind of ["async", "sync"] as const) {
        for (let replica = 0; replica < options.replicas; replica++) {
          sidecars.push(startSidecar(kit, kind, replica, nodeOf(placed++), options));
        }
      }
    }
    // Generous: twelve sidecars (four through tsx) starting at once on a loaded 2-core machine take a while.
    for (const host of hosts) await waitForEveryReplica(host.url, fleet.plugins, options.replicas, 120_000);
  } catch (error) {
    await fleet.stop();
    throw error;
  }
  scraping = setInterval(() => void fleet.scrape(), 1_000);
  return fleet;
}

function startSidecar(kit: Kit, kind: PluginKind, replica: number, natsUrl: string, options: FleetOptions): FleetSidecar {
  const instanceId = `${kit.language}-${kind}-r${replica}`;
  const auditFile = path.join(options.workDir, `audit-${instanceId}.log`);
  const process = kit.start({
    PLUGIN_BRIDGE_NATS_URL: natsUrl,
    PLUGIN_BRIDGE_INSTANCE_ID: instanceId,
    // In the run's own folder: the kits' default socket path comes from the instance id alone, which another run
    // on the same machine may use at the same time.
    PLUGIN_BRIDGE_ENDPOINT: `unix:${path.join(options.workDir, `${instanceId}.sock`)}`,
    CONFORMANCE_AUDIT_FILE: auditFile,
    CONFORMANCE_AUDIT_TIMES: "1",
    CONFORMANCE_RESYNC_MS: String(options.resyncMs),
    ...(kind === "sync" && { CONFORMANCE_KIND: "sync" }),
  });
  return { language: kit.language, kind, plugin: pluginName(kit.language, kind), instanceId, auditFile, natsUrl, process, alive: true };
}

/** Waits until the host routes to `replicas` live instances of every plugin. */
async function waitForEveryReplica(url: string, plugins: string[], replicas: number, timeoutMs: number): Promise<void> {
  const registry = registryClient(url, "connect-binary");
  await eventually(`${replicas} live instances of each of ${plugins.join(", ")} at ${url}`, async () => {
    const listed = (await registry.listPlugins({})).plugins;
    const ready = plugins.every((name) => (listed.find((plugin) => plugin.name === name)?.instances.filter((i) => !i.draining).length ?? 0) >= replicas);
    return ready ? true : undefined;
  }, Math.ceil(timeoutMs / 250), 250);
}
