import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_CONFIG, envName, flagName, loadConfig } from "./config.js";

const file = (content: string): string => {
  const name = path.join(mkdtempSync(path.join(tmpdir(), "pb-config-")), "config.json");
  writeFileSync(name, content);
  return name;
};

describe("loadConfig", () => {
  it("names settings consistently", () => {
    expect(envName("natsUrl")).toBe("PLUGIN_BRIDGE_NATS_URL");
    expect(flagName("readMaxBytes")).toBe("read-max-bytes");
  });

  it("takes defaults, then the file, then the environment, then flags", () => {
    const config = loadConfig(
      { listenPort: "9003" },
      { PLUGIN_BRIDGE_LISTEN_PORT: "9002", PLUGIN_BRIDGE_CONCURRENCY: "8" },
      file(JSON.stringify({ listenPort: 9001, natsUrl: "nats://a:4222", concurrency: 4 })),
    );
    expect(config).toMatchObject({ listenPort: 9003, concurrency: 8, natsUrl: "nats://a:4222", ackWaitMs: DEFAULT_CONFIG.ackWaitMs });
  });

  it("refuses unknown settings, wrong types and unusable values, naming them", () => {
    expect(() => loadConfig({}, {}, file('{"listenPortt": 1}'))).toThrow(/unknown setting\(s\) listenPortt/);
    expect(() => loadConfig({}, {}, file("[1]"))).toThrow(ConfigError);
    expect(() => loadConfig({}, {}, file("{not json"))).toThrow(ConfigError);
    expect(() => loadConfig({ concurrency: "many" }, {})).toThrow(/command line: concurrency must be a whole number/);
    expect(() => loadConfig({}, { PLUGIN_BRIDGE_READ_MAX_BYTES: "-1" })).toThrow(/environment: readMaxBytes/);
    expect(() => loadConfig({ listenPort: "70000" }, {})).toThrow(/not a port/);
    expect(() => loadConfig({ orphanGraceMs: "1000" }, {})).toThrow(/duplicate window/);
  });
});
