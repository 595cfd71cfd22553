// Runs a nats-server child process with JetStream: the host's one-machine mode and every test use it.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where scripts/setup.sh installs the pinned nats-server (see docs/architecture.md): `.tools/bin` of the project,
 * found upwards from this module, which runs from `src/coordination/` or bundled in `dist/`.
 */
function findPinnedBinary(): string | undefined {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  for (let level = 0; level < 4; level++) {
    const candidate = path.join(directory, ".tools", "bin", "nats-server");
    if (existsSync(candidate)) return candidate;
    directory = path.dirname(directory);
  }
  return undefined;
}

export interface NatsServerOptions {
  /** JetStream's storage directory; created if missing. */
  dataDir: string;
  /** The client port; 0 picks a free one. Always bound to loopback unless `host` says otherwise. */
  port?: number;
  /** The address to bind; default 127.0.0.1. */
  host?: string;
  /** The largest message the server accepts, in bytes; default 8 MiB. */
  maxPayload?: number;
  /** Where log lines go; default: dropped. */
  onLog?: (line: string) => void;
}

export interface NatsServerProcess {
  /** The client URL, such as nats://127.0.0.1:4222. */
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Stops the server: SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** The nats-server binary: $PLUGIN_BRIDGE_NATS_SERVER, the pinned one in .tools/bin, or the one on PATH. */
export function natsServerBinary(): string {
  const fromEnv = process.env.PLUGIN_BRIDGE_NATS_SERVER;
  if (fromEnv) return fromEnv;
  return findPinnedBinary() ?? "nats-server";
}

/** Asks the kernel for a free loopback port. Racy by nature; the server start below fails loudly if lost. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts nats-server with JetStream and resolves once it accepts clients. */
export async function startNatsServer(options: NatsServerOptions): Promise<NatsServerProcess> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port || (await freePort(host));
  await mkdir(options.dataDir, { recursive: true });
  // max_payload is only settable in a config file. Execution records carry the whole request (up to the API's
  // 4 MiB default), so the server's 1 MiB default would refuse large ones.
  const configFile = path.join(options.dataDir, "nats-server.conf");
  await writeFile(configFile, `max_payload: ${options.maxPayload ?? 8 * 1024 * 1024}\n`);
  const child = spawn(
    natsServerBinary(),
    ["--config", configFile, "--jetstream", "--store_dir", options.dataDir, "--addr", host, "--port", String(port)],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let output = "";
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString();
      output += text;
      for (const line of text.split("\n")) if (line.trim()) options.onLog?.(line);
      if (output.includes("Server is ready")) resolve();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("error", reject);
    void exited.then((code) =>
      reject(new Error(`nats-server exited with code ${code} before it was ready:\n${output.slice(-2000)}`)),
    );
  });
  const timeout = setTimeout(() => child.kill("SIGKILL"), 15_000);
  try {
    await ready;
  } finally {
    clearTimeout(timeout);
  }
  return {
    url: `nats://${host}:${port}`,
    port,
    child,
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(killer);
    },
  };
}
