// One supervised sidecar replica: started with what it needs to connect, watched until gRPC health says SERVING,
// probed while it runs, restarted with exponential backoff when it crashes or stops answering, and given up on
// after too many crashes in a row. Only the ChildProcess this object spawned is ever signalled, and only while
// Node still holds it (exitCode and signalCode unset): a PID the system reused is never touched. A replica that
// cannot announce itself (a Flyte connector server) is announced, drained and withdrawn through its
// ReplicaAnnouncements.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { HealthCheckResponse_ServingStatus as ServingStatus, Health } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import type { SidecarSpec } from "../config-file.js";
import type { Logger } from "../log.js";
import type { PluginClients } from "../registry/plugin-client.js";

export interface RestartPolicy {
  /** The first restart's delay; doubled after each crash, up to maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
  /** This many crashes, each within crashWindowMs of the one before, and the replica is given up. */
  crashLoopLimit: number;
  crashWindowMs: number;
  /** How often a running replica's health is probed, and how many failed probes in a row mean unhealthy. */
  probeIntervalMs: number;
  failedProbesLimit: number;
  /** After SIGTERM, how long the sidecar may drain before SIGKILL. */
  drainTimeoutMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  backoffMs: 1_000,
  maxBackoffMs: 30_000,
  crashLoopLimit: 5,
  crashWindowMs: 60_000,
  probeIntervalMs: 5_000,
  failedProbesLimit: 3,
  drainTimeoutMs: 35_000,
};

/** What a replica is given to reach NATS and to prove who it is. */
export interface SidecarConnection {
  natsUrl: string;
  /** The CA that signs NATS's certificate (a PEM file), when NATS uses TLS. */
  natsTlsCa?: string;
  /** Copies of a bucket the kit creates before any host does (the hosts' natsReplicas). */
  natsReplicas?: number;
  /** The sidecar's token (its announcements' signing key), when the hosts require them. */
  token?: string;
}

export type ReplicaState = "starting" | "serving" | "backing-off" | "gave-up" | "stopped";

export interface ReplicaStatus {
  sidecar: string;
  instanceId: string;
  endpoint: string;
  state: ReplicaState;
  pid: number | undefined;
  restarts: number;
  /** Why the replica last ended, or why it was given up. */
  lastExit: string;
}

/** For a replica that does not announce itself: the host announces it, drains it and withdraws it. */
export interface ReplicaAnnouncements {
  /** Once the replica serves. Throws when it cannot be announced: the replica then counts as not started. */
  announce(): Promise<void>;
  /** Before the replica is stopped: hosts route no new calls to it, and this host's calls under way finish (up to `timeoutMs`). */
  drain(timeoutMs: number): Promise<void>;
  /** Once the replica is gone or going (stopped, crashed, unhealthy): the announcements are removed. */
  withdraw(): Promise<void>;
}

/** Waits `ms`, or less if `signal` aborts; leaves no listener behind either way. */
export const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });

export class SidecarProcess {
  private child: ChildProcess | undefined;
  private state: ReplicaState = "starting";
  private restarts = 0;
  private lastExit = "";
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  /** Resolves when the first start has an outcome: serving, or given up. */
  private readonly firstStart: Promise<void>;
  private settleFirstStart: () => void = () => {};

  constructor(
    private readonly spec: SidecarSpec,
    readonly instanceId: string,
    readonly endpoint: string,
    private readonly connection: SidecarConnection,
    private readonly clients: PluginClients,
    private readonly policy: RestartPolicy,
    private readonly log: Logger,
    /** Called when a replica is given up, with the report. */
    private readonly onGiveUp: (status: ReplicaStatus) => void,
    /** Called before each restart. */
    private readonly onRestart: () => void = () => {},
    /** Set for a replica that does not announce itself. */
    private readonly announcements?: ReplicaAnnouncements,
  ) {
    this.firstStart = new Promise((resolve) => (this.settleFirstStart = resolve));
  }

