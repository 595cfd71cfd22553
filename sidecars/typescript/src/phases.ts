// Named constructors for what a plugin call returns, after Flyte's PhaseInfoSuccess, PhaseInfoRunning,
// PhaseInfoFailure and friends: a plugin author writes `return phaseRunning("waiting for the file")` and never
// assembles a PhaseInfo by hand.
import { create, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import {
  ErrorKind,
  ExecutionErrorSchema,
  Phase,
  PhaseInfoSchema,
  type PhaseInfo,
  type TaskLog,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";

/** What Get and Do return: the phase and, with PHASE_SUCCESS, the task's outputs. */
export interface PhaseResult {
  phaseInfo: PhaseInfo | MessageInitShape<typeof PhaseInfoSchema>;
  outputs?: JsonObject;
}

/** Optional details shared by every constructor. */
export interface PhaseDetails {
  /** Raise to report a change (new logs, new info) while the phase stays the same. */
  version?: number;
  logs?: Array<Pick<TaskLog, "uri" | "name">>;
  /** Plugin-specific information to show, such as a job id or progress. */
  customInfo?: JsonObject;
}

function phaseInfo(
  phase: Phase,
  reason: string,
  details: PhaseDetails = {},
  error?: MessageInitShape<typeof ExecutionErrorSchema>,
): PhaseInfo {
  return create(PhaseInfoSchema, {
    phase,
    reason,
    version: details.version ?? 0,
    occurredAt: timestampNow(),
    logs: details.logs ?? [],
    customInfo: details.customInfo,
    error,
  });
}

/** The task finished; `outputs` become the execution's outputs. */
export function phaseSuccess(outputs: JsonObject = {}, details?: PhaseDetails & { reason?: string }): PhaseResult {
  return { phaseInfo: phaseInfo(Phase.SUCCESS, details?.reason ?? "", details), outputs };
}

/** The remote work is running; the host asks again after the plugin's resync interval. */
export function phaseRunning(reason = "", details?: PhaseDetails): PhaseResult {
  return { phaseInfo: phaseInfo(Phase.RUNNING, reason, details) };
}

/** The remote work is being set up (Flyte's PhaseInitializing). */
export function phaseInitializing(reason = "", details?: PhaseDetails): PhaseResult {
  return { phaseInfo: phaseInfo(Phase.INITIALIZING, reason, details) };
}

/** The remote work waits in someone else's queue (Flyte's PhaseQueued). */
export function phaseQueued(reason = "", details?: PhaseDetails): PhaseResult {
  return { phaseInfo: phaseInfo(Phase.QUEUED, reason, details) };
}

/** The remote work waits for a resource or a quota (Flyte's PhaseWaitingForResources). */
export function phaseWaitingForResources(reason = "", details?: PhaseDetails): PhaseResult {
  return { phaseInfo: phaseInfo(Phase.WAITING_FOR_RESOURCES, reason, details) };
}

function failure(
  phase: Phase,
  code: string,
  message: string,
  kind: ErrorKind,
  details?: PhaseDetails,
): PhaseResult {
  return { phaseInfo: phaseInfo(phase, message, details, { code, message, kind }) };
}

/** The task failed and retrying will not help. `kind` defaults to USER: the input is at fault. */
export function phasePermanentFailure(
  code: string,
  message: string,
  kind: ErrorKind = ErrorKind.USER,
  details?: PhaseDetails,
): PhaseResult {
  return failure(Phase.PERMANENT_FAILURE, code, message, kind, details);
}

/** The attempt failed in a way a new attempt may fix. `kind` defaults to SYSTEM: the platform is at fault. */
export function phaseRetryableFailure(
  code: string,
  message: string,
  kind: ErrorKind = ErrorKind.SYSTEM,
  details?: PhaseDetails,
): PhaseResult {
  return failure(Phase.RETRYABLE_FAILURE, code, message, kind, details);
}

const terminalPhases = new Set<Phase>([
  Phase.SUCCESS,
  Phase.RETRYABLE_FAILURE,
  Phase.PERMANENT_FAILURE,
  Phase.ABORTED,
]);

/** True for phases that end an attempt: no more calls follow for it. */
export function isTerminalPhase(phase: Phase): boolean {
  return terminalPhases.has(phase);
}
