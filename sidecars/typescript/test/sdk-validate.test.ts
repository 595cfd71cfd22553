// The SDK's `custom` check and schema against a real host and real plugin processes: the `http` example
// (HttpRequest) and a fixture whose specification is deep (TaskTemplate). A template the SDK refuses must carry
// the very message the host would answer, and must not reach the host at all.
import { create, type JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createBridgeClient, taskTemplate, type BridgeClient } from "@plugin-bridge/kit/sdk";
import { HttpRequestSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/http/v1/http_pb.js";
import { Phase, TaskTemplateSchema, type TaskTemplate } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitForPlugin } from "../../../test/helpers/clients.js";
import {
  startHost,
  startTestNats,
  startTypeScriptSidecar,
  type RunningProcess,
  type TestHost,
  type TestNats,
} from "../../../test/helpers/processes.js";

const template = (type: string, custom: JsonObject, typeVersion = 1): TaskTemplate =>
  create(TaskTemplateSchema, { type, typeVersion, custom });

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

/** A client that records the name of every method it calls on the host. */
function recordingClient(baseUrl: string, specificationCacheMs?: number): { client: BridgeClient; calls: string[] } {
  const calls: string[] = [];
  const record: Interceptor = (next) => async (request) => {
    calls.push(request.method.name);
    return await next(request);
  };
  return { client: createBridgeClient({ baseUrl, interceptors: [record], specificationCacheMs }), calls };
}

