// Builds a TaskTemplate from a typed Plugin Specification, after flytekit's get_custom: SDK users fill a
// generated message with type checking, and `custom` carries its proto3 JSON, which the host validates
// against the specification the plugin declares.
import { create, toJson, type DescMessage, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskTemplateSchema, type TaskTemplate } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";

/** The fields of a TaskTemplate other than what `taskTemplate` fills itself. */
export type TaskTemplateExtras = Omit<MessageInitShape<typeof TaskTemplateSchema>, "type" | "typeVersion" | "custom" | "$typeName">;

/**
 * A TaskTemplate for task type `taskType`, whose `custom` is `spec` as the proto3 JSON of `schema`.
 * Example: `taskTemplate(HttpRequestSchema, { type: "http", version: 1 }, { url: "https://example.com" })`.
 */
export function taskTemplate<Desc extends DescMessage>(
  schema: Desc,
  taskType: { type: string; version: number },
  spec: MessageInitShape<Desc>,
  extras: TaskTemplateExtras = {},
): TaskTemplate {
  const custom = toJson(schema, create(schema, spec));
  if (typeof custom !== "object" || custom === null || Array.isArray(custom)) {
    // Well-known types such as Duration have a non-object JSON form; a Struct cannot hold them.
    throw new Error(`${schema.typeName} does not encode to a JSON object and cannot be a Plugin Specification`);
  }
  return create(TaskTemplateSchema, {
    ...extras,
    type: taskType.type,
    typeVersion: taskType.version,
    custom: custom as JsonObject,
  });
}
