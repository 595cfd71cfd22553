// The sync fast path. ExecuteTask on a sync plugin, without an idempotency key, calls Do from the API handler and
// stores the execution once, with its outcome, before it answers: one round of writes (record and events at once)
// instead of a work item, a record create, a record update and two events one after another. Anything but a final
// outcome (no instance, a system failure, a retry) is handed to the durable path: work item, record, events.
// Why this keeps the safety rules, and what it gives up, is in docs/architecture.md ("Sync fast path").
import { Phase, type PhaseInfo } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { ExecutionRecord } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";
import type { EventLog } from "../coordination/event-log.js";
import type { ExecutionStore } from "../coordination/execution-store.js";
import type { WorkQueue } from "../coordination/work-queue.js";
import type { Executor } from "../machinery/executor.js";
import { isFinalPhase } from "../machinery/phases.js";
import { eventOf } from "../machinery/transitions.js";
import type { Logger } from "../log.js";
import type { HostMetrics } from "../observability/metrics.js";

export interface DirectSyncDeps {
  store: ExecutionStore;
  work: WorkQueue;
  events: EventLog;
  executor: Executor;
  log: Logger;
  /** Counts the phases the stored outcome reached (QUEUED included). */
  metrics: HostMetrics;
}

export interface DirectOutcome {
  /** The events after QUEUED, as stored. */
  events: TaskEvent[];
  /** The durable path carries on from here: follow the stream for the rest. */
  handedOver: boolean;
}

const phaseOf = (info: PhaseInfo | undefined): Phase => info?.phase ?? Phase.UNSPECIFIED;

export class DirectSync {
  /** Runs whose outcome is not stored yet: a stopping host waits for them, whether or not their callers still do. */
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly deps: DirectSyncDeps) {}

  /**
   * Calls Do for `record` (QUEUED, not stored) and stores what came of it. The run does not depend on its caller:
   * a caller that leaves still finds the outcome stored. `beforeHandover` runs before anything is stored when the
   * durable path has to carry on (ExecuteTask subscribes to the events there).
   */
  run(record: ExecutionRecord, beforeHandover: () => void): Promise<DirectOutcome> {
    const run = this.runAndStore(record, beforeHandover);
    const tracked: Promise<unknown> = run.then(
      () => this.running.delete(tracked),
      () => this.running.delete(tracked),
    );
    this.running.add(tracked);
    return run;
  }

  /** Waits (at most `timeoutMs`) for the runs under way to store their outcomes. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.running.size === 0) return;
    this.deps.log.info("waiting for sync calls to store their outcomes", { count: this.running.size });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  private async runAndStore(record: ExecutionRecord, beforeHandover: () => void): Promise<DirectOutcome> {
    const outcome = await this.deps.executor.doDirect(record);
    const events = [eventOf(record), ...outcome.events];
    const final = isFinalPhase(phaseOf(outcome.record.phaseInfo));
    try {
      if (final) {
        // Record and events in one round: the events carry message ids, and a watcher that misses the final event
        // ends from the record (TaskService.follow), so only the record decides whether the call succeeded.
        const [stored] = await Promise.allSettled([this.deps.store.create(outcome.record), this.publish(events)]);
        if (stored.status === "rejected") throw stored.reason;
        this.countPhases(outcome.record, events);
      } else {
        beforeHandover();
        // As CreateTask: the work item first, so that no record exists without one.
        await this.deps.work.enqueue(record.id);
        await this.deps.store.create(outcome.record);
        this.countPhases(outcome.record, events);
        await this.publish(events);
      }
    } catch (error) {
      this.deps.log.error("could not store the outcome of a sync call", { execution: record.id, error });
      throw new ConnectError(
        `plugin answered, but its outcome could not be stored (${error instanceof Error ? error.message : String(error)}); execution ${record.id} does not exist`,
        Code.Unavailable,
      );
    }
    return { events: outcome.events, handedOver: !final };
  }

  /** The phases a stored outcome went through, one per event, as a step's writes count theirs. */
  private countPhases(record: ExecutionRecord, events: readonly TaskEvent[]): void {
    const plugin = this.deps.executor.pluginName(record);
    for (const event of events) this.deps.metrics.phaseReached(plugin, phaseOf(event.phaseInfo));
  }

  /** Publishes in order (one connection keeps the order), without waiting for one ack before the next send. */
  private async publish(events: readonly TaskEvent[]): Promise<void> {
    const results = await Promise.allSettled(events.map((event) => this.deps.events.publish(event)));
    const failed = results.find((result) => result.status === "rejected");
    if (failed) this.deps.log.warn("could not publish a sync call's events", { execution: events[0]?.executionId, error: failed.reason });
  }
}
