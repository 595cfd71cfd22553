// Resolves the secrets a task template asks for. Secrets are files `<dir>/<group>/<key>`, the shape Kubernetes
// gives a mounted secret; they are read for each plugin call and never stored in NATS.
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { SecretRequest } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";

/** Group and key become path segments: nothing that could leave the secrets directory is accepted. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

export class SecretNotFoundError extends Error {
  constructor(readonly secret: string) {
    super(`secret ${secret} was not found`);
    this.name = "SecretNotFoundError";
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

export class SecretResolver {
  constructor(private readonly directory: string | undefined) {}

  /** The requested secrets keyed "group/key"; throws SecretNotFoundError for the first missing one. */
  async resolve(requests: readonly SecretRequest[]): Promise<Record<string, string>> {
    const resolved: Record<string, string> = {};
    for (const request of requests) {
      const name = `${request.group}/${request.key}`;
      if (!this.directory || secretRequestProblem(request)) throw new SecretNotFoundError(name);
      try {
        resolved[name] = await readFile(path.join(this.directory, request.group, request.key), "utf8");
      } catch {
        throw new SecretNotFoundError(name);
      }
    }
    return resolved;
  }
}