  /** Starts the replica and its keep-alive loop; resolves once it serves for the first time or is given up. */
  start(): Promise<void> {
    this.loop ??= this.run();
    return this.firstStart;
  }

  status(): ReplicaStatus {
    return {
      sidecar: this.spec.name,
      instanceId: this.instanceId,
      endpoint: this.endpoint,
      state: this.state,
      pid: this.running() ? this.child?.pid : undefined,
      restarts: this.restarts,
      lastExit: this.lastExit,
    };
  }

  /** SIGTERM, the drain time, then SIGKILL; resolves when the process is gone and the loop has ended. */
  async stop(): Promise<void> {
    // The process drains itself; one announced by the host is drained by the host first.
    await this.announcements?.drain(this.policy.drainTimeoutMs);
    this.stopping.abort();
    await this.terminate();
    await this.loop;
    this.state = "stopped";
  }

  private running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  private async run(): Promise<void> {
    const crashes: number[] = [];
    let backoffMs = this.policy.backoffMs;
    while (!this.stopping.signal.aborted) {
      this.state = "starting";
      const child = this.spawnChild();
      const exited = new Promise<string>((resolve) =>
        child.once("exit", (code, signal) => resolve(signal ? `killed by ${signal}` : `exit code ${code}`)),
      );
      const outcome = await this.announced(await this.awaitServing(exited));
      let why: string;
      if (outcome === "serving") {
        this.state = "serving";
        this.settleFirstStart();
        this.log.info("sidecar serving", { sidecar: this.spec.name, instance: this.instanceId, pid: child.pid });
        why = await this.watch(exited);
        await this.announcements?.withdraw();
      } else {
        why = outcome;
        await this.terminate();
      }
      if (this.stopping.signal.aborted) break;
      this.lastExit = why;
      const now = Date.now();
      const last = crashes.at(-1);
      if (last !== undefined && now - last > this.policy.crashWindowMs) {
        crashes.length = 0; // it ran long enough: the loop, if any, is over
        backoffMs = this.policy.backoffMs;
      }
      crashes.push(now);
      if (crashes.length >= this.policy.crashLoopLimit) {
        this.state = "gave-up";
        this.lastExit = `crashed ${crashes.length} times within ${Math.round((now - crashes[0]!) / 1000)} s; the last: ${why}`;
        this.log.error("sidecar crash loop: giving up", { sidecar: this.spec.name, instance: this.instanceId, report: this.lastExit });
        this.onGiveUp(this.status());
        this.settleFirstStart();
        return;
      }
      this.state = "backing-off";
      this.restarts++;
      this.onRestart();
      this.log.warn("sidecar ended; restarting", { sidecar: this.spec.name, instance: this.instanceId, why, inMs: backoffMs });
      await sleep(backoffMs, this.stopping.signal);
      backoffMs = Math.min(backoffMs * 2, this.policy.maxBackoffMs);
    }
  }

