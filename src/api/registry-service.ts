// PluginRegistryService: which plugins are live, in which versions and where, straight from the routing table.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import {
  PluginSchema,
  type Plugin,
  type PluginRegistryService,
} from "@plugin-bridge/protocol/pluginbridge/v1/registry_service_pb.js";
import type { RoutingTable } from "../registry/routing-table.js";
import { invalid } from "./validation.js";

const NAME_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

function byVersionThenId(a: PluginInstance, b: PluginInstance): number {
  const version = (a.descriptor?.version ?? "").localeCompare(b.descriptor?.version ?? "", undefined, { numeric: true });
  return version !== 0 ? version : a.instanceId.localeCompare(b.instanceId);
}

function group(instances: PluginInstance[]): Plugin[] {
  const byName = new Map<string, PluginInstance[]>();
  for (const instance of instances) {
    const name = instance.descriptor?.name ?? "";
    byName.set(name, [...(byName.get(name) ?? []), instance]);
  }
  return [...byName.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, members]) => create(PluginSchema, { name, instances: members.sort(byVersionThenId) }));
}

export function createRegistryService(routing: RoutingTable): ServiceImpl<typeof PluginRegistryService> {
  return {
    listPlugins(request) {
      if (request.taskType.length > 128) throw invalid("task_type", "is longer than 128 characters");
      const live = routing
        .live()
        .filter((instance) => !request.taskType || instance.descriptor?.taskTypes.some((t) => t.type === request.taskType));
      return { plugins: group(live) };
    },

    getPlugin(request) {
      if (!NAME_PATTERN.test(request.name)) throw invalid("name", "must be 1-128 letters, digits, '_' or '-'");
      const plugin = group(routing.live().filter((instance) => instance.descriptor?.name === request.name))[0];
      if (!plugin) throw new ConnectError(`no live plugin is named "${request.name}"`, Code.NotFound);
      return { plugin };
    },
  };
}
