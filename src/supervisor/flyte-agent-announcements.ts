// The announcements of a Flyte connector server, which cannot announce itself: the host asks it which agents it
// has (ListAgents) and announces one plugin instance per agent in pb_plugins, heartbeat and all, with the kit's
// Announcer (signed with the token of the sidecar's or connector's name when the hosts require it). Every host then
// routes to it as to any sidecar, and calls it through src/flyte/driving/. Draining and withdrawing them is the
// host's job too: the server has no idea the bridge exists. Two kinds use this: a supervised `flyte-agent` replica
// (src/supervisor/sidecar-process.ts) and a remote connector (`flyteConnectors`, remote-flyte-connector.ts).
import { equals } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { KV } from "@nats-io/kv";
import { Announcer, kvKey, SidecarToken } from "@plugin-bridge/kit";
import { AgentMetadataService } from "@plugin-bridge/protocol/flyteidl/service/agent_pb.js";
import { PluginDescriptorSchema, PluginProtocol, type PluginDescriptor } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import type { FlyteAgentSettings } from "../config-file.js";
import { agentPlugins } from "../flyte/driving/agent-descriptors.js";
import type { Logger } from "../log.js";
import type { PluginClients } from "../registry/plugin-client.js";
import type { ReplicaAnnouncements } from "./sidecar-process.js";

/** What the host lends to announce Flyte connectors. */
export interface FlyteAnnouncing {
  /** The pb_plugins bucket. */
  plugins: KV;
  /** The host's own plugin calls: a drain lets those under way finish before the server is stopped. */
  calls: Pick<PluginClients, "idle">;
  /** The instances announced now, with their connector's output prefix, which Flyte's calls carry. */
  outputPrefixes: Map<string, string>;
}

/** Which connector server is announced, and under which ids. */
export interface FlyteAgentSource {
  /** The sidecar's or the remote connector's name: the token signing the announcements is issued for it. */
  name: string;
  /**
   * Instance ids are `<idPrefix>-<agent slug>`: the replica id for a supervised server (the same after a restart of
   * the replica), the connector's name for a remote one (the same on every host).
   */
  idPrefix: string;
  endpoint: string;
  settings: FlyteAgentSettings;
}

/** How long ListAgents may take; the server answers it from memory. */
const LIST_TIMEOUT_MS = 10_000;
/** How long an announce waits for new announcements to be stored (NATS down: they follow at the next heartbeats). */
const FIRST_ANNOUNCEMENT_WAIT_MS = 5_000;

interface Announced {
  instanceId: string;
  agent: string;
  descriptor: PluginDescriptor;
  announcer: Announcer;
}

export class FlyteAgentAnnouncements implements ReplicaAnnouncements {
  private announced: Announced[] = [];
  private readonly token: SidecarToken | undefined;

  constructor(
    private readonly source: FlyteAgentSource,
    /** The channels ListAgents goes over (the supervisor's, or the remote connector's own). */
    private readonly clients: PluginClients,
    private readonly announcing: FlyteAnnouncing,
    token: string | undefined,
    /** Carries who is announced (sidecar and replica, or remote connector). */
    private readonly log: Logger,
  ) {
    this.token = token === undefined ? undefined : new SidecarToken(source.name, token);
  }

  /**
   * Lists the server's agents and brings the announcements in line: new agents are announced, changed ones
   * announced anew, gone ones withdrawn; unchanged ones keep heartbeating. Throws when the server cannot be listed
   * or serves no agent the configuration wants; what was announced before stays.
   */
  async announce(): Promise<void> {
    const { endpoint, idPrefix, settings } = this.source;
    const listed = await this.clients.call(AgentMetadataService.method.listAgents, { endpoint, instanceId: idPrefix }, {}, LIST_TIMEOUT_MS);
    const plugins = agentPlugins(listed.agents, settings);
    if (plugins.length === 0) throw new Error("the connector serves no agent");
    const wanted = plugins.map((plugin) => ({ ...plugin, instanceId: `${idPrefix}-${plugin.slug}` }));
    const kept = this.announced.filter((current) => wanted.some((plugin) => plugin.instanceId === current.instanceId && equals(PluginDescriptorSchema, plugin.descriptor, current.descriptor)));
    const gone = this.announced.filter((current) => !kept.includes(current));
    const fresh = wanted.filter((plugin) => !kept.some((current) => current.instanceId === plugin.instanceId));
    if (gone.length === 0 && fresh.length === 0) return;
    // A changed agent's key is overwritten by its new announcer: it stays routed meanwhile.
    const replaced = gone.filter((current) => fresh.some((plugin) => plugin.instanceId === current.instanceId));
    await Promise.all(gone.map(async (current) => (replaced.includes(current) ? await current.announcer.stop() : await current.announcer.withdraw())));
    for (const current of gone) if (!replaced.includes(current)) this.announcing.outputPrefixes.delete(current.instanceId);
    const startedAt = timestampNow();
    const added = fresh.map((plugin): Announced => {
      const announcer = new Announcer({
        key: kvKey(plugin.descriptor.name, plugin.instanceId),
        instanceId: plugin.instanceId,
        endpoint,
        descriptor: plugin.descriptor,
        startedAt,
        bucket: async () => this.announcing.plugins,
        log: (level, message, fields) => this.log[level](message, { ...fields, agent: plugin.agent }),
        ...(this.token && { token: this.token }),
        protocol: PluginProtocol.FLYTE_AGENT,
      });
      this.announcing.outputPrefixes.set(plugin.instanceId, settings.outputPrefix);
      announcer.start();
      return { instanceId: plugin.instanceId, agent: plugin.agent, descriptor: plugin.descriptor, announcer };
    });
    this.announced = [...kept, ...added];
    await Promise.race([
      Promise.all(added.map(({ announcer }) => announcer.announced)),
      new Promise((resolve) => setTimeout(resolve, FIRST_ANNOUNCEMENT_WAIT_MS).unref()),
    ]);
    this.log.info("announced the Flyte connector's agents", {
      agents: this.announced.map((current) => `${current.agent} as ${current.descriptor.name}`),
      ...(gone.length > replaced.length && { withdrawn: gone.filter((current) => !replaced.includes(current)).map((current) => current.agent) }),
    });
  }

  async drain(timeoutMs: number): Promise<void> {
    if (this.announced.length === 0) return;
    await Promise.all(this.announced.map(({ announcer }) => announcer.setDraining()));
    await this.announcing.calls.idle(this.source.endpoint, timeoutMs);
  }

  /** Stops the heartbeats and deletes the keys: hosts stop routing to the server before the TTL would. */
  async withdraw(): Promise<void> {
    const announced = this.forget();
    await Promise.all(announced.map(({ announcer }) => announcer.withdraw()));
  }

  /** Stops the heartbeats and leaves the keys: others announcing the same instances keep them, else the TTL ends them. */
  async stop(): Promise<void> {
    const announced = this.forget();
    await Promise.all(announced.map(({ announcer }) => announcer.stop()));
  }

  private forget(): Announced[] {
    const announced = this.announced;
    this.announced = [];
    for (const { instanceId } of announced) this.announcing.outputPrefixes.delete(instanceId);
    return announced;
  }
}
