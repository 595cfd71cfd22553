// Which sidecar announcements and pushes count. A plugin instance is handed tasks and their secrets, so with a
// sidecar secret configured (`auth.sidecars.secret`) only a sidecar holding a token the hosts issued may announce
// one: its announcement is signed with the token (HMAC-SHA256, docs/security.md), and the token's name must be
// allowed the plugin it announces: a supervised sidecar's name any plugin, a remote sidecar's the plugins listed
// for it. Tokens are derived from the secret and the name, so every host verifies every sidecar without sharing
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
  private readonly remote: Map<string, ReadonlySet<string>>;

  /**
   * `secret` unset: every announcement counts, signed or not, as before authentication existed. `supervised`: the
   * names of the sidecars this host's configuration supervises.
   */
  constructor(
    private readonly secret: Buffer | undefined,
    private readonly supervised: () => ReadonlySet<string>,
    remote: readonly RemoteSidecarSpec[] = [],
  ) {
    this.remote = new Map(remote.map((entry) => [entry.name, new Set(entry.plugins)]));
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
    const plugin = instance.descriptor?.name ?? "";
    if (!this.mayAnnounce(announcement.keyId, plugin)) return { refused: `key "${announcement.keyId}" may not announce plugin "${plugin}"` };
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

  private mayAnnounce(keyId: string, plugin: string): boolean {
    if (this.supervised().has(keyId)) return true;
    const plugins = this.remote.get(keyId);
    return plugins !== undefined && (plugins.has("*") || plugins.has(plugin));
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
