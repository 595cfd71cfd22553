// The sidecars a host starts from its configuration (`sidecars:` in the config file): every replica of every
// sidecar, each kept alive by a SidecarProcess. Sidecars started elsewhere need none of this: they announce
// themselves on NATS like supervised ones do.
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import type { SidecarSpec } from "../config-file.js";
import { freePort } from "../coordination/nats-server-process.js";
import type { Logger } from "../log.js";
import type { HostMetrics } from "../observability/metrics.js";
import { PluginClients } from "../registry/plugin-client.js";
import { DEFAULT_RESTART_POLICY, SidecarProcess, type ReplicaStatus, type RestartPolicy } from "./sidecar-process.js";

export interface SupervisorOptions {
  natsUrl: string;
  log: Logger;
  policy?: Partial<RestartPolicy>;
  metrics?: Pick<HostMetrics, "sidecarRestart">;
}

interface Running {
  spec: SidecarSpec;
  replicas: SidecarProcess[];
}

const sameSpec = (a: SidecarSpec, b: SidecarSpec): boolean => JSON.stringify(a) === JSON.stringify(b);

export class Supervisor {
  private running: Running[] = [];
  private readonly clients = new PluginClients();
  private readonly policy: RestartPolicy;

  private constructor(private readonly options: SupervisorOptions) {
    this.policy = { ...DEFAULT_RESTART_POLICY, ...options.policy };
  }

  /**
   * Starts every replica and returns at once: a host must not wait for its sidecars to serve (it would not even
   * take SIGTERM meanwhile). `ready()` resolves once each serves or has been given up (see status()).
   */
  static async start(specs: readonly SidecarSpec[], options: SupervisorOptions): Promise<Supervisor> {
    const supervisor = new Supervisor(options);
    supervisor.running = await Promise.all(specs.map(async (spec) => await supervisor.launch(spec)));
    return supervisor;
  }

  /** Resolves once every replica serves or has been given up. */
  async ready(): Promise<void> {
    await Promise.all(this.running.flatMap((running) => running.replicas.map((replica) => replica.start())));
  }

  /**
   * Applies a new list of sidecars (a config reload): a sidecar whose spec changed is upgraded — its new replicas
   * start and serve first, then the old ones drain (they announce `draining`, hosts route new steps to the new
   * ones, calls in flight finish) and stop; one that is gone is drained and stopped; a new one is started.
   */
  async reload(specs: readonly SidecarSpec[]): Promise<void> {
    const log = this.options.log.child({ component: "supervisor" });
    const next: Running[] = [];
    const retired: Running[] = [];
    for (const spec of specs) {
      const current = this.running.find((running) => running.spec.name === spec.name);
      if (current && sameSpec(current.spec, spec)) {
        next.push(current);
        continue;
      }
      if (current) log.info("upgrading sidecar: new replicas first", { sidecar: spec.name });
      const launched = await this.launch(spec);
      // The old replicas drain only once the new ones serve.
      await Promise.all(launched.replicas.map((replica) => replica.start()));
      next.push(launched);
      if (current) retired.push(current);
    }
    retired.push(...this.running.filter((running) => !specs.some((spec) => spec.name === running.spec.name)));
    this.running = next;
    await Promise.all(retired.flatMap((running) => running.replicas.map((replica) => replica.stop())));
    if (retired.length > 0) log.info("old sidecar replicas drained and stopped", { sidecars: retired.map((running) => running.spec.name) });
  }

  /** Replaces a sidecar's replicas with fresh ones from the same spec, new ones first (`plugin-bridge dev`). */
  async replace(name: string): Promise<void> {
    const current = this.running.find((running) => running.spec.name === name);
    if (!current) return;
    const launched = await this.launch(current.spec);
    await Promise.all(launched.replicas.map((replica) => replica.start()));
    this.running = this.running.map((running) => (running === current ? launched : running));
    await Promise.all(current.replicas.map((replica) => replica.stop()));
  }

  private async launch(spec: SidecarSpec): Promise<Running> {
    const replicas: SidecarProcess[] = [];
    const log = this.options.log.child({ component: "supervisor" });
    for (let replica = 1; replica <= spec.replicas; replica++) {
      const instanceId = `${spec.name}-${replica}-${randomBytes(3).toString("hex")}`;
      // A unix socket path must stay short (about 100 bytes), so it lives in the temp folder, not the data dir.
      const endpoint = spec.transport === "tcp" ? `127.0.0.1:${await freePort()}` : `unix:${path.join(tmpdir(), `pb-${instanceId}.sock`)}`;
      replicas.push(
        new SidecarProcess(
          spec, instanceId, endpoint, this.options.natsUrl, this.clients, this.policy, log,
          (status) => log.error("sidecar given up", { ...status }),
          () => this.options.metrics?.sidecarRestart(spec.name),
        ),
      );
    }
    log.info("starting sidecar", { sidecar: spec.name, replicas: replicas.length });
    for (const replica of replicas) void replica.start();
    return { spec, replicas };
  }

  status(): ReplicaStatus[] {
    return this.running.flatMap((running) => running.replicas.map((replica) => replica.status()));
  }

  /** Drains every replica (SIGTERM, the drain time, SIGKILL) and waits for all of them. */
  async stop(): Promise<void> {
    await Promise.all(this.running.flatMap((running) => running.replicas.map((replica) => replica.stop())));
    this.clients.close();
  }
}
