// The EVENTS stream: one message per phase change, on `pb.events.<namespace>.<execution>`. WatchTask replays an
// execution's subject from the start and follows it.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import { TaskEventSchema, type TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { EVENTS_STREAM, eventMessageId, eventSubject } from "./names.js";

export class EventLog {
  constructor(private readonly js: JetStreamClient) {}

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
