// Checks `template.custom` against a Plugin Specification with proto3 JSON rules, naming the failing field
// (`template.custom.<path>: <problem>`). The host's CreateTask uses this very function, so a caller that checks
// first sees the message CreateTask would answer.
import { fromJson, type DescField, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";

const ROOT = "template.custom";

/**
 * Why `custom` does not parse as `spec`, as "template.custom.<path>: <problem>", or undefined when it parses.
 * Unknown fields are problems, as they are for the host and the kits.
 */
export function customProblem(spec: DescMessage, custom: JsonObject | undefined): string | undefined {
  const json = custom ?? {};
  try {
    fromJson(spec, json);
    return undefined;
  } catch (error) {
    return firstFailure(spec, json, ROOT) ?? `${ROOT}: ${messageOf(error)}`;
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const isObject = (value: JsonValue): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * protobuf-es says what failed but not always where (a bad Duration deep down names only the Duration), so each
 * key is decoded alone and the search goes down into the first one that fails. Well-known types are leaves: their
 * JSON is not field by field.
 */
function firstFailure(spec: DescMessage, json: JsonValue, path: string): string | undefined {
  if (!isObject(json) || spec.typeName.startsWith("google.protobuf.")) return undefined;
  for (const [key, value] of Object.entries(json)) {
    const keyPath = `${path}.${key}`;
    // proto3 JSON accepts the JSON name and the proto name alike.
    const field = spec.fields.find((candidate) => candidate.jsonName === key || candidate.name === key);
    if (!field) return `${keyPath}: ${spec.typeName} has no field "${key}"`;
    try {
      fromJson(spec, { [key]: value });
    } catch (error) {
      return insideField(field, value, keyPath) ?? `${keyPath}: ${messageOf(error)}`;
    }
  }
  return undefined;
}

/** The failure inside a field's messages (a message, list items, map values), when it holds any. */
function insideField(field: DescField, value: JsonValue, path: string): string | undefined {
  if (field.fieldKind === "message") return firstFailure(field.message, value, path);
  if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = firstFailure(field.message, item, `${path}[${index}]`);
      if (found) return found;
    }
  }
  if (field.fieldKind === "map" && field.mapKind === "message" && isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      const found = firstFailure(field.message, item, `${path}[${JSON.stringify(key)}]`);
      if (found) return found;
    }
  }
  return undefined;
}