describe("SDK validation against a real host", () => {
  let nats: TestNats;
  let host: TestHost;
  const sidecars: RunningProcess[] = [];

  beforeAll(async () => {
    nats = await startTestNats();
    host = await startHost(nats.url);
    sidecars.push(startTypeScriptSidecar("sidecars/typescript/examples/http/main.ts", nats.url));
    sidecars.push(startTypeScriptSidecar("sidecars/typescript/test/fixtures/nested-main.ts", nats.url));
    await waitForPlugin(host.url, "http");
    await waitForPlugin(host.url, "nested");
  });

  afterAll(async () => {
    await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
    await host?.stop();
    await nats?.stop();
  });

  it("passes a good custom, and a validated run goes through", async () => {
    const { client } = recordingClient(host.url);
    const http = taskTemplate(HttpRequestSchema, { type: "http", version: 1 }, { url: "http://127.0.0.1:1/", timeout: { seconds: 2n } });
    await expect(client.validate(http)).resolves.toBeUndefined();
    const last = await client.run(template("nested", { type: "inner", metadata: { timeout: "1.5s", retries: 2 } }), { validate: true });
    expect(last.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(last.outputs).toEqual({ type: "inner" });
  });

  const bad: [string, JsonObject, string][] = [
    ["http", { url: "http://x", timeout: "soon" }, "template.custom.timeout: "],
    ["http", { urll: "http://x" }, 'template.custom.urll: pluginbridge.plugins.http.v1.HttpRequest has no field "urll"'],
    ["http", { headers: { accept: 1 } }, "template.custom.headers: "],
    ["nested", { metadata: { retries: 1, timeout: "soon" } }, "template.custom.metadata.timeout: "],
    ["nested", { metadata: { retries: 1, nope: true } }, 'template.custom.metadata.nope: pluginbridge.v1.TaskMetadata has no field "nope"'],
    ["nested", { secrets: [{ group: "a", key: "b" }, { group: 7 }] }, "template.custom.secrets[1].group: "],
    ["nested", { interface: { inputs: { x: { type: "VARIABLE_TYPE_NOPE" } } } }, 'template.custom.interface.inputs["x"].type: '],
    ["nested", { type_version: "one" }, "template.custom.type_version: "],
  ];

  for (const [type, custom, expected] of bad) {
    it(`names ${expected.split(":")[0]} as the host does`, async () => {
      const { client } = recordingClient(host.url);
      const ours = await refusal(client.validate(template(type, custom)));
      expect(ours.code).toBe(Code.InvalidArgument);
      expect(ours.rawMessage.startsWith(expected)).toBe(true);
      // The host's own answer for the same template, sent without the SDK's check.
      const theirs = await refusal(client.submit(template(type, custom)));
      expect(theirs.code).toBe(Code.InvalidArgument);
      expect(ours.rawMessage).toBe(theirs.rawMessage);
    });
  }

  it("refuses a bad custom on submit and run with validate: true without sending it", async () => {
    const { client, calls } = recordingClient(host.url);
    const before = await client.list({ pageSize: 1000 });
    const wrong = template("nested", { metadata: { timeout: "soon" } });
    for (const call of [() => client.submit(wrong, { validate: true }), () => client.run(wrong, { validate: true })]) {
      const error = await refusal(call());
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(/^template\.custom\.metadata\.timeout: .*\(template\.custom must parse as pluginbridge\.v1\.TaskTemplate\)$/);
    }
    expect(calls.filter((name) => name !== "ListPlugins")).toEqual(["ListTasks"]);
    expect((await client.list({ pageSize: 1000 })).executions.map((e) => e.id)).toEqual(before.executions.map((e) => e.id));
  });

  it("tells an unknown type from an unknown version, naming the versions served", async () => {
    const { client, calls } = recordingClient(host.url);
    const type = await refusal(client.submit(template("nope", {}), { validate: true }));
    expect(type.code).toBe(Code.NotFound);
    expect(type.rawMessage).toBe('no live plugin serves task type "nope"');
    const version = await refusal(client.validate(template("http", { url: "http://x" }, 2)));
    expect(version.code).toBe(Code.NotFound);
    expect(version.rawMessage).toBe('task type "http" has no live plugin for type_version 2 (versions served: 1)');
    expect(calls).toEqual(["ListPlugins", "ListPlugins"]);
  });

  it("reuses a specification for specificationCacheMs", async () => {
    const cached = recordingClient(host.url);
    await cached.client.validate(template("http", { url: "http://x" }));
    await cached.client.validate(template("http", { url: "http://y" }));
    expect(cached.calls).toEqual(["ListPlugins"]);
    const uncached = recordingClient(host.url, 0);
    await uncached.client.validate(template("http", { url: "http://x" }));
    await uncached.client.validate(template("http", { url: "http://y" }));
    expect(uncached.calls).toEqual(["ListPlugins", "ListPlugins"]);
  });

  it("describes the specification for people and programs", async () => {
    const { client } = recordingClient(host.url);
    const http = await client.schema("http", 1);
    expect(http.plugin.name).toBe("http");
    expect(http.message?.typeName).toBe("pluginbridge.plugins.http.v1.HttpRequest");
    expect(http.message?.fields.map((field) => field.jsonName)).toContain("successStatuses");
    expect(http.text).toContain('template.custom of task type "http" version 1 (plugin "http" ');
    expect(http.text).toContain("message pluginbridge.plugins.http.v1.HttpRequest {\n  url: string\n  method: string\n");
    expect(http.text).toContain("  headers: map<string, string>\n");
    expect(http.text).toContain('  timeout: google.protobuf.Duration  (JSON: a string such as "1.5s")\n');
    expect(http.text).toContain("  successStatuses: repeated uint32\n");

    const nested = await client.schema("nested", 1);
    expect(nested.text).toContain("  secrets: repeated pluginbridge.v1.SecretRequest\n");
    expect(nested.text).toContain("message pluginbridge.v1.TypedInterface {\n  inputs: map<string, pluginbridge.v1.Variable>\n");
    expect(nested.text).toContain("message pluginbridge.v1.SecretRequest {\n  group: string\n  key: string\n}\n");
    expect(nested.text).toContain("enum pluginbridge.v1.VariableType {  // JSON: a value's name or number\n  VARIABLE_TYPE_UNSPECIFIED = 0\n");
    expect(nested.text).toContain("  custom: google.protobuf.Struct  (JSON: any JSON object)\n");
  });
});
