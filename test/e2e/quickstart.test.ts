// The README's first command, as a test: the main job brings up its own nats-server, the host and every example
// sidecar, runs the sample tasks to SUCCESS and (with --exit) stops everything cleanly.
import { rmSync } from "node:fs";
import { expect, it } from "vitest";
import { freePort } from "../../src/coordination/nats-server-process.js";
import { runTypeScript, tempDir } from "../helpers/processes.js";

it("brings everything up and runs the sample tasks to SUCCESS", { timeout: 120_000 }, async () => {
  const dataDir = tempDir("dev");
  const args = ["--exit", "--port", String(await freePort()), "--nats-port", String(await freePort()), "--data-dir", dataDir];
  const job = runTypeScript("scripts/dev.ts", {}, args);
  try {
    const code = await Promise.race([job.exited, new Promise((resolve) => setTimeout(() => resolve("timeout"), 100_000))]);
    expect(code, job.output().slice(-3000)).toBe(0);
    const output = job.output();
    expect(output).toContain("live plugins: http, sensor, sql, batch");
    expect(output).toMatch(/http #2 SUCCESS/);
    expect(output).toMatch(/sensor #4 SUCCESS/);
    expect(output).toMatch(/sql #\d+ SUCCESS/);
    expect(output).toMatch(/batch #\d+ SUCCESS/);
    expect(output).toContain("all four tasks reached SUCCESS");
    expect(output).toMatch(/\[host\].*stopped/);
  } finally {
    await job.stop("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
  }
});
