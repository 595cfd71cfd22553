// The processes a benchmark runs: its own nats-server, hosts (`plugin-bridge serve`) and bench plugins, all on
// loopback, started with the test helpers (test/helpers/processes.ts) and the host's nats-server launcher.
import { readdirSync, readFileSync, lstatSync } from "node:fs";
import path from "node:path";
import { freePort } from "../../src/coordination/nats-server-process.js";
import { projectRoot, run, startTestNats, tempDir, type RunningProcess, type TestNats } from "../../test/helpers/processes.js";

export { projectRoot, tempDir, type RunningProcess, type TestNats };

export interface BenchOptions {
  /** Pass `--cpu-prof` to every host started, profiles into `profileDir`. */
  profile: boolean;
  profileDir: string;
  /** The host's entry script: the built bundle (what operators run), or bin/plugin-bridge.js (from source). */
  hostEntry: string;
}

/** Running the host from source, through tsx: what `npm run demo` and the tests do. */
export const HOST_FROM_SOURCE = path.join(projectRoot, "bin", "plugin-bridge.js");

/** A fresh nats-server with JetStream in a temp dir (removed on stop). */
export async function startBenchNats(): Promise<TestNats> {
  return await startTestNats();
}

export interface BenchHost extends RunningProcess {
  url: string;
  port: number;
  /** The flags it was started with (recorded in the results). */
  flags: Record<string, string>;
  /** When the process was spawned (Date.now()). */
  spawnedAt: number;
}

/**
 * `node <hostEntry> serve --nats-url … --listen-port <free>` plus `flags`; resolves once it serves. With
 * `profile`, node runs with --cpu-prof (written when the host exits by itself, on SIGTERM).
 */
export async function startBenchHost(
  natsUrl: string,
  flags: Record<string, string>,
  options: BenchOptions,
  waitServing = true,
): Promise<BenchHost> {
  const port = await freePort();
  const nodeArgs = options.profile ? ["--cpu-prof", "--cpu-prof-dir", options.profileDir] : [];
  const args = [...nodeArgs, options.hostEntry, "serve", "--nats-url", natsUrl, "--listen-port", String(port)];
  for (const [flag, value] of Object.entries(flags)) args.push(`--${flag}`, value);
  const spawnedAt = Date.now();
  const host = run(process.execPath, args, { PLUGIN_BRIDGE_LOG_LEVEL: process.env.BENCH_HOST_LOG_LEVEL ?? "warn", NODE_OPTIONS: process.env.BENCH_HOST_NODE_OPTIONS ?? "" });
  // "serving" is logged at info; at warn nothing shows, so wait for the port instead.
  const url = `http://127.0.0.1:${port}`;
  if (waitServing) await waitForHttp(url, host, 60_000);
  return { ...host, url, port, flags, spawnedAt };
}

