// The real `plugin-bridge` binary against a real host and plugin: plugins ls, run (YAML and JSON task files), get,
// watch, abort and ls, as tables and as --json, with exit codes that say how a task ended.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliResult } from "../helpers/cli.js";
import { waitForPlugin } from "../helpers/clients.js";
import { startHost, startReferencePlugin, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

const work = tempDir("cli");
let nats: TestNats;
let host: TestHost;
let sidecar: RunningProcess;

beforeAll(async () => {
  nats = await startTestNats();
  host = await startHost(nats.url);
  sidecar = startReferencePlugin(nats.url, path.join(work, "audit.log"), { PLUGIN_BRIDGE_INSTANCE_ID: "cli-reference" });
  await waitForPlugin(host.url, "conformance-typescript");
});

afterAll(async () => {
  await sidecar?.stop();
  await host?.stop();
  await nats?.stop();
});

const cli = (...args: string[]): Promise<CliResult> => runCli(host.url, args);

function taskFile(name: string, content: string): string {
  const file = path.join(work, name);
  writeFileSync(file, content);
  return file;
}

describe("the plugin-bridge CLI", () => {
  it("lists plugins as a table and as JSON", async () => {
    const listed = await cli("plugins", "ls");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^PLUGIN\s+VERSION\s+KIND\s+INSTANCE/);
    expect(listed.stdout).toMatch(/conformance-typescript\s+1\.0\.0\s+ASYNC\s+cli-reference\s+unix:/);
    const json = await cli("plugins", "ls", "--json");
    expect(JSON.parse(json.stdout.trim().split("\n")[0]!)).toMatchObject({ instanceId: "cli-reference" });
  });

  it("runs a task from a YAML file to the end, exit 0 and the outputs; a failing one exits 1", async () => {
    const file = taskFile("task.yaml", "template:\n  type: conformance-typescript\n  typeVersion: 1\n  custom:\n    polls: 1\n    echo: from yaml\n");
    const run = await cli("run", file, "--namespace", "cli");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/ #1 attempt 1 QUEUED: accepted\n/);
    expect(run.stdout).toMatch(/ SUCCESS/);
    expect(JSON.parse(run.stdout.trim().split("\n").at(-1)!)).toMatchObject({ echo: "from yaml", language: "typescript" });

    const failing = taskFile("fail.json", JSON.stringify({ template: { type: "conformance-typescript", typeVersion: 1, custom: { create: "BEHAVIOR_USER_ERROR", message: "no" } } }));
    const failed = await cli("run", failing, "--json");
    expect(failed.code).toBe(1);
    const events = failed.stdout.trim().split("\n").map((line) => JSON.parse(line) as { phaseInfo: { phase: string } });
    expect(events.at(-1)?.phaseInfo.phase).toBe("PHASE_PERMANENT_FAILURE");
  });

  it("gets, watches, aborts and lists executions, with exit codes for how they ended", async () => {
    const waiting = taskFile("wait.yaml", `template: {type: conformance-typescript, typeVersion: 1, custom: {waitForFile: ${JSON.stringify(path.join(work, "never"))}}}\n`);
    const detached = await cli("run", waiting, "--detach", "--namespace", "cli");
    expect(detached.code).toBe(0);
    const id = detached.stdout.trim();
    const got = await cli("get", id);
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(new RegExp(`^ID\\s+NAMESPACE\\s+TASK\\s+PHASE\\s+ATTEMPT\\s+UPDATED\\n${id}\\s+cli\\s+conformance-typescript@1\\s+\\w+`));
    const aborted = await cli("abort", id, "--reason", "from the cli", "--json");
    expect(aborted.code).toBe(0);
    expect(JSON.parse(aborted.stdout)).toMatchObject({ id, phaseInfo: { phase: "PHASE_ABORTED", reason: "from the cli" } });
    const watched = await cli("watch", id);
    expect(watched.code).toBe(3);
    expect(watched.stdout).toMatch(/ABORTED: from the cli\n$/);

    const listed = await cli("ls", "--namespace", "cli", "--phase", "aborted", "--json");
    expect(listed.code).toBe(0);
    expect(listed.stdout.trim().split("\n").map((line) => (JSON.parse(line) as { id: string }).id)).toEqual([id]);
  });

  it("says what went wrong with the command line, the file, the request and the host", async () => {
    expect((await cli("run")).code).toBe(2);
    expect((await cli("run", taskFile("bad.yaml", "template: [1, 2\n"))).code).toBe(2);
    expect((await cli("run", taskFile("no-template.yaml", "inputs: {}\n"))).stderr).toContain('must hold an object with a "template"');
    expect((await cli("ls", "--phase", "sideways")).stderr).toContain('unknown phase "sideways"');
    expect((await cli("get", "--nope")).code).toBe(2);
    const missing = await cli("get", "no-such-execution");
    expect(missing.code).toBe(5);
    expect(missing.stderr).toContain("NotFound");
    const unknownType = await cli("run", taskFile("unknown.yaml", "template: {type: nobody-serves-this, typeVersion: 1}\n"));
    expect(unknownType.code).toBe(5);
    expect(unknownType.stderr).toContain('no live plugin serves task type "nobody-serves-this"');
    const unreachable = await cli("plugins", "ls", "--url", "http://127.0.0.1:1");
    expect(unreachable.code).toBe(4);
  });
});
