// Which sidecar announcements and pushes count. A plugin instance is handed tasks and their secrets, so with a
// sidecar secret configured (`auth.sidecars.secret`) only a sidecar holding a token the hosts issued may announce
// one: its announcement is signed with the token (HMAC-SHA256, docs/security.md), and the token's name must be
// allowed what it announces: a supervised sidecar's or a remote Flyte connector's name (`flyteConnectors`, whose
// agents the hosts announce themselves) any plugin, a remote sidecar's the plugins and the task
// types listed for it (tasks are routed by type, so the plugin name alone would bound nothing). Tokens are derived from the secret and the name, so every host verifies every sidecar without sharing
// a list of tokens, and `plugin-bridge sidecar-token <name>` issues one for a remote sidecar.
import { createHmac, timingSafeEqual } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import type { MsgHdrs } from "@nats-io/transport-node";
import type { PluginAnnouncement } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { PluginInstanceSchema, type PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import type { RemoteSidecarSpec } from "../config-file.js";

/** An announcement that counts: the instance, and who signed it (empty when unsigned). */
export interface AdmittedInstance {
  instance: PluginInstance;
  keyId: string;
}

const ANNOUNCEMENT_CONTEXT = Buffer.from("pbv1");
const PUSH_CONTEXT = Buffer.from("pbv1push");
export const PUSH_KEY_ID_HEADER = "Pb-Key-Id";
export const PUSH_SIGNATURE_HEADER = "Pb-Signature";

export class SidecarAuth {
  private readonly remote: Map<string, { plugins: ReadonlySet<string>; taskTypes: ReadonlySet<string> }>;

  /**
   * `secret` unset: every announcement counts, signed or not, as before authentication existed. `supervised`: the
   * names whose tokens only hosts hold: the sidecars this host's configuration supervises and the remote Flyte
   * connectors (`flyteConnectors`) whose agents it announces.
   */
  constructor(
    private readonly secret: Buffer | undefined,
    private readonly supervised: () => ReadonlySet<string>,
    remote: readonly RemoteSidecarSpec[] = [],
  ) {
    this.remote = new Map(remote.map((entry) => [entry.name, { plugins: new Set(entry.plugins), taskTypes: new Set(entry.taskTypes) }]));
  }

  get required(): boolean {
    return this.secret !== undefined;
  }

  /** The token of a sidecar name: what the supervisor hands its replicas, what `sidecar-token` prints. */
  tokenFor(keyId: string): string {
    if (!this.secret) throw new Error("no sidecar secret is configured");
    return createHmac("sha256", this.secret).update(`plugin-bridge sidecar token\n${keyId}`).digest("hex");
  }

  /** The instance an announcement carries if it counts; otherwise why not. */
  admit(announcement: PluginAnnouncement): AdmittedInstance | { refused: string } {
    const signed = announcement.signedInstance.length > 0;
    if (!signed) {
      if (this.required) return { refused: "not signed (the hosts require sidecar tokens)" };
      return announcement.instance ? { instance: announcement.instance, keyId: "" } : { refused: "no instance" };
    }
    let instance: PluginInstance;
    try {
      instance = fromBinary(PluginInstanceSchema, announcement.signedInstance);
    } catch {
      return { refused: "signed_instance does not decode" };
    }
    if (!this.required) return { instance, keyId: announcement.keyId };
    const ttl = Buffer.alloc(4);
    ttl.writeUInt32BE(announcement.ttlSeconds);
    const expected = createHmac("sha256", this.tokenFor(announcement.keyId))
      .update(ANNOUNCEMENT_CONTEXT)
      .update(ttl)
      .update(announcement.signedInstance)
      .digest();
    if (!sameBytes(expected, announcement.signature)) return { refused: `signature does not hold for key "${announcement.keyId}"` };
    const overreach = this.overreach(announcement.keyId, instance);
    if (overreach) return { refused: `key "${announcement.keyId}" may not announce ${overreach}` };
    return { instance, keyId: announcement.keyId };
  }

  /**
   * Whether a pushed status counts: always without a secret; with one, only when signed (NATS headers) by the key
   * that signed the pushing instance's announcement.
   */
  pushAllowed(payload: Uint8Array, headers: MsgHdrs | undefined, instanceKeyId: string | undefined): boolean {
    if (!this.required) return true;
    const keyId = headers?.get(PUSH_KEY_ID_HEADER) ?? "";
    const signature = headers?.get(PUSH_SIGNATURE_HEADER) ?? "";
    if (!keyId || keyId !== instanceKeyId || !/^[0-9a-f]{64}$/.test(signature)) return false;
    const expected = createHmac("sha256", this.tokenFor(keyId)).update(PUSH_CONTEXT).update(payload).digest();
    return sameBytes(expected, Buffer.from(signature, "hex"));
  }

  /** What in an instance its key is not allowed ("plugin \"x\"", "task type \"y\""), or undefined. */
  private overreach(keyId: string, instance: PluginInstance): string | undefined {
    if (this.supervised().has(keyId)) return undefined;
    const allowed = this.remote.get(keyId);
    const plugin = instance.descriptor?.name ?? "";
    if (!allowed || !(allowed.plugins.has("*") || allowed.plugins.has(plugin))) return `plugin ${JSON.stringify(plugin.slice(0, 80))}`;
    if (allowed.taskTypes.has("*")) return undefined;
    const type = instance.descriptor?.taskTypes.find((supported) => !allowed.taskTypes.has(supported.type));
    return type ? `task type ${JSON.stringify(type.type.slice(0, 80))}` : undefined;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
