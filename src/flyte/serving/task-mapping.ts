// What a Flyte caller sends, as the bridge's CreateTask, and an execution, as the Flyte Resource it reads back. The
// bridge keeps Flyte's TaskTemplate fields it has a place for (type, type version, custom, the interface as far as
// its variable types go, timeout, secrets, config) and leaves what only Flyte's own backend runs (containers, pods,
// SQL, resources) to Flyte. Retries stay Flyte's: propeller retries a failed attempt itself, as a new task execution.
import { create, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createHash } from "node:crypto";
import { AgentError_Kind, ResourceSchema, type Resource, type TaskExecutionMetadata as FlyteMetadata } from "@plugin-bridge/protocol/flyteidl/admin/agent_pb.js";
import { ExecutionError_ErrorKind, TaskExecution_Phase as FlytePhase } from "@plugin-bridge/protocol/flyteidl/core/execution_pb.js";
import type { TypedInterface as FlyteInterface } from "@plugin-bridge/protocol/flyteidl/core/interface_pb.js";
import type { LiteralMap } from "@plugin-bridge/protocol/flyteidl/core/literals_pb.js";
import type { TaskTemplate as FlyteTemplate } from "@plugin-bridge/protocol/flyteidl/core/tasks_pb.js";
import type { LiteralType } from "@plugin-bridge/protocol/flyteidl/core/types_pb.js";
import { ErrorKind, Phase, VariableType, type TaskTemplateSchema, type TypedInterfaceSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { CreateTaskRequestSchema, type CreateTaskRequest, type TaskExecution } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { jsonToLiteralMap, LiteralError, literalMapToJson } from "../literals.js";
import { variableTypeOfSimple } from "../variable-types.js";

/** The bridge's CreateTask for a Flyte CreateTask (or ExecuteTaskSync header and inputs). */
export function bridgeRequest(template: FlyteTemplate | undefined, inputs: LiteralMap | undefined, metadata: FlyteMetadata | undefined): CreateTaskRequest {
  if (!template) throw new ConnectError("template: is required", Code.InvalidArgument);
  return create(CreateTaskRequestSchema, {
    template: bridgeTemplate(template),
    inputs: literals(() => literalMapToJson(inputs, "inputs")),
    metadata: {
      namespace: metadata?.namespace ?? "",
      labels: metadata?.labels ?? {},
      annotations: metadata?.annotations ?? {},
      environment: metadata?.environmentVariables ?? {},
    },
    idempotencyKey: idempotencyKey(metadata),
  });
}

function bridgeTemplate(template: FlyteTemplate): MessageInitShape<typeof TaskTemplateSchema> {
  return {
    type: template.type,
    typeVersion: template.taskTypeVersion,
    custom: template.custom ?? {},
    interface: bridgeInterface(template.interface),
    metadata: { timeout: template.metadata?.timeout, retries: 0 },
    secrets: (template.securityContext?.secrets ?? []).map((secret) => ({ group: secret.group, key: secret.key })),
    config: template.config,
  };
}

/** The interface as far as the bridge's variable types say it: what they cannot say is left out, not guessed. */
function bridgeInterface(flyte: FlyteInterface | undefined): MessageInitShape<typeof TypedInterfaceSchema> | undefined {
  const variables = (map: Record<string, { type?: LiteralType; description: string }> | undefined) =>
    Object.fromEntries(
      Object.entries(map ?? {})
        .map(([name, variable]) => [name, { type: variableType(variable.type), description: variable.description }] as const)
        .filter(([, variable]) => variable.type !== VariableType.UNSPECIFIED),
    );
  if (!flyte) return undefined;
  return { inputs: variables(flyte.inputs?.variables), outputs: variables(flyte.outputs?.variables) };
}

function variableType(type: LiteralType | undefined): VariableType {
  const kind = type?.type;
  if (kind?.case === "collectionType") return VariableType.LIST;
  if (kind?.case === "mapValueType") return VariableType.STRUCT;
  return kind?.case === "simple" ? variableTypeOfSimple(kind.value) : VariableType.UNSPECIFIED;
}

/**
 * Propeller sends CreateTask again for the same task execution when it lost the answer (a restart, a timeout): the
 * task execution's identity, retry attempt included, makes one execution of it. Hashed: idempotency keys are at
 * most 128 printable characters, and Flyte's names are not bounded so.
 */
function idempotencyKey(metadata: FlyteMetadata | undefined): string {
  const id = metadata?.taskExecutionId;
  if (!id) return "";
  const node = id.nodeExecutionId;
  const workflow = node?.executionId;
  const task = id.taskId;
  const identity = [workflow?.org, workflow?.project, workflow?.domain, workflow?.name, node?.nodeId, task?.project, task?.domain, task?.name, task?.version, id.retryAttempt];
  return `flyte-${createHash("sha256").update(JSON.stringify(identity)).digest("hex")}`;
}

/** The Flyte types of a template's outputs, for the resource meta. */
export function outputTypes(template: FlyteTemplate | undefined): Record<string, LiteralType> {
  const types: Record<string, LiteralType> = {};
  for (const [name, variable] of Object.entries(template?.interface?.outputs?.variables ?? {})) if (variable.type) types[name] = variable.type;
  return types;
}

const FLYTE_PHASE: Record<Phase, FlytePhase> = {
  [Phase.UNSPECIFIED]: FlytePhase.UNDEFINED,
  [Phase.NOT_READY]: FlytePhase.QUEUED,
  [Phase.WAITING_FOR_RESOURCES]: FlytePhase.WAITING_FOR_RESOURCES,
  [Phase.QUEUED]: FlytePhase.QUEUED,
  [Phase.INITIALIZING]: FlytePhase.INITIALIZING,
  [Phase.RUNNING]: FlytePhase.RUNNING,
  [Phase.SUCCESS]: FlytePhase.SUCCEEDED,
  [Phase.RETRYABLE_FAILURE]: FlytePhase.RETRYABLE_FAILED,
  [Phase.PERMANENT_FAILURE]: FlytePhase.FAILED,
  [Phase.WAITING_FOR_CACHE]: FlytePhase.RUNNING,
  [Phase.ABORTED]: FlytePhase.ABORTED,
};

/** An execution as Flyte's Resource: phase, message, logs, custom info, and on success its outputs as literals. */
export function resourceOf(execution: TaskExecution, types: Readonly<Record<string, LiteralType>>): Resource {
  const info = execution.phaseInfo;
  const phase = info?.phase ?? Phase.UNSPECIFIED;
  const resource = create(ResourceSchema, {
    phase: FLYTE_PHASE[phase] ?? FlytePhase.UNDEFINED,
    message: info?.error?.message || info?.reason || "",
    logLinks: (info?.logs ?? []).map((log) => ({ uri: log.uri, name: log.name })),
    customInfo: info?.customInfo,
  });
  if (info?.error) {
    resource.agentError = {
      $typeName: "flyteidl.admin.AgentError",
      code: info.error.code,
      kind: phase === Phase.RETRYABLE_FAILURE ? AgentError_Kind.RECOVERABLE : AgentError_Kind.NON_RECOVERABLE,
      origin: info.error.kind === ErrorKind.SYSTEM ? ExecutionError_ErrorKind.SYSTEM : ExecutionError_ErrorKind.USER,
    };
  }
  if (phase === Phase.SUCCESS) {
    try {
      resource.outputs = jsonToLiteralMap(execution.outputs ?? ({} as JsonObject), types, "outputs");
    } catch (error) {
      if (!(error instanceof LiteralError)) throw error;
      // The task succeeded, but Flyte cannot take what it made: a failure Flyte can show, not an unanswerable Get.
      resource.phase = FlytePhase.FAILED;
      resource.message = `the task's outputs have no Flyte literal form: ${error.message}`;
    }
  }
  return resource;
}

/** A literal conversion whose refusal is the caller's input: INVALID_ARGUMENT with the path it names. */
export function literals<T>(convert: () => T): T {
  try {
    return convert();
  } catch (error) {
    if (error instanceof LiteralError) throw new ConnectError(error.message, Code.InvalidArgument);
    throw error;
  }
}
