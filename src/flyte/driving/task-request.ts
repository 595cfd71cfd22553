// What a Flyte connector is sent for a bridge call: the bridge's TaskContext as Flyte's TaskTemplate, inputs
// LiteralMap, TaskExecutionMetadata and output prefix, as flytepropeller's agent plugin would send them. A connector
// reads its inputs through the template's interface (flytekit's TypeEngine), so the interface is always filled:
// from the bridge template's interface where it declares a variable, else from the value itself (literalTypeOf).
import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { TaskExecutionMetadataSchema, type TaskExecutionMetadata } from "@plugin-bridge/protocol/flyteidl/admin/agent_pb.js";
import { IdentifierSchema, ResourceType, type Identifier } from "@plugin-bridge/protocol/flyteidl/core/identifier_pb.js";
import { VariableSchema, type Variable } from "@plugin-bridge/protocol/flyteidl/core/interface_pb.js";
import type { LiteralMap } from "@plugin-bridge/protocol/flyteidl/core/literals_pb.js";
import { RuntimeMetadata_RuntimeType, TaskTemplateSchema, type TaskTemplate } from "@plugin-bridge/protocol/flyteidl/core/tasks_pb.js";
import { LiteralTypeSchema, SimpleType, type LiteralType } from "@plugin-bridge/protocol/flyteidl/core/types_pb.js";
import { VariableType, type TaskContext, type Variable as BridgeVariable } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { jsonToLiteralMap, literalTypeOf, simpleType } from "../literals.js";
import { simpleTypeOfVariable } from "../variable-types.js";

/** Flyte's name for the one node of a single-task execution: the bridge runs tasks, not workflows. */
const NODE_ID = "n0";

/** Everything a CreateTask (or ExecuteTaskSync's header) carries besides the inputs, and the inputs. */
export interface FlyteTask {
  template: TaskTemplate;
  inputs: LiteralMap;
  taskExecutionMetadata: TaskExecutionMetadata;
  outputPrefix: string;
}

/**
 * The Flyte form of a call's context. Throws LiteralError when an input has no literal (a value that does not
 * match its declared type, an empty or mixed list without one): the task's input is at fault.
 */
export function flyteTask(context: TaskContext, outputPrefix: string): FlyteTask {
  const template = context.template;
  const inputs = context.inputs ?? {};
  const inputTypes = variableTypes(template?.interface?.inputs ?? {}, inputs, "inputs");
  const outputTypes = variableTypes(template?.interface?.outputs ?? {}, {}, "outputs");
  return {
    template: taskTemplate(context, inputTypes, outputTypes),
    inputs: jsonToLiteralMap(inputs, inputTypes, "inputs"),
    taskExecutionMetadata: executionMetadata(context),
    outputPrefix: attemptOutputPrefix(outputPrefix, context),
  };
}

/** `<prefix>/<execution>/<attempt>`, so that attempts never write over each other; "" when no prefix is set. */
export function attemptOutputPrefix(prefix: string, context: TaskContext): string {
  if (prefix === "") return "";
  const execution = context.executionId;
  return `${prefix.replace(/\/+$/, "")}/${execution?.id ?? ""}/${execution?.attempt ?? 0}`;
}

/**
 * The Flyte types of a side of the interface: every declared variable (its value, when one is given, refines a list's
 * element type), then every value that was not declared, typed by itself.
 */
function variableTypes(declared: Readonly<Record<string, BridgeVariable>>, values: JsonObject, side: string): Record<string, LiteralType> {
  const types: Record<string, LiteralType> = {};
  for (const [name, variable] of Object.entries(declared)) {
    const type = declaredType(variable.type, values[name], `${side}.${name}`);
    if (type) types[name] = type;
  }
  for (const [name, value] of Object.entries(values)) types[name] ??= literalTypeOf(value, `${side}.${name}`);
  return types;
}

