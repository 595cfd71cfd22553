// The Plugin Specification each instance declares, turned into a message descriptor the host can check
// `custom` against without the plugin's code. Built once per instance. The check itself is the SDK's
// `customProblem`, so an SDK that checks first reports exactly what the host would.
import { createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import type { PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";

export class Specifications {
  private readonly byInstance = new Map<string, DescMessage | Error>();

  /** The instance's specification message; an Error when its descriptor set does not resolve. */
  of(instance: PluginInstance): DescMessage | Error | undefined {
    const spec = instance.descriptor?.specification;
    if (!spec?.fileDescriptorSet || spec.messageName === "") return undefined;
    let found = this.byInstance.get(instance.instanceId);
    if (!found) {
      try {
        const registry = createFileRegistry(spec.fileDescriptorSet);
        found = registry.getMessage(spec.messageName) ?? new Error(`message ${spec.messageName} is not in its file set`);
      } catch (error) {
        found = error instanceof Error ? error : new Error(String(error));
      }
      this.byInstance.set(instance.instanceId, found);
    }
    return found;
  }

  forget(instanceId: string): void {
    this.byInstance.delete(instanceId);
  }
}
