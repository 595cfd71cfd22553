// TaskService: what SDKs call. Every request is checked before anything is written; CreateTask answers only
// after the record, its work item and its first event are stored. ExecuteTask on a sync plugin takes the fast
// path of direct-sync.ts.
import { createHash, randomBytes } from "node:crypto";
import { clone, create, toJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { trace } from "@opentelemetry/api";
import { ExecutionRecordSchema, type ExecutionRecord } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { Phase, TaskExecutionMetadataSchema, type TaskExecutionMetadata } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import {
  CreateTaskRequestSchema,
  TaskExecutionSchema,
  type CreateTaskRequest,
  type TaskEvent,
  type TaskExecution,
  type TaskService,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { PluginKind, type PluginDescriptor } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import type { EventLog, LiveEvents } from "../coordination/event-log.js";
import { RecordExistsError, type ExecutionStore } from "../coordination/execution-store.js";
import type { WorkQueue } from "../coordination/work-queue.js";
import type { Executor } from "../machinery/executor.js";
import { isFinalPhase, phaseInfo, phaseName } from "../machinery/phases.js";
import { hasQuota } from "../machinery/quotas.js";
import { SecretNotAllowedError, SecretNotFoundError, type SecretResolver } from "../machinery/secrets.js";
import { eventOf } from "../machinery/transitions.js";
import type { Logger } from "../log.js";
import type { HostMetrics } from "../observability/metrics.js";
import { currentTraceCarrier } from "../observability/tracing.js";
import type { RoutingTable } from "../registry/routing-table.js";
import type { Specifications } from "../registry/specifications.js";
import { customProblem } from "@plugin-bridge/kit/sdk";
import { NamespaceAccess } from "./auth.js";
import type { DirectSync } from "./direct-sync.js";
import {
  checkExecutionId,
  checkIdempotencyKey,
  checkMetadataMaps,
  checkNamespace,
  checkNumbers,
  checkTemplate,
  invalid,
} from "./validation.js";

export interface TaskServiceDeps {
  store: ExecutionStore;
  work: WorkQueue;
  events: EventLog;
  executor: Executor;
  routing: RoutingTable;
  specifications: Specifications;
  secrets: SecretResolver;
  /** The largest record NATS takes (its max_payload, less headers). */
  maxRecordBytes: number;
  /** A watch with no event for this long looks at the record, in case an event was lost in a crash. */
  watchIdleCheckMs?: number;
  /** The sync fast path's runs. */
  direct: DirectSync;
  log: Logger;
  /** Counts the QUEUED of each execution CreateTask (or ExecuteTask's queued path) stores. */
  metrics: HostMetrics;
}

const MAX_PAGE_SIZE = 1000;
const DEFAULT_PAGE_SIZE = 100;

/** A time-ordered id (UUID version 7 layout): ids sort by creation time, so ListTasks pages in that order. */
function newExecutionId(): string {
  const bytes = randomBytes(16);
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The id an idempotency key maps to: the same namespace and key always give the same id. */
function idForKey(namespace: string, key: string): string {
  return "k-" + createHash("sha256").update(`${namespace}\u0000${key}`).digest("hex").slice(0, 40);
}

/** JSON with object keys sorted at every level: the same request gives the same text whatever its key order. */
function canonicalJson(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key]!)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** What tells a repeated request from a different one under the same idempotency key. */
function digestOf(request: CreateTaskRequest, namespace: string): string {
  const copy = create(CreateTaskRequestSchema, { ...request, idempotencyKey: "" });
  copy.metadata = withNamespace(copy, namespace);
  return createHash("sha256").update(canonicalJson(toJson(CreateTaskRequestSchema, copy))).digest("hex");
}

export function executionView(record: ExecutionRecord): TaskExecution {
  return create(TaskExecutionSchema, {
    id: record.id,
    attempt: record.attempt,
    template: record.template,
    inputs: record.inputs,
    metadata: record.metadata,
    phaseInfo: record.phaseInfo,
    outputs: record.outputs,
    systemFailures: record.systemFailures,
    abortRequested: record.abortRequested,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    lastEventSequence: record.lastEventSequence,
  });
}

export function createTaskService(deps: TaskServiceDeps): ServiceImpl<typeof TaskService> {
  const idleCheckMs = deps.watchIdleCheckMs ?? 5_000;

  /** Finds the plugin for the template and checks `custom` against its specification; returns what it found. */
  function route(request: CreateTaskRequest): PluginDescriptor | undefined {
    const template = checkTemplate(request.template);
    checkNumbers(request.inputs, "inputs");
    const candidates = deps.routing.candidates(template.type, template.typeVersion);
    if (candidates.length === 0) {
      if (deps.routing.servesType(template.type)) {
        throw new ConnectError(
          `task type "${template.type}" has no live plugin for type_version ${template.typeVersion}`,
          Code.NotFound,
        );
      }
      if (deps.routing.servesTypeButStale(template.type)) {
        throw new ConnectError(`the instances serving task type "${template.type}" stopped heartbeating moments ago; retry`, Code.Unavailable);
      }
      throw new ConnectError(`no live plugin serves task type "${template.type}"`, Code.NotFound);
    }
    const spec = deps.specifications.of(candidates[0]!);
    if (spec instanceof Error) {
      throw new ConnectError(`the plugin for "${template.type}" declares an unusable specification: ${spec.message}`, Code.FailedPrecondition);
    }
    if (spec) {
      const problem = customProblem(spec, template.custom);
      if (problem) {
        throw new ConnectError(`${problem} (template.custom must parse as ${spec.typeName})`, Code.InvalidArgument);
      }
    }
    return candidates[0]!.descriptor;
  }

  /** Checks a request and builds the new execution's record, QUEUED and not stored; writes nothing. */
  async function admit(request: CreateTaskRequest, access: NamespaceAccess): Promise<{ record: ExecutionRecord; descriptor: PluginDescriptor | undefined }> {
    const namespace = checkNamespace(request.metadata?.namespace ?? "", "metadata.namespace");
    access.checkNamespace(namespace);
    const key = checkIdempotencyKey(request.idempotencyKey);
    checkMetadataMaps(request.metadata);
    const descriptor = route(request);
    const secrets = request.template?.secrets ?? [];
    if (secrets.length > 0) {
      try {
        await deps.secrets.resolve(secrets, descriptor?.name ?? "");
      } catch (error) {
        if (error instanceof SecretNotAllowedError) throw new ConnectError(error.message, Code.PermissionDenied);
        if (error instanceof SecretNotFoundError) throw new ConnectError(error.message, Code.FailedPrecondition);
        throw error;
      }
    }
    const now = timestampFromDate(new Date());
    const record = create(ExecutionRecordSchema, {
      id: key ? idForKey(namespace, key) : newExecutionId(),
      template: request.template,
      inputs: request.inputs,
      metadata: withNamespace(request, namespace),
      idempotencyKey: key,
      // Only a repeated idempotency key is compared with the request it first came with.
      requestDigest: key ? digestOf(request, namespace) : "",
      attempt: 1,
      phaseInfo: phaseInfo(Phase.QUEUED, "accepted"),
      lastEventSequence: 1n,
      createdAt: now,
      updatedAt: now,
      attemptStartedAt: now,
      // This request's span: every later step of the execution joins its trace.
      traceContext: currentTraceCarrier(),
    });
    trace.getActiveSpan()?.setAttribute("pluginbridge.execution_id", record.id);
    const size = deps.store.encodedSize(record);
    if (size > deps.maxRecordBytes) {
      throw new ConnectError(
        `the execution would take ${size} bytes, more than the ${deps.maxRecordBytes} the store accepts`,
        Code.ResourceExhausted,
      );
    }
    return { record, descriptor };
  }

  /**
   * Stores a new execution for the durable path (or finds the one its idempotency key names). `beforeStore` runs
   * before anything about it is published.
   */
  async function storeExecution(
    record: ExecutionRecord,
    beforeStore: () => void = () => {},
  ): Promise<{ record: ExecutionRecord; created: boolean }> {
    const id = record.id;
    const existing = record.idempotencyKey ? await deps.store.get(id) : undefined;
    if (existing) return { record: sameRequest(existing.record, record.requestDigest), created: false };
    beforeStore();
    // Work item first: a record never exists without one. An item without a record is dropped after a grace time.
    await deps.work.enqueue(id);
    try {
      await deps.store.create(record);
    } catch (error) {
      if (!(error instanceof RecordExistsError)) throw error;
      const raced = await deps.store.get(id); // the same key, submitted concurrently
      if (!raced) throw error;
      return { record: sameRequest(raced.record, record.requestDigest), created: false };
    }
    deps.metrics.phaseReached(deps.executor.pluginName(record), Phase.QUEUED);
    try {
      await deps.events.publish(eventOf(record));
    } catch (error) {
      // The execution exists and will run: failing the call now would invite a second one. Watchers start
      // from the next event instead.
      deps.log.warn("could not publish the QUEUED event", { execution: id, error });
    }
    return { record, created: true };
  }

  function sameRequest(record: ExecutionRecord, digest: string): ExecutionRecord {
    if (record.requestDigest !== digest) {
      throw new ConnectError(
        `idempotency key "${record.idempotencyKey}" was used for a different request (execution ${record.id})`,
        Code.AlreadyExists,
      );
    }
    return record;
  }

  /** The execution's record, for a caller allowed its namespace. */
  async function load(id: string, access: NamespaceAccess): Promise<ExecutionRecord> {
    const stored = await deps.store.get(checkExecutionId(id));
    if (!stored) throw new ConnectError(`execution "${id}" was not found`, Code.NotFound);
    access.checkExecution(id, stored.record.metadata?.namespace ?? "");
    return stored.record;
  }

  /** The execution's events from `fromSequence`, in order, ending after the final one. */
  async function* follow(record: ExecutionRecord, fromSequence: bigint, ctx: HandlerContext): AsyncGenerator<TaskEvent> {
    let next = fromSequence > 0n ? fromSequence : 1n;
    const abort = new AbortController();
    const stop = (): void => abort.abort();
    ctx.signal.addEventListener("abort", stop, { once: true });
    const namespace = record.metadata?.namespace ?? "";
    // The server may end an ordered consumer under it (a missed heartbeat, a NATS reconnect): a watch must only
    // end after the final event or when its caller leaves, so it re-follows and skips what it already sent.
    let events = deps.events.follow(namespace, record.id, abort.signal)[Symbol.asyncIterator]();
    try {
      let pending = events.next();
      for (;;) {
        const result = await within(pending.catch((error: unknown) => ({ error })), idleCheckMs);
        if (ctx.signal.aborted) return;
        let event: TaskEvent | undefined;
        if (result === "idle") {
          // No event for a while: if the record has ended but its final event is missing (a host died between
          // writing and publishing), end from the record, so no watcher waits forever for an end that happened.
          const latest = (await deps.store.get(record.id))?.record;
          if (latest && isFinalPhase(latest.phaseInfo?.phase ?? Phase.UNSPECIFIED)) {
            // Its final event was sent already, or the caller asked to start after it: nothing more will come.
            if (latest.lastEventSequence < next) return;
            event = eventOf(latest);
          }
        } else if ("error" in result || result.done) {
          deps.log.warn("event subscription ended early; following again", {
            execution: record.id,
            error: "error" in result ? result.error : undefined,
          });
          await events.return?.(undefined);
          await new Promise((resolve) => setTimeout(resolve, 100));
          events = deps.events.follow(namespace, record.id, abort.signal)[Symbol.asyncIterator]();
          pending = events.next();
          continue;
        } else {
          pending = events.next();
          event = result.value;
        }
        if (!event || event.sequence < next) continue;
        next = event.sequence + 1n;
        yield event;
        if (isFinalPhase(event.phaseInfo?.phase ?? Phase.UNSPECIFIED)) return;
      }
    } finally {
      ctx.signal.removeEventListener("abort", stop);
      abort.abort();
      await events.return?.(undefined);
    }
  }

  /**
   * A new execution's events from a subscription made before it was stored: no consumer to create on the hot path
   * of ExecuteTask. Events are put in sequence order; if the next one does not come within the idle time (a lost
   * message, or simply a long task), the stream itself takes over from there.
   */
  async function* followLive(record: ExecutionRecord, live: LiveEvents, from: bigint, ctx: HandlerContext): AsyncGenerator<TaskEvent> {
    let next = from;
    const early = new Map<bigint, TaskEvent>();
    const events = live.events[Symbol.asyncIterator]();
    for (;;) {
      const result = await within(events.next().catch(() => ({ done: true as const, value: undefined })), idleCheckMs);
      if (ctx.signal.aborted) return;
      if (result === "idle" || result.done) {
        live.close();
        yield* follow(record, next, ctx);
        return;
      }
      if (result.value.sequence >= next) early.set(result.value.sequence, result.value);
      for (let event = early.get(next); event; event = early.get(next)) {
        early.delete(next);
        next += 1n;
        yield event;
        if (isFinalPhase(event.phaseInfo?.phase ?? Phase.UNSPECIFIED)) return;
      }
    }
  }

  return {
    async createTask(request, ctx) {
      const { record, created } = await storeExecution((await admit(request, NamespaceAccess.of(ctx))).record);
      return { execution: executionView(record), created };
    },

    async getTask(request, ctx) {
      return { execution: executionView(await load(request.id, NamespaceAccess.of(ctx))) };
    },

    async *watchTask(request, ctx) {
      const record = await load(request.id, NamespaceAccess.of(ctx));
      // A caller resuming after the final event (from_sequence past it) gets an empty stream, not a wait.
      if (isFinalPhase(record.phaseInfo?.phase ?? Phase.UNSPECIFIED) && request.fromSequence > record.lastEventSequence) return;
      for await (const event of follow(record, request.fromSequence, ctx)) yield { event };
    },

    async abortTask(request, ctx) {
      const id = checkExecutionId(request.id);
      if (request.reason.length > 1024) throw invalid("reason", "is longer than 1024 characters");
      await load(id, NamespaceAccess.of(ctx));
      const outcome = await deps.executor.abort(id, request.reason || "aborted by request");
      if (outcome === "not-found") throw new ConnectError(`execution "${id}" was not found`, Code.NotFound);
      if (outcome === "final") {
        const record = await load(id, NamespaceAccess.of(ctx));
        throw new ConnectError(
          `execution "${id}" has already ended in ${phaseName(record.phaseInfo?.phase ?? Phase.UNSPECIFIED)}`,
          Code.FailedPrecondition,
        );
      }
      return { execution: executionView(outcome.record) };
    },

    async listTasks(request, ctx) {
      const namespace = request.namespace === "" ? "" : checkNamespace(request.namespace, "namespace");
      const access = NamespaceAccess.of(ctx);
      if (namespace) access.checkNamespace(namespace);
      if (request.pageSize > MAX_PAGE_SIZE) throw invalid("page_size", `must be at most ${MAX_PAGE_SIZE}`);
      const pageSize = request.pageSize || DEFAULT_PAGE_SIZE;
      const after = decodePageToken(request.pageToken);
      const phases = new Set(request.phases);
      const ids = (await deps.store.ids()).filter((id) => id > after);
      const page: TaskExecution[] = [];
      let last = "";
      let index = 0;
      // Read in small parallel batches: a filter may skip many records before a page fills.
      while (index < ids.length && page.length < pageSize) {
        const batch = ids.slice(index, index + 32);
        const records = await Promise.all(batch.map((id) => deps.store.get(id)));
        for (let i = 0; i < records.length && page.length < pageSize; i++) {
          index++;
          last = batch[i]!;
          const record = records[i]?.record;
          if (!record) continue;
          if (namespace && record.metadata?.namespace !== namespace) continue;
          // Executions of namespaces the caller may not use are never listed.
          if (!access.allows(record.metadata?.namespace ?? "")) continue;
          if (phases.size > 0 && !phases.has(record.phaseInfo?.phase ?? Phase.UNSPECIFIED)) continue;
          page.push(executionView(record));
        }
      }
      return { executions: page, nextPageToken: index < ids.length ? encodePageToken(last) : "" };
    },

    async *executeTask(request, ctx) {
      const { template, inputs, metadata, idempotencyKey } = request;
      const { record, descriptor } = await admit(create(CreateTaskRequestSchema, { template, inputs, metadata, idempotencyKey }), NamespaceAccess.of(ctx));
      let live: LiveEvents | undefined;
      const subscribe = (): void => {
        live = deps.events.listen(record.metadata?.namespace ?? "", record.id);
      };
      try {
        // The fast path takes no quota token: a plugin with a quota goes through the queue, where executions wait.
        if (descriptor?.kind === PluginKind.SYNC && !record.idempotencyKey && !hasQuota(descriptor.properties?.quota)) {
          // Not bound to ctx.signal: once Do is called, its outcome is stored whether or not the caller waits.
          // QUEUED goes out with the outcome, not before: the execution is not visible until then anyway, and one
          // write to the caller instead of two shortens every call (docs/benchmarks.md).
          const outcome = await deps.direct.run(record, subscribe);
          yield { event: eventOf(record) };
          for (const event of outcome.events) yield { event };
          if (!outcome.handedOver || !live) return;
          const next = (outcome.events.at(-1)?.sequence ?? record.lastEventSequence) + 1n;
          for await (const event of followLive(record, live, next, ctx)) yield { event };
          return;
        }
        const stored = await storeExecution(record, subscribe);
        const events = stored.created && live ? followLive(stored.record, live, 1n, ctx) : follow(stored.record, 1n, ctx);
        for await (const event of events) yield { event };
      } finally {
        live?.close();
      }
    },
  } satisfies ServiceImpl<typeof TaskService> as ServiceImpl<typeof TaskService>;
}

/** What `promise` resolves to, or "idle" when it has not resolved within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "idle"> {
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<"idle">((resolve) => (timer = setTimeout(() => resolve("idle"), ms)));
  try {
    return await Promise.race([promise, idle]);
  } finally {
    clearTimeout(timer);
  }
}

function withNamespace(request: CreateTaskRequest, namespace: string): TaskExecutionMetadata {
  const metadata = request.metadata ? clone(TaskExecutionMetadataSchema, request.metadata) : create(TaskExecutionMetadataSchema);
  metadata.namespace = namespace;
  return metadata;
}

function encodePageToken(lastId: string): string {
  return Buffer.from(`after:${lastId}`).toString("base64url");
}

function decodePageToken(token: string): string {
  if (token === "") return "";
  const text = Buffer.from(token, "base64url").toString();
  if (!text.startsWith("after:") || text.length > 80) throw invalid("page_token", "is not a token this service gave");
  return text.slice("after:".length);
}
