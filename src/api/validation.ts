// Checks of what SDKs send, before anything is stored. Each failure names the field path, so a caller can fix
// the request without reading host logs (rule 4 of docs/architecture.md: bad input fails fast, writes nothing).
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { TaskTemplate } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { isExecutionId } from "../coordination/names.js";
import { secretRequestProblem } from "../machinery/secrets.js";
import { quoted } from "./error-text.js";

export const DEFAULT_NAMESPACE = "default";
const NAMESPACE_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const TASK_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,128}$/;
const MAX_MAP_ENTRIES = 64;
const MAX_MAP_TEXT = 4096;

export function invalid(path: string, problem: string): ConnectError {
  return new ConnectError(`${path}: ${problem}`, Code.InvalidArgument);
}

export function checkNamespace(value: string, path: string): string {
  if (value === "") return DEFAULT_NAMESPACE;
  if (!NAMESPACE_PATTERN.test(value)) {
    throw invalid(path, `${quoted(value)} must be 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit`);
  }
  return value;
}

export function checkExecutionId(value: string, path = "id"): string {
  if (value === "") throw invalid(path, "is required");
  if (!isExecutionId(value)) throw invalid(path, `${quoted(value)} is not an execution id`);
  return value;
}

export function checkIdempotencyKey(value: string, path = "idempotency_key"): string {
  if (value !== "" && !IDEMPOTENCY_KEY_PATTERN.test(value)) {
    throw invalid(path, "must be 1-128 printable ASCII characters without spaces");
  }
  return value;
}

function checkMap(map: Record<string, string> | undefined, path: string): void {
  const entries = Object.entries(map ?? {});
  if (entries.length > MAX_MAP_ENTRIES) throw invalid(path, `has ${entries.length} entries, at most ${MAX_MAP_ENTRIES} are allowed`);
  for (const [key, value] of entries) {
    if (key === "" || key.length > 256) throw invalid(path, `key ${quoted(key)} must be 1-256 characters`);
    if (value.length > MAX_MAP_TEXT) throw invalid(`${path}[${JSON.stringify(key)}]`, `is longer than ${MAX_MAP_TEXT} characters`);
  }
}

/** Checks a template's shape (not yet `custom`, which needs the plugin's specification). */
export function checkTemplate(template: TaskTemplate | undefined, path = "template"): TaskTemplate {
  if (!template) throw invalid(path, "is required");
  if (template.type === "") throw invalid(`${path}.type`, "is required");
  if (!TASK_TYPE_PATTERN.test(template.type)) {
    throw invalid(`${path}.type`, `${quoted(template.type)} must be 1-128 letters, digits, '_', '.' or '-'`);
  }
  if (template.typeVersion < 0) throw invalid(`${path}.type_version`, "must not be negative");
  const timeout = template.metadata?.timeout;
  if (timeout && (timeout.seconds < 0n || timeout.nanos < 0)) throw invalid(`${path}.metadata.timeout`, "must not be negative");
  if ((template.metadata?.retries ?? 0) > 100) throw invalid(`${path}.metadata.retries`, "must be at most 100");
  template.secrets.forEach((secret, index) => {
    const problem = secretRequestProblem(secret);
    if (problem) throw invalid(`${path}.secrets[${index}]`, problem);
  });
  checkMap(template.config, `${path}.config`);
  checkNumbers(template.custom, `${path}.custom`);
  return template;
}

/**
 * Refuses NaN and ±Infinity in a Struct: binary protobuf carries them and JSON's 1e400 parses to Infinity, but
 * the JSON form of google.protobuf.Value has no way to write them, so a record holding one could never be read
 * back over Connect JSON (nor digested for idempotency). Iterative: Structs may nest thousands deep.
 */
export function checkNumbers(struct: JsonObject | undefined, path: string): void {
  const pending: Array<[JsonValue, string]> = struct ? [[struct, path]] : [];
  for (let item = pending.pop(); item; item = pending.pop()) {
    const [value, at] = item;
    if (typeof value === "number") {
      if (!Number.isFinite(value)) throw invalid(at, `${value} is not a number JSON can hold`);
    } else if (Array.isArray(value)) {
      value.forEach((element, index) => pending.push([element, `${at}[${index}]`]));
    } else if (value !== null && typeof value === "object") {
      for (const [key, element] of Object.entries(value)) pending.push([element, `${at}.${quoted(key)}`]);
    }
  }
}

export function checkMetadataMaps(
  metadata: { labels: Record<string, string>; annotations: Record<string, string>; environment: Record<string, string> } | undefined,
  path = "metadata",
): void {
  checkMap(metadata?.labels, `${path}.labels`);
  checkMap(metadata?.annotations, `${path}.annotations`);
  checkMap(metadata?.environment, `${path}.environment`);
}
