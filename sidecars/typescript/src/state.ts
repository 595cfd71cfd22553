// A core plugin's state is bytes with a layout version to the host; most plugins keep a small JSON value or a
// line of text. These helpers write and read such states, so an author never handles bytes, and they refuse a
// state of another layout than the one the plugin reads, which is what a plugin upgraded mid-attempt meets.
import { status } from "@grpc/grpc-js";
import { PluginError } from "./errors.js";
import type { PluginState } from "./plugin.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A state of layout `version` holding `text` as UTF-8. */
export function textState(version: number, text: string): PluginState {
  return { version, data: encoder.encode(text) };
}

/** A state of layout `version` holding `value` as JSON. */
export function jsonState(version: number, value: unknown): PluginState {
  const text = JSON.stringify(value);
  if (text === undefined) throw new PluginError(status.INTERNAL, "the state value is not something JSON can encode");
  return textState(version, text);
}

/**
 * The text of a `textState` of layout `version`; undefined without a state (an attempt's first Handle). A state
 * of another layout fails FAILED_PRECONDITION "unknown state version <n>", data that is not UTF-8
 * INVALID_ARGUMENT (bytes this plugin did not write are the caller's fault).
 */
export function readTextState(state: PluginState | undefined, version: number): string | undefined {
  if (state === undefined) return undefined;
  if (state.version !== version) {
    throw new PluginError(status.FAILED_PRECONDITION, `unknown state version ${state.version}`);
  }
  try {
    return decoder.decode(state.data);
  } catch {
    throw new PluginError(status.INVALID_ARGUMENT, "the state's data is not UTF-8 text");
  }
}

/** The value of a `jsonState` of layout `version`, refused as `readTextState` says, or when it is not JSON. */
export function readJsonState<T = unknown>(state: PluginState | undefined, version: number): T | undefined {
  const text = readTextState(state, version);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new PluginError(status.INVALID_ARGUMENT, `the state's data is not JSON: ${(error as Error).message}`);
  }
}
