// Finds the Plugin Specification of a (task type, type version) in the host's PluginRegistryService and turns
// its FileDescriptorSet into a message descriptor, so the SDK can check `custom` and show its schema without the
// plugin's generated code. Results are reused for a short while: every validated submit would otherwise cost a
// registry call, and a specification changes only when a plugin is redeployed.
import { createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import type { PluginRegistryService } from "@plugin-bridge/protocol/pluginbridge/v1/registry_service_pb.js";

/** The specification a (task type, type version) is checked against. */
export interface TaskSpecification {
  readonly type: string;
  readonly version: number;
  /** The plugin whose live instance declared it, with that instance's implementation version. */
  readonly plugin: { readonly name: string; readonly version: string };
  /** The message `custom` must parse as; undefined when the plugin declares none, so any `custom` passes. */
  readonly message: DescMessage | undefined;
}

/**
 * Default reuse time: the host itself still routes to an instance up to 10 s after its last announcement
 * (`ttl_seconds`), so a specification this old is no staler than the host's own view.
 */
export const DEFAULT_SPECIFICATION_CACHE_MS = 10_000;

export class SpecificationCache {
  private readonly entries = new Map<string, { spec: TaskSpecification; expiresAt: number }>();

  constructor(
    private readonly registry: Client<typeof PluginRegistryService>,
    private readonly cacheMs: number,
  ) {}

  /**
   * The specification live instances declare for (type, version). Fails NOT_FOUND for a type or version no live,
   * non-draining instance serves (the host's CreateTask code), FAILED_PRECONDITION for a specification that does
   * not resolve. Only successes are kept: a plugin that is missing now may be announced a moment later.
   */
  async get(type: string, version: number, signal?: AbortSignal): Promise<TaskSpecification> {
    if (type === "") throw new ConnectError("template.type: is required", Code.InvalidArgument);
    const key = `${type}\0${version}`;
    const now = performance.now();
    const cached = this.entries.get(key);
    if (cached && cached.expiresAt > now) return cached.spec;
    const spec = await this.fetch(type, version, signal);
    if (this.cacheMs > 0) {
      for (const [old, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(old);
      this.entries.set(key, { spec, expiresAt: performance.now() + this.cacheMs });
    }
    return spec;
  }

  private async fetch(type: string, version: number, signal?: AbortSignal): Promise<TaskSpecification> {
    const { plugins } = await this.registry.listPlugins({ taskType: type }, { signal });
    // Instances of every version of the type; the host routes only to non-draining ones, and so do we.
    const serving = plugins
      .flatMap((plugin) => plugin.instances)
      .filter((instance) => !instance.draining && instance.descriptor?.taskTypes.some((t) => t.type === type));
    const versionsOf = (instance: PluginInstance) =>
      instance.descriptor?.taskTypes.filter((t) => t.type === type).map((t) => t.version) ?? [];
    // The registry lists plugins by name and instances by version, then id: the first match is a stable choice.
    // Instances serving one (type, version) are expected to share a specification.
    const chosen = serving.find((instance) => versionsOf(instance).includes(version));
    if (!chosen) throw notServed(type, version, plugins.length > 0, [...new Set(serving.flatMap(versionsOf))]);
    const plugin = { name: chosen.descriptor?.name ?? "", version: chosen.descriptor?.version ?? "" };
    return { type, version, plugin, message: specificationMessage(chosen, type) };
  }
}

function notServed(type: string, version: number, typeKnown: boolean, versions: number[]): ConnectError {
  if (!typeKnown) return new ConnectError(`no live plugin serves task type "${type}"`, Code.NotFound);
  const live = versions.length > 0
    ? `versions served: ${versions.sort((a, b) => a - b).join(", ")}`
    : "every instance serving it is draining";
  return new ConnectError(`task type "${type}" has no live plugin for type_version ${version} (${live})`, Code.NotFound);
}

/** The instance's specification message, undefined when it declares none. */
function specificationMessage(instance: PluginInstance, type: string): DescMessage | undefined {
  const spec = instance.descriptor?.specification;
  if (!spec?.fileDescriptorSet || spec.messageName === "") return undefined;
  const unusable = (why: string) =>
    new ConnectError(
      `the plugin "${instance.descriptor?.name}" (instance ${instance.instanceId}) for task type "${type}" declares an unusable specification: ${why}`,
      Code.FailedPrecondition,
    );
  let message: DescMessage | undefined;
  try {
    message = createFileRegistry(spec.fileDescriptorSet).getMessage(spec.messageName);
  } catch (error) {
    throw unusable(error instanceof Error ? error.message : String(error));
  }
  if (!message) throw unusable(`message ${spec.messageName} is not in its file set`);
  return message;
}
