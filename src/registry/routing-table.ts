// The routing table: every live sidecar instance, from a watch on the plugins bucket. The host starts with
// none and routes as they appear; an instance whose heartbeat is older than its ttl is ignored even before the
// server's expiry marker arrives, and a draining instance gets no new calls.
import { fromBinary } from "@bufbuild/protobuf";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import { PluginAnnouncementSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { PluginKind, type PluginInstance, type SupportedTaskType } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { timestampMs } from "../machinery/time.js";
import type { Logger } from "../log.js";
import { SidecarAuth } from "./sidecar-auth.js";

export interface LiveInstance {
  instance: PluginInstance;
  /** When the announcement stops counting, in epoch ms. */
  staleAtMs: number;
  /** The sidecar key that signed the announcement; empty when unsigned. */
  keyId: string;
}

/** A refused announcement is logged again at most this often per key (heartbeats repeat it every few seconds). */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/** FNV-1a over the affinity and the instance id: a well-mixed 32-bit score, the same on every host. */
function rendezvousScore(affinity: string, instanceId: string): number {
  let hash = 0x811c9dc5;
  for (const text of [affinity, "\u0000", instanceId]) {
    for (let i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
  }
  // A final avalanche so that ids differing in their last characters spread too.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return hash >>> 0;
}

export class RoutingTable {
  private readonly instances = new Map<string, LiveInstance>();
  private readonly listeners = new Set<(id: string, instance: PluginInstance | undefined) => void>();
  private stopWatch: (() => void) | undefined;
  private readonly refusalsLogged = new Map<string, number>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly auth: SidecarAuth = new SidecarAuth(undefined, () => new Set()),
  ) {}

  /** Follows the plugins bucket; resolves once the entries present at start are loaded. */
  async start(bucket: KV, loadTimeoutMs = 2_000): Promise<void> {
    const watch = await bucket.watch();
    this.stopWatch = () => watch.stop();
    let initialized!: () => void;
    const loaded = new Promise<void>((resolve) => (initialized = resolve));
    void (async () => {
      for await (const entry of watch) {
        this.apply(entry);
        // Nothing left pending for the watch: the entries present at start are in. (The last of them already
        // reads isUpdate = true, so that flag cannot tell.)
        if (entry.delta === 0) initialized();
      }
    })();
    // An empty bucket delivers nothing to mark the end of its history.
    const status = await bucket.status();
    if (status.values === 0) initialized();
    // Never let a slow bucket hold the host's start: routing fills in as entries arrive anyway.
    await Promise.race([loaded, new Promise((resolve) => setTimeout(resolve, loadTimeoutMs).unref())]);
  }

  stop(): void {
    this.stopWatch?.();
  }

  /** Called with the instance id and the new instance, or undefined when it left. */
  onChange(listener: (id: string, instance: PluginInstance | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private apply(entry: KvWatchEntry): void {
    const key = entry.key;
    if (entry.operation !== "PUT") {
      const gone = this.instances.get(key);
      this.instances.delete(key);
      if (gone) {
        this.log.info("plugin instance left", { instance: gone.instance.instanceId });
        this.emit(gone.instance.instanceId, undefined);
      }
      return;
    }
    try {
      const announcement = fromBinary(PluginAnnouncementSchema, entry.value);
      const admitted = this.auth.admit(announcement);
      if ("refused" in admitted) {
        this.refuse(key, admitted.refused);
        return;
      }
      const { instance, keyId } = admitted;
      if (!instance.descriptor || instance.descriptor.kind === PluginKind.UNSPECIFIED) {
        this.log.warn("ignoring an announcement without a descriptor or kind", { key });
        return;
      }
      const staleAtMs = timestampMs(instance.heartbeatAt) + announcement.ttlSeconds * 1000;
      if (!this.instances.has(key)) {
        this.log.info("plugin instance joined", {
          plugin: instance.descriptor.name,
          version: instance.descriptor.version,
          instance: instance.instanceId,
          endpoint: instance.endpoint,
        });
      }
      this.instances.set(key, { instance, staleAtMs, keyId });
      this.emit(instance.instanceId, instance);
    } catch (error) {
      this.log.warn("ignoring an announcement that does not decode", { key, error });
    }
  }

  /** An announcement that does not count: whatever the key held before is gone too, and the refusal is logged. */
  private refuse(key: string, why: string): void {
    const gone = this.instances.get(key);
    if (gone) {
      this.instances.delete(key);
      this.emit(gone.instance.instanceId, undefined);
    }
    const loggedAt = this.refusalsLogged.get(key);
    if (loggedAt !== undefined && this.now() - loggedAt < REFUSAL_LOG_INTERVAL_MS) return;
    this.refusalsLogged.set(key, this.now());
    this.log.warn("ignoring an unauthenticated plugin announcement", { key, why });
  }

  /** The key that signed a live instance's announcement; undefined for an unknown instance. */
  keyIdOf(instanceId: string): string | undefined {
    for (const entry of this.instances.values()) if (entry.instance.instanceId === instanceId) return entry.keyId;
    return undefined;
  }

  private emit(id: string, instance: PluginInstance | undefined): void {
    for (const listener of this.listeners) listener(id, instance);
  }

  private isLive(entry: LiveInstance): boolean {
    return entry.staleAtMs > this.now();
  }

  /** Live instances, draining ones included (they still finish their calls). */
  live(): PluginInstance[] {
    return [...this.instances.values()].filter((entry) => this.isLive(entry)).map((entry) => entry.instance);
  }

  /**
   * Live, non-draining instances for the type and version (Flyte's plugin lookup, plus versions): those serving the
   * exact version; else those whose declared range [min_version, version] holds it, the newest version only; else,
   * when no live plugin claims the type at all, the default plugin's (the first by name if several say they are).
   */
  candidates(type: string, version: number): PluginInstance[] {
    const serving = this.live().filter((instance) => !instance.draining);
    const exact = serving.filter((instance) => instance.descriptor?.taskTypes.some((t) => t.type === type && t.version === version));
    if (exact.length > 0) return exact;
    const newest = (instance: PluginInstance): number =>
      Math.max(...(instance.descriptor?.taskTypes ?? []).filter((t) => accepts(t, type, version)).map((t) => t.version));
    const compatible = serving.filter((instance) => instance.descriptor?.taskTypes.some((t) => accepts(t, type, version)));
    if (compatible.length > 0) {
      const best = Math.max(...compatible.map(newest));
      return compatible.filter((instance) => newest(instance) === best);
    }
    if (this.servesType(type)) return [];
    const defaults = serving.filter((instance) => instance.descriptor?.defaultForUnclaimedTypes);
    const first = defaults.map((instance) => instance.descriptor?.name ?? "").sort()[0];
    return defaults.filter((instance) => instance.descriptor?.name === first);
  }

  /** Whether any live instance claims the type, in any version: tells "unknown type" from "unknown version". */
  servesType(type: string): boolean {
    return this.live().some((instance) => instance.descriptor?.taskTypes.some((supported) => supported.type === type));
  }

  /**
   * The instance for the next call: `prefer` when it is a live, non-draining candidate (the instance that created
   * an execution's remote work keeps its Gets and Delete, since a plugin may hold that work in memory), otherwise
   * the candidate that `affinity` (an execution's id and attempt) hashes highest with, skipping `exclude`
   * (instances that just failed this step). Rendezvous hashing spreads executions evenly, and sends an attempt's
   * retried Create to the instance that may already have run it (a kit remembers its Creates in memory even when
   * NATS could not store them), as long as that instance lives. Undefined when none is left.
   */
  pick(type: string, version: number, affinity: string, exclude: ReadonlySet<string> = new Set(), prefer?: string): PluginInstance | undefined {
    const candidates = this.candidates(type, version).filter((instance) => !exclude.has(instance.instanceId));
    if (candidates.length === 0) return undefined;
    // The preferred instance keeps its calls while it can take them at all, even if a closer version came up since.
    const preferred = prefer ? this.acceptingInstance(prefer, type, version) : undefined;
    if (preferred && !exclude.has(preferred.instanceId)) return preferred;
    let best = candidates[0]!;
    let bestScore = -1;
    for (const candidate of candidates) {
      const score = rendezvousScore(affinity, candidate.instanceId);
      if (score > bestScore || (score === bestScore && candidate.instanceId < best.instanceId)) {
        best = candidate;
        bestScore = score;
      }
    }
    return best;
  }

  /**
   * Whether instances that serve the type were announced but have stopped heartbeating (not yet removed): the
   * type is served, just not reachable right now (a sidecar reconnecting to NATS).
   */
  servesTypeButStale(type: string): boolean {
    return [...this.instances.values()].some((entry) => !this.isLive(entry) && entry.instance.descriptor?.taskTypes.some((supported) => supported.type === type));
  }

  /** The live, non-draining instance `instanceId` if it serves or accepts the type and version (or is the default). */
  acceptingInstance(instanceId: string, type: string, version: number): PluginInstance | undefined {
    const instance = this.live().find((live) => live.instanceId === instanceId && !live.draining);
    if (!instance) return undefined;
    const serves = instance.descriptor?.taskTypes.some((t) => (t.type === type && t.version === version) || accepts(t, type, version));
    return serves || this.candidates(type, version).includes(instance) ? instance : undefined;
  }
}

/** Whether a declared task type takes a task of `type` at `version` through its range (min_version set). */
function accepts(declared: SupportedTaskType, type: string, version: number): boolean {
  return declared.type === type && declared.minVersion !== undefined && declared.minVersion <= version && version <= declared.version;
}
