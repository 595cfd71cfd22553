// The SDK's specification lookup, check and schema against a PluginRegistryService served by connect-node in this
// test, for what real plugins do not produce: descriptor sets with source comments, oneofs and wrappers, no
// specification, unusable ones, draining instances. The real host and plugins are in sdk-validate.test.ts.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { create, type JsonObject } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  file_google_protobuf_wrappers,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createBridgeClient, customProblem, type BridgeClient } from "@plugin-bridge/kit/sdk";
import { PluginInstanceSchema, type PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { PluginRegistryService } from "@plugin-bridge/protocol/pluginbridge/v1/registry_service_pb.js";
import { TaskTemplateSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// test/v1/job.proto, as protoc describes it with --include_source_info (protoc always writes json_name).
const jobFile = create(FileDescriptorProtoSchema, {
  name: "test/v1/job.proto",
  package: "test.v1",
  syntax: "proto3",
  dependency: ["google/protobuf/wrappers.proto"],
  messageType: [
    {
      name: "Job",
      field: [
        { name: "name", jsonName: "name", number: 1, type: Type.STRING, label: Label.OPTIONAL },
        { name: "max_bytes", jsonName: "maxBytes", number: 2, type: Type.INT64, label: Label.OPTIONAL, proto3Optional: true, oneofIndex: 1 },
        { name: "path", jsonName: "path", number: 3, type: Type.STRING, label: Label.OPTIONAL, oneofIndex: 0 },
        { name: "url", jsonName: "url", number: 4, type: Type.STRING, label: Label.OPTIONAL, oneofIndex: 0 },
        { name: "steps", jsonName: "steps", number: 5, type: Type.MESSAGE, typeName: ".test.v1.Job.Step", label: Label.REPEATED },
        { name: "limit", jsonName: "limit", number: 6, type: Type.MESSAGE, typeName: ".google.protobuf.Int32Value", label: Label.OPTIONAL },
        { name: "payload", jsonName: "payload", number: 7, type: Type.BYTES, label: Label.OPTIONAL },
      ],
      oneofDecl: [{ name: "source" }, { name: "_max_bytes" }],
      nestedType: [
        {
          name: "Step",
          field: [{ name: "kind", jsonName: "kind", number: 1, type: Type.ENUM, typeName: ".test.v1.Job.Step.Kind", label: Label.OPTIONAL }],
          enumType: [{ name: "Kind", value: [{ name: "KIND_UNSPECIFIED", number: 0 }, { name: "KIND_RUN", number: 1 }] }],
        },
      ],
    },
  ],
  sourceCodeInfo: {
    location: [
      { path: [4, 0], span: [3, 0, 20, 1], leadingComments: " Job is one unit of work.\n\n Second paragraph.\n" },
      { path: [4, 0, 2, 0], span: [5, 2, 18], leadingComments: " The job's name.\n" },
      { path: [4, 0, 3, 0, 4, 0], span: [12, 4, 15, 5], leadingComments: " What a step does.\n" },
      { path: [4, 0, 3, 0, 4, 0, 2, 1], span: [14, 6, 19], leadingComments: " Runs a command.\n" },
    ],
  },
});

const specification = (file: typeof jobFile[], messageName: string) => ({
  fileDescriptorSet: create(FileDescriptorSetSchema, { file }),
  messageName,
});
const jobSpec = specification([file_google_protobuf_wrappers.proto, jobFile], "test.v1.Job");

/** An instance of the plugin named by the id's first part. */
const instance = (id: string, types: [string, number][], spec: ReturnType<typeof specification> | undefined, draining = false) =>
  create(PluginInstanceSchema, {
    instanceId: id,
    draining,
    descriptor: {
      name: id.split("-")[0],
      version: "2.0.0",
      taskTypes: types.map(([type, version]) => ({ type, version })),
      specification: spec,
    },
  });

const plugins: Record<string, PluginInstance[]> = {
  jobs: [
    // Draining, and with a specification that would not resolve: it must not be the one chosen.
    instance("jobs-a", [["job", 1]], specification([jobFile], "test.v1.Job"), true),
    instance("jobs-b", [["job", 1], ["job", 2]], jobSpec),
  ],
  free: [instance("free-a", [["free", 1]], undefined)],
  broken: [instance("broken-a", [["broken", 1]], specification([jobFile], "test.v1.Job"))],
  missing: [instance("missing-a", [["missing", 1]], specification([file_google_protobuf_wrappers.proto, jobFile], "test.v1.Gone"))],
  leaving: [instance("leaving-a", [["leaving", 1]], jobSpec, true)],
};

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

describe("SDK specifications", () => {
  const requests: string[] = [];
  const impl: Partial<ServiceImpl<typeof PluginRegistryService>> = {
    listPlugins(request) {
      requests.push(request.taskType);
      const serving = Object.entries(plugins).map(([name, instances]) => ({
        name,
        instances: instances.filter((i) => i.descriptor?.taskTypes.some((t) => t.type === request.taskType)),
      }));
      return { plugins: serving.filter((plugin) => plugin.instances.length > 0) };
    },
  };
  let server: Server;
  let client: BridgeClient;
  const template = (type: string, custom: JsonObject) => create(TaskTemplateSchema, { type, typeVersion: 1, custom });

  beforeAll(async () => {
    server = createServer(connectNodeAdapter({ routes: (router) => router.service(PluginRegistryService, impl) }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    client = createBridgeClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, specificationCacheMs: 0 });
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it("chooses a non-draining instance and checks nested lists of messages", async () => {
    const spec = await client.specification("job", 1);
    expect(spec.plugin).toEqual({ name: "jobs", version: "2.0.0" });
    expect(spec.message?.typeName).toBe("test.v1.Job");
    await client.validate(template("job", { name: "n", maxBytes: "10", path: "/x", steps: [{ kind: "KIND_RUN" }], limit: 3 }));
    const error = await refusal(client.validate(template("job", { steps: [{ kind: "KIND_RUN" }, { kind: "NOPE" }] })));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe(
      'template.custom.steps[1].kind: cannot decode enum test.v1.Job.Step.Kind from JSON: "NOPE" (template.custom must parse as test.v1.Job)',
    );
    // Both members of a oneof is a problem of the message, not of one field: each decodes alone.
    expect(customProblem(spec.message!, { path: "/x", url: "http://x" })).toBe(
      "template.custom: cannot decode oneof test.v1.Job.source from JSON: oneof set multiple times by path and url",
    );
    expect(customProblem(spec.message!, undefined)).toBeUndefined();
  });

  it("writes the schema with comments, oneofs, optional fields and JSON forms", async () => {
    const { text } = await client.schema("job", 1);
    expect(text).toBe(
      [
        'template.custom of task type "job" version 1 (plugin "jobs" 2.0.0) is the proto3 JSON of test.v1.Job.',
        "Keys are the JSON names below (proto names are accepted too); unknown keys are refused.",
        "",
        "// Job is one unit of work.",
        "//",
        "// Second paragraph.",
        "message test.v1.Job {",
        "  // The job's name.",
        "  name: string",
        "  maxBytes: optional int64  (JSON: a number or a decimal string)",
        "  oneof source {  // at most one of these",
        "    path: string",
        "    url: string",
        "  }",
        "  steps: repeated test.v1.Job.Step",
        "  limit: google.protobuf.Int32Value  (JSON: int32 or null)",
        "  payload: bytes  (JSON: a base64 string)",
        "}",
        "",
        "message test.v1.Job.Step {",
        "  kind: test.v1.Job.Step.Kind",
        "}",
        "",
        "// What a step does.",
        "enum test.v1.Job.Step.Kind {  // JSON: a value's name or number",
        "  KIND_UNSPECIFIED = 0",
        "  // Runs a command.",
        "  KIND_RUN = 1",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("passes any custom when the plugin declares no specification", async () => {
    await client.validate(template("free", { anything: [1, "two"] }));
    const schema = await client.schema("free", 1);
    expect(schema.message).toBeUndefined();
    expect(schema.text).toBe('template.custom of task type "free" version 1 (plugin "free" 2.0.0): the plugin declares no specification, so any JSON object passes.\n');
  });

  it("says why a specification does not resolve", async () => {
    const broken = await refusal(client.validate(template("broken", {})));
    expect(broken.code).toBe(Code.FailedPrecondition);
    expect(broken.rawMessage).toMatch(/^the plugin "broken" \(instance broken-a\) for task type "broken" declares an unusable specification: .*wrappers/);
    const missing = await refusal(client.schema("missing", 1));
    expect(missing.code).toBe(Code.FailedPrecondition);
    expect(missing.rawMessage).toMatch(/message test\.v1\.Gone is not in its file set$/);
  });

  it("names the versions served, and says when only draining instances serve a type", async () => {
    const version = await refusal(client.specification("job", 3));
    expect(version.code).toBe(Code.NotFound);
    expect(version.rawMessage).toBe('task type "job" has no live plugin for type_version 3 (versions served: 1, 2)');
    const leaving = await refusal(client.specification("leaving", 1));
    expect(leaving.rawMessage).toBe('task type "leaving" has no live plugin for type_version 1 (every instance serving it is draining)');
  });

  it("refuses an empty type without asking the registry", async () => {
    const before = requests.length;
    const error = await refusal(client.validate(template("", {})));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("template.type: is required");
    expect(requests.length).toBe(before);
  });
});
