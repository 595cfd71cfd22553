// One step of an execution: read the record, make at most one kind of plugin call, store the outcome, and say
// when the execution wants its next step. Hosts are stateless: every fact a step needs is in the record.
import { create, equals } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { context as otelContext } from "@opentelemetry/api";
import {
  ExecutionRecordSchema,
  type ExecutionRecord,
  type PushedStatus,
} from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import {
  AsyncPluginService,
  CorePluginService,
  PluginKind,
  PluginStateSchema,
  SyncPluginService,
  type PluginDescriptor,
  type PluginInstance,
} from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { ErrorKind, Phase, TaskContextSchema, type PhaseInfo, type TaskContext } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import type { EventLog } from "../coordination/event-log.js";
import { RevisionConflictError, type ExecutionStore, type StoredRecord } from "../coordination/execution-store.js";
import type { Logger } from "../log.js";
import type { HostMetrics } from "../observability/metrics.js";
import { contextFromCarrier } from "../observability/tracing.js";
import { isUserError, PluginCallError, type PluginClients } from "../registry/plugin-client.js";
import type { RoutingTable } from "../registry/routing-table.js";
import { failure, isFinalPhase, isKnownPhase, isTerminalPhase, phaseChanged, phaseInfo } from "./phases.js";
import { hasQuota, type Quotas } from "./quotas.js";
import { PluginRateLimits, type CallKind } from "./rate-limits.js";
import { Redactor } from "./redaction.js";
import { SecretNotAllowedError, SecretNotFoundError, type SecretResolver } from "./secrets.js";
import { durationMs, timestampMs } from "./time.js";
import {
  abortStopFailed,
  applyPendingEnd,
  awaitFinalize,
  countSystemFailure,
  enterPhase,
  eventOf,
  failAttempt,
  finalizeFailed,
  quietUpdate,
  requestAbort,
  succeed,
  type EndAttempt,
  type Transition,
} from "./transitions.js";

/** What the work item should do after a step. */
export type Disposition =
  | { kind: "done" } // ack: the execution is final
  | { kind: "again"; delayMs: number } // nak with a delay: JetStream brings it back
  | { kind: "drop"; reason: string }; // term: the item is not for anything

export interface ExecutorOptions {
  /** A work item whose record is missing is dropped after this long (its CreateTask never finished). */
  orphanGraceMs: number;
  /** How long to wait before looking again for an instance of a type that has none live. */
  noInstanceRetryMs: number;
  /** The largest record the store takes (NATS max_payload less room for headers). */
  maxRecordBytes: number;
  /** Phase changes stored, quota waits, rate-limit waits (plugin calls are measured by PluginClients). */
  metrics: HostMetrics;
}

/** The host's defaults for a plugin's properties (PluginProperties). */
const DEFAULTS = {
  resyncMs: 5_000,
  createTimeoutMs: 30_000,
  getTimeoutMs: 10_000,
  deleteTimeoutMs: 30_000,
  doTimeoutMs: 60_000,
  handleTimeoutMs: 10_000,
  abortTimeoutMs: 30_000,
  finalizeTimeoutMs: 30_000,
  maxSystemFailures: 5,
};

export interface PluginTiming {
  resyncMs: number;
  createTimeoutMs: number;
  getTimeoutMs: number;
  deleteTimeoutMs: number;
  doTimeoutMs: number;
  handleTimeoutMs: number;
  abortTimeoutMs: number;
  finalizeTimeoutMs: number;
  maxSystemFailures: number;
}

export function timingOf(descriptor: PluginDescriptor | undefined): PluginTiming {
  const p = descriptor?.properties;
  return {
    resyncMs: durationMs(p?.resyncInterval, DEFAULTS.resyncMs),
    createTimeoutMs: durationMs(p?.createTimeout, DEFAULTS.createTimeoutMs),
    getTimeoutMs: durationMs(p?.getTimeout, DEFAULTS.getTimeoutMs),
    deleteTimeoutMs: durationMs(p?.deleteTimeout, DEFAULTS.deleteTimeoutMs),
    doTimeoutMs: durationMs(p?.doTimeout, DEFAULTS.doTimeoutMs),
    handleTimeoutMs: durationMs(p?.handleTimeout, DEFAULTS.handleTimeoutMs),
    abortTimeoutMs: durationMs(p?.abortTimeout, DEFAULTS.abortTimeoutMs),
    finalizeTimeoutMs: durationMs(p?.finalizeTimeout, DEFAULTS.finalizeTimeoutMs),
    maxSystemFailures: p?.maxSystemFailures || DEFAULTS.maxSystemFailures,
  };
}

/** Pauses between looks for a record that CreateTask is about to store (about 40 ms in all); undefined: give up. */
const RECORD_WAITS_MS: Array<number | undefined> = [1, 2, 4, 8, 25, undefined];