/** Resolves once something answers HTTP on `url` (any status), or rejects when `proc` exits or time runs out. */
export async function waitForHttp(url: string, proc: RunningProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`process exited before serving ${url}:\n${proc.output().slice(-3000)}`);
    }
    try {
      await fetch(`${url}/grpc.health.v1.Health/Check`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${url}:\n${proc.output().slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

export interface BenchPlugin extends RunningProcess {
  /** The gRPC endpoint the plugin serves (and announces). */
  endpoint: string;
  instanceId: string;
  statsUrl: string;
  spawnedAt: number;
  /** GET /stats (or another path) on the plugin's loopback stats endpoint. */
  stats<T = Record<string, unknown>>(pathname?: string): Promise<T>;
  post(pathname: string): Promise<void>;
}

/** Starts a bench plugin (`bench/plugins/<name>.ts`) announcing on `natsUrl`; resolves once it serves. */
export async function startBenchPlugin(
  name: "echo" | "zero",
  natsUrl: string,
  env: Record<string, string> = {},
  waitServing = true,
): Promise<BenchPlugin> {
  const dir = tempDir(`plugin-${name}`);
  const statsPort = await freePort();
  const instanceId = `bench-${name}-${Math.random().toString(16).slice(2, 10)}`;
  const endpoint = `unix:${path.join(dir, "plugin.sock")}`;
  const spawnedAt = Date.now();
  const proc = run(process.execPath, ["--import", "tsx", path.join(projectRoot, "bench", "plugins", `${name}.ts`)], {
    PLUGIN_BRIDGE_NATS_URL: natsUrl,
    PLUGIN_BRIDGE_ENDPOINT: endpoint,
    PLUGIN_BRIDGE_INSTANCE_ID: instanceId,
    PLUGIN_BRIDGE_LOG_LEVEL: "warn",
    BENCH_STATS_PORT: String(statsPort),
    ...env,
  });
  const statsUrl = `http://127.0.0.1:${statsPort}`;
  if (waitServing) await proc.waitFor("bench plugin ready", 60_000);
  return {
    ...proc,
    endpoint,
    instanceId,
    statsUrl,
    spawnedAt,
    async stats<T>(pathname = "/stats"): Promise<T> {
      const response = await fetch(statsUrl + pathname);
      if (!response.ok) throw new Error(`stats ${pathname}: HTTP ${response.status}`);
      return (await response.json()) as T;
    },
    async post(pathname: string): Promise<void> {
      const response = await fetch(statsUrl + pathname, { method: "POST" });
      if (!response.ok) throw new Error(`stats ${pathname}: HTTP ${response.status}`);
      await response.arrayBuffer();
    },
  };
}

/** A process's resident set size in bytes (VmRSS), or NaN once it is gone. */
export function rssBytes(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU time (user + system) a process used so far, in seconds, or NaN once it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** Bytes on disk under `dir` (allocated blocks), following no links. */
export function diskBytes(dir: string): number {
  let total = 0;
  const walk = (current: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(current);
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(current, entry);
      try {
        const stat = lstatSync(full);
        if (stat.isDirectory()) walk(full);
        else total += stat.blocks * 512;
      } catch {
        // removed meanwhile
      }
    }
  };
  walk(dir);
  return total;
}

/** Samples RSS and CPU of named processes every `intervalMs` until stopped. */
export class ProcessMonitor {
  private readonly timer: NodeJS.Timeout;
  private readonly samples = new Map<string, { rss: number[]; cpuStart: number; cpuEnd: number; start: number; end: number }>();

  constructor(private readonly pids: Record<string, number | undefined>, intervalMs = 1_000) {
    const now = Date.now();
    for (const [name, pid] of Object.entries(pids)) {
      this.samples.set(name, { rss: [rssBytes(pid)], cpuStart: cpuSeconds(pid), cpuEnd: cpuSeconds(pid), start: now, end: now });
    }
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const now = Date.now();
    for (const [name, pid] of Object.entries(this.pids)) {
      const entry = this.samples.get(name)!;
      const rss = rssBytes(pid);
      const cpu = cpuSeconds(pid);
      if (!Number.isNaN(rss)) entry.rss.push(rss);
      if (!Number.isNaN(cpu)) {
        entry.cpuEnd = cpu;
        entry.end = now;
      }
    }
  }

  /** Per process: peak and last RSS (MiB), and CPU use as a share of one core over the window. */
  stop(): Record<string, { rssPeakMiB: number; rssLastMiB: number; cpuCores: number }> {
    this.sample();
    clearInterval(this.timer);
    const result: Record<string, { rssPeakMiB: number; rssLastMiB: number; cpuCores: number }> = {};
    for (const [name, entry] of this.samples) {
      const seconds = (entry.end - entry.start) / 1000;
      result[name] = {
        rssPeakMiB: Math.round((Math.max(...entry.rss.filter((v) => !Number.isNaN(v))) / 1048576) * 10) / 10,
        rssLastMiB: Math.round(((entry.rss.at(-1) ?? NaN) / 1048576) * 10) / 10,
        cpuCores: seconds > 0 ? Math.round(((entry.cpuEnd - entry.cpuStart) / seconds) * 100) / 100 : NaN,
      };
    }
    return result;
  }
}
