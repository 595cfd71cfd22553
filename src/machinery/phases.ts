// Phase rules and PhaseInfo constructors, after Flyte's pluginmachinery/core (PhaseInfoRunning and friends).
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ErrorKind,
  ExecutionErrorSchema,
  Phase,
  PhaseInfoSchema,
  type PhaseInfo,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";

/**
 * Whether a plugin reported a phase this protocol defines. Protobuf keeps an enum value it does not know as a
 * number, so a plugin (or a newer kit) can send one; the host must not store or serve it as a phase.
 */
export function isKnownPhase(phase: Phase): boolean {
  return phase !== Phase.UNSPECIFIED && Phase[phase] !== undefined;
}

/** Phases after which the host makes no more calls for the attempt. */
export function isTerminalPhase(phase: Phase): boolean {
  return (
    phase === Phase.SUCCESS ||
    phase === Phase.PERMANENT_FAILURE ||
    phase === Phase.RETRYABLE_FAILURE ||
    phase === Phase.ABORTED
  );
}

/** Phases that end the execution as a whole (a retryable failure with retries left starts a new attempt). */
export function isFinalPhase(phase: Phase): boolean {
  return phase === Phase.SUCCESS || phase === Phase.PERMANENT_FAILURE || phase === Phase.ABORTED;
}

/** Whether a plugin's report differs from what is recorded: only a difference is written and published. */
export function phaseChanged(recorded: PhaseInfo | undefined, reported: PhaseInfo): boolean {
  return (
    !recorded ||
    recorded.phase !== reported.phase ||
    recorded.version !== reported.version ||
    recorded.reason !== reported.reason
  );
}

export function phaseInfo(
  phase: Phase,
  reason: string,
  fields: MessageInitShape<typeof PhaseInfoSchema> = {},
): PhaseInfo {
  return create(PhaseInfoSchema, { ...fields, phase, reason, occurredAt: timestampFromDate(new Date()) });
}

export function failure(
  phase: Phase.PERMANENT_FAILURE | Phase.RETRYABLE_FAILURE,
  code: string,
  message: string,
  kind: ErrorKind,
): PhaseInfo {
  return phaseInfo(phase, message, { error: create(ExecutionErrorSchema, { code, message, kind }) });
}

export const phaseName = (phase: Phase): string => Phase[phase] ?? String(phase);
