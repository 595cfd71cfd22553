// What an error message may say about the input that caused it. A status message travels in the `grpc-message`
// trailer (percent-encoded) or a Connect JSON body: an echo of unbounded input can outgrow what HTTP/2 sends in
// one header block (the stream is reset, the caller gets no answer), and a lone UTF-16 surrogate cannot be
// percent-encoded at all (connect-es throws, the call hangs). So every echo is cut and quoted, and every message
// leaving the API is made well-formed and bounded by the interceptor below, whatever code produced it.
import { ConnectError, type Interceptor } from "@connectrpc/connect";

/** How much of a value an error message repeats. */
const ECHO_CHARACTERS = 80;
/** The longest status message sent; plugin errors and reasons are far shorter in practice. */
const MAX_MESSAGE_CHARACTERS = 2_000;

/** A UTF-16 surrogate without its other half; String.prototype.toWellFormed is newer than the ES2023 we target. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text with every lone surrogate replaced by U+FFFD, as a UTF-8 encoder would. */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, "\uFFFD");
}

/** A value as an error message repeats it: JSON-quoted (control characters escaped), cut to ECHO_CHARACTERS. */
export function quoted(value: string): string {
  if (value.length <= ECHO_CHARACTERS) return JSON.stringify(value);
  return `${JSON.stringify(wellFormed(value.slice(0, ECHO_CHARACTERS)))}… (${value.length} characters)`;
}

/** A status message that any protocol can carry: well-formed UTF-16, at most MAX_MESSAGE_CHARACTERS. */
export function sendableMessage(message: string): string {
  const text = wellFormed(message);
  return text.length <= MAX_MESSAGE_CHARACTERS ? text : `${text.slice(0, MAX_MESSAGE_CHARACTERS)}… (cut from ${text.length} characters)`;
}

/** Makes every error a handler throws sendable (see sendableMessage); other errors pass as they are. */
export function sendableErrors(): Interceptor {
  return (next) => async (request) => {
    try {
      const response = await next(request);
      return response.stream ? { ...response, message: sendableStream(response.message) } : response;
    } catch (error) {
      throw sendable(error);
    }
  };
}

/** A server stream's errors come as it is read, after the interceptor returned. */
async function* sendableStream<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    throw sendable(error);
  }
}

function sendable(error: unknown): unknown {
  if (!(error instanceof ConnectError)) return error;
  const message = sendableMessage(error.rawMessage);
  if (message === error.rawMessage) return error;
  const copy = new ConnectError(message, error.code, error.metadata, undefined, error.cause);
  copy.details.push(...error.details);
  return copy;
}
