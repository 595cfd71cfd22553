// Makes Create idempotent by execution id and attempt (DESIGN.md, rule 3): a retried Create after a crash,
// a timeout or a duplicate delivery returns the resource meta of the first one and starts nothing twice.
// Within one process, concurrent duplicates share one promise; across processes and restarts, the meta is
// stored in the `pb_creates` KV bucket under `<plugin>.<execution>.<attempt>`.
import { status } from "@grpc/grpc-js";
import type { KV } from "@nats-io/kv";
import { PluginError } from "./errors.js";
import type { Logger } from "./log.js";

/** Where finished Creates are remembered. */
export interface CreateStore {
  /** The stored meta, or undefined if this key never completed. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Stores `meta` unless the key exists; returns what is stored afterwards (someone else's meta if they won). */
  putIfAbsent(key: string, meta: Uint8Array): Promise<Uint8Array>;
}

/** A CreateStore over a KV bucket that may not be reachable yet; `open` throws while it is not. */
export class KvCreateStore implements CreateStore {
  constructor(private readonly open: () => Promise<KV>) {}

  async get(key: string): Promise<Uint8Array | undefined> {
    const entry = await (await this.open()).get(key);
    return entry && entry.operation === "PUT" ? entry.value : undefined;
  }

  async putIfAbsent(key: string, meta: Uint8Array): Promise<Uint8Array> {
    const bucket = await this.open();
    try {
      await bucket.create(key, meta);
      return meta;
    } catch (error) {
      // `create` fails when the key exists: another instance finished the same Create first.
      const existing = await this.get(key);
      if (existing) return existing;
      throw error;
    }
  }
}

/** A CreateStore for a sidecar run without NATS (local development): idempotent within the process only. */
export class MemoryCreateStore implements CreateStore {
  readonly #entries = new Map<string, Uint8Array>();
  async get(key: string): Promise<Uint8Array | undefined> {
    return this.#entries.get(key);
  }
  async putIfAbsent(key: string, meta: Uint8Array): Promise<Uint8Array> {
    const existing = this.#entries.get(key);
    if (existing) return existing;
    this.#entries.set(key, meta);
    return meta;
  }
}

interface SharedCreate {
  promise: Promise<Uint8Array>;
  controller: AbortController;
  waiters: number;
}

/** How many finished Creates the process remembers itself, for when the store cannot be written. */
const RECENT_LIMIT = 10_000;

export class IdempotentCreates {
  readonly #inFlight = new Map<string, SharedCreate>();
  // A bounded memory of finished Creates: covers a retry that comes back to this process while the store
  // was unreachable when the first Create finished.
  readonly #recent = new Map<string, Uint8Array>();

  constructor(
    private readonly store: CreateStore,
    private readonly log: Logger,
  ) {}

  /**
   * Returns the meta stored under `key`, or runs `create` once and stores its result. `create` gets a signal
   * that fires only when every caller waiting for it has gone away.
   */
  async run(key: string, signal: AbortSignal, create: (signal: AbortSignal) => Promise<Uint8Array>): Promise<Uint8Array> {
    const remembered = this.#recent.get(key);
    if (remembered) {
      this.log("info", "Create already done; returning the resource meta remembered by this process", { key });
      return remembered;
    }
    let shared = this.#inFlight.get(key);
    if (shared) {
      this.log("info", "joining a Create already in progress", { key });
    } else {
      shared = this.#start(key, create);
      this.#inFlight.set(key, shared);
    }
    return await this.#wait(shared, signal);
  }

  #start(key: string, create: (signal: AbortSignal) => Promise<Uint8Array>): SharedCreate {
    const controller = new AbortController();
    const promise = (async () => {
      let stored: Uint8Array | undefined;
      try {
        stored = await this.store.get(key);
      } catch (error) {
        // Without the store we cannot know whether this Create already ran: refuse, the host retries.
        throw new PluginError(
          status.UNAVAILABLE,
          `create idempotency store unavailable: ${(error as Error).message}`,
        );
      }
      if (stored) {
        this.log("info", "Create already done; returning the stored resource meta", { key });
        return stored;
      }
      const meta = await create(controller.signal);
      try {
        const winner = await this.store.putIfAbsent(key, meta);
        if (winner !== meta) {
          this.log("warn", "another instance finished the same Create first; returning its resource meta", {
            key,
          });
        }
        return winner;
      } catch (error) {
        // The remote work has started: answering with its meta is better than failing, which would make the
        // host retry and start it again. The process remembers it for retries that come back here.
        this.log("error", "could not store the resource meta of a finished Create", { key, error });
        return meta;
      }
    })();
    promise.then(
      (meta) => this.#remember(key, meta),
      () => undefined,
    );
    promise.finally(() => this.#inFlight.delete(key)).catch(() => undefined);
    return { promise, controller, waiters: 0 };
  }

  async #wait(shared: SharedCreate, signal: AbortSignal): Promise<Uint8Array> {
    shared.waiters += 1;
    let onAbort: (() => void) | undefined;
    try {
      return await new Promise<Uint8Array>((resolve, reject) => {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        shared.promise.then(resolve, reject);
      });
    } finally {
      if (onAbort) signal.removeEventListener("abort", onAbort);
      shared.waiters -= 1;
      // Nobody wants the result any more: tell the plugin's create to stop.
      if (shared.waiters === 0 && signal.aborted) shared.controller.abort(signal.reason);
    }
  }

  #remember(key: string, meta: Uint8Array): void {
    this.#recent.delete(key);
    this.#recent.set(key, meta);
    if (this.#recent.size > RECENT_LIMIT) {
      const oldest = this.#recent.keys().next().value;
      if (oldest !== undefined) this.#recent.delete(oldest);
    }
  }
}
