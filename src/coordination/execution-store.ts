// Execution records in the executions KV bucket. Every write is a compare-and-set on the revision the writer
// read: a host that lost an execution to another cannot overwrite the newer state.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import {
  ExecutionRecordSchema,
  type ExecutionRecord,
} from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";

export interface StoredRecord {
  record: ExecutionRecord;
  revision: number;
}

/** The record changed since it was read: re-read and decide again. */
export class RevisionConflictError extends Error {
  constructor(executionId: string, options?: ErrorOptions) {
    super(`execution ${executionId} changed since it was read`, options);
    this.name = "RevisionConflictError";
  }
}

/** A record with this id exists already. */
export class RecordExistsError extends Error {
  constructor(executionId: string, options?: ErrorOptions) {
    super(`execution ${executionId} exists already`, options);
    this.name = "RecordExistsError";
  }
}

export function isWrongLastSequence(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

export class ExecutionStore {
  constructor(private readonly kv: KV) {}

  async get(executionId: string): Promise<StoredRecord | undefined> {
    const entry = await this.kv.get(executionId);
    if (!entry || entry.operation !== "PUT" || entry.length === 0) return undefined;
    return { record: fromBinary(ExecutionRecordSchema, entry.value), revision: entry.revision };
  }

  /** The encoded size of a record, to check it against the server's largest message before writing. */
  encodedSize(record: ExecutionRecord): number {
    return toBinary(ExecutionRecordSchema, record).byteLength;
  }

  /** Stores a new record; throws RecordExistsError when the id is taken. */
  async create(record: ExecutionRecord): Promise<number> {
    try {
      return await this.kv.create(record.id, toBinary(ExecutionRecordSchema, record));
    } catch (error) {
      if (isWrongLastSequence(error)) throw new RecordExistsError(record.id, { cause: error });
      throw error;
    }
  }

  /** Replaces the record if it is still at `revision`; throws RevisionConflictError otherwise. */
  async update(record: ExecutionRecord, revision: number): Promise<number> {
    try {
      return await this.kv.update(record.id, toBinary(ExecutionRecordSchema, record), revision);
    } catch (error) {
      if (isWrongLastSequence(error)) throw new RevisionConflictError(record.id, { cause: error });
      throw error;
    }
  }

  /** Every execution id, sorted. A scan of the bucket's keys: fine for thousands, an index is due for millions. */
  async ids(): Promise<string[]> {
    const ids: string[] = [];
    for await (const key of await this.kv.keys()) ids.push(key);
    return ids.sort();
  }
}
