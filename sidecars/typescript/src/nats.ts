// The sidecar's NATS connection and the KV buckets it uses. A sidecar may start before NATS: the connection
// retries until the first connect succeeds, saying why each failed (NATS not up yet, or a certificate or
// credentials it refuses), then reconnects forever, and the buckets open once it is up. The bucket options
// are part of the contract with the host: whoever comes first creates a bucket, and the other opens it as it
// is (Kvm.create compares nothing), so both sides must keep the same settings.
import { Kvm, type KV, type KvOptions } from "@nats-io/kv";
import { connect, headers, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { StorageType } from "@nats-io/jetstream";
import type { Logger } from "./log.js";

/** The `pb_plugins` bucket: one key per live sidecar instance, refreshed by its heartbeat. */
export const PLUGINS_BUCKET = "pb_plugins";
/** Exactly what the host passes when it creates the bucket (src/coordination/layout.test.ts checks they agree). */
export const PLUGINS_BUCKET_OPTIONS: Partial<KvOptions> = {
  history: 1,
  ttl: 15_000,
  markerTTL: 5_000,
  storage: StorageType.File,
};

/**
 * The `pb_creates` bucket: the resource meta of every Create and a marker for every finished Finalize, by plugin,
 * execution and attempt (keys.ts: createKey, finalizeKey).
 */
export const CREATES_BUCKET = "pb_creates";
export const CREATES_BUCKET_OPTIONS: Partial<KvOptions> = {
  history: 1,
  ttl: 24 * 60 * 60 * 1000,
  storage: StorageType.File,
};

/** PLUGIN_BRIDGE_NATS_REPLICAS: 1, 3 or 5 copies of a bucket the kit creates; anything else is 1. */
function natsReplicas(): number {
  const replicas = Number(process.env.PLUGIN_BRIDGE_NATS_REPLICAS);
  return [1, 3, 5].includes(replicas) ? replicas : 1;
}

/** Time between connect attempts, before the first connect and between reconnects. */
const RETRY_MS = 1_000;
/** A NATS that stays unreachable is a warning at the first failed connect, then at one in this many. */
const FAILURES_BETWEEN_WARNINGS = 30;

/**
 * A NATS connection that may not exist yet. `bucket()` fails fast while NATS is unreachable, so callers can
 * answer UNAVAILABLE instead of hanging until a deadline.
 */
export class NatsLink {
  #connection: NatsConnection | undefined;
  readonly #connecting: Promise<NatsConnection | undefined>;
  readonly #buckets = new Map<string, Promise<KV>>();
  #closed = false;

  /** `security`: credentials and TLS (nats-security.ts); none for a plain connection. */
  constructor(
    readonly servers: string,
    name: string,
    private readonly log: Logger,
    security: Pick<ConnectionOptions, "authenticator" | "tls"> = {},
  ) {
    this.#connecting = this.#connectUntilUp({
      servers,
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: RETRY_MS,
      ...security,
    });
  }

  /**
   * Tries every RETRY_MS until connected or closed. The client's own waitOnFirstConnect would wait the same way,
   * but silently: a sidecar that does not trust the server's certificate would look like one whose NATS is down.
   */
  async #connectUntilUp(options: ConnectionOptions): Promise<NatsConnection | undefined> {
    for (let attempt = 1; !this.#closed; attempt++) {
      let connection: NatsConnection;
      try {
        connection = await connect(options);
      } catch (error) {
        // The first failure and one in FAILURES_BETWEEN_WARNINGS are warnings; the rest would only fill the log.
        const level = attempt % FAILURES_BETWEEN_WARNINGS === 1 ? "warn" : "debug";
        this.log(level, "NATS not reachable; retrying", { servers: this.servers, attempt, error });
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
        continue;
      }
      if (this.#closed) {
        await connection.close();
        return undefined;
      }
      this.#connection = connection;
      this.log("info", "connected to NATS", { server: connection.getServer() });
      void this.#watchStatus(connection);
      return connection;
    }
    return undefined;
  }

  /** Resolves once connected (or undefined if the link closed first). */
  connected(): Promise<NatsConnection | undefined> {
    return this.#connecting;
  }

  get isConnected(): boolean {
    return this.#connection !== undefined && !this.#connection.isClosed();
  }

  /** Opens (creating if missing) a KV bucket; throws at once while NATS is not connected. */
  async bucket(name: string, options: Partial<KvOptions>): Promise<KV> {
    const connection = this.#connection;
    if (!connection || connection.isClosed()) throw new Error("NATS is not connected yet");
    let opening = this.#buckets.get(name);
    if (!opening) {
      // Kvm.create opens an existing bucket as is and creates a missing one with `options`, with as many copies as
      // the hosts make (PLUGIN_BRIDGE_NATS_REPLICAS, 3 in a NATS cluster) when the kit comes first.
      opening = new Kvm(connection).create(name, { ...options, replicas: natsReplicas() });
      this.#buckets.set(name, opening);
      // A failed open is retried by the next caller rather than cached forever.
      opening.catch(() => this.#buckets.delete(name));
    }
    return await opening;
  }

  /** Publishes a plain NATS message, with `headerValues` as its headers; throws at once while NATS is not connected. */
  publish(subject: string, data: Uint8Array, headerValues?: Record<string, string>): void {
    const connection = this.#connection;
    if (!connection || connection.isClosed()) throw new Error("NATS is not connected");
    if (!headerValues) {
      connection.publish(subject, data);
      return;
    }
    const messageHeaders = headers();
    for (const [name, value] of Object.entries(headerValues)) messageHeaders.set(name, value);
    connection.publish(subject, data, { headers: messageHeaders });
  }

  async #watchStatus(connection: NatsConnection): Promise<void> {
    for await (const event of connection.status()) {
      if (event.type === "disconnect" || event.type === "reconnect") {
        this.log(event.type === "disconnect" ? "warn" : "info", `NATS ${event.type}`, { server: event.server });
      }
    }
  }

  /** Flushes and closes the connection; bounded so a dead server cannot hold up shutdown. */
  async close(timeoutMs = 5_000): Promise<void> {
    this.#closed = true;
    const connection = this.#connection;
    if (!connection || connection.isClosed()) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      connection.drain().catch(() => connection.close()),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          void connection.close().finally(resolve);
        }, timeoutMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
  }
}
