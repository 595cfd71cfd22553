// What the host announces for a Flyte connector server: one plugin per agent it serves (ListAgents), each named by
// its agent's slug, serving the agent's task categories, with the kind Flyte gives it (sync or async) and the
// properties the sidecar's configuration sets. flytekit lists its built-in agents (Sensor, Webhook Connector) beside
// the connector's own; `agents` in the configuration picks some by name.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { Agent } from "@plugin-bridge/protocol/flyteidl/admin/agent_pb.js";
import {
  PluginDescriptorSchema,
  PluginKind,
  type PluginDescriptor,
  type PluginPropertiesSchema,
} from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import type { FlyteAgentProperties, FlyteAgentSettings } from "../../config-file.js";

/** One agent as announced: the plugin it is, and the suffix of its instance ids. */
export interface AgentPlugin {
  /** The agent's name as the connector gives it. */
  agent: string;
  /** The plugin's name and the instance id's suffix: letters, digits and '-'. */
  slug: string;
  descriptor: PluginDescriptor;
}

/** The agents of a server the configuration picks, as plugins; throws when it names one the server does not list. */
export function agentPlugins(agents: readonly Agent[], settings: FlyteAgentSettings): AgentPlugin[] {
  const wanted = settings.agents;
  if (wanted) {
    const missing = wanted.filter((name) => !agents.some((agent) => agent.name === name || slug(agent.name) === name));
    if (missing.length > 0) {
      throw new Error(`the connector serves no agent named ${missing.map((name) => JSON.stringify(name)).join(", ")} (it serves ${agents.map((agent) => JSON.stringify(agent.name)).join(", ") || "none"})`);
    }
  }
  const taken = new Set<string>();
  const plugins: AgentPlugin[] = [];
  for (const agent of agents) {
    if (wanted && !wanted.includes(agent.name) && !wanted.includes(slug(agent.name))) continue;
    let name = slug(agent.name);
    for (let n = 2; taken.has(name); n++) name = `${slug(agent.name)}-${n}`;
    taken.add(name);
    plugins.push({ agent: agent.name, slug: name, descriptor: descriptorOf(agent, name, settings) });
  }
  return plugins;
}

/** "Bridge Echo Connector" → "bridge-echo-connector": what a plugin name and a NATS key token may hold. */
export function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64) || "agent";
}

function descriptorOf(agent: Agent, name: string, settings: FlyteAgentSettings): PluginDescriptor {
  // Task categories name the versions; connectors older than them list bare task types (version 0).
  const taskTypes = agent.supportedTaskCategories.length > 0
    ? agent.supportedTaskCategories.map((category) => ({ type: category.name, version: category.version }))
    : agent.supportedTaskTypes.map((type) => ({ type, version: 0 }));
  return create(PluginDescriptorSchema, {
    name,
    version: settings.version,
    taskTypes,
    kind: agent.isSync ? PluginKind.SYNC : PluginKind.ASYNC,
    properties: properties(settings.properties),
  });
}

/** The configured properties as a descriptor's; unset ones stay unset (the host's defaults). */
function properties(configured: FlyteAgentProperties): MessageInitShape<typeof PluginPropertiesSchema> {
  const { resyncIntervalMs, createTimeoutMs, getTimeoutMs, deleteTimeoutMs, doTimeoutMs, maxSystemFailures } = configured;
  return {
    ...(resyncIntervalMs !== undefined && { resyncInterval: durationFromMs(resyncIntervalMs) }),
    ...(createTimeoutMs !== undefined && { createTimeout: durationFromMs(createTimeoutMs) }),
    ...(getTimeoutMs !== undefined && { getTimeout: durationFromMs(getTimeoutMs) }),
    ...(deleteTimeoutMs !== undefined && { deleteTimeout: durationFromMs(deleteTimeoutMs) }),
    ...(doTimeoutMs !== undefined && { doTimeout: durationFromMs(doTimeoutMs) }),
    ...(maxSystemFailures !== undefined && { maxSystemFailures }),
  };
}