/** How long an execution waiting for a quota token waits before it looks again. */
const QUOTA_RETRY_MS = 1_000;

/** No live instance serves the execution's type and version right now. */
class NoInstanceError extends Error {}

const isUserCallError = (error: unknown): boolean => error instanceof PluginCallError && isUserError(error);
const isSecretError = (error: unknown): error is Error => error instanceof SecretNotFoundError || error instanceof SecretNotAllowedError;

/** Backoff after the n-th system failure: 1 s, 2 s, 4 s … at most 30 s. */
const backoffMs = (failures: number): number => Math.min(1_000 * 2 ** Math.max(0, failures - 1), 30_000);

export class Executor {
  /** This host's rate limits on plugin calls. */
  private readonly limits = new PluginRateLimits();

  constructor(
    private readonly quotas: Quotas,
    private readonly store: ExecutionStore,
    private readonly events: EventLog,
    private readonly routing: RoutingTable,
    private readonly clients: PluginClients,
    private readonly secrets: SecretResolver,
    private readonly log: Logger,
    private readonly options: ExecutorOptions,
  ) {}

  /** Runs one step of the execution named by a work item first queued at `enqueuedAtMs`. */
  async step(executionId: string, enqueuedAtMs: number): Promise<Disposition> {
    const stored = await this.awaitRecord(executionId);
    if (!stored) {
      if (Date.now() - enqueuedAtMs > this.options.orphanGraceMs) return { kind: "drop", reason: "no record" };
      return { kind: "again", delayMs: 250 };
    }
    try {
      // The step's plugin calls join the trace of the request that created the execution.
      return await otelContext.with(contextFromCarrier(stored.record.traceContext), () => this.stepRecord(stored));
    } catch (error) {
      if (error instanceof RevisionConflictError) {
        // Another host or an AbortTask changed the record meanwhile: look again with the new state.
        return { kind: "again", delayMs: 0 };
      }
      throw error;
    }
  }

  /** What a live instance serving the execution's type and version says of the plugin; undefined when none lives. */
  private descriptorFor(record: ExecutionRecord): PluginDescriptor | undefined {
    return this.routing.candidates(record.template?.type ?? "", record.template?.typeVersion ?? 0)[0]?.descriptor;
  }

  /** The name of the plugin that serves the execution now (the metrics' `plugin` label); "" when none lives. */
  pluginName(record: ExecutionRecord): string {
    return this.descriptorFor(record)?.name ?? "";
  }

  /** A token of the plugin's read or write rate limit: 0 when the call may go now, else the ms to wait. */
  private takeToken(descriptor: PluginDescriptor | undefined, kind: CallKind): number {
    const waitMs = this.limits.take(descriptor, kind);
    if (waitMs > 0) this.options.metrics.rateLimitWait(descriptor?.name ?? "", kind);
    return waitMs;
  }

