// Quota holders in the quotas KV bucket: one key per plugin that declares a quota, its value every execution that
// holds one of the plugin's tokens. Every write is a compare-and-set on the revision read, so two hosts can never
// hand out the same last token.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { KV } from "@nats-io/kv";
import { QuotaHoldersSchema, type QuotaHolders } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { isWrongLastSequence } from "./execution-store.js";

/** The plugin's holders changed since they were read: read again and decide again. */
export class QuotaConflictError extends Error {
  constructor(plugin: string, options?: ErrorOptions) {
    super(`the quota holders of ${plugin} changed since they were read`, options);
    this.name = "QuotaConflictError";
  }
}

export interface StoredHolders {
  holders: QuotaHolders;
  /** 0 when the plugin's key does not exist yet. */
  revision: number;
}

export class QuotaStore {
  constructor(private readonly kv: KV) {}

  async read(plugin: string): Promise<StoredHolders> {
    const entry = await this.kv.get(plugin);
    if (!entry) return { holders: create(QuotaHoldersSchema), revision: 0 };
    // No holders encode as zero bytes: still a value, at a revision the next write must name.
    return { holders: fromBinary(QuotaHoldersSchema, entry.value), revision: entry.revision };
  }

  /** Replaces the holders if the key is still at `revision` (0: does not exist); throws QuotaConflictError otherwise. */
  async write(plugin: string, holders: QuotaHolders, revision: number): Promise<void> {
    const value = toBinary(QuotaHoldersSchema, holders);
    try {
      if (revision === 0) await this.kv.create(plugin, value);
      else await this.kv.update(plugin, value, revision);
    } catch (error) {
      if (isWrongLastSequence(error)) throw new QuotaConflictError(plugin, { cause: error });
      throw error;
    }
  }
}
