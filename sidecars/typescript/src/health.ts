// gRPC's standard health service. The sidecar announces itself only once it is SERVING, and a draining sidecar
// turns NOT_SERVING so that whoever checks (an operator, Kubernetes, a future supervisor) sees it leaving. Status is kept for "" (the server as a whole)
// and for each served service name; an unknown name is NOT_FOUND on Check and SERVICE_UNKNOWN on Watch, as
// the health protocol says.
import { EventEmitter } from "node:events";
import { status } from "@grpc/grpc-js";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import { PluginError, quoteInput } from "./errors.js";
import { implementService, type MethodsOf, type ServiceImplementation } from "./grpc-service.js";

export { HealthCheckResponse_ServingStatus as ServingStatus } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";

/** Serving status per service name, with change notification for Watch. */
export class HealthState {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #changes = new EventEmitter();
  #closed = false;

  constructor(serviceNames: string[], initial: ServingStatus = ServingStatus.NOT_SERVING) {
    // Every Watch subscribes here; the default limit of 10 would warn with a handful of supervisors.
    this.#changes.setMaxListeners(0);
    for (const name of ["", ...serviceNames]) this.#statuses.set(name, initial);
  }

  /** The status of `service`, or undefined when the server does not know it. */
  get(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }

  /** Sets every known service (and "") to `next`. */
  setAll(next: ServingStatus): void {
    for (const name of this.#statuses.keys()) this.set(name, next);
  }

  set(service: string, next: ServingStatus): void {
    if (this.#statuses.get(service) === next) return;
    this.#statuses.set(service, next);
    this.#changes.emit("change", service, next);
  }

  /** Ends every Watch stream, so a graceful server shutdown is not held open by them. */
  close(): void {
    this.#closed = true;
    this.#changes.emit("close");
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Calls `listener` once when the state closes; returns the function that unsubscribes. */
  onClose(listener: () => void): () => void {
    this.#changes.once("close", listener);
    return () => this.#changes.off("close", listener);
  }

  /** Calls `listener` on every change; returns the function that unsubscribes. */
  onChange(listener: (service: string, next: ServingStatus) => void): () => void {
    this.#changes.on("change", listener);
    return () => this.#changes.off("change", listener);
  }
}

/** The grpc-js implementation of grpc.health.v1.Health over `state`. */
export function healthService(state: HealthState) {
  const implementation: ServiceImplementation<MethodsOf<typeof Health>> = {
    async check(request) {
      const current = state.get(request.service);
      if (current === undefined) throw new PluginError(status.NOT_FOUND, `unknown service ${quoteInput(request.service)}`);
      return { status: current };
    },
    async watch(request, send, info) {
      // Streams the current status, then each change, until the client goes away.
      let last = state.get(request.service) ?? ServingStatus.SERVICE_UNKNOWN;
      send({ status: last });
      if (state.closed) return;
      await new Promise<void>((resolve) => {
        const unsubscribeChange = state.onChange((service, next) => {
          if (service !== request.service || next === last) return;
          last = next;
          send({ status: next });
        });
        const finish = (): void => {
          unsubscribeChange();
          unsubscribeClose();
          info.signal.removeEventListener("abort", finish);
          resolve();
        };
        const unsubscribeClose = state.onClose(finish);
        info.signal.addEventListener("abort", finish, { once: true });
      });
    },
  };
  return implementService(Health, implementation);
}