  /** "serving" once announced (when the host announces the replica); otherwise why not. */
  private async announced(outcome: string): Promise<string> {
    if (outcome !== "serving" || !this.announcements) return outcome;
    try {
      await this.announcements.announce();
      return outcome;
    } catch (error) {
      await this.announcements.withdraw();
      return `could not be announced: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  private spawnChild(): ChildProcess {
    const flyte = this.spec.protocol === "flyte-agent";
    // A Flyte connector server is told its port: `{port}` in its arguments, PLUGIN_BRIDGE_PORT in its environment.
    const port = this.endpoint.slice(this.endpoint.lastIndexOf(":") + 1);
    const child = spawn(this.spec.command, flyte ? this.spec.args.map((arg) => arg.replaceAll("{port}", port)) : this.spec.args, {
      cwd: this.spec.workingDir,
      env: {
        ...process.env,
        // The host's own NATS identity stays with the host: a sidecar gets its own through its env (least
        // privilege); the CA that NATS's certificate is checked against is the same for everyone.
        PLUGIN_BRIDGE_NATS_CREDENTIALS: undefined,
        PLUGIN_BRIDGE_NATS_TLS_CERT: undefined,
        PLUGIN_BRIDGE_NATS_TLS_KEY: undefined,
        PLUGIN_BRIDGE_NATS_TLS_CA: this.connection.natsTlsCa || undefined,
        ...this.spec.env,
        ...(flyte ? { PLUGIN_BRIDGE_PORT: port } : {
          // What a sidecar needs to connect; the kits read these (docs/architecture.md, section 8).
          PLUGIN_BRIDGE_NATS_URL: this.connection.natsUrl,
          PLUGIN_BRIDGE_NATS_REPLICAS: this.connection.natsReplicas === undefined ? undefined : String(this.connection.natsReplicas),
        }),
        PLUGIN_BRIDGE_INSTANCE_ID: this.instanceId,
        PLUGIN_BRIDGE_ENDPOINT: this.endpoint,
        // Issued for the sidecar's name; without a sidecar secret none is handed out (and none inherited). A Flyte
        // connector gets none either way: the host signs its announcements.
        PLUGIN_BRIDGE_TOKEN: flyte ? undefined : this.connection.token,
        PLUGIN_BRIDGE_TOKEN_ID: flyte || this.connection.token === undefined ? undefined : this.spec.name,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const fields = { sidecar: this.spec.name, instance: this.instanceId };
    child.on("error", (error) => this.log.error("sidecar could not be started", { ...fields, error }));
    for (const [stream, source] of [["stdout", child.stdout], ["stderr", child.stderr]] as const) {
      if (!source) continue;
      createInterface({ input: source }).on("line", (line) => this.log.info(line, { ...fields, stream }));
    }
    return child;
  }

  /** "serving" once health answers SERVING; otherwise why not (exited, or the start timeout passed). */
  private async awaitServing(exited: Promise<string>): Promise<string> {
    const deadline = Date.now() + this.spec.startTimeoutMs;
    let gone: string | undefined;
    void exited.then((why) => (gone = why));
    while (!this.stopping.signal.aborted) {
      if (gone) return `exited before serving (${gone})`;
      if (Date.now() >= deadline) return `did not answer SERVING within ${this.spec.startTimeoutMs} ms`;
      if (await this.probe(1_000)) return "serving";
      await sleep(100, this.stopping.signal);
    }
    return "stopped";
  }

  /** Probes a serving replica until it exits or fails too many probes in a row; returns why it ended. */
  private async watch(exited: Promise<string>): Promise<string> {
    let failed = 0;
    let gone: string | undefined;
    void exited.then((why) => (gone = why));
    for (;;) {
      await Promise.race([exited, sleep(this.policy.probeIntervalMs, this.stopping.signal)]);
      if (gone) return gone;
      if (this.stopping.signal.aborted) return "stopped";
      failed = (await this.probe(Math.min(5_000, this.policy.probeIntervalMs))) ? 0 : failed + 1;
      if (failed >= this.policy.failedProbesLimit) {
        await this.terminate();
        return `unhealthy: ${failed} health probes in a row failed`;
      }
    }
  }

  private async probe(timeoutMs: number): Promise<boolean> {
    try {
      const answer = await this.clients.call(Health.method.check, { endpoint: this.endpoint, instanceId: this.instanceId }, { service: "" }, timeoutMs);
      return answer.status === ServingStatus.SERVING;
    } catch {
      return false;
    }
  }

  /** SIGTERM, then SIGKILL after the drain time, to the process this object spawned, if it still runs. */
  private async terminate(): Promise<void> {
    const child = this.child;
    if (!child || !this.running()) return;
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => {
      if (this.running()) child.kill("SIGKILL");
    }, this.policy.drainTimeoutMs);
    await gone;
    clearTimeout(timer);
  }
}
