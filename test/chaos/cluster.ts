// A NATS cluster of real nats-server processes on loopback, each node with its own ports, config file and
// JetStream directory, for the chaos suite: nodes can be SIGKILLed and started again on the same ports and data,
// as an operator's restart would. A cluster of one is a plain JetStream server (no cluster block), so the suite's
// single-node scenario restarts it the same way.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { freePort, natsServerBinary } from "../../src/coordination/nats-server-process.js";
import { tempDir } from "../helpers/processes.js";

/** The server's own output is kept for failure messages, but only its tail: a long chaos run logs a lot. */
const OUTPUT_TAIL_BYTES = 64 * 1024;

export interface NatsNode {
  readonly name: string;
  /** The client URL, nats://127.0.0.1:<port>. */
  readonly url: string;
  /** The HTTP monitoring port (/healthz, /jsz). */
  readonly monitorPort: number;
  readonly dir: string;
  running(): boolean;
  /** Sends `signal` (SIGKILL by default) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the node again on the same ports and JetStream directory; resolves once it serves clients. */
  restart(): Promise<void>;
  /** Resolves once /healthz says the node's JetStream is current (false after `timeoutMs`). */
  healthy(timeoutMs: number): Promise<boolean>;
  /** The tail of what the server wrote. */
  output(): string;
  /**
   * What this node holds that matters when it dies: the streams and durable consumers it leads, and the streams
   * with no other copy ("KV_pb_creates R1"). Empty when the node does not answer.
   */
  holdings(): Promise<string[]>;
}

export interface NatsCluster {
  readonly nodes: NatsNode[];
  /** Stops every node still running (SIGTERM, then SIGKILL) and removes their directories. */
  stop(): Promise<void>;
}

interface Ports {
  client: number;
  route: number;
  monitor: number;
}

