// The sidecars a host starts from its configuration (`sidecars:` in the config file): every replica of every
// sidecar, each kept alive by a SidecarProcess. Sidecars started elsewhere need none of this: they announce
// themselves on NATS like supervised ones do.
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FlyteAgentSettings, SidecarSpec } from "../config-file.js";
import { freePort } from "../coordination/nats-server-process.js";
import type { Logger } from "../log.js";
import type { HostMetrics } from "../observability/metrics.js";
import { PluginClients } from "../registry/plugin-client.js";
import { FlyteAgentAnnouncements, type FlyteAnnouncing } from "./flyte-agent-announcements.js";
import { DEFAULT_RESTART_POLICY, SidecarProcess, type ReplicaStatus, type RestartPolicy, type SidecarConnection } from "./sidecar-process.js";

export interface SupervisorOptions {
  natsUrl: string;
  /** The CA file NATS's certificate is checked against; handed to every replica. */
  natsTlsCa?: string;
  /** The hosts' copies of each stream and bucket; handed to every replica. */
  natsReplicas?: number;
  log: Logger;
  policy?: Partial<RestartPolicy>;
  metrics?: Pick<HostMetrics, "sidecarRestart">;
  /** The token of a sidecar name, when the hosts require signed announcements (SidecarAuth). */
  tokenFor?: (name: string) => string;
  /** What announcing `flyte-agent` sidecars takes (the host's NATS and calls); without it they cannot be started. */
  flyte?: FlyteAnnouncing;
}

interface Running {
  spec: SidecarSpec;
  replicas: SidecarProcess[];
}

const sameSpec = (a: SidecarSpec, b: SidecarSpec): boolean => JSON.stringify(a) === JSON.stringify(b);

/** A name the supervisor does not run. */
export class UnknownSidecarError extends Error {
  constructor(readonly sidecar: string, readonly known: string[]) {
    super(`no supervised sidecar is named "${sidecar}" (supervised: ${known.length > 0 ? known.join(", ") : "none"})`);
    this.name = "UnknownSidecarError";
  }
}

/** Another upgrade of the same sidecar has not finished. */
export class UpgradeUnderWayError extends Error {
  constructor(readonly sidecar: string) {
    super(`an upgrade of sidecar "${sidecar}" is already under way`);
    this.name = "UpgradeUnderWayError";
  }
}

/** New replicas that did not come to serve; the old ones still run. */
export class UpgradeFailedError extends Error {
  constructor(readonly sidecar: string, readonly reports: ReplicaStatus[]) {
    super(
      `sidecar "${sidecar}" not upgraded, the old replicas keep serving: ${reports.map((report) => `${report.instanceId} ${report.state}${report.lastExit ? ` (${report.lastExit})` : ""}`).join("; ")}`,
    );
    this.name = "UpgradeFailedError";
  }
}

export class Supervisor {
  private running: Running[] = [];
  /** Sidecars with an upgrade under way: one at a time each. */
  private readonly upgrading = new Set<string>();
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
   * Applies a new list of sidecars (a config reload): a sidecar whose spec changed is upgraded (see `upgrade`); one
   * that is gone is drained and stopped; a new one is started. A sidecar whose new replicas do not serve keeps its
   * old ones, and the others are applied all the same.
   */
  async reload(specs: readonly SidecarSpec[]): Promise<void> {
    const log = this.options.log.child({ component: "supervisor" });
    for (const spec of specs) {
      const current = this.find(spec.name);
      if (current && sameSpec(current.spec, spec)) continue;
      try {
        if (current) await this.upgrade(spec);
        else this.running.push(await this.launch(spec));
      } catch (error) {
        if (!(error instanceof UpgradeFailedError)) throw error;
        log.error("sidecar not upgraded: the old replicas keep serving", { sidecar: spec.name, reports: error.reports });
      }
    }
    const gone = this.running.filter((running) => !specs.some((spec) => spec.name === running.spec.name));
    this.running = this.running.filter((running) => !gone.includes(running));
    await Promise.all(gone.flatMap((running) => running.replicas.map((replica) => replica.stop())));
    if (gone.length > 0) log.info("removed sidecars drained and stopped", { sidecars: gone.map((running) => running.spec.name) });
  }

