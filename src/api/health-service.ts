// The standard gRPC health service (grpc.health.v1.Health) on the public port, so load balancers,
// Kubernetes probes and grpc-health-probe see the host's state without knowing plugin-bridge.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponse,
} from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import { quoted } from "./error-text.js";

/** The health protocol's name for "the server as a whole". */
export const WHOLE_SERVER = "";

export type HealthStatusListener = (status: ServingStatus) => void;

/**
 * The serving status of the server ("") and of named services, with change notifications for Watch.
 *
 * Like grpc-go's health server: after shutdown() every service reads NOT_SERVING and later set() calls are
 * ignored, so a component finishing late cannot advertise SERVING on a server that is going away.
 */
export class HealthStatus {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #listeners = new Map<string, Set<HealthStatusListener>>();
  #shutDown = false;

  constructor(serverStatus: ServingStatus = ServingStatus.SERVING) {
    this.#statuses.set(WHOLE_SERVER, serverStatus);
  }

  /** Sets a service's status ("" for the whole server). Ignored once shutdown() ran. */
  set(service: string, status: ServingStatus): void {
    if (this.#shutDown) return;
    this.#update(service, status);
  }

  /** Forgets a service: Check answers NOT_FOUND again and watchers see SERVICE_UNKNOWN. */
  remove(service: string): void {
    if (this.#shutDown || !this.#statuses.delete(service)) return;
    this.#notify(service, ServingStatus.SERVICE_UNKNOWN);
  }

  /** The status of a service, or undefined when it was never set. */
  get(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }

  /** Calls listener on every change of the service's status; returns the function that stops it. */
  subscribe(service: string, listener: HealthStatusListener): () => void {
    let listeners = this.#listeners.get(service);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(service, listeners);
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.#listeners.delete(service);
    };
  }

  /** Marks every known service NOT_SERVING, for good. */
  shutdown(): void {
    for (const service of [...this.#statuses.keys()]) this.#update(service, ServingStatus.NOT_SERVING);
    this.#shutDown = true;
  }

  get isShutDown(): boolean {
    return this.#shutDown;
  }

  #update(service: string, status: ServingStatus): void {
    if (this.#statuses.get(service) === status) return;
    this.#statuses.set(service, status);
    this.#notify(service, status);
  }

  #notify(service: string, status: ServingStatus): void {
    // A copy: a listener may unsubscribe while we iterate.
    for (const listener of [...(this.#listeners.get(service) ?? [])]) listener(status);
  }
}

/** Registers grpc.health.v1.Health, backed by `health`, on a router. */
export function registerHealthService(router: ConnectRouter, health: HealthStatus): void {
  router.service(Health, {
    check(request) {
      const status = health.get(request.service);
      if (status === undefined) {
        throw new ConnectError(`unknown service ${quoted(request.service)}`, Code.NotFound);
      }
      return create(HealthCheckResponseSchema, { status });
    },
    watch(request, context) {
      return watchStatus(health, request.service, context.signal);
    },
  });
}

/**
 * Sends the current status, then each change, until the signal aborts (the client left, its deadline
 * passed, or the server is closing). An unknown service is not an error for Watch (the protocol says so):
 * it reads SERVICE_UNKNOWN until someone sets it.
 *
 * Changes that arrive while the client is still reading an earlier one are coalesced to the latest, as
 * grpc-go does: a slow watcher costs one pending value, not a growing queue.
 */
async function* watchStatus(
  health: HealthStatus,
  service: string,
  signal: AbortSignal,
): AsyncGenerator<HealthCheckResponse> {
  let pending: ServingStatus | undefined = health.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
  let wakeUp: (() => void) | undefined;
  const unsubscribe = health.subscribe(service, (status) => {
    pending = status;
    wakeUp?.();
  });
  const onAbort = (): void => wakeUp?.();
  signal.addEventListener("abort", onAbort);
  try {
    let lastSent: ServingStatus | undefined;
    for (;;) {
      // A pending change goes out before we look at the signal, so a watcher of a closing server sees
      // NOT_SERVING before its stream ends.
      if (pending !== undefined && pending !== lastSent) {
        lastSent = pending;
        pending = undefined;
        yield create(HealthCheckResponseSchema, { status: lastSent });
        continue;
      }
      pending = undefined;
      if (signal.aborted) break;
      await new Promise<void>((resolve) => {
        wakeUp = resolve;
      });
      wakeUp = undefined;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onAbort);
  }
  // The server aborts with a ConnectError (UNAVAILABLE on shutdown, DEADLINE_EXCEEDED on timeout): passing it
  // on tells the client why the stream ended. A client that left reads nothing, so returning is enough.
  if (signal.reason instanceof ConnectError) throw signal.reason;
}
