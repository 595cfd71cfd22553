// Builds the PluginDescriptor that Describe returns and every announcement carries. Its specification is a
// FileDescriptorSet with the spec message's file and all of its transitive imports (well-known types too), in
// dependency order, so a host or SDK can `createFileRegistry(set)` and validate `custom` without our code.
import { create, type DescFile, type DescMessage } from "@bufbuild/protobuf";
import {
  durationFromMs,
  FileDescriptorSetSchema,
  type FileDescriptorProto,
  type FileDescriptorSet,
} from "@bufbuild/protobuf/wkt";
import {
  PluginDescriptorSchema,
  PluginKind,
  type PluginDescriptor,
} from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import type { Plugin, PluginProperties } from "./plugin.js";

/** The descriptor's kind of each kind of declaration. */
const kinds: Record<Plugin["kind"], PluginKind> = {
  async: PluginKind.ASYNC,
  sync: PluginKind.SYNC,
  core: PluginKind.CORE,
};

/** The message's file and its transitive dependencies, each once, every file after the files it imports. */
export function fileDescriptorSetFor(message: DescMessage): FileDescriptorSet {
  const ordered: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const visit = (file: DescFile): void => {
    if (seen.has(file.name)) return;
    seen.add(file.name);
    for (const dependency of file.dependencies) visit(dependency);
    ordered.push(file.proto);
  };
  visit(message.file);
  return create(FileDescriptorSetSchema, { file: ordered });
}

function duration(ms: number | undefined) {
  return ms === undefined ? undefined : durationFromMs(ms);
}

function propertiesInit(properties: PluginProperties = {}) {
  return {
    resyncInterval: duration(properties.resyncInterval),
    createTimeout: duration(properties.createTimeout),
    getTimeout: duration(properties.getTimeout),
    deleteTimeout: duration(properties.deleteTimeout),
    doTimeout: duration(properties.doTimeout),
    handleTimeout: duration(properties.handleTimeout),
    abortTimeout: duration(properties.abortTimeout),
    finalizeTimeout: duration(properties.finalizeTimeout),
    maxSystemFailures: properties.maxSystemFailures ?? 0,
    readLimit: properties.readLimit && { qps: properties.readLimit.qps, burst: properties.readLimit.burst ?? 0 },
    writeLimit: properties.writeLimit && { qps: properties.writeLimit.qps, burst: properties.writeLimit.burst ?? 0 },
    quota: properties.quota && { total: properties.quota.total ?? 0, perNamespace: properties.quota.perNamespace ?? 0 },
  };
}

/** The descriptor of a declared plugin. */
export function pluginDescriptor(plugin: Plugin): PluginDescriptor {
  return create(PluginDescriptorSchema, {
    name: plugin.name,
    version: plugin.version,
    taskTypes: plugin.taskTypes.map(({ type, version, minVersion }) => ({ type, version, minVersion })),
    kind: kinds[plugin.kind],
    defaultForUnclaimedTypes: plugin.defaultForUnclaimedTypes ?? false,
    properties: propertiesInit(plugin.properties),
    specification: {
      fileDescriptorSet: fileDescriptorSetFor(plugin.specification),
      messageName: plugin.specification.typeName,
    },
  });
}
