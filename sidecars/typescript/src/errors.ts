// How plugin failures become gRPC statuses. The host reads the status code to decide whose fault a failed
// call is: INTERNAL, UNAVAILABLE and DEADLINE_EXCEEDED are system failures it retries; INVALID_ARGUMENT,
// FAILED_PRECONDITION and the like are user errors that fail the task with the message.
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";

export { status as GrpcStatus } from "@grpc/grpc-js";

/** Thrown by a plugin (or the kit) to answer a call with a chosen gRPC status code and message. */
export class PluginError extends Error {
  override readonly name = "PluginError";
  constructor(
    /** A gRPC status code, such as `GrpcStatus.INVALID_ARGUMENT`. */
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/** True when `value` is a PluginError, also across copies of the kit loaded twice. */
export function isPluginError(value: unknown): value is PluginError {
  return (
    value instanceof PluginError ||
    (value instanceof Error && value.name === "PluginError" && typeof (value as PluginError).code === "number")
  );
}

/** Turns anything a handler threw into the error grpc-js sends: PluginError keeps its code, the rest is INTERNAL. */
export function toServiceError(error: unknown): Partial<ServiceError> {
  if (isPluginError(error)) {
    return { code: error.code, details: error.message, metadata: new Metadata() };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: status.INTERNAL, details: message || "internal error", metadata: new Metadata() };
}
