// Announces a live sidecar instance in the `pb_plugins` KV bucket: at start, then at every heartbeat. The
// bucket's TTL removes the key of an instance that died without a word; a draining instance says so, then
// deletes its key. Every host watches the bucket: that watch is its routing table. A sidecar with a token signs
// every write, the draining one included (sidecar-token.ts).
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { KV } from "@nats-io/kv";
import {
  PluginAnnouncementSchema,
  type PluginAnnouncement,
} from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import {
  PluginInstanceSchema,
  PluginProtocol,
  type PluginDescriptor,
  type PluginInstance,
} from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import type { Logger } from "./log.js";
import type { SidecarToken } from "./sidecar-token.js";

/** Seconds after heartbeat_at when a host treats the announcement as stale. */
export const ANNOUNCEMENT_TTL_SECONDS = 10;
export const HEARTBEAT_INTERVAL_MS = 3_000;

export interface AnnouncerOptions {
  key: string;
  instanceId: string;
  endpoint: string;
  descriptor: PluginDescriptor;
  startedAt: Timestamp;
  /** Opens the bucket; throws while NATS is unreachable (the next heartbeat tries again). */
  bucket: () => Promise<KV>;
  log: Logger;
  intervalMs?: number;
  /** Signs every announcement; without one they are written unsigned. */
  token?: SidecarToken;
  /**
   * What the endpoint speaks; default the bridge's own services. A host announcing a Flyte connector it supervises
   * (which cannot announce itself) says PluginProtocol.FLYTE_AGENT.
   */
  protocol?: PluginProtocol;
}

/**
 * The announcement of `instance`: unsigned, or signed by `token`. A signed one carries the instance only as the
 * bytes it signs, serialized here once: protobuf encodings are not canonical, so a host could not re-encode a
 * decoded instance and expect the same bytes.
 */
export function announcement(instance: PluginInstance, token: SidecarToken | undefined): PluginAnnouncement {
  const ttlSeconds = ANNOUNCEMENT_TTL_SECONDS;
  if (!token) return create(PluginAnnouncementSchema, { instance, ttlSeconds });
  const signedInstance = toBinary(PluginInstanceSchema, instance);
  return create(PluginAnnouncementSchema, {
    ttlSeconds,
    signedInstance,
    keyId: token.id,
    signature: token.signAnnouncement(ttlSeconds, signedInstance),
  });
}

export class Announcer {
  #draining = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #pending: Promise<boolean> = Promise.resolve(false);
  #firstAnnouncement: { resolve: () => void; promise: Promise<void> };

  constructor(private readonly options: AnnouncerOptions) {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#firstAnnouncement = { resolve, promise };
  }

  /** Resolves after the first announcement was stored. */
  get announced(): Promise<void> {
    return this.#firstAnnouncement.promise;
  }

  /** Announces now and at every heartbeat until `withdraw()`. */
  start(): void {
    void this.#tick();
  }

  /** Announces draining=true at once, so hosts stop routing new work here. */
  async setDraining(): Promise<void> {
    this.#draining = true;
    await this.#pending; // never two writes at once: the later one must win
    if (!this.#stopped) await this.#announce();
  }

  /**
   * Stops the heartbeat and leaves the key. For an instance others announce too (a remote Flyte connector every
   * host announces): they keep it alive, and when nobody heartbeats any more the bucket's TTL removes it.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#pending;
  }

  /** Stops the heartbeat and deletes the key. */
  async withdraw(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#pending;
    try {
      await (await this.options.bucket()).delete(this.options.key);
      this.options.log("info", "announcement withdrawn", { key: this.options.key });
    } catch (error) {
      // The bucket's TTL removes the key anyway; hosts also see draining=true until then.
      this.options.log("warn", "could not delete the announcement; it expires with the bucket's TTL", { error });
    }
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    await this.#announce();
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), this.options.intervalMs ?? HEARTBEAT_INTERVAL_MS);
  }

  #announce(): Promise<boolean> {
    this.#pending = this.#put();
    return this.#pending;
  }

  async #put(): Promise<boolean> {
    const { key, instanceId, endpoint, descriptor, startedAt, log, token, protocol = PluginProtocol.UNSPECIFIED } = this.options;
    const instance = create(PluginInstanceSchema, {
      instanceId,
      endpoint,
      descriptor,
      startedAt,
      heartbeatAt: timestampNow(),
      draining: this.#draining,
      protocol,
    });
    const value = toBinary(PluginAnnouncementSchema, announcement(instance, token));
    try {
      await (await this.options.bucket()).put(key, value);
      if (!this.#announcedOnce) {
        this.#announcedOnce = true;
        log("info", "announced", { key, endpoint });
        this.#firstAnnouncement.resolve();
      }
      return true;
    } catch (error) {
      log("warn", "announcement failed; retrying at the next heartbeat", { key, error });
      return false;
    }
  }

  #announcedOnce = false;
}
