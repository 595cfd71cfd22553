// The sidecars a host starts from its configuration (`sidecars:` in the config file): every replica of every
// sidecar, each kept alive by a SidecarProcess. Sidecars started elsewhere need none of this: they announce
// themselves on NATS like supervised ones do.
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import type { SidecarSpec } from "../config-file.js";
import { freePort } from "../coordination/nats-server-process.js";
import type { Logger } from "../log.js";
import { PluginClients } from "../registry/plugin-client.js";
import { DEFAULT_RESTART_POLICY, SidecarProcess, type ReplicaStatus, type RestartPolicy } from "./sidecar-process.js";

export interface SupervisorOptions {
  natsUrl: string;
  log: Logger;
  policy?: Partial<RestartPolicy>;
}

export class Supervisor {
  private readonly replicas: SidecarProcess[] = [];
  private readonly clients = new PluginClients();
  private readonly policy: RestartPolicy;

  private constructor(private readonly options: SupervisorOptions) {
    this.policy = { ...DEFAULT_RESTART_POLICY, ...options.policy };
  }

  /** Starts every replica; resolves once each serves or has been given up (see status()). */
  static async start(specs: readonly SidecarSpec[], options: SupervisorOptions): Promise<Supervisor> {
    const supervisor = new Supervisor(options);
    for (const spec of specs) {
      for (let replica = 1; replica <= spec.replicas; replica++) {
        const instanceId = `${spec.name}-${replica}-${randomBytes(3).toString("hex")}`;
        // A unix socket path must stay short (about 100 bytes), so it lives in the temp folder, not the data dir.
        const endpoint = spec.transport === "tcp" ? `127.0.0.1:${await freePort()}` : `unix:${path.join(tmpdir(), `pb-${instanceId}.sock`)}`;
        const log = options.log.child({ component: "supervisor" });
        supervisor.replicas.push(
          new SidecarProcess(spec, instanceId, endpoint, options.natsUrl, supervisor.clients, supervisor.policy, log, (status) =>
            log.error("sidecar given up", { ...status }),
          ),
        );
      }
    }
    if (supervisor.replicas.length > 0) options.log.info("starting sidecars", { count: supervisor.replicas.length });
    await Promise.all(supervisor.replicas.map((replica) => replica.start()));
    return supervisor;
  }

  status(): ReplicaStatus[] {
    return this.replicas.map((replica) => replica.status());
  }

  /** Drains every replica (SIGTERM, the drain time, SIGKILL) and waits for all of them. */
  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => replica.stop()));
    this.clients.close();
  }
}
