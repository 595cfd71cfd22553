// Keeps secret values out of everything the host stores, publishes or logs: a plugin that puts a secret it was
// given into a phase reason, an error message, custom info or its outputs has it replaced by `[secret group/key]`
// before the host keeps any of it. The host cannot see into opaque bytes (resource meta, plugin state): those stay
// the plugin's responsibility.
import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { PhaseInfoSchema, type PhaseInfo } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";

/**
 * Values shorter than this are not searched for: replacing every "a" would destroy every message, and a secret that
 * short is no secret anyway.
 */
export const MIN_REDACTED_LENGTH = 4;

export class Redactor {
  private constructor(private readonly secrets: ReadonlyArray<[name: string, value: string]>) {}

  /** From resolved secrets keyed "group/key"; longest values first, so a secret containing another is replaced whole. */
  static of(resolved: Readonly<Record<string, string>>): Redactor {
    const secrets = Object.entries(resolved)
      .filter(([, value]) => value.length >= MIN_REDACTED_LENGTH)
      .sort((a, b) => b[1].length - a[1].length);
    return new Redactor(secrets);
  }

  static readonly none = new Redactor([]);

  text(text: string): string {
    let out = text;
    for (const [name, value] of this.secrets) if (out.includes(value)) out = out.split(value).join(`[secret ${name}]`);
    return out;
  }

  json<T extends JsonValue | undefined>(value: T): T {
    if (this.secrets.length === 0 || value === undefined || value === null) return value;
    if (typeof value === "string") return this.text(value) as T;
    if (Array.isArray(value)) return value.map((item) => this.json(item)) as T;
    if (typeof value === "object") {
      const out: JsonObject = {};
      for (const [key, item] of Object.entries(value)) out[this.text(key)] = this.json(item);
      return out as T;
    }
    return value;
  }

  phaseInfo(info: PhaseInfo | undefined): PhaseInfo | undefined {
    if (!info || this.secrets.length === 0) return info;
    return create(PhaseInfoSchema, {
      ...info,
      reason: this.text(info.reason),
      error: info.error ? { ...info.error, code: this.text(info.error.code), message: this.text(info.error.message) } : undefined,
      logs: info.logs.map((log) => ({ ...log, uri: this.text(log.uri), name: this.text(log.name) })),
      customInfo: this.json(info.customInfo),
    });
  }
}
