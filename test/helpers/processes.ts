// Real processes for integration tests: nats-server, hosts and sidecars, each on loopback, each stopped by the
// test that started it (and killed on exit, whatever happens).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startNatsServer, type NatsServerProcess } from "../../src/coordination/nats-server-process.js";

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `pb-${prefix}-`));
}

export interface TestNats extends NatsServerProcess {
  dataDir: string;
}

export async function startTestNats(): Promise<TestNats> {
  const dataDir = tempDir("nats");
  const server = await startNatsServer({ dataDir });
  return {
    ...server,
    dataDir,
    async stop(graceMs?: number) {
      await server.stop(graceMs);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface RunningProcess {
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves once the output contains `text`; rejects if the process exits first or `timeoutMs` passes. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and waits for the exit; SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): RunningProcess {
  const child = spawn(command, args, {
    cwd: projectRoot,
    env: { ...process.env, PLUGIN_BRIDGE_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let output = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    for (const waiter of waiters) waiter();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      children.delete(child);
      for (const waiter of waiters) waiter();
      resolve(code);
    }),
  );
  return {
    child,
    exited,
    output: () => output,
    waitFor(text, timeoutMs = 30_000) {
      const found = (): boolean => (typeof text === "string" ? output.includes(text) : text.test(output));
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (found()) finish(resolve);
          else if (child.exitCode !== null || child.signalCode !== null) {
            finish(() => reject(new Error(`process exited before printing ${text}:\n${output.slice(-3000)}`)));
          }
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`timed out waiting for ${text}:\n${output.slice(-3000)}`))), timeoutMs);
        const finish = (then: () => void): void => {
          clearTimeout(timer);
          waiters.delete(check);
          then();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = "SIGTERM", graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(killer);
      return code;
    },
  };
}

export interface TestHost extends RunningProcess {
  url: string;
  port: number;
}

/** Starts `plugin-bridge serve` on a free loopback port against `natsUrl` (`env` added to its environment); resolves once it serves. */
export async function startHost(natsUrl: string, flags: Record<string, string> = {}, env: NodeJS.ProcessEnv = {}): Promise<TestHost> {
  const port = await freePort();
  const args = [path.join(projectRoot, "bin", "plugin-bridge.js"), "serve", "--nats-url", natsUrl, "--listen-port", String(port)];
  for (const [flag, value] of Object.entries({ "ack-wait-ms": "5000", "no-instance-retry-ms": "500", ...flags })) {
    args.push(`--${flag}`, value);
  }
  const host = run(process.execPath, args, env);
  await host.waitFor("serving", 30_000);
  // http or https, as the host says (a config file may give the port TLS).
  const url = /serving .*url=(https?:\/\/\S+)/.exec(host.output())?.[1] ?? `http://127.0.0.1:${port}`;
  return { ...host, url, port };
}

/**
 * Runs a TypeScript file (a path relative to the project) as ONE process: `node --import tsx`. The `tsx` command
 * runs the code in a child process, and a SIGKILL to it would leave that child running.
 */
export function runTypeScript(file: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): RunningProcess {
  return run(process.execPath, ["--import", "tsx", path.join(projectRoot, file), ...args], env);
}

/** Starts a sidecar written with the TypeScript kit, announcing itself on `natsUrl`. */
export function startTypeScriptSidecar(file: string, natsUrl: string, env: NodeJS.ProcessEnv = {}): RunningProcess {
  return runTypeScript(file, { PLUGIN_BRIDGE_NATS_URL: natsUrl, ...env });
}

/**
 * The TypeScript kit's conformance reference plugin (task type `conformance-typescript`, or with
 * CONFORMANCE_KIND=sync `conformance-sync-typescript`), auditing its calls into `auditFile`.
 */
export function startReferencePlugin(natsUrl: string, auditFile: string, env: NodeJS.ProcessEnv = {}): RunningProcess {
  return startTypeScriptSidecar("sidecars/typescript/conformance/main.ts", natsUrl, { CONFORMANCE_AUDIT_FILE: auditFile, ...env });
}
