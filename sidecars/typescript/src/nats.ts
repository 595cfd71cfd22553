// The sidecar's NATS connection and the KV buckets it uses. A sidecar may start before NATS: the connection
// waits for the first connect and reconnects forever, and the buckets open once it is up. The bucket options
// are part of the contract with the host: whoever comes first creates a bucket, and the other opens it as it
// is (Kvm.create compares nothing), so both sides must keep the same settings.
import { Kvm, type KV, type KvOptions } from "@nats-io/kv";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
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

/**
 * A NATS connection that may not exist yet. `bucket()` fails fast while NATS is unreachable, so callers can
 * answer UNAVAILABLE instead of hanging until a deadline.
 */
export class NatsLink {
  #connection: NatsConnection | undefined;
  readonly #connecting: Promise<NatsConnection | undefined>;
  readonly #buckets = new Map<string, Promise<KV>>();
  #closed = false;

  constructor(
    readonly servers: string,
    name: string,
    private readonly log: Logger,
  ) {
    this.#connecting = connect({
      servers,
      name,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
    }).then(
      async (connection) => {
        if (this.#closed) {
          await connection.close();
          return undefined;
        }
        this.#connection = connection;
        log("info", "connected to NATS", { server: connection.getServer() });
        void this.#watchStatus(connection);
        return connection;
      },
      (error: unknown) => {
        log("error", "NATS connection failed", { servers, error });
        return undefined;
      },
    );
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
      // Kvm.create opens an existing bucket as is and creates a missing one with `options`.
      opening = new Kvm(connection).create(name, { ...options });
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
