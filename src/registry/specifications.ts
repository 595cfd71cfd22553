// The Plugin Specification each instance declares, turned into a message descriptor the host can check
// `custom` against without the plugin's code. Built once per instance.
import {
  createFileRegistry,
  fromJson,
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
} from "@bufbuild/protobuf";
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

  /**
   * Why `custom` does not parse as the specification, as "<field path>: <problem>", or undefined when it parses.
   * protobuf-es says what failed but not always where (a bad Duration deep inside names only the Duration), so
   * the path is found by decoding one field at a time and descending into the one that fails.
   */
  static problem(spec: DescMessage, custom: JsonObject | undefined, path = "template.custom"): string | undefined {
    try {
      fromJson(spec, custom ?? {});
      return undefined;
    } catch (error) {
      return locate(spec, custom ?? {}, path) ?? `${path}: ${messageOf(error)}`;
    }
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
const isObject = (value: JsonValue): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

/** The first field of `json` that does not decode, with the deepest path that can be named. */
function locate(spec: DescMessage, json: JsonValue, path: string): string | undefined {
  if (!isObject(json) || spec.typeName.startsWith("google.protobuf.")) return undefined;
  for (const [key, value] of Object.entries(json)) {
    const field = spec.fields.find((f) => f.jsonName === key || f.name === key);
    const fieldPath = `${path}.${key}`;
    if (!field) return `${fieldPath}: ${spec.typeName} has no field "${key}"`;
    try {
      fromJson(spec, { [key]: value });
    } catch (error) {
      return descend(field, value, fieldPath) ?? `${fieldPath}: ${messageOf(error)}`;
    }
  }
  return undefined;
}

function descend(field: DescField, value: JsonValue, path: string): string | undefined {
  if (field.fieldKind === "message") return locate(field.message, value, path);
  if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = locate(field.message, item, `${path}[${index}]`);
      if (found) return found;
    }
  }
  if (field.fieldKind === "map" && field.mapKind === "message" && isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      const found = locate(field.message, item, `${path}[${JSON.stringify(key)}]`);
      if (found) return found;
    }
  }
  return undefined;
}
