// Turns the TaskContext of a call into the PluginContext a plugin method receives, decoding
// `template.custom` into the plugin's typed specification. A `custom` that does not fit the specification is
// the submitter's fault: INVALID_ARGUMENT naming the offending field, so the host fails the task with it.
import {
  create,
  fromJson,
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import {
  TaskExecutionMetadataSchema,
  type TaskContext,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { PluginError, QUOTED_INPUT_LENGTH, quoteInput } from "./errors.js";
import { EXECUTION_ID_RULE, isExecutionId } from "./execution-id.js";
import type { Logger } from "./log.js";
import type { PluginContext } from "./plugin.js";

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fieldForKey(desc: DescMessage, key: string): DescField | undefined {
  return desc.fields.find((field) => field.jsonName === key || field.name === key);
}

/** An unknown key as a step of a field path: as it is, or quoted and cut when it is too long to repeat whole. */
function unknownKeyStep(key: string): string {
  return key.length <= QUOTED_INPUT_LENGTH ? key : quoteInput(key);
}

/**
 * Finds the deepest field path whose value fails to decode, by decoding one key at a time. protobuf-es names
 * the field in most of its messages, but not for well-known types (a bad Duration says only "abc"), and
 * never with the full path from the top.
 */
function locateJsonError(desc: DescMessage, json: JsonObject, path: string): { path: string; message: string } | undefined {
  for (const [key, value] of Object.entries(json)) {
    const field = fieldForKey(desc, key);
    const fieldPath = `${path}.${field ? field.name : unknownKeyStep(key)}`;
    if (!field) return { path: fieldPath, message: "unknown field" };
    try {
      fromJson(desc, { [key]: value } as JsonObject);
      continue;
    } catch (error) {
      if (field.fieldKind === "message" && isObject(value)) {
        const inner = locateJsonError(field.message, value, fieldPath);
        if (inner) return inner;
      }
      return { path: fieldPath, message: (error as Error).message };
    }
  }
  return undefined;
}

/** Decodes `custom` into `schema`, or throws INVALID_ARGUMENT naming `template.custom` and the field. */
export function decodeSpecification<Desc extends DescMessage>(
  schema: Desc,
  custom: JsonObject | undefined,
): MessageShape<Desc> {
  const json: JsonValue = custom ?? {};
  try {
    return fromJson(schema, json);
  } catch (error) {
    const located = isObject(json) ? locateJsonError(schema, json, "template.custom") : undefined;
    const where = located?.path ?? "template.custom";
    const message = located?.message ?? (error as Error).message;
    throw new PluginError(status.INVALID_ARGUMENT, `${where}: ${message} (expected ${schema.typeName})`);
  }
}

/**
 * Builds the PluginContext of one call. The TaskContext must carry an execution id and attempt a host could have
 * given (execution-id.ts; attempts start at 1) and a template.
 */
export function buildPluginContext<Desc extends DescMessage>(
  schema: Desc,
  taskContext: TaskContext | undefined,
  signal: AbortSignal,
  log: Logger,
): PluginContext<MessageShape<Desc>> {
  if (!taskContext) throw new PluginError(status.INVALID_ARGUMENT, "context is required");
  const executionId = taskContext.executionId?.id ?? "";
  if (!executionId) throw new PluginError(status.INVALID_ARGUMENT, "context.execution_id.id is required");
  if (!isExecutionId(executionId)) {
    throw new PluginError(
      status.INVALID_ARGUMENT,
      `context.execution_id.id ${quoteInput(executionId)} is not an execution id: ${EXECUTION_ID_RULE}`,
    );
  }
  const attempt = taskContext.executionId?.attempt ?? 0;
  if (attempt < 1) throw new PluginError(status.INVALID_ARGUMENT, "context.execution_id.attempt must be at least 1");
  const template = taskContext.template;
  if (!template) throw new PluginError(status.INVALID_ARGUMENT, "context.template is required");
  const spec = decodeSpecification(schema, template.custom);
  return {
    spec,
    executionId,
    attempt,
    template,
    inputs: taskContext.inputs ?? {},
    metadata: taskContext.metadata ?? create(TaskExecutionMetadataSchema),
    secrets: { ...taskContext.secrets },
    signal,
    taskContext,
    log,
  };
}