  /**
   * Replaces a sidecar's replicas with new ones from `spec` (default: the spec it runs), new ones first: they start
   * and serve, hosts route new steps to them, then the old ones drain (they announce `draining`, calls in flight
   * finish) and stop. When a new replica does not serve (start timeout, crash loop) the new ones are stopped, the
   * old ones keep serving, and UpgradeFailedError says why. Returns the retired replicas' last status.
   */
  async upgrade(spec: SidecarSpec): Promise<ReplicaStatus[]> {
    const current = this.find(spec.name);
    if (!current) throw new UnknownSidecarError(spec.name, this.running.map((running) => running.spec.name));
    if (this.upgrading.has(spec.name)) throw new UpgradeUnderWayError(spec.name);
    this.upgrading.add(spec.name);
    try {
      const log = this.options.log.child({ component: "supervisor" });
      log.info("upgrading sidecar: new replicas first", { sidecar: spec.name });
      const launched = await this.launch(spec);
      await Promise.all(launched.replicas.map((replica) => replica.start()));
      const failed = launched.replicas.map((replica) => replica.status()).filter((status) => status.state !== "serving");
      if (failed.length > 0) {
        await Promise.all(launched.replicas.map((replica) => replica.stop()));
        throw new UpgradeFailedError(spec.name, failed);
      }
      this.running = this.running.map((running) => (running === current ? launched : running));
      await Promise.all(current.replicas.map((replica) => replica.stop()));
      log.info("sidecar upgraded: old replicas drained and stopped", { sidecar: spec.name });
      return current.replicas.map((replica) => replica.status());
    } finally {
      this.upgrading.delete(spec.name);
    }
  }

  /** Replaces a sidecar's replicas with fresh ones from the same spec (`plugin-bridge dev` after a file changed). */
  async replace(name: string): Promise<void> {
    const current = this.find(name);
    if (current) await this.upgrade(current.spec);
  }

  /** The spec a supervised sidecar runs; undefined for a name the supervisor does not know. */
  specOf(name: string): SidecarSpec | undefined {
    return this.find(name)?.spec;
  }

  /** Every supervised sidecar with its replicas' status, in the configuration's order. */
  sidecars(): Array<{ spec: SidecarSpec; replicas: ReplicaStatus[] }> {
    return this.running.map((running) => ({ spec: running.spec, replicas: running.replicas.map((replica) => replica.status()) }));
  }

  private connectionFor(name: string): SidecarConnection {
    const token = this.options.tokenFor?.(name);
    return {
      natsUrl: this.options.natsUrl,
      ...(this.options.natsTlsCa && { natsTlsCa: this.options.natsTlsCa }),
      ...(this.options.natsReplicas && { natsReplicas: this.options.natsReplicas }),
      ...(token && { token }),
    };
  }

  private find(name: string): Running | undefined {
    return this.running.find((running) => running.spec.name === name);
  }

  private async launch(spec: SidecarSpec): Promise<Running> {
    const replicas: SidecarProcess[] = [];
    const log = this.options.log.child({ component: "supervisor" });
    for (let replica = 1; replica <= spec.replicas; replica++) {
      const instanceId = `${spec.name}-${replica}-${randomBytes(3).toString("hex")}`;
      // A unix socket path must stay short (about 100 bytes), so it lives in the temp folder, not the data dir.
      const endpoint = spec.transport === "tcp" ? `127.0.0.1:${await freePort()}` : `unix:${path.join(tmpdir(), `pb-${instanceId}.sock`)}`;
      const connection = this.connectionFor(spec.name);
      replicas.push(
        new SidecarProcess(
          spec, instanceId, endpoint, connection, this.clients, this.policy, log,
          (status) => log.error("sidecar given up", { ...status }),
          () => this.options.metrics?.sidecarRestart(spec.name),
          spec.flyte && this.flyteAnnouncements(spec.name, spec.flyte, instanceId, endpoint, connection.token, log),
        ),
      );
    }
    log.info("starting sidecar", { sidecar: spec.name, replicas: replicas.length });
    for (const replica of replicas) void replica.start();
    return { spec, replicas };
  }

  private flyteAnnouncements(
    name: string,
    settings: FlyteAgentSettings,
    instanceId: string,
    endpoint: string,
    token: string | undefined,
    log: Logger,
  ): FlyteAgentAnnouncements {
    if (!this.options.flyte) throw new Error(`sidecar "${name}" is a Flyte connector: only a host connected to NATS can announce it`);
    const source = { name, idPrefix: instanceId, endpoint, settings };
    return new FlyteAgentAnnouncements(source, this.clients, this.options.flyte, token, log.child({ sidecar: name, instance: instanceId }));
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
