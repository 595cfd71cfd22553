import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { PluginDescriptorSchema } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { PluginRateLimits, TokenBucket } from "./rate-limits.js";

describe("TokenBucket", () => {
  it("lets a burst through, then one call per 1/qps", () => {
    let now = 0;
    const bucket = new TokenBucket(2, 3, () => now);
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 0]);
    expect(bucket.take()).toBe(500);
    now = 499;
    expect(bucket.take()).toBe(1);
    now = 500;
    expect(bucket.take()).toBe(0);
    now = 10_000; // a long pause saves up no more than the burst
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 0, 500]);
  });
});

describe("PluginRateLimits", () => {
  const plugin = (name: string, readQps: number, writeQps: number, burst = 0) =>
    create(PluginDescriptorSchema, {
      name,
      properties: { readLimit: readQps ? { qps: readQps, burst } : undefined, writeLimit: writeQps ? { qps: writeQps, burst } : undefined },
    });

  it("limits reads and writes separately, per plugin, and not at all without a limit", () => {
    let now = 0;
    const limits = new PluginRateLimits(() => now);
    const sql = plugin("sql", 1, 4);
    expect([limits.take(sql, "read"), limits.take(sql, "read")]).toEqual([0, 1000]);
    expect([0, 1, 2, 3].map(() => limits.take(sql, "write"))).toEqual([0, 0, 0, 0]); // burst max(1, ceil(4))
    expect(limits.take(sql, "write")).toBe(250);
    expect(limits.take(plugin("other", 1, 1), "read")).toBe(0);
    expect([0, 1, 2].map(() => limits.take(plugin("free", 0, 0), "write"))).toEqual([0, 0, 0]);
    now = 1000;
    expect(limits.take(sql, "read")).toBe(0);
  });

  it("starts a fresh bucket when the plugin declares a new limit", () => {
    const limits = new PluginRateLimits(() => 0);
    expect([limits.take(plugin("sql", 1, 0), "read"), limits.take(plugin("sql", 1, 0), "read")]).toEqual([0, 1000]);
    expect(limits.take(plugin("sql", 5, 0), "read")).toBe(0);
  });
});
