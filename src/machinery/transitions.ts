// Pure changes to an execution record: each returns the next record and the events it owes. The executor
// decides which to apply; these keep the bookkeeping (sequence, attempt, counters, times) in one place.
import { clone, create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ExecutionRecordSchema, type ExecutionRecord } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { ErrorKind, Phase, type PhaseInfo } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { TaskEventSchema, type TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { failure, phaseInfo } from "./phases.js";

export interface Transition {
  record: ExecutionRecord;
  events: TaskEvent[];
}

/** How a failure ends an attempt: `failAttempt` at once, or, for core plugins, `awaitFinalize` first. */
export type EndAttempt = (current: ExecutionRecord, info: PhaseInfo) => Transition;

/** The event that announces the record's current phase under its current sequence. */
export function eventOf(record: ExecutionRecord): TaskEvent {
  return create(TaskEventSchema, {
    executionId: record.id,
    sequence: record.lastEventSequence,
    attempt: record.attempt,
    phaseInfo: record.phaseInfo,
    outputs: record.phaseInfo?.phase === Phase.SUCCESS ? record.outputs : undefined,
    namespace: record.metadata?.namespace ?? "",
  });
}

/** Moves the record to a new phase: one event, one more sequence. */
export function enterPhase(
  current: ExecutionRecord,
  info: PhaseInfo,
  changes: (next: ExecutionRecord) => void = () => {},
): Transition {
  const next = clone(ExecutionRecordSchema, current);
  changes(next);
  next.phaseInfo = info.occurredAt ? info : { ...info, occurredAt: timestampFromDate(new Date()) };
  next.lastEventSequence = current.lastEventSequence + 1n;
  next.updatedAt = timestampFromDate(new Date());
  return { record: next, events: [eventOf(next)] };
}

/** A successful end, with the outputs. */
export function succeed(current: ExecutionRecord, info: PhaseInfo, outputs: JsonObject | undefined): Transition {
  return enterPhase(current, info, (next) => {
    next.outputs = outputs;
  });
}

/**
 * A failed attempt. With retries left (TaskMetadata.retries), a new attempt starts at once: the failure and
 * the new attempt's QUEUED are both published. Without, the execution fails permanently with the same error.
 */
export function failAttempt(current: ExecutionRecord, info: PhaseInfo): Transition {
  const retries = current.template?.metadata?.retries ?? 0;
  const attemptsUsed = current.attempt;
  if (info.phase === Phase.RETRYABLE_FAILURE && attemptsUsed <= retries) {
    const failed = enterPhase(current, info);
    const retried = enterPhase(
      failed.record,
      phaseInfo(Phase.QUEUED, `attempt ${attemptsUsed + 1} after: ${info.reason}`),
      (next) => {
        next.attempt = attemptsUsed + 1;
        next.resourceMeta = new Uint8Array();
        next.resourceCreated = false;
        next.pluginState = undefined;
        next.systemFailures = 0;
        next.attemptStartedAt = timestampFromDate(new Date());
      },
    );
    return { record: retried.record, events: [...failed.events, ...retried.events] };
  }
  if (info.phase === Phase.RETRYABLE_FAILURE) {
    const error = info.error;
    const reason = `${info.reason} (no retries left after ${attemptsUsed} attempt${attemptsUsed === 1 ? "" : "s"})`;
    return enterPhase(current, { ...info, phase: Phase.PERMANENT_FAILURE, reason, error });
  }
  return enterPhase(current, info);
}

/**
 * A system failure (plugin unreachable, deadline passed, internal error): counted, recorded with its message,
 * and retried until the plugin's budget is spent; then the attempt fails as a retryable system failure.
 */
export function countSystemFailure(
  current: ExecutionRecord,
  message: string,
  maxSystemFailures: number,
  endAttempt: EndAttempt = failAttempt,
): Transition {
  const count = current.systemFailures + 1;
  if (count > maxSystemFailures) {
    const info = failure(
      Phase.RETRYABLE_FAILURE,
      "SystemFailure",
      `${count} system failures, the last: ${message}`,
      ErrorKind.SYSTEM,
    );
    return endAttempt({ ...current, systemFailures: count }, info);
  }
  const recorded = current.phaseInfo;
  const phase = recorded?.phase ?? Phase.QUEUED;
  return enterPhase(
    current,
    phaseInfo(phase, `system failure ${count} of ${maxSystemFailures} allowed: ${message}`, {
      version: (recorded?.version ?? 0) + 1,
      logs: recorded?.logs,
      customInfo: recorded?.customInfo,
    }),
    (next) => {
      next.systemFailures = count;
    },
  );
}

/** A change that is not a phase change (a core plugin's new state, say): written, but no event. */
export function quietUpdate(current: ExecutionRecord, changes: (next: ExecutionRecord) => void): Transition {
  const next = clone(ExecutionRecordSchema, current);
  changes(next);
  next.updatedAt = timestampFromDate(new Date());
  return { record: next, events: [] };
}

/**
 * A core attempt's end, decided but not applied: it is applied (with its event) once Finalize has answered, so a
 * host that dies in between finds the Finalize still to do, and the end it leads to. No event yet.
 */
export function awaitFinalize(current: ExecutionRecord, end: PhaseInfo, outputs?: JsonObject): Transition {
  return quietUpdate(current, (next) => {
    next.pendingEnd = end.occurredAt ? end : { ...end, occurredAt: timestampFromDate(new Date()) };
    next.pendingOutputs = end.phase === Phase.SUCCESS ? outputs : undefined;
  });
}

/** Applies a core attempt's pending end after its Finalize: success, a failed attempt (maybe retried), or ABORTED. */
export function applyPendingEnd(current: ExecutionRecord, note = ""): Transition {
  const pending = current.pendingEnd;
  if (!pending) throw new Error(`execution ${current.id} has no pending end`);
  const end = note ? { ...pending, reason: pending.reason ? `${pending.reason} (${note})` : note } : pending;
  const cleared = clone(ExecutionRecordSchema, current);
  cleared.pendingEnd = undefined;
  cleared.pendingOutputs = undefined;
  if (end.phase === Phase.SUCCESS) return succeed(cleared, end, current.pendingOutputs);
  if (end.phase === Phase.ABORTED) return enterPhase(cleared, end);
  return failAttempt(cleared, end);
}

/**
 * A core attempt's Finalize failed: counted and recorded while the budget lasts (Finalize is retried); once it is
 * spent the pending end is applied anyway, the failure in its reason.
 */
export function finalizeFailed(current: ExecutionRecord, message: string, maxSystemFailures: number): Transition {
  const count = current.systemFailures + 1;
  if (count > maxSystemFailures) {
    return applyPendingEnd({ ...current, systemFailures: count }, `Finalize failed ${count} times, the last: ${message}`);
  }
  const recorded = current.phaseInfo;
  return enterPhase(
    current,
    phaseInfo(recorded?.phase ?? Phase.QUEUED, `ending: Finalize failed (${count} of ${maxSystemFailures} allowed): ${message}`, {
      version: (recorded?.version ?? 0) + 1,
    }),
    (next) => {
      next.systemFailures = count;
    },
  );
}

/** Marks the record as abort requested; no event: the ABORTED phase will be the event. */
export function requestAbort(current: ExecutionRecord, reason: string): ExecutionRecord {
  const next = clone(ExecutionRecordSchema, current);
  next.abortRequested = true;
  next.abortReason = reason;
  next.updatedAt = timestampFromDate(new Date());
  return next;
}

/**
 * The abort's Delete (or a core plugin's Abort) failed: counted and recorded while the budget lasts (the abort is
 * retried); once it is spent, ABORTED anyway with the failure in the reason: the remote work may still be running.
 * With `finalizeAfter` (core plugins) that ABORTED becomes the attempt's pending end, applied after Finalize.
 */
export function abortStopFailed(
  current: ExecutionRecord,
  call: "Delete" | "Abort",
  message: string,
  maxSystemFailures: number,
  finalizeAfter = false,
): Transition {
  const count = current.systemFailures + 1;
  const reason = current.abortReason || "aborted";
  if (count > maxSystemFailures) {
    const end = phaseInfo(Phase.ABORTED, `${reason}; ${call} failed ${count} times, the last: ${message}`);
    if (finalizeAfter) return awaitFinalize({ ...current, systemFailures: count }, end);
    return enterPhase(current, end, (next) => {
      next.systemFailures = count;
    });
  }
  return enterPhase(
    current,
    phaseInfo(current.phaseInfo?.phase ?? Phase.QUEUED, `abort pending: ${call} failed (${count} of ${maxSystemFailures} allowed): ${message}`, {
      version: (current.phaseInfo?.version ?? 0) + 1,
    }),
    (next) => {
      next.systemFailures = count;
    },
  );
}
