// How the API reads the text of a JSON request (Connect JSON, gRPC and gRPC-Web with +json) before protobuf-es
// parses it. Two things the default reader lets through become errors here, so a request is refused rather than
// silently changed or left unanswerable:
// - bytes that are not UTF-8 (the default decoder turns them into U+FFFD: the plugin would get other text);
// - an escaped lone surrogate ("\ud800"): JSON.parse makes it a string no protobuf encoder can write as UTF-8.
//   protobuf-es refuses one in a `string` field with a message that repeats it, which connect-es then cannot put
//   in a gRPC trailer (the call is never answered); in a Struct value it is stored, and serving it later fails.
//   I-JSON (RFC 7493 §2.1) forbids such strings for exactly this reason.
// - text that is not JSON: V8's syntax error repeats a piece of the text and may cut a surrogate pair in half
//   ("Unexpected token '\ud83d'"), which again leaves a gRPC call unanswered; the text is parsed here first so
//   that the refusal is a message of our own, well-formed and bounded. The price is a second JSON.parse of every
//   JSON request (protobuf-es parses it again), which JSON callers pay and binary ones do not.
// connect-es hands the text decoder its errors as INVALID_ARGUMENT with our message.
import { sendableMessage } from "./error-text.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

export class JsonTextError extends Error {}

/** A TextDecoder stand-in for connect-es's JSON serialization (`jsonOptions.textDecoder`). */
export const strictJsonText = {
  decode(bytes?: Uint8Array): string {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      throw new JsonTextError("the request is not UTF-8 text");
    }
    const at = loneSurrogateEscape(text);
    if (at >= 0) throw new JsonTextError(`the request holds an escaped lone UTF-16 surrogate (${text.slice(at, at + 6)}) at character ${at}, which is not Unicode text`);
    try {
      JSON.parse(text);
    } catch (error) {
      throw new JsonTextError(sendableMessage(`the request is not JSON: ${(error as Error).message.slice(0, 300)}`));
    }
    return text;
  },
};

/** Where the first `\uXXXX` escape of a lone surrogate starts in JSON text, or -1. Linear: one pass over backslashes. */
export function loneSurrogateEscape(text: string): number {
  for (let at = text.indexOf("\\"); at >= 0; ) {
    if (text[at + 1] !== "u") {
      at = text.indexOf("\\", at + 2); // an escaped character, "\\" included, is skipped whole
      continue;
    }
    const unit = hexUnit(text, at + 2);
    if (unit >= 0xdc00 && unit <= 0xdfff) return at;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const low = text[at + 6] === "\\" && text[at + 7] === "u" ? hexUnit(text, at + 8) : -1;
      if (low < 0xdc00 || low > 0xdfff) return at;
      at = text.indexOf("\\", at + 12);
      continue;
    }
    at = text.indexOf("\\", at + 6);
  }
  return -1;
}

function hexUnit(text: string, from: number): number {
  const digits = text.slice(from, from + 4);
  return /^[0-9a-fA-F]{4}$/.test(digits) ? Number.parseInt(digits, 16) : -1;
}
