// What a plugin author declares: the plugin's identity, the task types it serves, its Plugin Specification
// message and its methods. `defineAsyncPlugin`, `defineSyncPlugin` and `defineCorePlugin` only check and tag the
// declaration; `serve()` turns it into gRPC services.
import type { DescMessage, JsonObject, MessageShape } from "@bufbuild/protobuf";
import type {
  TaskContext,
  TaskExecutionMetadata,
  TaskTemplate,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { Logger } from "./log.js";
import type { PhaseResult } from "./phases.js";

export type Awaitable<T> = T | Promise<T>;

/** One (type, type_version) pair the plugin serves, as in TaskTemplate.type and type_version. */
export interface TaskTypeRef {
  type: string;
  version: number;
  /**
   * The oldest type version also accepted: the host sends tasks of a version from here up to `version` to this
   * plugin when no live plugin serves their exact version (the newest such plugin wins).
   */
  minVersion?: number;
}

/** A token bucket on one kind of call: `qps` a second on average, up to `burst` (default max(1, ceil(qps))) at once. */
export interface RateLimit {
  qps: number;
  burst?: number;
}

/** At most `total` executions at once, and at most `perNamespace` in any one namespace; 0 or unset: no bound. */
export interface ResourceQuota {
  total?: number;
  perNamespace?: number;
}

/**
 * How the host should drive the plugin; durations in milliseconds. Unset values take the host's defaults
 * (resync 5 s, create 30 s, get 10 s, delete 30 s, do 60 s, handle 10 s, abort 30 s, finalize 30 s,
 * 5 system failures).
 */
export interface PluginProperties {
  resyncInterval?: number;
  createTimeout?: number;
  getTimeout?: number;
  deleteTimeout?: number;
  doTimeout?: number;
  handleTimeout?: number;
  abortTimeout?: number;
  finalizeTimeout?: number;
  maxSystemFailures?: number;
  /** How often each host may call Get. Unset: no limit. */
  readLimit?: RateLimit;
  /** How often each host may call Create, Delete, Do, Handle, Abort and Finalize. Unset: no limit. */
  writeLimit?: RateLimit;
  /** How many executions may hold the plugin at once, across all hosts. Unset: no quota. */
  quota?: ResourceQuota;
}

/** Everything one plugin call gets. */
export interface PluginContext<Spec> {
  /** `template.custom`, decoded into the plugin's specification message. */
  readonly spec: Spec;
  /** The execution's id; with `attempt`, the idempotency key of the call. */
  readonly executionId: string;
  /** The attempt, starting at 1. */
  readonly attempt: number;
  /** The task template as submitted. */
  readonly template: TaskTemplate;
  /** The task's inputs, as JSON. */
  readonly inputs: JsonObject;
  /** Namespace, labels, owner and the like. */
  readonly metadata: TaskExecutionMetadata;
  /** The secrets the template requested, resolved by the host, keyed "group/key". */
  readonly secrets: Readonly<Record<string, string>>;
  /** Fires when the host cancels the call or its deadline passes: stop work and return (or throw). */
  readonly signal: AbortSignal;
  /** The raw TaskContext message, for anything not lifted above. */
  readonly taskContext: TaskContext;
  /** Writes to stderr, tagged with the plugin's name. */
  readonly log: Logger;
}

/** What every plugin declares, whatever its kind. */
export interface PluginDeclaration<Desc extends DescMessage> {
  /** Unique among plugins, such as "sensor". Letters, digits, '-' and '_'. */
  name: string;
  /** The implementation's version, such as "1.4.0". */
  version: string;
  /** The (type, type_version) pairs served. */
  taskTypes: TaskTypeRef[];
  /** The message `template.custom` must parse as, such as `FileSensorSchema`. */
  specification: Desc;
  properties?: PluginProperties;
  /** Also serve every task type no live plugin claims (Flyte's default plugin). */
  defaultForUnclaimedTypes?: boolean;
}

/**
 * How resource meta travels: "json" (default) encodes what `create` returns with JSON.stringify and hands
 * `get`/`delete` the parsed value; "bytes" passes a Uint8Array through untouched.
 */
export type ResourceMetaEncoding = "json" | "bytes";

/** An async plugin, after Flyte's webapi.AsyncPlugin: create remote work, poll it, delete it. */
export interface AsyncPluginDefinition<Desc extends DescMessage, Meta> extends PluginDeclaration<Desc> {
  resourceMeta?: ResourceMetaEncoding;
  /**
   * Starts the remote work and returns what is needed to find it again. The kit makes it idempotent by
   * execution id and attempt: it runs at most once per attempt, even across restarts and instances.
   */
  create(ctx: PluginContext<MessageShape<Desc>>): Awaitable<Meta>;
  /** Reports the remote work's phase; return `phaseSuccess(outputs)` once it is done. */
  get(ctx: PluginContext<MessageShape<Desc>>, meta: Meta): Awaitable<PhaseResult>;
  /** Stops the remote work and releases what it holds; must tolerate work that has already finished. */
  delete(ctx: PluginContext<MessageShape<Desc>>, meta: Meta): Awaitable<void>;
}

/** A sync plugin, after Flyte's webapi.SyncPlugin: one call runs the whole task. */
export interface SyncPluginDefinition<Desc extends DescMessage> extends PluginDeclaration<Desc> {
  /** Runs the task to its end; must return a terminal phase (success, retryable or permanent failure). */
  do(ctx: PluginContext<MessageShape<Desc>>): Awaitable<PhaseResult>;
}

/**
 * A core plugin's own state for one attempt, after Flyte's PluginStateReader and PluginStateWriter: opaque to the
 * host, which keeps it with the execution and passes it to every later call of the attempt.
 */
export interface PluginState {
  /** The layout of `data`, chosen by the plugin (a uint32), so a new plugin version can tell an old state. */
  version: number;
  data: Uint8Array;
}

/** What Handle returns: a phase, as the phase constructors build it, and the new state. */
export interface HandleResult extends PhaseResult {
  /** The attempt's new state; left out, the host keeps the state the call got. */
  state?: PluginState;
}

/**
 * A core plugin, after Flyte's core plugin interface: the host calls `handle` every resync interval with the
 * state the previous one returned, until a terminal phase; then, or after `abort`, `finalize`.
 */
export interface CorePluginDefinition<Desc extends DescMessage> extends PluginDeclaration<Desc> {
  /**
   * Advances the attempt and reports its phase. `state` is undefined on the attempt's first Handle. Must be
   * idempotent by execution id, attempt and `state`: after a host crash the same Handle may come again.
   */
  handle(ctx: PluginContext<MessageShape<Desc>>, state: PluginState | undefined): Awaitable<HandleResult>;
  /**
   * Stops the attempt's work, on abort or when the task's timeout passes; `finalize` follows. Must tolerate an
   * attempt with no work yet (no state) and work that has already ended.
   */
  abort(ctx: PluginContext<MessageShape<Desc>>, state: PluginState | undefined, reason: string): Awaitable<void>;
  /**
   * Releases what the attempt holds, after its terminal phase or its abort. The kit makes it idempotent by
   * execution id and attempt: once it succeeded it does not run again, even across restarts and instances.
   */
  finalize(ctx: PluginContext<MessageShape<Desc>>, state: PluginState | undefined): Awaitable<void>;
}

export interface AsyncPlugin<Desc extends DescMessage = DescMessage, Meta = unknown>
  extends AsyncPluginDefinition<Desc, Meta> {
  readonly kind: "async";
}

export interface SyncPlugin<Desc extends DescMessage = DescMessage> extends SyncPluginDefinition<Desc> {
  readonly kind: "sync";
}

export interface CorePlugin<Desc extends DescMessage = DescMessage> extends CorePluginDefinition<Desc> {
  readonly kind: "core";
}

export type Plugin = AsyncPlugin<DescMessage, any> | SyncPlugin<DescMessage> | CorePlugin<DescMessage>;

const namePattern = /^[A-Za-z0-9_-]+$/;

function checkDeclaration(declaration: PluginDeclaration<DescMessage>): void {
  // Checked at declaration time so a bad plugin fails when it starts, not at its first call.
  if (!namePattern.test(declaration.name)) {
    throw new Error(`plugin name ${JSON.stringify(declaration.name)} must be letters, digits, '-' and '_'`);
  }
  if (!declaration.version) throw new Error(`plugin ${declaration.name}: version must not be empty`);
  if (declaration.taskTypes.length === 0) {
    throw new Error(`plugin ${declaration.name}: taskTypes must name at least one task type`);
  }
  for (const taskType of declaration.taskTypes) {
    if (!taskType.type) throw new Error(`plugin ${declaration.name}: a task type must not be empty`);
    if (!Number.isInteger(taskType.version) || taskType.version < 0 || taskType.version > 2 ** 31 - 1) {
      throw new Error(`plugin ${declaration.name}: task type ${taskType.type} has an invalid version`);
    }
    const min = taskType.minVersion;
    if (min !== undefined && (!Number.isInteger(min) || min < 0 || min > taskType.version)) {
      throw new Error(`plugin ${declaration.name}: task type ${taskType.type} has minVersion ${min}, not 0…${taskType.version}`);
    }
  }
  if (declaration.specification?.kind !== "message") {
    throw new Error(`plugin ${declaration.name}: specification must be a generated message schema`);
  }
  const { readLimit, writeLimit, quota, ...numbers } = declaration.properties ?? {};
  for (const [key, value] of Object.entries(quota ?? {})) {
    if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > 2 ** 32 - 1)) {
      throw new Error(`plugin ${declaration.name}: properties.quota.${key} must be a whole number ≥ 0`);
    }
  }
  for (const [key, value] of Object.entries(numbers)) {
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value < 0)) {
      throw new Error(`plugin ${declaration.name}: properties.${key} must be a non-negative number`);
    }
  }
  for (const [key, limit] of Object.entries({ readLimit, writeLimit })) {
    if (limit === undefined) continue;
    const { qps, burst = 0 } = limit;
    if (!Number.isFinite(qps) || qps <= 0 || !Number.isInteger(burst) || burst < 0 || burst > 2 ** 32 - 1) {
      throw new Error(`plugin ${declaration.name}: properties.${key} needs qps > 0 and a whole burst ≥ 0`);
    }
  }
}

/** Declares an async plugin. `Meta` is what `create` returns and `get`/`delete` receive back. */
export function defineAsyncPlugin<Desc extends DescMessage, Meta>(
  definition: AsyncPluginDefinition<Desc, Meta>,
): AsyncPlugin<Desc, Meta> {
  checkDeclaration(definition);
  return { ...definition, kind: "async" };
}

/** Declares a sync plugin. */
export function defineSyncPlugin<Desc extends DescMessage>(definition: SyncPluginDefinition<Desc>): SyncPlugin<Desc> {
  checkDeclaration(definition);
  return { ...definition, kind: "sync" };
}

/** Declares a core plugin. */
export function defineCorePlugin<Desc extends DescMessage>(definition: CorePluginDefinition<Desc>): CorePlugin<Desc> {
  checkDeclaration(definition);
  return { ...definition, kind: "core" };
}
