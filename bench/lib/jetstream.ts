// What the bench watches on NATS: stream sequences (JetStream writes), terminal events (a core subscription on
// the events subjects, which sees every event JetStream stores), and a raw KV put baseline.
import { fromBinary } from "@bufbuild/protobuf";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { TaskEventSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { nowMs, pool } from "./stats.js";

/** The streams a step writes to: records, work items, events, and the kit's Create memory. */
export const WRITE_STREAMS = ["KV_pb_executions", "PB_WORK", "PB_EVENTS", "KV_pb_creates"] as const;

export class NatsProbe {
  private constructor(
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
  ) {}

  static async open(url: string): Promise<NatsProbe> {
    const nc = await connect({ servers: url, name: "bench-probe" });
    return new NatsProbe(nc, await jetstreamManager(nc));
  }

  /** Last sequence of each write stream (0 when it does not exist yet). */
  async sequences(): Promise<Record<string, number>> {
    const result: Record<string, number> = {};
    for (const name of WRITE_STREAMS) {
      try {
        result[name] = (await this.jsm.streams.info(name)).state.last_seq;
      } catch {
        result[name] = 0;
      }
    }
    return result;
  }

  async streamMessages(name: string): Promise<number> {
    return (await this.jsm.streams.info(name)).state.messages;
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}

/** Writes between two `sequences()` readings, per stream and in total. */
export function writesBetween(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const result: Record<string, number> = {};
  let total = 0;
  for (const name of WRITE_STREAMS) {
    result[name] = (after[name] ?? 0) - (before[name] ?? 0);
    total += result[name]!;
  }
  result.total = total;
  return result;
}

/** Follows every event on `pb.events.>` and remembers when each execution reached a final phase. */
export class FinalEvents {
  readonly finals = new Map<string, { phase: Phase; at: number; atEpoch: number }>();
  readonly phaseCounts = new Map<Phase, number>();
  events = 0;
  private waiters: Array<() => void> = [];
  private readonly sub: Subscription;

  constructor(nc: NatsConnection) {
    const sub = nc.subscribe("pb.events.>");
    this.sub = sub;
    void (async () => {
      for await (const message of sub) {
        this.events++;
        const event = fromBinary(TaskEventSchema, message.data);
        const phase = event.phaseInfo?.phase ?? Phase.UNSPECIFIED;
        if (phase === Phase.SUCCESS || phase === Phase.PERMANENT_FAILURE || phase === Phase.ABORTED) {
          if (!this.finals.has(event.executionId)) {
            this.finals.set(event.executionId, { phase, at: nowMs(), atEpoch: Date.now() });
            this.phaseCounts.set(phase, (this.phaseCounts.get(phase) ?? 0) + 1);
            if (this.waiters.length) for (const waiter of this.waiters.splice(0)) waiter();
          }
        }
      }
    })();
  }

  /** Waits until every id in `ids` has a final event, or `timeoutMs` passes; returns how many have one. */
  async waitAll(ids: readonly string[], timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const done = (): number => ids.reduce((n, id) => n + (this.finals.has(id) ? 1 : 0), 0);
    let count = done();
    while (count < ids.length && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      // Counting 100,000 ids on every event is costly: count at most every 250 ms.
      await new Promise((resolve) => setTimeout(resolve, 250));
      count = done();
    }
    return count;
  }

  stop(): void {
    this.sub.unsubscribe();
  }
}

/** Raw KV puts/s on `url`: a fresh file-backed bucket, `inFlight` puts at a time, `bytes` per value. */
export async function rawKvPuts(
  url: string,
  options: { count: number; inFlight: number; bytes: number; maxMs: number },
): Promise<{ puts: number; seconds: number; putsPerSecond: number; errors: number }> {
  const nc = await connect({ servers: url, name: "bench-raw-kv" });
  try {
    const kv = await new Kvm(nc).create("bench_raw", { history: 1 });
    const value = new Uint8Array(options.bytes).fill(120);
    let errors = 0;
    // Warm up the connection and the bucket.
    for (let i = 0; i < 200; i++) await kv.put(`warm-${i}`, value);
    const started = nowMs();
    const done = await pool(
      options.count,
      options.inFlight,
      async (i) => {
        await kv.put(`k-${i % 50_000}`, value);
      },
      () => errors++,
      started + options.maxMs,
    );
    const seconds = (nowMs() - started) / 1000;
    await new Kvm(nc).open("bench_raw").then((bucket) => bucket.destroy());
    return { puts: done, seconds, putsPerSecond: done / seconds, errors };
  } finally {
    await nc.close();
  }
}