  /**
   * The execution's record. CreateTask queues the work item a moment before it stores the record, and a fresh item
   * reaches a host within a millisecond or two: look again a few times, briefly, before handing the item back for
   * 250 ms (which every new execution would otherwise pay).
   */
  private async awaitRecord(executionId: string): Promise<StoredRecord | undefined> {
    for (const pauseMs of RECORD_WAITS_MS) {
      const stored = await this.store.get(executionId);
      if (stored || pauseMs === undefined) return stored;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    return undefined;
  }

  private async stepRecord(stored: StoredRecord): Promise<Disposition> {
    const { record } = stored;
    const phase = record.phaseInfo?.phase ?? Phase.UNSPECIFIED;
    if (isFinalPhase(phase)) {
      // Only a crash between the final write and the ack gets here: make sure the final event went out.
      await this.events.publish(eventOf(record));
      return { kind: "done" };
    }
    if (record.abortRequested) return await this.finishAbort(stored);

    const descriptor = this.descriptorFor(record);
    const timing = timingOf(descriptor);
    const timeoutMs = durationMs(record.template?.metadata?.timeout, 0);
    const deadlineMs = timeoutMs > 0 ? timestampMs(record.attemptStartedAt) + timeoutMs : Infinity;
    // A core attempt whose end is decided only has its Finalize left: the timeout has nothing more to stop.
    if (Date.now() >= deadlineMs && !record.pendingEnd) return await this.timeOut(stored, timeoutMs, descriptor);
    // A counted system failure waits out its backoff, whoever recorded it (a step naks for that long; the sync
    // fast path hands its record over without a delay).
    const backoffLeftMs = record.systemFailures > 0 ? timestampMs(record.updatedAt) + backoffMs(record.systemFailures) - Date.now() : 0;
    if (backoffLeftMs > 0) return { kind: "again", delayMs: Math.min(backoffLeftMs, deadlineMs - Date.now()) };
    const disposition = await this.stepWith(stored, descriptor, timing);
    // Whatever the step wants next, the attempt's deadline comes first: the step after it times the attempt out.
    return disposition.kind === "again"
      ? { kind: "again", delayMs: Math.max(0, Math.min(disposition.delayMs, deadlineMs - Date.now())) }
      : disposition;
  }

  private async stepWith(
    stored: StoredRecord,
    descriptor: PluginDescriptor | undefined,
    timing: PluginTiming,
  ): Promise<Disposition> {
    if (!descriptor) return { kind: "again", delayMs: this.options.noInstanceRetryMs };
    const waiting = await this.awaitQuota(stored, descriptor);
    if (waiting) return waiting;
    // Only an async Get reads; every other call of a step changes something in the plugin.
    const waitMs = this.takeToken(descriptor, descriptor.kind === PluginKind.ASYNC && stored.record.resourceCreated ? "read" : "write");
    if (waitMs > 0) return { kind: "again", delayMs: waitMs };
    try {
      switch (descriptor.kind) {
        case PluginKind.ASYNC:
          return stored.record.resourceCreated ? await this.get(stored, timing) : await this.create(stored, timing);
        case PluginKind.SYNC:
          return await this.do(stored, timing);
        case PluginKind.CORE:
          return stored.record.pendingEnd ? await this.finalize(stored, timing) : await this.handle(stored, timing);
        default: {
          const info = failure(Phase.PERMANENT_FAILURE, "UnsupportedPluginKind", `plugin kind ${descriptor.kind} is not served`, ErrorKind.SYSTEM);
          return await this.commit(stored, enterPhase(stored.record, info));
        }
      }
    } catch (error) {
      return await this.onCallError(stored, error, timing);
    }
  }

  /**
   * Before the call that starts an execution's work (Create, Do, the first Handle), a token of the plugin's
   * quota. Without one the execution waits in WAITING_FOR_RESOURCES (one event when it starts waiting) and looks
   * again shortly; undefined means go ahead. The token is kept across attempts and given back at the end.
   */
  private async awaitQuota(stored: StoredRecord, descriptor: PluginDescriptor): Promise<Disposition | undefined> {
    const { record } = stored;
    const quota = descriptor.properties?.quota;
    const starting = !record.resourceCreated && !record.pendingEnd;
    if (!starting || !hasQuota(quota)) return undefined;
    const allocation = await this.quotas.allocate(descriptor.name, quota, record.id, record.metadata?.namespace ?? "");
    if (allocation.granted) return undefined;
    if (record.phaseInfo?.phase !== Phase.WAITING_FOR_RESOURCES) {
      await this.commit(stored, enterPhase(record, phaseInfo(Phase.WAITING_FOR_RESOURCES, `waiting for a quota token: ${allocation.reason}`)));
      this.options.metrics.quotaWait(descriptor.name);
    }
    return { kind: "again", delayMs: QUOTA_RETRY_MS };
  }

  /** Async, first step of an attempt: Create, keep the resource meta, poll after the resync interval. */
  private async create(stored: StoredRecord, timing: PluginTiming): Promise<Disposition> {
    const { record } = stored;
    const { response, instance } = await this.callAnyInstance(record, async (target, context) =>
      await this.clients.call(AsyncPluginService.method.create, target, { context }, timing.createTimeoutMs),
    );
    const created = (current: ExecutionRecord): Transition =>
      enterPhase(current, phaseInfo(Phase.INITIALIZING, "created"), (next) => {
        next.resourceMeta = response.resourceMeta;
        next.resourceCreated = true;
        next.lastInstanceId = instance.instanceId;
      });
    try {
      await this.commit(stored, created(record));
    } catch (error) {
      if (!(error instanceof RevisionConflictError)) throw error;
      // The remote work exists now: its meta must not be lost to a concurrent change (an abort, most likely).
      await this.keepCreatedResource(record, response.resourceMeta, created);
    }
    return { kind: "again", delayMs: timing.resyncMs };
  }

  private async keepCreatedResource(
    before: ExecutionRecord,
    resourceMeta: Uint8Array,
    created: (current: ExecutionRecord) => Transition,
  ): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const fresh = await this.store.get(before.id);
      const current = fresh?.record;
      if (!fresh || !current || current.attempt !== before.attempt || isFinalPhase(current.phaseInfo?.phase ?? Phase.UNSPECIFIED)) {
        // The attempt ended (aborted, most likely) while Create ran: nobody will Delete this work but us.
        await this.deleteLeftover(before, resourceMeta);
        return;
      }
      if (current.resourceCreated) return; // another step recorded the same (idempotent) Create
      try {
        if (current.abortRequested) {
          // Record the resource so that the abort's Delete finds it.
          const kept = create(ExecutionRecordSchema, { ...current, resourceMeta, resourceCreated: true });
          await this.store.update(kept, fresh.revision);
        } else {
          await this.commit(fresh, created(current));
        }
        return;
      } catch (error) {
        if (!(error instanceof RevisionConflictError)) throw error;
      }
    }
    throw new RevisionConflictError(before.id);
  }

  /** Best effort: Delete remote work that no record holds any more. */
  private async deleteLeftover(record: ExecutionRecord, resourceMeta: Uint8Array): Promise<void> {
    const timing = timingOf(this.descriptorFor(record));
    try {
      await this.deleteResource({ ...record, resourceMeta }, timing);
      this.log.info("deleted remote work created after its attempt ended", { execution: record.id, attempt: record.attempt });
    } catch (error) {
      this.log.error("could not delete remote work created after its attempt ended", { execution: record.id, attempt: record.attempt, error });
    }
  }

  /** Async, later steps: Get; write and publish only when the reported phase differs from the recorded one. */
  private async get(stored: StoredRecord, timing: PluginTiming): Promise<Disposition> {
    const { record } = stored;
    const { response, instance, redactor } = await this.callAnyInstance(record, async (target, context) =>
      await this.clients.call(
        AsyncPluginService.method.get,
        target,
        { context, resourceMeta: record.resourceMeta },
        timing.getTimeoutMs,
      ),
    );
    const reported = redactor.phaseInfo(response.phaseInfo) ?? phaseInfo(Phase.RUNNING, "");
    if (!isKnownPhase(reported.phase)) {
      throw new PluginCallError(status.INTERNAL, `Get returned phase ${reported.phase}, which the protocol does not define`, instance.instanceId);
    }
    if (!isTerminalPhase(reported.phase)) {
      if (!phaseChanged(record.phaseInfo, reported) && record.systemFailures === 0) {
        return { kind: "again", delayMs: timing.resyncMs }; // the hot path: no write, no event
      }
      await this.commit(stored, enterPhase(record, reported, (next) => {
        next.lastInstanceId = instance.instanceId;
        next.systemFailures = 0;
      }));
      return { kind: "again", delayMs: timing.resyncMs };
    }
    return await this.commit(stored, this.terminal(record, reported, redactor.json(response.outputs)));
  }

  /** Sync: Do runs the whole task. */
  private async do(stored: StoredRecord, timing: PluginTiming): Promise<Disposition> {
    return await this.commit(stored, await this.doTransition(stored.record, timing));
  }

  /**
   * Core: Handle with the attempt's state. A report that changes nothing (phase, version, reason, state) writes
   * nothing; a new state alone is written without an event; a terminal phase becomes the attempt's pending end,
   * and Finalize follows in the same step.
   */
  private async handle(stored: StoredRecord, timing: PluginTiming): Promise<Disposition> {
    const { record } = stored;
    const { response, instance, redactor } = await this.callAnyInstance(record, async (target, context) =>
      await this.clients.call(CorePluginService.method.handle, target, { context, state: record.pluginState }, timing.handleTimeoutMs),
    );
    const reported = redactor.phaseInfo(response.phaseInfo);
    if (!reported || !isKnownPhase(reported.phase)) {
      throw new PluginCallError(status.INTERNAL, `Handle must return a phase the protocol defines, not ${reported?.phase ?? "none"}`, instance.instanceId);
    }
    const state = response.state ?? record.pluginState;
    const stateChanged = response.state !== undefined && (!record.pluginState || !equals(PluginStateSchema, response.state, record.pluginState));
    const handled = (next: ExecutionRecord): void => {
      next.pluginState = state;
      next.resourceCreated = true;
      next.lastInstanceId = instance.instanceId;
      next.systemFailures = 0;
    };
    if (isTerminalPhase(reported.phase)) {
      const ending = awaitFinalize(quietUpdate(record, handled).record, reported, redactor.json(response.outputs));
      if (this.store.encodedSize(ending.record) > this.options.maxRecordBytes) {
        // Outputs too large to keep: the attempt fails (RecordTooLarge), still through Finalize.
        const tooLarge = this.fitToStore(record, ending).record.phaseInfo!;
        return await this.endAfterFinalize(stored, awaitFinalize(quietUpdate(record, handled).record, tooLarge), timing);
      }
      return await this.endAfterFinalize(stored, ending, timing);
    }
    const firstAnswer = !record.resourceCreated;
    if (phaseChanged(record.phaseInfo, reported)) {
      await this.commit(stored, enterPhase(record, reported, handled));
    } else if (stateChanged || firstAnswer || record.systemFailures > 0) {
      await this.commit(stored, quietUpdate(record, handled));
    }
    return { kind: "again", delayMs: timing.resyncMs };
  }

  /** Core: Finalize the attempt, then apply its pending end (success, a failed attempt, ABORTED). */
  private async finalize(stored: StoredRecord, timing: PluginTiming): Promise<Disposition> {
    const { record } = stored;
    try {
      await this.callAnyInstance(record, async (target, context) =>
        await this.clients.call(CorePluginService.method.finalize, target, { context, state: record.pluginState }, timing.finalizeTimeoutMs),
      );
    } catch (error) {
      if (error instanceof NoInstanceError) return { kind: "again", delayMs: this.options.noInstanceRetryMs };
      if (isSecretError(error)) return await this.commit(stored, applyPendingEnd(record, `Finalize not called: ${error.message}`));
      if (!(error instanceof PluginCallError)) throw error;
      if (isUserError(error)) return await this.commit(stored, applyPendingEnd(record, `Finalize answered ${error.message}`));
      this.log.warn("Finalize failed", { execution: record.id, instance: error.instanceId, error: error.message });
      const transition = finalizeFailed(record, error.message, timing.maxSystemFailures);
      const disposition = await this.commit(stored, transition);
      return disposition.kind === "again" && transition.record.pendingEnd
        ? { kind: "again", delayMs: backoffMs(transition.record.systemFailures) }
        : disposition;
    }
    return await this.commit(stored, applyPendingEnd({ ...record, systemFailures: 0 }));
  }

  private async doTransition(record: ExecutionRecord, timing: PluginTiming): Promise<Transition> {
    const { response, instance, redactor } = await this.callAnyInstance(record, async (target, context) =>
      await this.clients.call(SyncPluginService.method.do, target, { context }, timing.doTimeoutMs),
    );
    const reported = redactor.phaseInfo(response.phaseInfo);
    if (!reported || !isTerminalPhase(reported.phase)) {
      throw new PluginCallError(status.INTERNAL, "Do must return a terminal phase", instance.instanceId);
    }
    return this.terminal(record, reported, redactor.json(response.outputs));
  }

  /**
   * The sync fast path (docs/architecture.md, "Sync fast path"): Do for a new execution that is not stored yet,
   * called from ExecuteTask. Returns the record to store: final, or (no instance, a system failure, a retry) a
   * state the durable path continues from. Throws only what a step would leave to redelivery (NATS, bugs).
   */
  async doDirect(record: ExecutionRecord): Promise<Transition> {
    const descriptor = this.descriptorFor(record);
    const timing = timingOf(descriptor);
    // The caller waits for the plugin's write limit here, as a step would wait in the queue.
    for (let waitMs = this.takeToken(descriptor, "write"); waitMs > 0; waitMs = this.takeToken(descriptor, "write")) {
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
    let transition: Transition;
    try {
      transition = await this.doTransition(record, timing);
    } catch (error) {
      transition = this.afterCallError(record, error, timing) ?? { record, events: [] };
    }
    return this.fitToStore(record, transition);
  }

  private terminal(record: ExecutionRecord, reported: PhaseInfo, outputs: ExecutionRecord["outputs"]): Transition {
    if (reported.phase === Phase.SUCCESS) return succeed(record, reported, outputs);
    return failAttempt(record, reported);
  }

  /**
   * The attempt ran past TaskMetadata.timeout: stop its work (Delete, or a core plugin's Abort), then end the
   * execution PERMANENT_FAILURE `Timeout`, saying so; a core attempt is Finalized first.
   */
  private async timeOut(stored: StoredRecord, timeoutMs: number, descriptor: PluginDescriptor | undefined): Promise<Disposition> {
    const { record } = stored;
    const timing = timingOf(descriptor);
    const waitMs = this.takeToken(descriptor, "write");
    if (waitMs > 0) return { kind: "again", delayMs: waitMs };
    const core = descriptor?.kind === PluginKind.CORE;
    let note: string;
    try {
      note = await this.stopWork(record, core, timing, `the attempt's timeout of ${timeoutMs} ms passed`);
    } catch (error) {
      return await this.onCallError(stored, error, timing);
    }
    const what = core ? "its work was aborted" : record.resourceCreated ? "its work was deleted" : "no work had started";
    const message = `attempt ${record.attempt} exceeded its timeout of ${timeoutMs} ms; ${what}${note ? ` (${note})` : ""}`;
    const info = failure(Phase.PERMANENT_FAILURE, "Timeout", message, ErrorKind.SYSTEM);
    return core ? await this.endAfterFinalize(stored, awaitFinalize(record, info), timing) : await this.commit(stored, enterPhase(record, info));
  }

  /**
   * Abort requested: stop the work (Delete if there is remote work, or a core plugin's Abort), then ABORTED; a core
   * attempt is Finalized first. A failing Delete or Abort is retried with backoff within the plugin's
   * system-failure budget; when that is spent the execution still ends ABORTED, with the failure in its reason, so
   * an abort never turns into a retry or a failure.
   */
  private async finishAbort(stored: StoredRecord): Promise<Disposition> {
    const { record } = stored;
    const descriptor = this.descriptorFor(record);
    const timing = timingOf(descriptor);
    // Delete, Abort and Finalize are writes; over the limit the abort stays requested and a later step does it.
    const waitMs = this.takeToken(descriptor, "write");
    if (waitMs > 0) return { kind: "again", delayMs: waitMs };
    // The attempt's end was decided before the abort came (a core plugin's Handle ended it): that end stands.
    if (record.pendingEnd) return await this.finalize(stored, timing);
    const core = descriptor?.kind === PluginKind.CORE;
    let reason = record.abortReason || "aborted";
    try {
      const note = await this.stopWork(record, core, timing, reason);
      if (note) reason += ` (${note})`;
    } catch (error) {
      if (error instanceof NoInstanceError) return { kind: "again", delayMs: this.options.noInstanceRetryMs };
      if (!(error instanceof PluginCallError)) throw error;
      const transition = abortStopFailed(record, core ? "Abort" : "Delete", error.message, timing.maxSystemFailures, core);
      if (transition.record.pendingEnd) return await this.endAfterFinalize(stored, transition, timing);
      const disposition = await this.commit(stored, transition);
      return disposition.kind === "again" ? { kind: "again", delayMs: backoffMs(transition.record.systemFailures) } : disposition;
    }
    const end = phaseInfo(Phase.ABORTED, reason);
    return core ? await this.endAfterFinalize(stored, awaitFinalize(record, end), timing) : await this.commit(stored, enterPhase(record, end));
  }

  /**
   * Stops the attempt's work: a core plugin's Abort (always: it may hold work before its first answer), or Delete
   * once Create succeeded. A refusal with a user code (NOT_FOUND: already gone) is taken as done and returned as a
   * note for the reason; any other failure is thrown.
   */
  private async stopWork(record: ExecutionRecord, core: boolean, timing: PluginTiming, reason: string): Promise<string> {
    try {
      if (core) {
        await this.callAnyInstance(record, async (target, context) =>
          await this.clients.call(CorePluginService.method.abort, target, { context, state: record.pluginState, reason }, timing.abortTimeoutMs),
        );
      } else if (record.resourceCreated) {
        await this.deleteResource(record, timing);
      }
      return "";
    } catch (error) {
      // The secrets the call needs are gone or no longer allowed: the call cannot be made, and will not be.
      if (isSecretError(error)) return `${core ? "Abort" : "Delete"} not called: ${error.message}`;
      if (!isUserCallError(error)) throw error;
      return `${core ? "Abort" : "Delete"} answered ${(error as PluginCallError).message}; taken as gone`;
    }
  }

  /** Writes a core attempt's pending end, then Finalizes it in the same step. */
  private async endAfterFinalize(stored: StoredRecord, ending: Transition, timing: PluginTiming): Promise<Disposition> {
    const revision = await this.store.update(ending.record, stored.revision);
    return await this.finalize({ record: ending.record, revision }, timing);
  }

  private async deleteResource(record: ExecutionRecord, timing: PluginTiming): Promise<void> {
    await this.callAnyInstance(record, async (target, context) =>
      await this.clients.call(
        AsyncPluginService.method.delete,
        target,
        { context, resourceMeta: record.resourceMeta },
        timing.deleteTimeoutMs,
      ),
    );
  }

  /**
   * Calls the plugin on a live instance; an unreachable instance is skipped for the next one (it may have just
   * died), so a step only fails when no instance answers. Once an attempt's remote work exists, its calls go to
   * the instance that created it while that one lives.
   */
  private async callAnyInstance<T>(
    record: ExecutionRecord,
    call: (target: PluginInstance, context: TaskContext) => Promise<T>,
  ): Promise<{ response: T; instance: PluginInstance; redactor: Redactor }> {
    const type = record.template?.type ?? "";
    const version = record.template?.typeVersion ?? 0;
    const { context, redactor } = await this.contextOf(record);
    const tried = new Set<string>();
    let lastError: unknown = new NoInstanceError(`no live instance serves ${type} v${version}`);
    const creator = record.resourceCreated ? record.lastInstanceId : undefined;
    const affinity = `${record.id}/${record.attempt}`;
    for (
      let instance = this.routing.pick(type, version, affinity, tried, creator);
      instance;
      instance = this.routing.pick(type, version, affinity, tried, creator)
    ) {
      tried.add(instance.instanceId);
      try {
        return { response: await call(instance, context), instance, redactor };
      } catch (error) {
        // What a plugin says goes into records, events and logs: never with a secret it was given.
        lastError = error instanceof PluginCallError ? new PluginCallError(error.code, redactor.text(error.details), error.instanceId) : error;
        if (!(error instanceof PluginCallError && error.unreachable)) break;
        this.log.warn("plugin instance unreachable, trying another", { instance: instance.instanceId, execution: record.id });
      }
    }
    throw lastError;
  }

  /** The context of a call, with the secrets the template names (those the plugin may have), and their redactor. */
  private async contextOf(record: ExecutionRecord): Promise<{ context: TaskContext; redactor: Redactor }> {
    const requests = record.template?.secrets ?? [];
    const secrets = requests.length > 0 ? await this.secrets.resolve(requests, this.descriptorFor(record)?.name ?? "") : {};
    const context = create(TaskContextSchema, {
      executionId: { id: record.id, attempt: record.attempt },
      template: record.template,
      inputs: record.inputs,
      metadata: record.metadata,
      secrets,
    });
    return { context, redactor: requests.length > 0 ? Redactor.of(secrets) : Redactor.none };
  }

  /** Turns a failed call into the record's next state and stores it. */
  private async onCallError(stored: StoredRecord, error: unknown, timing: PluginTiming): Promise<Disposition> {
    const transition = this.afterCallError(stored.record, error, timing);
    if (!transition) return { kind: "again", delayMs: this.options.noInstanceRetryMs };
    if (transition.record.pendingEnd) return await this.endAfterFinalize(stored, transition, timing);
    const disposition = await this.commit(stored, transition);
    const failures = transition.record.systemFailures;
    return disposition.kind === "again" && failures > stored.record.systemFailures
      ? { kind: "again", delayMs: backoffMs(failures) }
      : disposition;
  }

  /**
   * A failed call's transition: a user failure ends the attempt, a system one is counted. Undefined when no
   * instance serves the type (nothing to record: look again later). Anything else (NATS, a bug) is thrown.
   */
  private afterCallError(record: ExecutionRecord, error: unknown, timing: PluginTiming): Transition | undefined {
    const endAttempt = this.endAttemptFor(record);
    if (error instanceof NoInstanceError) return undefined;
    if (error instanceof SecretNotFoundError) {
      return endAttempt(record, failure(Phase.PERMANENT_FAILURE, "SecretNotFound", error.message, ErrorKind.USER));
    }
    if (error instanceof SecretNotAllowedError) {
      return endAttempt(record, failure(Phase.PERMANENT_FAILURE, "SecretNotAllowed", error.message, ErrorKind.USER));
    }
    if (error instanceof PluginCallError && isUserError(error)) {
      return endAttempt(record, failure(Phase.PERMANENT_FAILURE, `Plugin${codeName(error.code)}`, error.details, ErrorKind.USER));
    }
    if (!(error instanceof PluginCallError)) throw error; // NATS or a bug: leave the item to be redelivered
    this.log.warn("plugin call failed", { execution: record.id, instance: error.instanceId, error: error.message });
    return countSystemFailure(record, error.message, timing.maxSystemFailures, endAttempt);
  }

  /** Every end of a core attempt goes through Finalize; other kinds end at once. */
  private endAttemptFor(record: ExecutionRecord): EndAttempt {
    return this.descriptorFor(record)?.kind === PluginKind.CORE ? awaitFinalize : failAttempt;
  }

  /**
   * Stores the transition (compare-and-set on the revision read), then publishes its events. A record the store
   * cannot take (outputs larger than a NATS message) fails the attempt instead of failing every retry forever.
   */
  private async commit(stored: StoredRecord, proposed: Transition): Promise<Disposition> {
    const transition = this.fitToStore(stored.record, proposed);
    await this.store.update(transition.record, stored.revision);
    if (transition.events.length > 0) {
      const plugin = this.pluginName(transition.record);
      for (const event of transition.events) this.options.metrics.phaseReached(plugin, event.phaseInfo?.phase ?? Phase.UNSPECIFIED);
    }
    await this.publish(transition.events);
    const phase = transition.record.phaseInfo?.phase ?? Phase.UNSPECIFIED;
    if (isFinalPhase(phase)) await this.releaseQuota(transition.record);
    return isFinalPhase(phase) ? { kind: "done" } : { kind: "again", delayMs: 0 };
  }

  /** Gives back an ended execution's quota token. Best effort: a token left behind is reclaimed (quotas.ts). */
  private async releaseQuota(record: ExecutionRecord): Promise<void> {
    const descriptor = this.descriptorFor(record);
    if (!descriptor || !hasQuota(descriptor.properties?.quota)) return;
    try {
      await this.quotas.release(descriptor.name, record.id);
    } catch (error) {
      this.log.warn("could not release a quota token; it will be reclaimed", { execution: record.id, error });
    }
  }

  /** The transition, or, when its record is larger than the store takes, a failed attempt that says so. */
  private fitToStore(before: ExecutionRecord, transition: Transition): Transition {
    const size = this.store.encodedSize(transition.record);
    if (size <= this.options.maxRecordBytes) return transition;
    const message = `the execution's state would take ${size} bytes, more than the ${this.options.maxRecordBytes} the store accepts (outputs too large?)`;
    return failAttempt(before, failure(Phase.PERMANENT_FAILURE, "RecordTooLarge", message, ErrorKind.USER));
  }

  private async publish(events: readonly TaskEvent[]): Promise<void> {
    for (const event of events) await this.events.publish(event);
  }

  /**
   * A status a plugin pushed between polls: applied as the next Get's (async) or Handle's (core) report would be,
   * if it is about the execution's current attempt, whose work has started and not ended, and comes from an
   * instance that serves it. Anything else, and a record that changed meanwhile, is dropped: the poll catches up.
   */
  async applyPushed(pushed: PushedStatus): Promise<"applied" | "dropped"> {
    const stored = await this.store.get(pushed.executionId).catch(() => undefined);
    const record = stored?.record;
    if (!stored || !record || record.attempt !== pushed.attempt || !record.resourceCreated || record.pendingEnd || record.abortRequested) {
      return "dropped";
    }
    if (isFinalPhase(record.phaseInfo?.phase ?? Phase.UNSPECIFIED)) return "dropped";
    const descriptor = this.descriptorFor(record);
    const type = record.template?.type ?? "";
    const version = record.template?.typeVersion ?? 0;
    const pusher = this.routing.acceptingInstance(pushed.instanceId, type, version);
    if (!descriptor || (descriptor.kind !== PluginKind.ASYNC && descriptor.kind !== PluginKind.CORE) || !pusher) {
      this.log.warn("dropping a status pushed by an instance that does not serve the execution", { execution: record.id, instance: pushed.instanceId.slice(0, 100) });
      return "dropped";
    }
    const redactor = await this.contextOf(record).then((call) => call.redactor, () => Redactor.none);
    const reported = redactor.phaseInfo(pushed.phaseInfo);
    if (!reported || !isKnownPhase(reported.phase)) return "dropped";
    const outputs = redactor.json(pushed.outputs);
    // A core plugin's pushed end calls Finalize: in the execution's trace, as a step would.
    return await otelContext.with(contextFromCarrier(record.traceContext), () => this.applyReported(stored, descriptor, reported, outputs, pushed.instanceId));
  }

  private async applyReported(
    stored: StoredRecord,
    descriptor: PluginDescriptor,
    reported: PhaseInfo,
    outputs: ExecutionRecord["outputs"],
    instanceId: string,
  ): Promise<"applied" | "dropped"> {
    const { record } = stored;
    try {
      if (!isTerminalPhase(reported.phase)) {
        if (!phaseChanged(record.phaseInfo, reported)) return "dropped";
        await this.commit(stored, enterPhase(record, reported, (next) => {
          next.lastInstanceId = instanceId;
        }));
      } else if (descriptor.kind === PluginKind.CORE) {
        // As a terminal Handle: the end is written pending, Finalize follows at once (or at the next step).
        await this.endAfterFinalize(stored, awaitFinalize(record, reported, outputs), timingOf(descriptor));
      } else {
        await this.commit(stored, this.terminal(record, reported, outputs));
      }
    } catch (error) {
      if (error instanceof RevisionConflictError) return "dropped";
      throw error;
    }
    return "applied";
  }

  /**
   * AbortTask: marks the record, then tries to finish the abort at once. When the plugin's Delete cannot be
   * made now, the abort stays requested and the execution's next step retries it.
   */
  async abort(executionId: string, reason: string): Promise<StoredRecord | "not-found" | "final"> {
    for (let round = 0; round < 5; round++) {
      const stored = await this.store.get(executionId);
      if (!stored) return "not-found";
      if (isFinalPhase(stored.record.phaseInfo?.phase ?? Phase.UNSPECIFIED)) return "final";
      try {
        let current = stored;
        if (!stored.record.abortRequested) {
          const marked = requestAbort(stored.record, reason);
          current = { record: marked, revision: await this.store.update(marked, stored.revision) };
        }
        await this.finishAbort(current);
        return (await this.store.get(executionId)) ?? "not-found";
      } catch (error) {
        if (!(error instanceof RevisionConflictError)) throw error;
      }
    }
    throw new RevisionConflictError(executionId);
  }
}

const codeName = (code: number): string =>
  ["Ok", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
    "Internal", "Unavailable", "DataLoss", "Unauthenticated"][code] ?? `Code${code}`;
