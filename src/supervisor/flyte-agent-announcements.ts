// The announcements of a supervised Flyte connector server, which cannot announce itself: once it serves, the host
// asks it which agents it has (ListAgents) and announces one plugin instance per agent in pb_plugins, heartbeat
// and all, with the kit's Announcer (signed with the sidecar's token when the hosts require it). Every host then
// routes to it as to any sidecar, and calls it through src/flyte/driving/. Draining and withdrawing them is the
// host's job too: the server has no idea the bridge exists.
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { KV } from "@nats-io/kv";
import { Announcer, kvKey, SidecarToken } from "@plugin-bridge/kit";
import { AgentMetadataService } from "@plugin-bridge/protocol/flyteidl/service/agent_pb.js";
import { PluginProtocol } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import type { FlyteAgentSettings } from "../config-file.js";
import { agentPlugins } from "../flyte/driving/agent-descriptors.js";
import type { Logger } from "../log.js";
import type { PluginClients } from "../registry/plugin-client.js";
import type { ReplicaAnnouncements } from "./sidecar-process.js";

/** What the host lends its supervisor to announce Flyte connectors. */
export interface FlyteAnnouncing {
  /** The pb_plugins bucket. */
  plugins: KV;
  /** The host's own plugin calls: a drain lets those under way finish before the server is stopped. */
  calls: Pick<PluginClients, "idle">;
  /** The instances announced now, with their sidecar's output prefix, which Flyte's calls carry. */
  outputPrefixes: Map<string, string>;
}

/** How long ListAgents may take; the server answers it from memory. */
const LIST_TIMEOUT_MS = 10_000;
/** How long a start waits for the first announcements to be stored (NATS down: they follow at the next heartbeats). */
const FIRST_ANNOUNCEMENT_WAIT_MS = 5_000;

export class FlyteAgentAnnouncements implements ReplicaAnnouncements {
  private announcers: Array<{ instanceId: string; announcer: Announcer }> = [];

  constructor(
    private readonly sidecar: string,
    private readonly settings: FlyteAgentSettings,
    private readonly replicaId: string,
    private readonly endpoint: string,
    /** The supervisor's channels, for ListAgents. */
    private readonly clients: PluginClients,
    private readonly announcing: FlyteAnnouncing,
    private readonly token: string | undefined,
    private readonly drainTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  async announce(): Promise<void> {
    const listed = await this.clients.call(AgentMetadataService.method.listAgents, { endpoint: this.endpoint, instanceId: this.replicaId }, {}, LIST_TIMEOUT_MS);
    const plugins = agentPlugins(listed.agents, this.settings);
    if (plugins.length === 0) throw new Error("the connector serves no agent");
    const startedAt = timestampNow();
    const token = this.token === undefined ? undefined : new SidecarToken(this.sidecar, this.token);
    const kitLog = this.log.child({ sidecar: this.sidecar });
    for (const plugin of plugins) {
      // The replica's id and the agent's slug: unique, and the same after a restart of the replica.
      const instanceId = `${this.replicaId}-${plugin.slug}`;
      const announcer = new Announcer({
        key: kvKey(plugin.descriptor.name, instanceId),
        instanceId,
        endpoint: this.endpoint,
        descriptor: plugin.descriptor,
        startedAt,
        bucket: async () => this.announcing.plugins,
        log: (level, message, fields) => kitLog[level](message, { ...fields, agent: plugin.agent }),
        ...(token && { token }),
        protocol: PluginProtocol.FLYTE_AGENT,
      });
      this.announcing.outputPrefixes.set(instanceId, this.settings.outputPrefix);
      this.announcers.push({ instanceId, announcer });
      announcer.start();
    }
    await Promise.race([
      Promise.all(this.announcers.map(({ announcer }) => announcer.announced)),
      new Promise((resolve) => setTimeout(resolve, FIRST_ANNOUNCEMENT_WAIT_MS).unref()),
    ]);
    this.log.info("announced the Flyte connector's agents", {
      sidecar: this.sidecar,
      instance: this.replicaId,
      agents: plugins.map((plugin) => `${plugin.agent} as ${plugin.slug}`),
    });
  }

  async drain(): Promise<void> {
    if (this.announcers.length === 0) return;
    await Promise.all(this.announcers.map(({ announcer }) => announcer.setDraining()));
    await this.announcing.calls.idle(this.endpoint, this.drainTimeoutMs);
  }

  async withdraw(): Promise<void> {
    const announcers = this.announcers;
    this.announcers = [];
    await Promise.all(announcers.map(({ announcer }) => announcer.withdraw()));
    for (const { instanceId } of announcers) this.announcing.outputPrefixes.delete(instanceId);
  }
}