/** A bridge variable type as Flyte's; undefined for an unspecified one without a value to tell. */
function declaredType(type: VariableType, value: JsonValue | undefined, path: string): LiteralType | undefined {
  const simple = simpleTypeOfVariable(type);
  if (simple !== undefined) return simpleType(simple);
  switch (type) {
    case VariableType.LIST:
      // The bridge says "a JSON array" and no more: a given list types its elements; otherwise they are JSON values.
      return Array.isArray(value) && value.length > 0
        ? literalTypeOf(value, path)
        : create(LiteralTypeSchema, { type: { case: "collectionType", value: simpleType(SimpleType.STRUCT) } });
    default:
      return value === undefined ? undefined : literalTypeOf(value, path);
  }
}

function variables(types: Record<string, LiteralType>, declared: Readonly<Record<string, BridgeVariable>>): Record<string, Variable> {
  return Object.fromEntries(
    Object.entries(types).map(([name, type]) => [name, create(VariableSchema, { type, description: declared[name]?.description ?? "" })]),
  );
}

function taskTemplate(context: TaskContext, inputTypes: Record<string, LiteralType>, outputTypes: Record<string, LiteralType>): TaskTemplate {
  const template = context.template;
  const metadata = template?.metadata;
  return create(TaskTemplateSchema, {
    id: taskIdentifier(context),
    type: template?.type ?? "",
    taskTypeVersion: template?.typeVersion ?? 0,
    custom: template?.custom ?? {},
    interface: {
      inputs: { variables: variables(inputTypes, template?.interface?.inputs ?? {}) },
      outputs: { variables: variables(outputTypes, template?.interface?.outputs ?? {}) },
    },
    metadata: {
      runtime: { type: RuntimeMetadata_RuntimeType.OTHER, flavor: "plugin-bridge" },
      ...(metadata?.timeout && { timeout: metadata.timeout }),
      retries: { retries: metadata?.retries ?? 0 },
      interruptibleValue: { case: "interruptible", value: metadata?.interruptible ?? false },
    },
    // References only, as in Flyte: a connector reads secret values from its own mounts, never from the request.
    securityContext: { secrets: (template?.secrets ?? []).map((secret) => ({ group: secret.group, key: secret.key })) },
    config: template?.config ?? {},
  });
}

/** The task's Flyte identifier: the template's own id where given; the project and domain default to the namespace. */
function taskIdentifier(context: TaskContext): Identifier {
  const id = context.template?.id;
  const namespace = context.metadata?.namespace || "default";
  return create(IdentifierSchema, {
    resourceType: ResourceType.TASK,
    project: id?.project || namespace,
    domain: id?.domain || namespace,
    name: id?.name || context.template?.type || "",
    version: id?.version || String(context.template?.typeVersion ?? 0),
  });
}

/**
 * Flyte's TaskExecutionMetadata: the execution is a Flyte workflow execution named by the bridge's execution id, with
 * one node, and the attempt is its retry number (Flyte counts retries from 0, the bridge attempts from 1).
 */
function executionMetadata(context: TaskContext): TaskExecutionMetadata {
  const metadata = context.metadata;
  const taskId = taskIdentifier(context);
  const retries = context.template?.metadata?.retries ?? 0;
  return create(TaskExecutionMetadataSchema, {
    taskExecutionId: {
      taskId,
      nodeExecutionId: {
        nodeId: NODE_ID,
        executionId: { project: taskId.project, domain: taskId.domain, name: context.executionId?.id ?? "" },
      },
      retryAttempt: Math.max(0, (context.executionId?.attempt ?? 1) - 1),
    },
    namespace: metadata?.namespace || "default",
    labels: metadata?.labels ?? {},
    annotations: metadata?.annotations ?? {},
    environmentVariables: metadata?.environment ?? {},
    maxAttempts: retries + 1,
    interruptible: context.template?.metadata?.interruptible ?? false,
    ...(metadata?.owner && { identity: { executionIdentity: metadata.owner } }),
  });
}
