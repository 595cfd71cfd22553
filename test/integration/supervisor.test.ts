// The supervisor with real processes: sidecars started with what they need (they announce themselves over a real
// NATS), their lines forwarded with their names, a crashed one restarted, a crash loop given up with a report, a
// start that never serves timed out and killed, and a stop that lets them drain.
import path from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SidecarSpec } from "../../src/config-file.js";
import { createLogger } from "../../src/log.js";
import { Metrics } from "../../src/observability/metrics.js";
import { Supervisor } from "../../src/supervisor/supervisor.js";
import { writeFileSync } from "node:fs";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { eventually, taskClient, waitForPlugin } from "../helpers/clients.js";
import { projectRoot, startHost, startTestNats, tempDir, type TestNats } from "../helpers/processes.js";

let nats: TestNats;
let nc: NatsConnection;
const lines: string[] = [];
const log = createLogger({ level: "info", write: (line) => lines.push(line) });
const fast = { backoffMs: 50, maxBackoffMs: 200, crashLoopLimit: 3, crashWindowMs: 10_000, probeIntervalMs: 200, drainTimeoutMs: 10_000 };

const spec = (fields: Partial<SidecarSpec> & Pick<SidecarSpec, "name" | "args">): SidecarSpec => ({
  command: process.execPath,
  env: {},
  workingDir: projectRoot,
  replicas: 1,
  transport: "socket",
  startTimeoutMs: 30_000,
  protocol: "plugin-bridge",
  ...fields,
});

const reference = (name: string, replicas: number, transport: "socket" | "tcp" = "socket"): SidecarSpec =>
  spec({
    name,
    replicas,
    transport,
    args: ["--import", "tsx", "sidecars/typescript/conformance/main.ts"],
    env: { CONFORMANCE_AUDIT_FILE: path.join(tempDir("supervisor"), "audit.log") },
  });

const alive = (pid: number | undefined): boolean => {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

describe("the supervisor", () => {
  it("starts every replica with what it needs, forwards its lines, restarts it after a crash, and drains it on stop", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const supervisor = await Supervisor.start([reference("ref", 2), reference("ref-tcp", 1, "tcp")], { natsUrl: nats.url, log, policy: fast, metrics });
    try {
      await supervisor.ready();
      const status = supervisor.status();
      expect(status.map((replica) => replica.state)).toEqual(["serving", "serving", "serving"]);
      expect(status[2]!.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
      // Each replica announced itself with the instance id the supervisor gave it.
      const plugins = await new Kvm(nc).open("pb_plugins");
      await eventually("announcements", async () => {
        for (const replica of status) if (!(await plugins.get(`conformance-typescript.${replica.instanceId}`))) return undefined;
        return true;
      });
      expect(lines.some((line) => line.includes("serving on unix:") && line.includes("sidecar=ref ") && line.includes("stream=stderr"))).toBe(true);

      const crashed = status[0]!;
      process.kill(crashed.pid!, "SIGKILL");
      const restarted = await eventually("a restart", () => {
        const now = supervisor.status()[0]!;
        return now.restarts === 1 && now.state === "serving" ? now : undefined;
      }, 600, 50);
      expect(restarted.pid).not.toBe(crashed.pid);
      expect(restarted.lastExit).toBe("killed by SIGKILL");
      expect(restarted.instanceId).toBe(crashed.instanceId);
      expect(await metrics.render()).toContain('plugin_bridge_sidecar_restarts_total{sidecar="ref"} 1');
    } finally {
      const pids = supervisor.status().map((replica) => replica.pid);
      lines.length = 0;
      await supervisor.stop();
      expect(pids.some(alive)).toBe(false);
      expect(supervisor.status().map((replica) => replica.state)).toEqual(["stopped", "stopped", "stopped"]);
      // They drained: each got SIGTERM and went through its own drain.
      expect(lines.filter((line) => line.includes("SIGTERM received")).length).toBe(3);
      expect(lines.filter((line) => line.includes("INFO  stopped") || line.includes(" stopped ")).length).toBeGreaterThanOrEqual(3);
    }
  });

  it("gives up a crash loop with a report", async () => {
    const supervisor = await Supervisor.start([spec({ name: "crashy", args: ["-e", "process.exit(3)"] })], { natsUrl: nats.url, log, policy: fast });
    await supervisor.ready();
    const [replica] = supervisor.status();
    expect(replica!.state).toBe("gave-up");
    expect(replica!.restarts).toBe(2);
    expect(replica!.lastExit).toMatch(/^crashed 3 times within \d+ s; the last: exited before serving \(exit code 3\)$/);
    expect(lines.some((line) => line.includes("sidecar crash loop: giving up") && line.includes("sidecar=crashy"))).toBe(true);
    await supervisor.stop();
  });

  it("kills a sidecar that does not serve within its start timeout", async () => {
    const silent = spec({ name: "silent", args: ["-e", "setInterval(() => {}, 1000)"], startTimeoutMs: 500 });
    const supervisor = await Supervisor.start([silent], { natsUrl: nats.url, log, policy: { ...fast, crashLoopLimit: 2 } });
    await supervisor.ready();
    const [replica] = supervisor.status();
    expect(replica!.state).toBe("gave-up");
    expect(replica!.lastExit).toContain("did not answer SERVING within 500 ms");
    expect(replica!.pid).toBeUndefined();
    await supervisor.stop();
  });
});

describe("plugin-bridge serve with sidecars in its config file", () => {
  it("starts them, routes a task to them, and drains them before it exits 0", async () => {
    const config = path.join(tempDir("serve-config"), "plugin-bridge.yaml");
    writeFileSync(config, [
      "sidecars:",
      "  - name: reference",
      `    command: ${JSON.stringify(process.execPath)}`,
      "    args: [--import, tsx, sidecars/typescript/conformance/main.ts]",
      `    workingDir: ${JSON.stringify(projectRoot)}`,
      "    replicas: 2",
      "",
    ].join("\n"));
    const host = await startHost(nats.url, { config });
    try {
      await waitForPlugin(host.url, "conformance-typescript", 2);
      let last: Phase | undefined;
      for await (const { event } of taskClient(host.url).executeTask({ template: { type: "conformance-typescript", typeVersion: 1, custom: {} } })) {
        last = event?.phaseInfo?.phase ?? last;
      }
      expect(last).toBe(Phase.SUCCESS);
      expect(host.output()).toMatch(/sidecar serving .*sidecar=reference/);
    } finally {
      expect(await host.stop("SIGTERM")).toBe(0);
    }
    expect(host.output().match(/SIGTERM received/g)).toHaveLength(2);
  });
});
