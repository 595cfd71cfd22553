// Creates the host's buckets, streams and consumer if they are missing, and leaves them alone if they exist:
// any number of hosts (and sidecar kits, for the plugins bucket) may run this at once.
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  CREATES_BUCKET,
  EVENTS_STREAM,
  EXECUTIONS_BUCKET,
  QUOTAS_BUCKET,
  PLUGINS_BUCKET,
  WORK_CONSUMER,
  WORK_STREAM,
  eventSubjects,
  workSubjects,
} from "./names.js";

const nanos = (ms: number): number => ms * 1_000_000;

/**
 * How long the WORK stream remembers a work item's id. An orphaned item (its CreateTask died before the record
 * was stored) must be dropped only after this has passed, or a retried CreateTask inside the window would store
 * a record whose new work item JetStream drops as a duplicate of the dropped one.
 */
export const WORK_DUPLICATE_WINDOW_MS = 120_000;

export interface LayoutOptions {
  /** How long a taken work item stays with a host that stopped answering before another host gets it. */
  ackWaitMs: number;
  /** How long events are kept. */
  eventsMaxAgeMs: number;
  /**
   * Copies of every stream and bucket in a NATS cluster (JetStream's R1, R3, R5). A bucket or stream that exists
   * keeps its own: replicas are the operator's call once data is there (`nats stream edit`).
   */
  replicas?: number;
}

export interface Layout {
  plugins: KV;
  executions: KV;
  quotas: KV;
  /** The kits' Create and Finalize memory; the host's own for the Flyte connectors it drives (src/flyte/driving/). */
  creates: KV;
}

/**
 * The plugins bucket's settings. A sidecar kit that comes up before any host creates the bucket with the same
 * values; whoever comes second opens the bucket as it is (Kvm.create does not compare settings), so the kits
 * and the host must keep these in step. `ttl` drops an instance whose heartbeats stopped; `markerTTL` makes that
 * drop visible to watchers as a delete.
 */
export const PLUGINS_BUCKET_OPTIONS = { history: 1, ttl: 15_000, markerTTL: 5_000, storage: StorageType.File };

/**
 * The kits' `pb_creates` bucket, as every kit creates it. The hosts create it too, so that in a NATS cluster it
 * has as many copies as the rest: with one copy, losing its node fails every Create until the node is back.
 */
export const CREATES_BUCKET_OPTIONS = { history: 1, ttl: 24 * 60 * 60 * 1000, storage: StorageType.File };

export async function ensureLayout(nc: NatsConnection, jsm: JetStreamManager, options: LayoutOptions): Promise<Layout> {
  const kvm = new Kvm(nc);
  const replicas = options.replicas ?? 1;
  const plugins = await kvm.create(PLUGINS_BUCKET, { ...PLUGINS_BUCKET_OPTIONS, replicas });
  const executions = await kvm.create(EXECUTIONS_BUCKET, { history: 1, storage: StorageType.File, replicas });
  const quotas = await kvm.create(QUOTAS_BUCKET, { history: 1, storage: StorageType.File, replicas });
  const creates = await kvm.create(CREATES_BUCKET, { ...CREATES_BUCKET_OPTIONS, replicas });
  await ensureStream(jsm, {
    name: WORK_STREAM,
    num_replicas: replicas,
    subjects: [workSubjects],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    // A CreateTask retried within this window re-publishes the same work item; JetStream drops the copy.
    duplicate_window: nanos(WORK_DUPLICATE_WINDOW_MS),
  });
  await ensureStream(jsm, {
    name: EVENTS_STREAM,
    num_replicas: replicas,
    subjects: [eventSubjects],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(options.eventsMaxAgeMs),
    duplicate_window: nanos(120_000),
  });
  await ensureWorkConsumer(jsm, options.ackWaitMs);
  return { plugins, executions, quotas, creates };
}

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    const { config: current } = await jsm.streams.info(config.name);
    // It exists: bring the settings we own up to date (an operator may have changed event retention), but keep its
    // replicas (changing them moves data; the operator does that on purpose).
    await jsm.streams.update(config.name, { ...config, num_replicas: current.num_replicas });
  } catch (error) {
    if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
    await jsm.streams.add(config);
  }
}

async function ensureWorkConsumer(jsm: JetStreamManager, ackWaitMs: number): Promise<void> {
  const config = {
    durable_name: WORK_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ackWaitMs),
    // Items waiting out a nak delay count as pending: a cap would cap the number of live executions.
    max_ack_pending: -1,
    // With a limit, an item silently stops being delivered after that many polls.
    max_deliver: -1,
  };
  try {
    const info = await jsm.consumers.info(WORK_STREAM, WORK_CONSUMER);
    if (info.config.ack_wait !== config.ack_wait) await jsm.consumers.update(WORK_STREAM, WORK_CONSUMER, config);
  } catch (error) {
    if (!isApiError(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
    await jsm.consumers.add(WORK_STREAM, config);
  }
}

function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}
