// Resolves the secrets a task template asks for, from the host's secret sources: files `<dir>/<group>/<key>` (the
// shape Kubernetes gives a mounted secret), then environment variables `<prefix><GROUP>_<KEY>`. A plugin gets a
// secret only if the template names it and the operator's rules allow it for that plugin (secret-access.ts).
// Values are read for each plugin call and never stored in NATS; redaction.ts keeps them out of what is stored.
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { SecretRequest } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { SecretAccess } from "./secret-access.js";

/** Group and key become path segments: nothing that could leave the secrets directory is accepted. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

export class SecretNotFoundError extends Error {
  constructor(readonly secret: string) {
    super(`secret ${secret} was not found`);
    this.name = "SecretNotFoundError";
  }
}

export class SecretNotAllowedError extends Error {
  constructor(
    readonly secret: string,
    readonly plugin: string,
  ) {
    super(`secret ${secret} is not allowed for plugin ${plugin} (the host's secretAccess rules)`);
    this.name = "SecretNotAllowedError";
  }
}

/** Why a secret request is malformed, or undefined when it is well-formed. */
export function secretRequestProblem(request: SecretRequest): string | undefined {
  for (const [field, value] of [["group", request.group], ["key", request.key]] as const) {
    if (!SEGMENT.test(value) || value.includes("..")) {
      return `${field} ${JSON.stringify(value)} must be 1-253 characters of letters, digits, '.', '_' or '-'`;
    }
  }
  return undefined;
}

/** The environment variable that holds `group/key`: upper case, anything but letters and digits as '_'. */
export function secretEnvName(prefix: string, group: string, key: string): string {
  const part = (text: string): string => text.toUpperCase().replace(/[^A-Z0-9]/g, "_");
  return `${prefix}${part(group)}_${part(key)}`;
}

export interface SecretSources {
  /** Directory of `<group>/<key>` files; empty or undefined: none. */
  directory?: string;
  /** Prefix of the environment variables that hold secrets; empty or undefined: the environment is not a source. */
  envPrefix?: string;
  env?: NodeJS.ProcessEnv;
  access: SecretAccess;
}

export class SecretResolver {
  constructor(private readonly sources: SecretSources) {}

  /**
   * The requested secrets for `plugin`, keyed "group/key". Throws SecretNotAllowedError for the first one the rules
   * refuse (before reading anything), SecretNotFoundError for the first one no source holds.
   */
  async resolve(requests: readonly SecretRequest[], plugin: string): Promise<Record<string, string>> {
    for (const request of requests) {
      const name = `${request.group}/${request.key}`;
      if (secretRequestProblem(request)) throw new SecretNotFoundError(name);
      if (!this.sources.access.allows(plugin, request.group, request.key)) throw new SecretNotAllowedError(name, plugin);
    }
    const resolved: Record<string, string> = {};
    for (const request of requests) {
      const name = `${request.group}/${request.key}`;
      const value = (await this.fromDirectory(request)) ?? this.fromEnvironment(request);
      if (value === undefined) throw new SecretNotFoundError(name);
      resolved[name] = value;
    }
    return resolved;
  }

  private async fromDirectory(request: SecretRequest): Promise<string | undefined> {
    if (!this.sources.directory) return undefined;
    try {
      return await readFile(path.join(this.sources.directory, request.group, request.key), "utf8");
    } catch {
      return undefined;
    }
  }

  private fromEnvironment(request: SecretRequest): string | undefined {
    if (!this.sources.envPrefix) return undefined;
    return (this.sources.env ?? process.env)[secretEnvName(this.sources.envPrefix, request.group, request.key)];
  }
}