/** The part of nats-server's /jsz?streams=true&consumers=true answer that `holdings` reads. */
interface JszAnswer {
  account_details?: Array<{
    stream_detail?: Array<{
      name: string;
      cluster?: { leader?: string; replicas?: Array<{ name: string }> };
      consumer_detail?: Array<{ name: string; config?: { durable_name?: string }; cluster?: { leader?: string } }>;
    }>;
  }>;
}

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** The node's config file: every setting the suite depends on, so nothing comes from the server's defaults. */
function configText(name: string, index: number, ports: Ports[], clusterName: string, storeDir: string): string {
  const own = ports[index]!;
  const lines = [
    `server_name: ${name}`,
    `listen: "127.0.0.1:${own.client}"`,
    `http: "127.0.0.1:${own.monitor}"`,
    // As the host's own nats-server: execution records carry the whole request.
    `max_payload: ${8 * 1024 * 1024}`,
    `jetstream {`,
    `  store_dir: ${JSON.stringify(storeDir)}`,
    `}`,
  ];
  if (ports.length > 1) {
    const routes = ports.filter((_, other) => other !== index).map((peer) => `    "nats-route://127.0.0.1:${peer.route}"`);
    lines.push(
      `cluster {`,
      `  name: ${clusterName}`,
      `  listen: "127.0.0.1:${own.route}"`,
      `  routes: [`,
      ...routes,
      `  ]`,
      `}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Starts `size` nodes (1, 3 or 5) and resolves once every node's JetStream is current. */
export async function startNatsCluster(size: number, options: { readyTimeoutMs?: number } = {}): Promise<NatsCluster> {
  const root = tempDir("chaos-nats");
  const ports: Ports[] = [];
  for (let index = 0; index < size; index++) {
    ports.push({ client: await freePort(), route: await freePort(), monitor: await freePort() });
  }
  const clusterName = `pb-chaos-${process.pid}`;
  const nodes = ports.map((own, index) => {
    const name = `n${index}`;
    const dir = path.join(root, name);
    mkdirSync(dir, { recursive: true });
    const configFile = path.join(dir, "nats-server.conf");
    writeFileSync(configFile, configText(name, index, ports, clusterName, path.join(dir, "jetstream")));
    return new Node(name, own, dir, configFile, size > 1);
  });
  const cluster: NatsCluster = {
    nodes,
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    // All at once: a node waits for its routes' peers to elect a JetStream meta leader.
    await Promise.all(nodes.map((node) => node.restart()));
    const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
    const healthy = await Promise.all(nodes.map((node) => node.healthy(readyTimeoutMs)));
    const sick = nodes.filter((_, index) => !healthy[index]);
    if (sick.length > 0) {
      throw new Error(`NATS nodes ${sick.map((node) => node.name).join(", ")} not healthy after ${readyTimeoutMs} ms:\n${sick[0]!.output().slice(-3000)}`);
    }
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

class Node implements NatsNode {
  readonly url: string;
  readonly monitorPort: number;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private tail = "";

  constructor(
    readonly name: string,
    ports: Ports,
    readonly dir: string,
    private readonly configFile: string,
    private readonly clustered: boolean,
  ) {
    this.url = `nats://127.0.0.1:${ports.client}`;
    this.monitorPort = ports.monitor;
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.tail;
  }

  async restart(): Promise<void> {
    if (this.running()) throw new Error(`NATS node ${this.name} is already running`);
    const child = spawn(natsServerBinary(), ["--config", this.configFile], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    children.add(child);
    this.exited = new Promise((resolve) =>
      child.once("exit", () => {
        children.delete(child);
        resolve();
      }),
    );
    let seen = "";
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        const text = chunk.toString();
        this.tail = (this.tail + text).slice(-OUTPUT_TAIL_BYTES);
        if (seen.length < OUTPUT_TAIL_BYTES) seen += text;
        if (seen.includes("Server is ready")) resolve();
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("error", reject);
      void this.exited.then(() => reject(new Error(`NATS node ${this.name} exited before it was ready:\n${this.tail.slice(-3000)}`)));
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      await ready;
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.running()) return;
    this.child!.kill(signal);
    await this.exited;
  }

  async stop(): Promise<void> {
    if (!this.running()) return;
    this.child!.kill("SIGTERM");
    const killer = setTimeout(() => this.child?.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(killer);
  }

  /** A node of a cluster can serve JetStream only once a meta leader is elected; a lone server has none to wait for. */
  private async knowsMetaLeader(): Promise<boolean> {
    if (!this.clustered) return true;
    const response = await fetch(`http://127.0.0.1:${this.monitorPort}/jsz`, { signal: AbortSignal.timeout(2_000) });
    const jsz = (await response.json()) as { meta_cluster?: { leader?: string } };
    return Boolean(jsz.meta_cluster?.leader);
  }

  async holdings(): Promise<string[]> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.monitorPort}/jsz?streams=true&consumers=true&config=true`, { signal: AbortSignal.timeout(2_000) });
      const jsz = (await response.json()) as JszAnswer;
      const held: string[] = [];
      for (const stream of jsz.account_details?.flatMap((account) => account.stream_detail ?? []) ?? []) {
        const copies = 1 + (stream.cluster?.replicas?.length ?? 0);
        if (copies === 1) held.push(`${stream.name} R1`);
        else if (stream.cluster?.leader === this.name) held.push(`${stream.name} leader`);
        // Durable consumers only: the ephemeral ones (KV watches, ordered consumers) are remade by their clients.
        for (const consumer of stream.consumer_detail ?? []) {
          if (consumer.config?.durable_name && consumer.cluster?.leader === this.name) held.push(`${stream.name}/${consumer.name} leader`);
        }
      }
      return held;
    } catch {
      return [];
    }
  }

  async healthy(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running()) return false;
      try {
        const response = await fetch(`http://127.0.0.1:${this.monitorPort}/healthz`, { signal: AbortSignal.timeout(2_000) });
        if (response.ok && (await this.knowsMetaLeader())) return true;
      } catch {
        // Not listening yet, or busy electing leaders: look again.
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return false;
  }
}
