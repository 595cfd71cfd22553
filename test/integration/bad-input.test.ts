// What the host does with malformed, oversized, unknown and hostile input, and with plugins that fail or never
// answer: a precise code, nothing stored, and the host keeps serving.
import { execFile } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { ErrorKind, Phase, type TaskTemplateSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { TaskService, type TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { eventually, taskClient, waitForPlugin, type Protocol } from "../helpers/clients.js";
import { startHost, startReferencePlugin, startTestNats, startTypeScriptSidecar, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

const execFileAsync = promisify(execFile);
const READ_MAX_BYTES = 64 * 1024;
let nats: TestNats;
let host: TestHost;
let sidecars: RunningProcess[] = [];
const work = tempDir("bad-input");
const auditFile = path.join(work, "audit.log");

function startScripted(env: Record<string, string> = {}): RunningProcess {
  return startReferencePlugin(nats.url, auditFile, env);
}

beforeAll(async () => {
  nats = await startTestNats();
  // The reference plugin may have vault/* secrets; the host has no secret source, so none exists.
  host = await startHost(nats.url, { "read-max-bytes": String(READ_MAX_BYTES), "secret-access": "conformance-typescript=vault/*" });
  sidecars = [startScripted(), startScripted({ CONFORMANCE_KIND: "sync" })];
  await waitForPlugin(host.url, "conformance-typescript");
  await waitForPlugin(host.url, "conformance-sync-typescript");
});

afterAll(async () => {
  await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
  await host?.stop();
  await nats?.stop();
});

/** The audit lines for one execution: "create 1", "get 1", … */
function calls(executionId: string): string[] {
  if (!existsSync(auditFile)) return [];
  return readFileSync(auditFile, "utf8")
    .split("\n")
    .filter((line) => line.split(" ")[1] === executionId)
    .map((line) => line.split(" ").slice(0, 1).concat(line.split(" ")[2] ?? "").join(" "));
}

async function expectCode(promise: Promise<unknown>, code: Code, ...fragments: string[]): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  expect(error, "the call should have failed").toBeInstanceOf(ConnectError);
  expect(Code[error!.code]).toBe(Code[code]);
  for (const fragment of fragments) expect(error!.rawMessage).toContain(fragment);
  return error!;
}

async function final(id: string): Promise<TaskEvent> {
  let last: TaskEvent | undefined;
  for await (const { event } of taskClient(host.url).watchTask({ id })) last = event;
  return last!;
}

const reference = (custom: JsonObject, extra: Pick<MessageInitShape<typeof TaskTemplateSchema>, "metadata" | "secrets"> = {}) => ({
  type: "conformance-typescript",
  typeVersion: 1,
  custom,
  ...extra,
});

describe.each<Protocol>(["grpc", "connect-json"])("CreateTask over %s refuses", (protocol) => {
  const client = () => taskClient(host.url, protocol);

  it("an unknown task type with NOT_FOUND naming it", async () => {
    await expectCode(client().createTask({ template: { type: "no-such-type" } }), Code.NotFound, '"no-such-type"');
  });

  it("a known type in a version no plugin serves with NOT_FOUND", async () => {
    await expectCode(client().createTask({ template: { type: "conformance-typescript", typeVersion: 7 } }), Code.NotFound, "type_version 7");
  });

  it("an empty type, or no template, with INVALID_ARGUMENT and the field path", async () => {
    await expectCode(client().createTask({ template: { type: "" } }), Code.InvalidArgument, "template.type");
    await expectCode(client().createTask({}), Code.InvalidArgument, "template");
  });

  it("custom that does not parse as the plugin's specification with INVALID_ARGUMENT and the field path", async () => {
    await startSensorOnce();
    await expectCode(
      client().createTask({ template: { type: "sensor", typeVersion: 1, custom: { path: "/tmp/x", deadline: "soon" } } }),
      Code.InvalidArgument,
      "template.custom",
      "deadline",
    );
    await expectCode(
      client().createTask({ template: { type: "sensor", typeVersion: 1, custom: { pathh: "/tmp/x" } } }),
      Code.InvalidArgument,
      "template.custom",
      "pathh",
    );
  });

  it("a request over the size limit with RESOURCE_EXHAUSTED", async () => {
    await expectCode(
      client().createTask({ template: reference({ echo: "x".repeat(READ_MAX_BYTES * 2) }) }),
      Code.ResourceExhausted,
    );
  });

  it("hostile names with INVALID_ARGUMENT: namespace, secrets, ids, page tokens", async () => {
    await expectCode(client().createTask({ template: reference({}), metadata: { namespace: "a.>" } }), Code.InvalidArgument, "metadata.namespace");
    await expectCode(
      client().createTask({ template: reference({}, { secrets: [{ group: "..", key: "passwd" }] }) }),
      Code.InvalidArgument,
      "template.secrets[0]",
    );
    await expectCode(client().createTask({ template: reference({}), idempotencyKey: "with space" }), Code.InvalidArgument, "idempotency_key");
    await expectCode(client().getTask({ id: "../../etc" }), Code.InvalidArgument, "id");
    await expectCode(client().getTask({ id: "pb.work.>" }), Code.InvalidArgument, "id");
    await expectCode(client().listTasks({ pageToken: "garbage" }), Code.InvalidArgument, "page_token");
    await expectCode(client().listTasks({ pageSize: 5000 }), Code.InvalidArgument, "page_size");
  });

  it("a secret nobody has with FAILED_PRECONDITION, one the plugin may not have with PERMISSION_DENIED", async () => {
    await expectCode(
      client().createTask({ template: reference({}, { secrets: [{ group: "vault", key: "token" }] }) }),
      Code.FailedPrecondition,
      "vault/token",
    );
    await expectCode(
      client().createTask({ template: reference({}, { secrets: [{ group: "cloud", key: "key" }] }) }),
      Code.PermissionDenied,
      "secret cloud/key is not allowed for plugin conformance-typescript",
    );
  });

  it("an unknown execution with NOT_FOUND", async () => {
    await expectCode(client().getTask({ id: "0000-unknown" }), Code.NotFound, "0000-unknown");
    await expectCode(client().abortTask({ id: "0000-unknown" }), Code.NotFound);
  });

  it("huge hostile values with a message that repeats only their start", async () => {
    // Echoed whole, a value this size (64 KiB with the host's usual size limit) would outgrow the grpc-message
    // trailer, and the call would get no answer at all.
    const huge = `A\u0000${"é".repeat(20_000)}`;
    const namespace = await expectCode(client().createTask({ template: reference({}), metadata: { namespace: huge } }), Code.InvalidArgument, "metadata.namespace", "(20002 characters)");
    expect(namespace.rawMessage.length).toBeLessThan(300);
    const id = await expectCode(client().getTask({ id: huge }), Code.InvalidArgument, "is not an execution id");
    expect(id.rawMessage.length).toBeLessThan(300);
  });
});

describe("numbers JSON cannot hold", () => {
  it("NaN and Infinity in inputs or custom are refused with the field path (binary carries them, JSON cannot)", async () => {
    const client = taskClient(host.url, "grpc");
    await expectCode(client.createTask({ template: reference({ a: { b: [1, Number.POSITIVE_INFINITY] } }) }), Code.InvalidArgument, 'template.custom."a"."b"[1]', "Infinity");
    await expectCode(client.createTask({ template: reference({}), inputs: { x: Number.NaN } }), Code.InvalidArgument, 'inputs."x"', "NaN");
    await expectCode(
      client.createTask({ template: reference({}), inputs: { x: Number.NEGATIVE_INFINITY }, idempotencyKey: "non-finite" }),
      Code.InvalidArgument,
      'inputs."x"',
    );
  });
});

describe("an ended execution", () => {
  it("WatchTask from past its last event ends at once, empty; from its last event gives that event", async () => {
    const client = taskClient(host.url);
    let id = "";
    let lastSequence = 0n;
    for await (const { event } of client.executeTask({ template: { type: "conformance-sync-typescript", typeVersion: 1 } })) {
      id = event!.executionId;
      lastSequence = event!.sequence;
    }
    const after: TaskEvent[] = [];
    for await (const { event } of client.watchTask({ id, fromSequence: lastSequence + 1n })) after.push(event!);
    expect(after).toEqual([]);
    for await (const { event } of client.watchTask({ id, fromSequence: lastSequence + 1_000n })) after.push(event!);
    expect(after).toEqual([]);
    const last: TaskEvent[] = [];
    for await (const { event } of client.watchTask({ id, fromSequence: lastSequence })) last.push(event!);
    expect(last.map((event) => event.sequence)).toEqual([lastSequence]);
  });
});

let sensor: RunningProcess | undefined;
async function startSensorOnce(): Promise<void> {
  if (!sensor) {
    sensor = startTypeScriptSidecar("sidecars/typescript/examples/sensor/main.ts", nats.url);
    sidecars.push(sensor);
  }
  await waitForPlugin(host.url, "sensor");
}

describe("malformed requests on the wire", () => {
  async function curl(args: string[], input?: Buffer): Promise<{ status: string; body: string }> {
    const run = execFileAsync("curl", ["-sS", "-w", "\n%{http_code}", ...args]);
    if (input) run.child.stdin?.end(input);
    const { stdout } = await run;
    const cut = stdout.lastIndexOf("\n");
    return { body: stdout.slice(0, cut), status: stdout.slice(cut + 1) };
  }
  const url = () => `${host.url}/pluginbridge.v1.TaskService/CreateTask`;

  it("malformed JSON gets invalid_argument and the host keeps serving", async () => {
    const bad = await curl(["-H", "Content-Type: application/json", "-d", '{"template": {"type": ', url()]);
    expect(bad.status).toBe("400");
    expect(JSON.parse(bad.body).code).toBe("invalid_argument");
    const good = await curl(["-H", "Content-Type: application/json", "-d", '{"template":{"type":"conformance-sync-typescript","typeVersion":1}}', url()]);
    expect(good.status).toBe("200");
  });

  it("JSON nested deeper than the decoder allows gets invalid_argument, without hurting the host", async () => {
    const depth = 20_000;
    const body = `{"template":{"type":"conformance-typescript","typeVersion":1,"custom":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}}`;
    const bad = await curl(["-H", "Content-Type: application/json", "--data-binary", body, url()]);
    expect(bad.status).toBe("400");
    expect(JSON.parse(bad.body)).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("recursion depth") });
    const good = await curl(["-H", "Content-Type: application/json", "-d", "{}", `${host.url}/grpc.health.v1.Health/Check`]);
    expect(JSON.parse(good.body)).toEqual({ status: "SERVING" });
  });

  it("JSON text that is not Unicode gets invalid_argument: bytes that are not UTF-8, an escaped lone surrogate", async () => {
    const latin1 = Buffer.from('{"template":{"type":"conformance-sync-typescript","typeVersion":1,"custom":{"name":"caf\xe9"}}}', "latin1");
    const notUtf8 = await curl(["-H", "Content-Type: application/json", "--data-binary", "@-", url()], latin1);
    expect(notUtf8.status).toBe("400");
    expect(JSON.parse(notUtf8.body)).toMatchObject({ code: "invalid_argument", message: "the request is not UTF-8 text" });
    // In a string field, in a Struct value: both would be stored, or answered with a message no trailer can carry.
    for (const body of ['{"template":{"type":"\\ud800"}}', '{"template":{"type":"conformance-sync-typescript","typeVersion":1},"inputs":{"a":"x\\udc00"}}']) {
      const bad = await curl(["-H", "Content-Type: application/json", "--data-binary", body, url()]);
      expect(bad.status).toBe("400");
      expect(JSON.parse(bad.body)).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("lone UTF-16 surrogate") });
    }
    // A surrogate pair is text like any other, and "\\ud800" (an escaped backslash) is no escape at all.
    const pair = await curl(["-H", "Content-Type: application/json", "--data-binary", '{"template":{"type":"conformance-sync-typescript","typeVersion":1},"inputs":{"a":"\\ud83d\\ude00","b":"\\\\ud800"}}', url()]);
    expect(pair.status).toBe("200");
  });

  it("an escaped lone surrogate over gRPC with JSON gets INVALID_ARGUMENT, not silence", async () => {
    // connect-es cannot percent-encode a message that holds one into grpc-message; the host must never make one.
    const grpcJson = createClient(TaskService, createGrpcTransport({ baseUrl: host.url, useBinaryFormat: false }));
    await expectCode(grpcJson.createTask({ template: { type: "conformance-sync-typescript", typeVersion: 1, custom: { s: "\ud800" } } }), Code.InvalidArgument, "lone UTF-16 surrogate");
    await expectCode(grpcJson.getTask({ id: "\udc00".repeat(3) }), Code.InvalidArgument);
  });

  it("a wrong content type gets 415 and the host keeps serving", async () => {
    const bad = await curl(["-H", "Content-Type: text/plain", "-d", "hello", url()]);
    expect(bad.status).toBe("415");
    const good = await curl(["-H", "Content-Type: application/json", "-d", '{"id":"0000-unknown"}', `${host.url}/pluginbridge.v1.TaskService/GetTask`]);
    expect(JSON.parse(good.body).code).toBe("not_found");
  });
});

