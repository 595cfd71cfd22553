// The WORK stream: one message per live execution. JetStream is the scheduler: a step ends with an ack
// (terminal) or a nak with a delay (the next poll), and a message whose host died is redelivered after ack_wait.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { WorkItemSchema, type WorkItem } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { WORK_CONSUMER, WORK_STREAM, workSubject } from "./names.js";

export class WorkQueue {
  constructor(private readonly js: JetStreamClient) {}

  /**
   * Queues the execution's work item. The message id is the execution id, so a CreateTask retried within the
   * stream's duplicate window cannot queue a second item for the same execution.
   */
  async enqueue(executionId: string): Promise<void> {
    const item = create(WorkItemSchema, { executionId, enqueuedAt: timestampFromDate(new Date()) });
    await this.js.publish(workSubject(executionId), toBinary(WorkItemSchema, item), { msgID: executionId });
  }

  /**
   * Starts taking work items; at most `maxMessages` are buffered by this host at a time. Each pull lasts at most
   * `pullExpiresMs`: when the NATS node that leads the consumer dies, a pull's heartbeats stop and nats.js notices
   * only after two missed ones, half a pull's life each; with its default 30 s pulls the host stood still for
   * 30-40 s (the chaos suite saw it), with short pulls it asks another node within seconds.
   */
  async consume(maxMessages: number, pullExpiresMs: number): Promise<ConsumerMessages> {
    const consumer = await this.js.consumers.get(WORK_STREAM, WORK_CONSUMER);
    return await consumer.consume({ max_messages: maxMessages, expires: pullExpiresMs });
  }
}

export function decodeWorkItem(message: JsMsg): WorkItem {
  return fromBinary(WorkItemSchema, message.data);
}
