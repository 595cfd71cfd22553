// One conformance suite for every kit: the host drives each kit's reference plugin (a real process in the kit's
// own language) through describe, create/get/delete, do, core plugins (Handle with state, Abort, Finalize), plugin errors, deadlines, idempotent create, drain, a
// bad specification, payloads near the size limit and non-ASCII text. Every kit must pass every case.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { status } from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AsyncPluginService, CorePluginService, PluginKind, type PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { ErrorKind, Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { TaskEventSchema, type TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { toJson, type JsonObject } from "@bufbuild/protobuf";
import { PluginCallError, PluginClients } from "../../src/registry/plugin-client.js";
import { eventually, registryClient, taskClient } from "../helpers/clients.js";
import { startHost, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";
import { KITS } from "../helpers/kits.js";

const MiB = 1024 * 1024;
const SECRET = `conformance-${Date.now()}-secret`;

describe.each(KITS)("the $language kit", (kit) => {
  const asyncType = `conformance-${kit.language}`;
  const syncType = `conformance-sync-${kit.language}`;
  const coreType = `conformance-core-${kit.language}`;
  const work = tempDir(`conformance-${kit.language}`);
  const auditFile = path.join(work, "audit.log");
  const clients = new PluginClients();
  let nats: TestNats;
  let host: TestHost;
  const sidecars: RunningProcess[] = [];

  const start = (instanceId: string, env: NodeJS.ProcessEnv = {}): RunningProcess => {
    const sidecar = kit.start({
      PLUGIN_BRIDGE_NATS_URL: nats.url,
      PLUGIN_BRIDGE_INSTANCE_ID: instanceId,
      CONFORMANCE_AUDIT_FILE: auditFile,
      ...env,
    });
    sidecars.push(sidecar);
    return sidecar;
  };

  const instances = async (name: string): Promise<PluginInstance[]> => {
    const { plugins } = await registryClient(host.url).listPlugins({});
    return plugins.find((plugin) => plugin.name === name)?.instances ?? [];
  };
  const instance = (name: string, id: string): Promise<PluginInstance> =>
    // Generous: a loaded 2-core machine starting four sidecars at once (three through tsx) can take a while.
    eventually(`${id} to be routed`, async () => (await instances(name)).find((i) => i.instanceId === id && !i.draining), 900, 100);

  const audit = (executionId: string): string[] =>
    existsSync(auditFile)
      ? readFileSync(auditFile, "utf8").split("\n").filter((line) => line.split(" ")[1] === executionId).map((line) => line.split(" ").slice(0, 2)[0]!)
      : [];

  /** The calls audited for an execution, with their attempts: "handle 1", "finalize 1", … */
  const auditWithAttempts = (executionId: string): string[] =>
    existsSync(auditFile)
      ? readFileSync(auditFile, "utf8").split("\n").map((line) => line.split(" ")).filter((fields) => fields[1] === executionId).map((fields) => `${fields[0]} ${fields[2]}`)
      : [];

  const run = async (
    type: string,
    custom: JsonObject,
    extra: { retries?: number; secrets?: Array<{ group: string; key: string }> } = {},
  ): Promise<{ id: string; events: TaskEvent[] }> => {
    const client = taskClient(host.url);
    const events: TaskEvent[] = [];
    for await (const { event } of client.executeTask({
      template: { type, typeVersion: 1, custom, metadata: { retries: extra.retries ?? 0 }, secrets: extra.secrets ?? [] },
    })) {
      if (event) events.push(event);
    }
    return { id: events[0]!.executionId, events };
  };
  const last = (events: TaskEvent[]): TaskEvent => events.at(-1)!;

  beforeAll(async () => {
    await kit.prepare();
    nats = await startTestNats();
    // One secret, from a file, that every kind of this kit's reference plugin may have.
    mkdirSync(path.join(work, "secrets", "vault"), { recursive: true });
    writeFileSync(path.join(work, "secrets", "vault", "token"), SECRET);
    host = await startHost(nats.url, {
      "secrets-dir": path.join(work, "secrets"),
      "secret-access": [asyncType, syncType, coreType].map((name) => `${name}=vault/token`).join(";"),
    });
    start(`${kit.language}-async-1`);
    start(`${kit.language}-sync-1`, { CONFORMANCE_KIND: "sync" });
    start(`${kit.language}-core-1`, { CONFORMANCE_KIND: "core" });
    await instance(asyncType, `${kit.language}-async-1`);
    await instance(syncType, `${kit.language}-sync-1`);
    await instance(coreType, `${kit.language}-core-1`);
  }, 240_000);

  afterAll(async () => {
    clients.close();
    await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
    await host?.stop();
    await nats?.stop();
  });

  it("describes itself: kind, task types, properties and a specification the host can load", async () => {
    const [async] = await instances(asyncType);
    const descriptor = async!.descriptor!;
    expect(descriptor.kind).toBe(PluginKind.ASYNC);
    expect(descriptor.taskTypes.map((t) => [t.type, t.version])).toEqual([[asyncType, 1]]);
    expect(descriptor.specification?.messageName).toBe("pluginbridge.conformance.v1.Script");
    expect(descriptor.properties?.resyncInterval?.nanos ?? 0).toBe(200_000_000);
    expect(descriptor.properties?.maxSystemFailures).toBe(2);
    const [sync] = await instances(syncType);
    expect(sync!.descriptor!.kind).toBe(PluginKind.SYNC);
  });

  it("create, get every resync interval, success with outputs", async () => {
    const { id, events } = await run(asyncType, { polls: 2, echo: "round trip" });
    expect(events.map((e) => e.phaseInfo?.phase)).toEqual([Phase.QUEUED, Phase.INITIALIZING, Phase.RUNNING, Phase.SUCCESS]);
    expect(last(events).outputs).toMatchObject({ language: kit.language, echo: "round trip", gets: 3, instance: `${kit.language}-async-1` });
    expect(audit(id)).toEqual(["create", "get", "get", "get"]);
  });

  it("delete on abort", async () => {
    const client = taskClient(host.url);
    const { execution } = await client.createTask({ template: { type: asyncType, typeVersion: 1, custom: { waitForFile: path.join(work, "never") } } });
    const id = execution!.id;
    await eventually("a Get", async () => (audit(id).includes("get") ? true : undefined));
    const { execution: aborted } = await client.abortTask({ id, reason: "conformance abort" });
    expect(aborted?.phaseInfo?.phase).toBe(Phase.ABORTED);
    expect(audit(id)).toContain("delete");
  });

  it("do runs a sync task to success", async () => {
    const { id, events } = await run(syncType, { echo: "sync" });
    expect(events.map((e) => e.phaseInfo?.phase)).toEqual([Phase.QUEUED, Phase.SUCCESS]);
    expect(last(events).outputs).toMatchObject({ language: kit.language, echo: "sync" });
    expect(audit(id)).toEqual(["do"]);
  });

  it("receives the secrets its template names, in every kind, and no value comes back", async () => {
    const secrets = [{ group: "vault", key: "token" }];
    for (const type of [asyncType, syncType, coreType]) {
      const { events } = await run(type, {}, { secrets });
      expect(last(events).phaseInfo?.phase).toBe(Phase.SUCCESS);
      expect(last(events).outputs?.secrets).toEqual({ "vault/token": SECRET.length });
      expect(JSON.stringify(events.map((event) => toJson(TaskEventSchema, event)))).not.toContain(SECRET);
    }
    expect(last((await run(asyncType, {})).events).outputs?.secrets).toBeUndefined();
  });

  describe("pushed status", () => {
    // 1,000 polls at 200 ms would take 200 s: only the push can end these within the test's time.
    it("a push from an async plugin ends the execution before polling would", async () => {
      const { events } = await run(asyncType, { polls: 1000, pushAfterMs: 300, echo: "pushed" });
      expect(last(events).phaseInfo?.phase).toBe(Phase.SUCCESS);
      expect(last(events).outputs).toMatchObject({ language: kit.language, echo: "pushed", pushed: true });
    });

    it("a push from a core plugin ends the attempt through Finalize", async () => {
      const { id, events } = await run(coreType, { polls: 1000, pushAfterMs: 300 });
      expect(last(events).outputs).toMatchObject({ language: kit.language, pushed: true, handles: 1 });
      expect(audit(id).filter((call) => call === "finalize")).toEqual(["finalize"]);
    });
  });

  describe("core plugins", () => {
    it("describe as CORE", async () => {
      const [core] = await instances(coreType);
      expect(core!.descriptor!.kind).toBe(PluginKind.CORE);
      expect(core!.descriptor!.taskTypes.map((t) => [t.type, t.version])).toEqual([[coreType, 1]]);
    });

    it("Handle with the state the previous Handle returned, until success; then one Finalize", async () => {
      const { id, events } = await run(coreType, { polls: 2, echo: "core" });
      expect(events.map((e) => e.phaseInfo?.phase)).toEqual([Phase.QUEUED, Phase.RUNNING, Phase.SUCCESS]);
      // "handles" is counted in the plugin state: 3 only if every Handle got the state the previous one returned.
      expect(last(events).outputs).toMatchObject({ language: kit.language, echo: "core", handles: 3, instance: `${kit.language}-core-1` });
      expect(audit(id)).toEqual(["handle", "handle", "handle", "finalize"]);
    });

    it("Finalize ends every attempt, and the next attempt starts without state", async () => {
      const { id, events } = await run(coreType, { polls: 1, handle: "BEHAVIOR_RETRYABLE", message: "again" }, { retries: 1 });
      expect(events.map((e) => e.phaseInfo?.phase)).toEqual([
        Phase.QUEUED, Phase.RUNNING, Phase.RETRYABLE_FAILURE, Phase.QUEUED, Phase.RUNNING, Phase.PERMANENT_FAILURE,
      ]);
      // Two Handles in each attempt: attempt 2 counted from no state again.
      expect(auditWithAttempts(id)).toEqual(["handle 1", "handle 1", "finalize 1", "handle 2", "handle 2", "finalize 2"]);
    });

    it("a user error in Handle ends the attempt through Finalize", async () => {
      const { id, events } = await run(coreType, { handle: "BEHAVIOR_USER_ERROR", message: "bad state" });
      expect(last(events).phaseInfo).toMatchObject({ phase: Phase.PERMANENT_FAILURE, error: { code: "PluginInvalidArgument", message: "bad state", kind: ErrorKind.USER } });
      expect(audit(id)).toEqual(["finalize"]);
    });

    it("abort calls Abort, then Finalize, and ends ABORTED", async () => {
      const client = taskClient(host.url);
      const { execution } = await client.createTask({ template: { type: coreType, typeVersion: 1, custom: { waitForFile: path.join(work, "never") } } });
      const id = execution!.id;
      await eventually("a Handle", async () => (audit(id).includes("handle") ? true : undefined));
      const { execution: aborted } = await client.abortTask({ id, reason: "conformance abort" });
      expect(aborted?.phaseInfo).toMatchObject({ phase: Phase.ABORTED, reason: "conformance abort" });
      // Abort first, Finalize exactly once after it. A step that read the record just before the abort's end was
      // written may call Abort once more: Flyte's Abort is idempotent, its Finalize runs once.
      const calls = audit(id).filter((call) => call !== "handle");
      expect(calls[0]).toBe("abort");
      expect(calls.filter((call) => call === "finalize")).toHaveLength(1);
      expect(calls.every((call) => call === "abort" || call === "finalize")).toBe(true);
    });

    it("the timeout aborts, Finalizes and fails the execution permanently, saying so", async () => {
      const { execution } = await taskClient(host.url).createTask({
        template: { type: coreType, typeVersion: 1, custom: { waitForFile: path.join(work, "never") }, metadata: { timeout: { seconds: 1n }, retries: 1 } },
      });
      const id = execution!.id;
      const events: TaskEvent[] = [];
      for await (const { event } of taskClient(host.url).watchTask({ id })) if (event) events.push(event);
      expect(last(events)).toMatchObject({ attempt: 1, phaseInfo: { phase: Phase.PERMANENT_FAILURE, error: { code: "Timeout" } } });
      expect(last(events).phaseInfo?.reason).toContain("exceeded its timeout of 1000 ms; its work was aborted");
      // Abort first, Finalize exactly once after it. A step that read the record just before the abort's end was
      // written may call Abort once more: Flyte's Abort is idempotent, its Finalize runs once.
      const calls = audit(id).filter((call) => call !== "handle");
      expect(calls[0]).toBe("abort");
      expect(calls.filter((call) => call === "finalize")).toHaveLength(1);
      expect(calls.every((call) => call === "abort" || call === "finalize")).toBe(true);
    });

    it("a failing Finalize is retried within the budget, then the end stands with the failure in its reason", async () => {
      const { id, events } = await run(coreType, { finalize: "BEHAVIOR_CRASH", message: "cannot clean up" });
      const reasons = events.map((e) => e.phaseInfo?.reason ?? "");
      expect(reasons.filter((r) => r.startsWith("ending: Finalize failed"))).toHaveLength(2);
      expect(last(events).phaseInfo?.phase).toBe(Phase.SUCCESS);
      expect(last(events).phaseInfo?.reason).toContain("Finalize failed 3 times");
      expect(last(events).phaseInfo?.reason).toContain("cannot clean up");
      expect(audit(id)).toEqual(["handle"]);
    });

    it("Finalizes once per execution and attempt, however often Finalize is called", async () => {
      const target = await instance(coreType, `${kit.language}-core-1`);
      const context = { executionId: { id: `final-${kit.language}`, attempt: 1 }, template: { type: coreType, typeVersion: 1, custom: {} } };
      const call = () => clients.call(CorePluginService.method.finalize, target, { context }, 5_000);
      await Promise.all([call(), call(), call()]);
      await call();
      expect(audit(`final-${kit.language}`)).toEqual(["finalize"]);
    });
  });

  describe("plugin errors", () => {
    it("a user error fails the task with its message, kind USER", async () => {
      const { events } = await run(asyncType, { create: "BEHAVIOR_USER_ERROR", message: "no such table" });
      expect(last(events).phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
      expect(last(events).phaseInfo?.error).toMatchObject({ message: "no such table", kind: ErrorKind.USER, code: "PluginInvalidArgument" });
      const sync = await run(syncType, { do: "BEHAVIOR_USER_ERROR", message: "bad input" });
      expect(last(sync.events).phaseInfo?.error).toMatchObject({ message: "bad input", kind: ErrorKind.USER });
    });

    it("a crash is INTERNAL, counted as a system failure, and the sidecar keeps serving", async () => {
      const { events } = await run(asyncType, { get: "BEHAVIOR_CRASH", message: "crash in get" });
      const reasons = events.map((e) => e.phaseInfo?.reason ?? "");
      expect(reasons.some((r) => r.startsWith("system failure 1 of 2 allowed: INTERNAL:") && r.includes("crash in get"))).toBe(true);
      expect(last(events).phaseInfo).toMatchObject({ phase: Phase.PERMANENT_FAILURE, error: { code: "SystemFailure", kind: ErrorKind.SYSTEM } });
      const sync = await run(syncType, { do: "BEHAVIOR_CRASH", message: "crash in do" });
      expect(last(sync.events).phaseInfo?.error?.message).toContain("crash in do");
      expect(last((await run(asyncType, {})).events).phaseInfo?.phase).toBe(Phase.SUCCESS);
      expect(last((await run(syncType, {})).events).phaseInfo?.phase).toBe(Phase.SUCCESS);
    });

    it("a reported retryable failure starts a new attempt; a permanent one ends the task", async () => {
      const retried = await run(asyncType, { get: "BEHAVIOR_RETRYABLE", message: "try again" }, { retries: 1 });
      expect(last(retried.events)).toMatchObject({ attempt: 2 });
      expect(last(retried.events).phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
      expect(audit(retried.id).filter((call) => call === "create")).toHaveLength(2);
      const permanent = await run(syncType, { do: "BEHAVIOR_PERMANENT", message: "no" });
      expect(last(permanent.events).phaseInfo?.error).toMatchObject({ code: "Scripted", message: "no", kind: ErrorKind.USER });
    });
  });

  it("a call past its deadline is DEADLINE_EXCEEDED, counted and retried", async () => {
    const { events } = await run(asyncType, { get: "BEHAVIOR_HANG" });
    const counted = events.map((e) => e.phaseInfo?.reason ?? "").filter((r) => r.startsWith("system failure"));
    // Two counted failures (the budget), then the attempt fails; the first is certainly the deadline passing.
    expect(counted, counted.join("\n")).toHaveLength(2);
    expect(counted[0]).toContain("DEADLINE_EXCEEDED");
    expect(last(events).phaseInfo?.error?.kind).toBe(ErrorKind.SYSTEM);
  });

  it("creates once per execution and attempt, however often Create is called", async () => {
    const target = await instance(asyncType, `${kit.language}-async-1`);
    const context = { executionId: { id: `idem-${kit.language}`, attempt: 1 }, template: { type: asyncType, typeVersion: 1, custom: { createDelayMs: 300 } } };
    const call = () => clients.call(AsyncPluginService.method.create, target, { context }, 5_000);
    const answers = await Promise.all([call(), call(), call()]);
    answers.push(await call());
    expect(new Set(answers.map((a) => Buffer.from(a.resourceMeta).toString("hex"))).size).toBe(1);
    expect(audit(`idem-${kit.language}`)).toEqual(["create"]);
  });

  it("refuses a specification that does not parse, naming the field, at the host and at the sidecar", async () => {
    const error = await taskClient(host.url)
      .createTask({ template: { type: asyncType, typeVersion: 1, custom: { polls: "many" } } })
      .then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toContain("template.custom.polls");
    const target = await instance(asyncType, `${kit.language}-async-1`);
    const direct = await clients
      .call(AsyncPluginService.method.create, target, { context: { executionId: { id: "bad-spec", attempt: 1 }, template: { type: asyncType, typeVersion: 1, custom: { nosuchfield: 1 } } } }, 5_000)
      .then(() => undefined, (e: unknown) => e as PluginCallError);
    expect(direct?.code).toBe(status.INVALID_ARGUMENT);
    expect(direct?.details).toContain("template.custom");
    expect(direct?.details).toContain("nosuchfield");
  });

  it("carries payloads near the size limit both ways", async () => {
    // A request of 3.5 MiB, under the host's 4 MiB limit, reaches the plugin (the message is only read, not echoed:
    // the record must hold the request and the outputs together).
    const big = await run(syncType, { message: "é".repeat(1.75 * MiB) });
    expect(last(big.events).phaseInfo?.phase).toBe(Phase.SUCCESS);
    // An answer of 3 MiB comes back whole, with text that is not ASCII.
    const echo = "é".repeat(MiB / 4);
    const { events } = await run(syncType, { echo, outputBytes: 3 * MiB });
    const outputs = last(events).outputs as JsonObject;
    expect(last(events).phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(outputs.echo).toBe(echo);
    expect((outputs.payload as string).length).toBe(3 * MiB);
  });

  it("keeps non-ASCII text intact through every hop", async () => {
    const text = "grüße, 日本語, émoji 🚀, right-to-left עברית, nul-free \u2028 line separator";
    const asyncRun = await run(asyncType, { echo: text, message: text });
    expect(last(asyncRun.events).outputs?.echo).toBe(text);
    const failed = await run(syncType, { do: "BEHAVIOR_USER_ERROR", message: text });
    expect(last(failed.events).phaseInfo?.error?.message).toBe(text);
  });

  it("drains on SIGTERM: finishes the call in flight, refuses new ones, withdraws, exits 0", async () => {
    const id = `${kit.language}-drain`;
    const draining = start(id);
    const target = await instance(asyncType, id);
    const context = (execution: string, createDelayMs = 0) => ({
      executionId: { id: execution, attempt: 1 },
      template: { type: asyncType, typeVersion: 1, custom: { createDelayMs } },
    });
    const inFlight = clients.call(AsyncPluginService.method.create, target, { context: context("drain-in-flight", 4_000) }, 15_000);
    // The call needs to be inside the plugin before the signal; a local socket takes milliseconds, 1 s is ample.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    draining.child.kill("SIGTERM");
    const refused = await eventually("new calls to be refused", async () => {
      const error = await clients
        .call(AsyncPluginService.method.create, target, { context: context(`drain-new-${Date.now()}`) }, 2_000)
        .then(() => undefined, (e: unknown) => e as PluginCallError);
      return error?.code === status.UNAVAILABLE ? error : undefined;
    }, 100, 20);
    expect(refused.code).toBe(status.UNAVAILABLE);
    const answered = await inFlight;
    expect(answered.resourceMeta.length).toBeGreaterThan(0);
    expect(await draining.exited).toBe(0);
    await eventually("the drained instance to leave the registry", async () =>
      (await instances(asyncType)).some((i) => i.instanceId === id) ? undefined : true, 100, 100);
  });
});
