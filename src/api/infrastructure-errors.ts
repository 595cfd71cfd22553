// A call that fails because NATS did not answer (a timeout under load, a connection that is closed, draining or
// reconnecting, JetStream refusing for a while) is not a bug of the request or of the host: it is answered
// UNAVAILABLE, the code gRPC and Connect clients retry, instead of the INTERNAL "internal error" an unknown
// exception becomes. The cause is logged; the caller gets its kind, not NATS's internals.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import { errors as nats } from "@nats-io/transport-node";
import type { ApiLog } from "./server.js";

const TRANSIENT = [
  nats.TimeoutError,
  nats.ConnectionError,
  nats.ClosedConnectionError,
  nats.DrainingConnectionError,
  nats.NoRespondersError,
  nats.RequestError,
  JetStreamError,
  JetStreamApiError,
];

/**
 * nats.js reports a JetStream request nobody answered (a stream leader being elected) as JetStreamNotEnabled,
 * a class the package does not export: known by its name.
 */
const TRANSIENT_NAMES = new Set(["JetStreamNotEnabled"]);

function isTransient(error: unknown): boolean {
  return TRANSIENT.some((kind) => error instanceof kind) || (error instanceof Error && TRANSIENT_NAMES.has(error.name));
}

function asUnavailable(error: unknown, log: ApiLog, method: string): unknown {
  if (error instanceof ConnectError || !isTransient(error)) return error;
  log("warn", "a call failed on NATS; answered UNAVAILABLE", { method, error: String(error) });
  return new ConnectError(`the host could not reach its store in time (${(error as Error).name}); retry`, Code.Unavailable, undefined, undefined, error);
}

export function natsFailuresAreUnavailable(log: ApiLog): Interceptor {
  return (next) => async (request) => {
    const method = `${request.service.typeName}/${request.method.name}`;
    let response;
    try {
      response = await next(request);
    } catch (error) {
      throw asUnavailable(error, log, method);
    }
    if (!response.stream) return response;
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        try {
          yield* messages;
        } catch (error) {
          throw asUnavailable(error, log, method);
        }
      })(),
    };
  };
}
