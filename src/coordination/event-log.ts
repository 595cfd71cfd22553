// The EVENTS stream: one message per phase change, on `pb.events.<namespace>.<execution>`. WatchTask replays an
// execution's subject from the start and follows it.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { TaskEventSchema, type TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { EVENTS_STREAM, eventMessageId, eventSubject } from "./names.js";

/** Events of one execution as they are published, from a plain subscription; see EventLog.listen. */
export interface LiveEvents {
  readonly events: AsyncIterable<TaskEvent>;
  close(): void;
}

export class EventLog {
  constructor(
    private readonly js: JetStreamClient,
    private readonly nc: NatsConnection,
  ) {}

  /**
   * A plain NATS subscription to the execution's events: no consumer to create, so it is the cheap way to follow
   * an execution that does not exist yet (subscribe first, then create). It sees only what is published after it,
   * in arrival order, and may lose messages (slow consumer, reconnect): callers order by sequence and fall back to
   * `follow` when a gap does not close.
   */
  listen(namespace: string, executionId: string): LiveEvents {
    const subscription = this.nc.subscribe(eventSubject(namespace, executionId));
    return {
      events: (async function* () {
        for await (const message of subscription) yield fromBinary(TaskEventSchema, message.data);
      })(),
      close: () => subscription.unsubscribe(),
    };
  }

  /**
   * Publishes an event. Its message id is execution and sequence, so re-publishing one after a crash (the record
   * was written, the event perhaps not) is dropped by JetStream as a duplicate within the duplicate window.
   */
  async publish(event: TaskEvent): Promise<void> {
    await this.js.publish(eventSubject(event.namespace, event.executionId), toBinary(TaskEventSchema, event), {
      msgID: eventMessageId(event.executionId, event.sequence),
    });
  }

  /**
   * The execution's events in order, first the stored ones, then new ones as they arrive, until `signal` aborts.
   * An ordered consumer: no state on the server outlives the watch.
   */
  async *follow(namespace: string, executionId: string, signal: AbortSignal): AsyncGenerator<TaskEvent> {
    const consumer = await this.js.consumers.get(EVENTS_STREAM, {
      filter_subjects: [eventSubject(namespace, executionId)],
      deliver_policy: DeliverPolicy.All,
    });
    const messages = await consumer.consume();
    const stop = (): void => void messages.close();
    signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const message of messages) yield fromBinary(TaskEventSchema, message.data);
    } finally {
      signal.removeEventListener("abort", stop);
      await messages.close();
    }
  }
}
