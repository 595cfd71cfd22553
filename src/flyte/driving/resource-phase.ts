// A Flyte connector's Resource (what GetTask and ExecuteTaskSync answer) as the bridge's phase and outputs, after
// flytepropeller's agent plugin (Status in flyteplugins/go/tasks/plugins/webapi/agent/plugin.go): the phase decides,
// and a connector that only sets the deprecated `state` is read by it. Outputs are literals that become JSON; one
// the bridge cannot carry fails the attempt, naming the output and the literal's kind.
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { AgentError_Kind, State, type Resource } from "@plugin-bridge/protocol/flyteidl/admin/agent_pb.js";
import { ExecutionError_ErrorKind, TaskExecution_Phase } from "@plugin-bridge/protocol/flyteidl/core/execution_pb.js";
import { ErrorKind, Phase, type PhaseInfo, type PhaseInfoSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { phaseInfo } from "../../machinery/phases.js";
import { LiteralError, literalMapToJson } from "../literals.js";

/** Flyte's error code for a task its agent reported failed (pluginErrors.TaskFailedWithError). */
const TASK_FAILED = "TaskFailedWithError";
/** The bridge's code for outputs it cannot carry as JSON. */
const UNSUPPORTED_OUTPUT = "UnsupportedOutput";

export interface ReportedPhase {
  phaseInfo: PhaseInfo;
  outputs?: JsonObject;
}

/** Thrown for a phase Flyte does not define (a newer connector): the call failed, as a kit's unknown phase does. */
export class UnknownPhaseError extends Error {}

export function reportedPhase(resource: Resource | undefined): ReportedPhase {
  const message = resource?.message ?? "";
  const details: Details = {
    logs: (resource?.logLinks ?? []).map((log) => ({ uri: log.uri, name: log.name })),
    ...(resource?.customInfo && { customInfo: resource.customInfo }),
  };
  const failed = (fallback: Phase.PERMANENT_FAILURE | Phase.RETRYABLE_FAILURE, what: string): ReportedPhase => {
    const error = resource?.agentError;
    // AgentError.kind says whether a retry may help; its origin whose fault it was (unknown: the task's, as Flyte's
    // failures default to).
    const phase = error?.kind === AgentError_Kind.RECOVERABLE ? Phase.RETRYABLE_FAILURE : fallback;
    const kind = error?.origin === ExecutionError_ErrorKind.SYSTEM ? ErrorKind.SYSTEM : ErrorKind.USER;
    return { phaseInfo: failedPhase(phase, error?.code || TASK_FAILED, message || `the connector reported ${what}`, kind, details) };
  };
  const running = (phase: Phase): ReportedPhase => ({ phaseInfo: phaseInfo(phase, message, details) });
  switch (resource?.phase ?? TaskExecution_Phase.UNDEFINED) {
    case TaskExecution_Phase.QUEUED:
      return running(Phase.QUEUED);
    case TaskExecution_Phase.WAITING_FOR_RESOURCES:
      return running(Phase.WAITING_FOR_RESOURCES);
    case TaskExecution_Phase.INITIALIZING:
      return running(Phase.INITIALIZING);
    case TaskExecution_Phase.RUNNING:
      return running(Phase.RUNNING);
    case TaskExecution_Phase.SUCCEEDED:
      return succeeded(resource, message, details);
    case TaskExecution_Phase.FAILED:
      return failed(Phase.PERMANENT_FAILURE, "FAILED");
    case TaskExecution_Phase.RETRYABLE_FAILED:
      return failed(Phase.RETRYABLE_FAILURE, "RETRYABLE_FAILED");
    case TaskExecution_Phase.ABORTED:
      return { phaseInfo: phaseInfo(Phase.ABORTED, message || "the connector reported ABORTED", details) };
    case TaskExecution_Phase.UNDEFINED:
      break;
    default:
      throw new UnknownPhaseError(`the connector answered phase ${resource?.phase}, which Flyte does not define`);
  }
  // No phase: the deprecated state decides, as in Flyte. Its zero value is RETRYABLE_FAILURE, so a Resource with
  // neither fails the attempt (retryably), exactly as flytepropeller takes it.
  switch (resource?.state ?? State.RETRYABLE_FAILURE) {
    case State.PENDING:
      return running(Phase.INITIALIZING);
    case State.RUNNING:
      return running(Phase.RUNNING);
    case State.SUCCEEDED:
      return succeeded(resource, message, details);
    case State.PERMANENT_FAILURE:
      return failed(Phase.PERMANENT_FAILURE, "state PERMANENT_FAILURE");
    case State.RETRYABLE_FAILURE:
      return failed(Phase.RETRYABLE_FAILURE, "state RETRYABLE_FAILURE (or no phase at all)");
    default:
      throw new UnknownPhaseError(`the connector answered state ${resource?.state}, which Flyte does not define`);
  }
}

/** What every phase carries from the Resource: its log links and custom info. */
type Details = Pick<MessageInitShape<typeof PhaseInfoSchema>, "logs" | "customInfo">;

function failedPhase(phase: Phase.PERMANENT_FAILURE | Phase.RETRYABLE_FAILURE, code: string, message: string, kind: ErrorKind, details: Details): PhaseInfo {
  return phaseInfo(phase, message, { ...details, error: { code, message, kind } });
}

function succeeded(resource: Resource | undefined, message: string, details: Details): ReportedPhase {
  try {
    return { phaseInfo: phaseInfo(Phase.SUCCESS, message, details), outputs: literalMapToJson(resource?.outputs, "outputs") };
  } catch (error) {
    if (!(error instanceof LiteralError)) throw error;
    // The task ran, but its result cannot reach the caller: retrying would run it again for the same refusal.
    return { phaseInfo: failedPhase(Phase.PERMANENT_FAILURE, UNSUPPORTED_OUTPUT, error.message, ErrorKind.USER, details) };
  }
}