describe("idempotency and abort", () => {
  it("CreateTask twice with one idempotency key makes one execution and one Create", async () => {
    const client = taskClient(host.url);
    const request = { template: reference({ polls: 2 }), idempotencyKey: "order-42" };
    const first = await client.createTask(request);
    const second = await client.createTask(request);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.execution?.id).toBe(first.execution?.id);
    const id = first.execution!.id;
    expect((await final(id)).phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(calls(id).filter((call) => call.startsWith("create"))).toEqual(["create 1"]);
    await expectCode(
      client.createTask({ template: reference({ polls: 3 }), idempotencyKey: "order-42" }),
      Code.AlreadyExists,
      "order-42",
    );
  });

  it("AbortTask of a finished execution is FAILED_PRECONDITION", async () => {
    const client = taskClient(host.url);
    const { execution } = await client.createTask({ template: { type: "conformance-sync-typescript", typeVersion: 1 } });
    expect((await final(execution!.id)).phaseInfo?.phase).toBe(Phase.SUCCESS);
    await expectCode(client.abortTask({ id: execution!.id }), Code.FailedPrecondition, "SUCCESS");
  });

  it("AbortTask of a running async execution calls Delete and ends ABORTED", async () => {
    const client = taskClient(host.url);
    const { execution } = await client.createTask({ template: reference({ waitForFile: path.join(work, "never") }) });
    const id = execution!.id;
    await eventually("the first Get", async () => (calls(id).includes("get 1") ? true : undefined));
    const { execution: aborted } = await client.abortTask({ id, reason: "user changed their mind" });
    expect(aborted?.phaseInfo?.phase).toBe(Phase.ABORTED);
    expect(aborted?.phaseInfo?.reason).toBe("user changed their mind");
    expect(calls(id)).toContain("delete 1");
    const getsAtAbort = calls(id).filter((call) => call.startsWith("get")).length;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(calls(id).filter((call) => call.startsWith("get")).length).toBe(getsAtAbort);
  });
});

