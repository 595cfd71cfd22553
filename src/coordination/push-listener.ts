// Statuses plugins push between polls (`pb.push.<execution>`): every host subscribes in one queue group, so each
// push is handled by exactly one host. Pushes are a shortcut, not a channel that must deliver: a push lost here
// (a host dying, a slow consumer) only leaves the execution to its next poll.
import { fromBinary } from "@bufbuild/protobuf";
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import { PushedStatusSchema, type PushedStatus } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import type { Logger } from "../log.js";
import { isExecutionId, PUSH_QUEUE, pushSubjects } from "./names.js";

/** At most this many pushes are applied at once by one host; more wait in the subscription. */
const CONCURRENT_PUSHES = 32;

/** A push as it arrived: the decoded status, and the bytes and headers its signature (if any) covers. */
export interface ArrivedPush {
  status: PushedStatus;
  payload: Uint8Array;
  headers: MsgHdrs | undefined;
}

export function listenForPushes(nc: NatsConnection, apply: (push: ArrivedPush) => Promise<void>, log: Logger): { stop(): void } {
  const subscription = nc.subscribe(pushSubjects, { queue: PUSH_QUEUE });
  const running = new Set<Promise<void>>();
  void (async () => {
    for await (const message of subscription) {
      let status: PushedStatus;
      try {
        status = fromBinary(PushedStatusSchema, message.data);
      } catch (error) {
        log.warn("dropping a pushed status that does not decode", { subject: message.subject.slice(0, 100), error });
        continue;
      }
      // Checked before the id reaches a KV key: a key over the NATS server's line limit makes it drop the
      // connection, which would let anyone who may publish here cut the host off NATS.
      if (!isExecutionId(status.executionId)) {
        log.warn("dropping a pushed status for an execution id no host gives", {
          subject: message.subject.slice(0, 100),
          length: status.executionId.length,
        });
        continue;
      }
      while (running.size >= CONCURRENT_PUSHES) await Promise.race(running);
      const task = apply({ status, payload: message.data, headers: message.headers })
        .catch((error: unknown) => log.warn("could not apply a pushed status; the next poll will", { execution: status.executionId, error }))
        .finally(() => running.delete(task));
      running.add(task);
    }
  })();
  return { stop: () => subscription.unsubscribe() };
}
