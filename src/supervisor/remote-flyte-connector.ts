// A Flyte connector server that runs elsewhere (`flyteConnectors:` in the config file): it cannot announce itself,
// and no host starts it, so every host configured with it watches it. A loop probes its gRPC health; while it
// serves, its agents are announced (and listed again now and then, so new agents appear) exactly as a supervised
// connector's are (flyte-agent-announcements.ts); once it stops answering they are withdrawn. Every host writes the
// same announcements under the same ids (`<name>-<agent slug>`): harmless, and the agents stay routed while any host
// lives.
import { HealthCheckResponse_ServingStatus as ServingStatus, Health } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import type { FlyteConnectorSpec } from "../config-file.js";
import type { Logger } from "../log.js";
import { PluginClients } from "../registry/plugin-client.js";
import { FlyteAgentAnnouncements, type FlyteAnnouncing } from "./flyte-agent-announcements.js";
import { sleep } from "./sidecar-process.js";

/** How often the endpoint's health is probed, and how long a probe may take. */
const PROBE_INTERVAL_MS = 2_000;
const PROBE_TIMEOUT_MS = 2_000;
/** This many failed probes in a row and the connector is unreachable: one lost probe does not withdraw it. */
const FAILED_PROBES_LIMIT = 2;
/** How often a serving connector's agents are listed again. */
const RELIST_INTERVAL_MS = 30_000;

export class RemoteFlyteConnector {
  /** Its own channel: closed after every failed probe (see probe()). */
  private readonly clients = new PluginClients();
  private readonly announcements: FlyteAgentAnnouncements;
  private readonly stopping = new AbortController();
  private readonly log: Logger;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly spec: FlyteConnectorSpec,
    announcing: FlyteAnnouncing,
    /** The token of the connector's name, when the hosts require signed announcements. */
    token: string | undefined,
    log: Logger,
  ) {
    this.log = log.child({ flyteConnector: spec.name, endpoint: spec.endpoint });
    const source = { name: spec.name, idPrefix: spec.name, endpoint: spec.endpoint, settings: spec.flyte };
    this.announcements = new FlyteAgentAnnouncements(source, this.clients, announcing, token, this.log);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Ends the loop and the heartbeats but does NOT delete the announcements: other hosts may still reach the
   * connector and keep them alive; when none heartbeats any more, the bucket's TTL removes them.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    await this.announcements.stop();
    this.clients.close();
  }

  private async run(): Promise<void> {
    let reachable: boolean | undefined;
    let failed = 0;
    let listedAt: number | undefined;
    /** The last announce failure logged: a lasting one is logged once, not at every probe. */
    let lastProblem = "";
    while (!this.stopping.signal.aborted) {
      const notServing = await this.probe();
      if (notServing === undefined) {
        failed = 0;
        if (reachable !== true) this.log.info("remote Flyte connector reachable");
        reachable = true;
        if (listedAt === undefined || Date.now() - listedAt >= RELIST_INTERVAL_MS) {
          try {
            await this.announcements.announce();
            listedAt = Date.now();
            lastProblem = "";
          } catch (error) {
            // Retried at the next probe; what was announced before stays announced meanwhile.
            const message = error instanceof Error ? error.message : String(error);
            if (message !== lastProblem) this.log.warn("remote Flyte connector's agents not announced; retrying", { error: message });
            lastProblem = message;
          }
        }
      } else if (++failed >= FAILED_PROBES_LIMIT && reachable !== false) {
        this.log.info(reachable ? "remote Flyte connector unreachable: its agents withdrawn" : "remote Flyte connector unreachable", { why: notServing });
        if (reachable) await this.announcements.withdraw();
        reachable = false;
        listedAt = undefined;
        lastProblem = "";
      }
      await sleep(PROBE_INTERVAL_MS, this.stopping.signal);
    }
  }

  /** Undefined when the connector answers SERVING; otherwise why not. */
  private async probe(): Promise<string | undefined> {
    try {
      const answer = await this.clients.call(Health.method.check, { endpoint: this.spec.endpoint, instanceId: this.spec.name }, { service: "" }, PROBE_TIMEOUT_MS);
      if (answer.status === ServingStatus.SERVING) return undefined;
      return `health ${ServingStatus[answer.status] ?? answer.status}`;
    } catch (error) {
      // A fresh channel for the next probe: grpc-js backs off reconnecting (up to 2 minutes) and would fail probes
      // fast meanwhile, hiding a connector that came back.
      this.clients.close();
      return error instanceof Error ? error.message : String(error);
    }
  }
}