describe("plugins that fail", () => {
  it("a user error from the sidecar fails the execution with its message", async () => {
    const { execution } = await taskClient(host.url).createTask({ template: reference({ create: "BEHAVIOR_USER_ERROR", message: "bucket does not exist" }) });
    const last = await final(execution!.id);
    expect(last.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(last.phaseInfo?.error?.message).toBe("bucket does not exist");
    expect(last.phaseInfo?.error?.kind).toBe(ErrorKind.USER);
  });

  it("an internal error from the sidecar is recorded, counted as a system failure and retried", async () => {
    const client = taskClient(host.url);
    const { execution } = await client.createTask({ template: reference({ create: "BEHAVIOR_CRASH", message: "disk on fire" }) });
    const events: TaskEvent[] = [];
    for await (const { event } of client.watchTask({ id: execution!.id })) if (event) events.push(event);
    const reasons = events.map((event) => event.phaseInfo?.reason ?? "");
    expect(reasons).toContain("system failure 1 of 2 allowed: INTERNAL: disk on fire");
    expect(reasons).toContain("system failure 2 of 2 allowed: INTERNAL: disk on fire");
    const last = events.at(-1)!;
    expect(last.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(last.phaseInfo?.error?.code).toBe("SystemFailure");
    expect(last.phaseInfo?.error?.message).toContain("disk on fire");
  });

  it("a sidecar that never answers: the deadline passes, a system failure is counted, the step is retried", async () => {
    const client = taskClient(host.url);
    const { execution } = await client.createTask({ template: reference({ get: "BEHAVIOR_HANG" }) });
    const id = execution!.id;
    const counted = await eventually("two system failures", async () => {
      const { execution: current } = await client.getTask({ id });
      return (current?.systemFailures ?? 0) >= 2 ? current : undefined;
    });
    expect(counted.phaseInfo?.reason).toContain("DEADLINE_EXCEEDED");
    const last = await final(id);
    expect(last.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(last.phaseInfo?.error?.kind).toBe(ErrorKind.SYSTEM);
  });

  it("a retryable failure starts a new attempt while retries last, each with its own Create", async () => {
    const { execution } = await taskClient(host.url).createTask({
      template: reference({ get: "BEHAVIOR_RETRYABLE", message: "quota hiccup" }, { metadata: { retries: 1 } }),
    });
    const id = execution!.id;
    const last = await final(id);
    expect(last.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(last.attempt).toBe(2);
    expect(last.phaseInfo?.reason).toContain("no retries left after 2 attempts");
    expect(calls(id).filter((call) => call.startsWith("create"))).toEqual(["create 1", "create 2"]);
  });

  it("an attempt past its timeout is deleted and ends the execution with Timeout, retries or not", async () => {
    const { execution } = await taskClient(host.url).createTask({
      template: reference({ waitForFile: path.join(work, "never") }, { metadata: { timeout: { seconds: 1n }, retries: 2 } }),
    });
    const id = execution!.id;
    const last = await final(id);
    expect(last.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(last.attempt).toBe(1);
    expect(last.phaseInfo?.error?.code).toBe("Timeout");
    expect(last.phaseInfo?.reason).toBe("attempt 1 exceeded its timeout of 1000 ms; its work was deleted");
    expect(calls(id)).toContain("delete 1");
    expect(calls(id).filter((call) => call.startsWith("create"))).toEqual(["create 1"]);
  });
});
