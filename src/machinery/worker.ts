// Takes work items from the shared WORK consumer and runs steps, a bounded number at a time. The outcome of a
// step is stored before its item is acked or naked (rule 2 of docs/architecture.md), so a host that dies at any
// point loses nothing: its items come back to another host after ack_wait.
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { decodeWorkItem, type WorkQueue } from "../coordination/work-queue.js";
import type { Logger } from "../log.js";
import type { HostMetrics } from "../observability/metrics.js";
import type { Executor } from "./executor.js";
import { timestampMs } from "./time.js";

export interface WorkerOptions {
  /** Steps run at once by this host. */
  concurrency: number;
  /** The consumer's ack_wait: long calls send in-progress acks at a third of it. */
  ackWaitMs: number;
  /** Counts the steps in flight. */
  metrics: HostMetrics;
}

export class Worker {
  private messages: ConsumerMessages | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private loop: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly queue: WorkQueue,
    private readonly executor: Executor,
    private readonly log: Logger,
    private readonly options: WorkerOptions,
  ) {}

  async start(): Promise<void> {
    // Pulls no longer than the takeover time: a consumer leader lost with its NATS node is noticed as soon.
    this.messages = await this.queue.consume(this.options.concurrency, Math.max(1_000, Math.min(this.options.ackWaitMs, 5_000)));
    const messages = this.messages;
    this.loop = (async () => {
      for await (const message of messages) {
        if (this.stopping) {
          // Taken but not started: hand it straight back rather than making it wait out ack_wait.
          message.nak();
          continue;
        }
        while (this.inFlight.size >= this.options.concurrency) await Promise.race(this.inFlight);
        const task = this.handle(message).finally(() => this.inFlight.delete(task));
        this.inFlight.add(task);
      }
    })();
  }

  private async handle(message: JsMsg): Promise<void> {
    let executionId = "";
    const stepEnded = this.options.metrics.stepStarted();
    const keepAlive = setInterval(() => message.working(), Math.max(1_000, this.options.ackWaitMs / 3));
    try {
      const item = decodeWorkItem(message);
      executionId = item.executionId;
      const disposition = await this.executor.step(executionId, timestampMs(item.enqueuedAt));
      switch (disposition.kind) {
        case "done":
          message.ack();
          break;
        case "again":
          message.nak(Math.max(0, Math.round(disposition.delayMs)));
          break;
        case "drop":
          this.log.warn("dropping work item", { execution: executionId, reason: disposition.reason });
          message.term(disposition.reason);
          break;
      }
    } catch (error) {
      // NATS trouble or a bug: the outcome was not stored, so the step must run again; not at once, to keep a
      // persistent fault from spinning.
      this.log.error("step failed; will retry", { execution: executionId, error });
      message.nak(2_000);
    } finally {
      clearInterval(keepAlive);
      stepEnded();
    }
  }

  /** Stops taking items and waits (at most `graceMs`) for the steps under way; the rest return to the stream. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    await this.messages?.close();
    const finished = Promise.allSettled([...this.inFlight, this.loop]);
    await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
  }
}
