// Shared by the kit's tests: start sidecars as real child processes, call them over gRPC with clients built
// from the generated descriptors, read NATS KV. Every wait is bounded.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { credentials, type ServiceError } from "@grpc/grpc-js";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createGrpcClient, ServingStatus } from "@plugin-bridge/kit";
import { Health } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import type { TaskContext } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import type { TaskContextSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";

export const kitRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const projectRoot = path.resolve(kitRoot, "..", "..");

export const examplesMain = {
  http: path.join(kitRoot, "examples", "http", "main.ts"),
  sensor: path.join(kitRoot, "examples", "sensor", "main.ts"),
  counting: path.join(kitRoot, "test", "fixtures", "counting-main.ts"),
  conformance: path.join(kitRoot, "conformance", "main.ts"),
};

import { eventually } from "../../../test/helpers/eventually.js";

export { eventually };

export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `pb-kit-${prefix}-`));
  return { path: dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface Sidecar {
  readonly child: ChildProcess;
  readonly endpoint: string;
  readonly instanceId: string;
  /** Everything the sidecar wrote to stderr so far. */
  logs(): string;
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
}

/**
 * Starts a sidecar main file as ONE process (`node --import tsx`: the tsx command would run it in a child that a
 * SIGKILL to the parent leaves behind) and waits until its health says SERVING. */
export async function startSidecar(
  main: string,
  options: { natsUrl: string; socketDir: string; instanceId: string; env?: Record<string, string> },
): Promise<Sidecar> {
  const endpoint = `unix:${path.join(options.socketDir, `${options.instanceId}.sock`)}`;
  const child = spawn(process.execPath, ["--import", "tsx", main], {
    cwd: projectRoot,
    env: {
      ...process.env,
      PLUGIN_BRIDGE_NATS_URL: options.natsUrl,
      PLUGIN_BRIDGE_ENDPOINT: endpoint,
      PLUGIN_BRIDGE_INSTANCE_ID: options.instanceId,
      ...options.env,
    },
    stdio: ["ignore", "inherit", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  const sidecar: Sidecar = {
    child,
    endpoint,
    instanceId: options.instanceId,
    logs: () => stderr,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const result = await exited;
      clearTimeout(killer);
      return result;
    },
  };
  const health = createGrpcClient(Health, endpoint, credentials.createInsecure());
  try {
    await eventually(
      `${options.instanceId} to serve`,
      async () => {
        if (child.exitCode !== null) throw new Error(`exited early:\n${stderr}`);
        const response = await health.check({ service: "" }, { deadline: 1_000 });
        return response.status === ServingStatus.SERVING ? true : undefined;
      },
      300,
      100,
    );
  } catch (error) {
    await sidecar.stop(1_000);
    throw new Error(`${(error as Error).message}\n${stderr}`);
  } finally {
    health.close();
  }
  return sidecar;
}

export async function openBucket(natsUrl: string, bucket: string): Promise<{ nc: NatsConnection; kv: KV }> {
  const nc = await connect({ servers: natsUrl });
  const kv = await new Kvm(nc).open(bucket);
  return { nc, kv };
}

/** A TaskContext for direct plugin calls, as the host would send it. */
export function taskContext(
  executionId: string,
  custom: JsonObject,
  extras: { attempt?: number; type?: string; inputs?: JsonObject } = {},
): MessageInitShape<typeof TaskContextSchema> {
  return {
    executionId: { id: executionId, attempt: extras.attempt ?? 1 },
    template: { type: extras.type ?? "test", typeVersion: 1, custom },
    inputs: extras.inputs ?? {},
    metadata: { namespace: "default" },
  };
}

/** The gRPC status code of a rejected call. */
export async function grpcError(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error("expected the call to fail");
}

export type { TaskContext };
