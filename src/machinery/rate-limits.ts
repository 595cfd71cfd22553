// Rate limits on the host's calls to a plugin (Flyte's read and write rate limiters, both applied): token buckets
// per plugin name and kind of call, from the plugin's declared properties. They hold per host, on purpose: a
// shared bucket would cost a NATS round trip (a compare-and-set) for every plugin call, more than many calls
// themselves, and Flyte's limiters are per propeller process too. docs/architecture.md says how to size them.
import type { PluginDescriptor, RateLimit } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";

/** Get is a read; Create, Delete, Do, Handle, Abort and Finalize are writes. */
export type CallKind = "read" | "write";

/** A token bucket: `qps` tokens a second, at most `burst` saved up; time in ms from `now()`. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly qps: number,
    readonly burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.updatedAt = now();
  }

  /** Takes a token and returns 0, or, when none is left, takes nothing and returns the ms until one will be. */
  take(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) * this.qps) / 1000);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    // The small allowance keeps floating-point dust (0.998 tokens is 1.0000000001 ms away) from adding a ms.
    return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.qps - 1e-6));
  }
}

const burstOf = (limit: RateLimit): number => limit.burst || Math.max(1, Math.ceil(limit.qps));

export class PluginRateLimits {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Takes a token for a call to the plugin: 0 when the call may go now, else the ms to wait before asking again.
   * A plugin whose declared limit changes (a new version) gets a fresh bucket.
   */
  take(descriptor: PluginDescriptor | undefined, kind: CallKind): number {
    const limit = kind === "read" ? descriptor?.properties?.readLimit : descriptor?.properties?.writeLimit;
    if (!descriptor || !limit || !(limit.qps > 0)) return 0;
    const key = `${descriptor.name}\u0000${kind}`;
    let bucket = this.buckets.get(key);
    if (!bucket || bucket.qps !== limit.qps || bucket.burst !== burstOf(limit)) {
      bucket = new TokenBucket(limit.qps, burstOf(limit), this.now);
      this.buckets.set(key, bucket);
    }
    return bucket.take();
  }
}
