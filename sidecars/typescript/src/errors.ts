// How plugin failures become gRPC statuses. The host reads the status code to decide whose fault a failed
// call is: INTERNAL, UNAVAILABLE and DEADLINE_EXCEEDED are system failures it retries; INVALID_ARGUMENT,
// FAILED_PRECONDITION and the like are user errors that fail the task with the message. Every message is bounded
// and well-formed, however much of the request it repeats: it travels in a trailer.
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

/** How many characters of a caller's text a status message repeats. */
export const QUOTED_INPUT_LENGTH = 80;

/**
 * A caller's text as a status message may repeat it: JSON-quoted (control characters and lone surrogates come out
 * as escapes) and cut after 80 characters, followed by "… (<length> characters)" when cut, as the host quotes
 * (src/api/error-text.ts). The message travels in a trailer: a 64 KiB id repeated whole would break it, and the
 * caller would get no answer at all.
 */
export function quoteInput(text: string): string {
  if (text.length <= QUOTED_INPUT_LENGTH) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, QUOTED_INPUT_LENGTH))}… (${text.length} characters)`;
}

/**
 * The longest status message sent, as the host's. The kit's own messages quote input with quoteInput; this bounds
 * the rest, where a library or a plugin repeats a value of the request.
 */
const MAX_MESSAGE_LENGTH = 2_000;
/** A UTF-16 surrogate without its other half. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A message as grpc-js can send it: cut to MAX_MESSAGE_LENGTH, and well-formed, since grpc-js percent-encodes it
 * with encodeURI, which throws on a lone surrogate and leaves the call unanswered.
 */
function statusMessage(message: string): string {
  const bounded =
    message.length > MAX_MESSAGE_LENGTH
      ? `${message.slice(0, MAX_MESSAGE_LENGTH)}… (cut from ${message.length} characters)`
      : message;
  return bounded.replace(LONE_SURROGATE, "\ufffd");
}

/** Turns anything a handler threw into the error grpc-js sends: PluginError keeps its code, the rest is INTERNAL. */
export function toServiceError(error: unknown): Partial<ServiceError> {
  if (isPluginError(error)) {
    return { code: error.code, details: statusMessage(error.message), metadata: new Metadata() };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: status.INTERNAL, details: statusMessage(message || "internal error"), metadata: new Metadata() };
}
