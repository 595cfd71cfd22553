// Makes a call idempotent by a key (DESIGN.md, rule 3): Create by execution id and attempt, so a retried Create
// after a crash, a timeout or a duplicate delivery returns the resource meta of the first one and starts nothing
// twice; Finalize the same way, so an attempt's resources are released once however often the host asks.
// Within one process, concurrent duplicates share one promise; across processes and restarts, the result is
// stored in the `pb_creates` KV bucket (`<plugin>.<execution>.<attempt>`, plus `.finalize` for a Finalize).
import { status } from "@grpc/grpc-js";
import type { KV } from "@nats-io/kv";
import { PluginError } from "./errors.js";
import type { Logger } from "./log.js";

/** Where finished idempotent calls are remembered: the `pb_creates` bucket, or memory without NATS. */
export interface IdempotencyStore {
  /** The stored result, or undefined if this key never completed. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Stores `result` unless the key exists; returns what is stored afterwards (someone else's if they won). */
  putIfAbsent(key: string, result: Uint8Array): Promise<Uint8Array>;
}

/** An IdempotencyStore over a KV bucket that may not be reachable yet; `open` throws while it is not. */
export class KvIdempotencyStore implements IdempotencyStore {
  constructor(private readonly open: () => Promise<KV>) {}

  async get(key: string): Promise<Uint8Array | undefined> {
    const entry = await (await this.open()).get(key);
    return entry && entry.operation === "PUT" ? entry.value : undefined;
  }

  async putIfAbsent(key: string, result: Uint8Array): Promise<Uint8Array> {
    const bucket = await this.open();
    try {
      await bucket.create(key, result);
      return result;
    } catch (error) {
      // `create` fails when the key exists: another instance finished the same call first.
      const existing = await this.get(key);
      if (existing) return existing;
      throw error;
    }
  }
}

/** An IdempotencyStore for a sidecar run without NATS (local development): idempotent within the process only. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, Uint8Array>();
  async get(key: string): Promise<Uint8Array | undefined> {
    return this.#entries.get(key);
  }
  async putIfAbsent(key: string, result: Uint8Array): Promise<Uint8Array> {
    const existing = this.#entries.get(key);
    if (existing) return existing;
    this.#entries.set(key, result);
    return result;
  }
}

/** How one idempotent call is named in logs and errors. */
export interface IdempotentCall {
  /** The method, such as "Create". */
  name: string;
  /** What its stored result is, such as "resource meta". */
  result: string;
}

export const CREATE_CALL: IdempotentCall = { name: "Create", result: "resource meta" };
export const FINALIZE_CALL: IdempotentCall = { name: "Finalize", result: "completion marker" };

interface SharedRun {
  promise: Promise<Uint8Array>;
  controller: AbortController;
  waiters: number;
}

/** How many finished calls the process remembers itself, for when the store cannot be written. */
const RECENT_LIMIT = 10_000;

/** Runs one kind of call at most once per key; a call that failed is not remembered, so its retry runs it. */
export class IdempotentCalls {
  readonly #inFlight = new Map<string, SharedRun>();
  // A bounded memory of finished calls: covers a retry that comes back to this process while the store was
  // unreachable when the first call finished.
  readonly #recent = new Map<string, Uint8Array>();

  constructor(
    private readonly store: IdempotencyStore,
    private readonly log: Logger,
    private readonly call: IdempotentCall,
  ) {}

  /**
   * Returns the result stored under `key`, or runs `work` once and stores its result. `work` gets a signal
   * that fires only when every caller waiting for it has gone away.
   */
  async run(key: string, signal: AbortSignal, work: (signal: AbortSignal) => Promise<Uint8Array>): Promise<Uint8Array> {
    const remembered = this.#recent.get(key);
    if (remembered) {
      this.log("info", `${this.call.name} already done; returning the ${this.call.result} remembered by this process`, {
        key,
      });
      return remembered;
    }
    let shared = this.#inFlight.get(key);
    if (shared) {
      this.log("info", `joining a ${this.call.name} already in progress`, { key });
    } else {
      shared = this.#start(key, work);
      this.#inFlight.set(key, shared);
    }
    return await this.#wait(shared, signal);
  }

  #start(key: string, work: (signal: AbortSignal) => Promise<Uint8Array>): SharedRun {
    const { name, result: what } = this.call;
    const controller = new AbortController();
    const promise = (async () => {
      let stored: Uint8Array | undefined;
      try {
        stored = await this.store.get(key);
      } catch (error) {
        // Without the store we cannot know whether this call already ran: refuse, the host retries.
        throw new PluginError(
          status.UNAVAILABLE,
          `${name.toLowerCase()} idempotency store unavailable: ${(error as Error).message}`,
        );
      }
      if (stored) {
        this.log("info", `${name} already done; returning the stored ${what}`, { key });
        return stored;
      }
      const result = await work(controller.signal);
      try {
        const winner = await this.store.putIfAbsent(key, result);
        if (winner !== result) {
          this.log("warn", `another instance finished the same ${name} first; returning its ${what}`, { key });
        }
        return winner;
      } catch (error) {
        // The work is done: answering with its result is better than failing, which would make the host retry
        // and do it again. The process remembers it for retries that come back here.
        this.log("error", `could not store the ${what} of a finished ${name}`, { key, error });
        return result;
      }
    })();
    promise.then(
      (result) => this.#remember(key, result),
      () => undefined,
    );
    promise.finally(() => this.#inFlight.delete(key)).catch(() => undefined);
    return { promise, controller, waiters: 0 };
  }

  async #wait(shared: SharedRun, signal: AbortSignal): Promise<Uint8Array> {
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
      // Nobody wants the result any more: tell the plugin's method to stop.
      if (shared.waiters === 0 && signal.aborted) shared.controller.abort(signal.reason);
    }
  }

  #remember(key: string, result: Uint8Array): void {
    this.#recent.delete(key);
    this.#recent.set(key, result);
    if (this.#recent.size > RECENT_LIMIT) {
      const oldest = this.#recent.keys().next().value;
      if (oldest !== undefined) this.#recent.delete(oldest);
    }
  }
}
