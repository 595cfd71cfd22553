// A core plugin as real sidecar processes: the conformance reference plugin run with CONFORMANCE_KIND=core, two
// instances sharing one nats-server. Describe and health, the state's round trip through the caller, Handle's
// errors, Abort, and Finalize running once per attempt however often and wherever it is called.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import { createGrpcClient, finalizeKey, ServingStatus, type MethodsOf, type PromiseClient } from "@plugin-bridge/kit";
import { Health } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import {
  CorePluginService,
  PluginKind,
  PluginMetadataService,
  type PluginState,
} from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { ErrorKind, Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { JsonObject } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../../../src/coordination/nats-server-process.js";
import { examplesMain, grpcError, openBucket, startSidecar, taskContext, tempDir, type Sidecar } from "./helpers.js";

const TYPE = "conformance-core-typescript";
const text = (state: PluginState | undefined) => (state ? Buffer.from(state.data).toString() : undefined);

describe("core plugin sidecar", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let nats: NatsServerProcess;
  let first: Sidecar;
  let second: Sidecar;
  let coreA: PromiseClient<MethodsOf<typeof CorePluginService>>;
  let coreB: PromiseClient<MethodsOf<typeof CorePluginService>>;
  let auditFile: string;

  const context = (execution: string, custom: JsonObject = {}, attempt = 1) =>
    taskContext(execution, custom, { attempt, type: TYPE });
  /** The audit lines of one execution, without the execution id: "<call> <attempt> <instance>". */
  const audit = async (execution: string): Promise<string[]> =>
    (await readFile(auditFile, "utf8").catch(() => ""))
      .split("\n")
      .filter((line) => line.split(" ")[1] === execution)
      .map((line) => line.split(" ").filter((_, i) => i !== 1).join(" "));

  beforeAll(async () => {
    dir = await tempDir("core");
    auditFile = path.join(dir.path, "audit.log");
    nats = await startNatsServer({ dataDir: path.join(dir.path, "nats") });
    const env = { CONFORMANCE_KIND: "core", CONFORMANCE_AUDIT_FILE: auditFile };
    [first, second] = await Promise.all([
      startSidecar(examplesMain.conformance, { natsUrl: nats.url, socketDir: dir.path, instanceId: "core-a", env }),
      startSidecar(examplesMain.conformance, { natsUrl: nats.url, socketDir: dir.path, instanceId: "core-b", env }),
    ]);
    coreA = createGrpcClient(CorePluginService, first.endpoint, credentials.createInsecure());
    coreB = createGrpcClient(CorePluginService, second.endpoint, credentials.createInsecure());
  });

  afterAll(async () => {
    coreA?.close();
    coreB?.close();
    await Promise.all([first?.stop(), second?.stop()]);
    await nats?.stop();
    await dir?.remove();
  });

  it("describes itself as CORE with its Handle, Abort and Finalize deadlines", async () => {
    const metadata = createGrpcClient(PluginMetadataService, first.endpoint, credentials.createInsecure());
    try {
      const { plugin: descriptor } = await metadata.describe({});
      expect(descriptor?.name).toBe(TYPE);
      expect(descriptor?.kind).toBe(PluginKind.CORE);
      expect(descriptor?.taskTypes).toEqual([expect.objectContaining({ type: TYPE, version: 1 })]);
      const properties = descriptor?.properties;
      for (const deadline of [properties?.handleTimeout, properties?.abortTimeout, properties?.finalizeTimeout]) {
        expect(deadline).toMatchObject({ seconds: 2n, nanos: 0 });
      }
      expect(properties?.resyncInterval).toMatchObject({ seconds: 0n, nanos: 200_000_000 });
      expect(properties?.maxSystemFailures).toBe(2);
    } finally {
      metadata.close();
    }
  });

  it("reports SERVING for the core service, NOT_FOUND for the other kinds'", async () => {
    const health = createGrpcClient(Health, first.endpoint, credentials.createInsecure());
    try {
      for (const service of ["", "pluginbridge.v1.PluginMetadataService", "pluginbridge.v1.CorePluginService", "grpc.health.v1.Health"]) {
        expect((await health.check({ service })).status).toBe(ServingStatus.SERVING);
      }
      for (const service of ["pluginbridge.v1.AsyncPluginService", "pluginbridge.v1.SyncPluginService"]) {
        expect((await grpcError(health.check({ service }))).code).toBe(status.NOT_FOUND);
      }
    } finally {
      health.close();
    }
  });

  it("counts Handles in the state the caller passes back, on either instance", async () => {
    const gate = path.join(dir.path, "core-file");
    const ctx = context("round-trip", { polls: 2, waitForFile: gate, echo: "héllo ✓", outputBytes: 3 });
    const one = await coreA.handle({ context: ctx });
    expect(one.phaseInfo).toMatchObject({ phase: Phase.RUNNING, reason: "polling" });
    expect(one.state).toMatchObject({ version: 1 });
    expect(text(one.state)).toBe("1");
    // The instance keeps nothing: the other one carries on from the state alone.
    const two = await coreB.handle({ context: ctx, state: one.state });
    expect(two.phaseInfo).toMatchObject({ phase: Phase.RUNNING, reason: "polling" });
    expect(text(two.state)).toBe("2");
    const three = await coreA.handle({ context: ctx, state: two.state });
    expect(three.phaseInfo).toMatchObject({ phase: Phase.RUNNING, reason: "waiting" });
    expect(text(three.state)).toBe("3");
    await writeFile(gate, "");
    const done = await coreA.handle({ context: ctx, state: three.state });
    expect(done.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(text(done.state)).toBe("4");
    expect(done.outputs).toEqual({ language: "typescript", instance: "core-a", echo: "héllo ✓", handles: 4, payload: "xxx" });
    expect(await audit("round-trip")).toEqual(["handle 1 core-a", "handle 1 core-b", "handle 1 core-a", "handle 1 core-a"]);
  });

  it("answers Handle's errors with their codes and keeps serving", async () => {
    const stale = await grpcError(
      coreA.handle({ context: context("errors-1"), state: { version: 2, data: Buffer.from("1") } }),
    );
    expect(stale.code).toBe(status.FAILED_PRECONDITION);
    expect(stale.details).toBe("unknown state version 2");
    const garbled = await grpcError(
      coreA.handle({ context: context("errors-1"), state: { version: 1, data: Buffer.from("three") } }),
    );
    expect(garbled.code).toBe(status.FAILED_PRECONDITION);

    const crash = await grpcError(coreA.handle({ context: context("errors-2", { handle: "BEHAVIOR_CRASH", message: "boom in handle" }) }));
    expect(crash.code).toBe(status.INTERNAL);
    expect(crash.details).toContain("boom in handle");

    const user = await grpcError(coreA.handle({ context: context("errors-3", { handle: "BEHAVIOR_USER_ERROR", message: "bad input" }) }));
    expect(user).toMatchObject({ code: status.INVALID_ARGUMENT, details: "bad input" });

    const badCustom = await grpcError(coreA.handle({ context: context("errors-4", { colour: "red" }) }));
    expect(badCustom.code).toBe(status.INVALID_ARGUMENT);
    expect(badCustom.details).toContain("template.custom.colour");

    const noContext = await grpcError(coreA.handle({}));
    expect(noContext.code).toBe(status.INVALID_ARGUMENT);

    const retryable = await coreA.handle({ context: context("errors-5", { handle: "BEHAVIOR_RETRYABLE", message: "again" }) });
    expect(retryable.phaseInfo).toMatchObject({ phase: Phase.RETRYABLE_FAILURE, error: { code: "Scripted", message: "again", kind: ErrorKind.SYSTEM } });
    expect(text(retryable.state)).toBe("1");

    expect((await coreA.handle({ context: context("errors-6") })).phaseInfo?.phase).toBe(Phase.SUCCESS);
  });

  it("aborts with or without a state, and answers a failing Abort with its code", async () => {
    await coreA.abort({ context: context("abort-1"), reason: "user asked" });
    await coreA.abort({ context: context("abort-1"), state: { version: 1, data: Buffer.from("2") }, reason: "timeout" });
    expect(await audit("abort-1")).toEqual(["abort 1 core-a", "abort 1 core-a"]);
    const refused = await grpcError(coreA.abort({ context: context("abort-2", { abort: "BEHAVIOR_USER_ERROR", message: "no" }) }));
    expect(refused).toMatchObject({ code: status.INVALID_ARGUMENT, details: "no" });
    expect(await audit("abort-2")).toEqual([]);
  });

  it("finalizes once per attempt: repeated, concurrent, and on another instance", async () => {
    const ctx = context("final-1");
    await coreA.finalize({ context: ctx });
    await coreA.finalize({ context: ctx });
    await Promise.all([1, 2, 3].map(() => coreA.finalize({ context: ctx })));
    await coreB.finalize({ context: ctx });
    expect(await audit("final-1")).toEqual(["finalize 1 core-a"]);

    // Concurrent duplicates on a fresh attempt, sent at once: one run between them.
    await Promise.all([1, 2, 3, 4].map(() => coreB.finalize({ context: context("final-1", {}, 2) })));
    expect(await audit("final-1")).toEqual(["finalize 1 core-a", "finalize 2 core-b"]);

    // The marker is what `pb_creates` remembers, under <plugin>.<execution>.<attempt>.finalize.
    const { nc, kv } = await openBucket(nats.url, "pb_creates");
    try {
      const entry = await kv.get(finalizeKey(TYPE, "final-1", 1));
      expect(entry?.operation).toBe("PUT");
      expect(Buffer.from(entry!.value).toString()).toBe("finalized");
    } finally {
      await nc.close();
    }
  });

  it("runs a Finalize that failed again when it is retried", async () => {
    const failed = await grpcError(
      coreA.finalize({ context: context("final-2", { finalize: "BEHAVIOR_CRASH", message: "release failed" }) }),
    );
    expect(failed).toMatchObject({ code: status.INTERNAL, details: "release failed" });
    expect(await audit("final-2")).toEqual([]);
    // The retry (here with a script that lets it pass) runs it, wherever it lands, and only then is it remembered.
    await coreB.finalize({ context: context("final-2") });
    await coreA.finalize({ context: context("final-2") });
    expect(await audit("final-2")).toEqual(["finalize 1 core-b"]);
  });
});
