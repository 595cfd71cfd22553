// The TypeScript kit's conformance reference plugin: acts out the task's pluginbridge.conformance.v1.Script,
// exactly as the comment of proto/pluginbridge/conformance/v1/conformance.proto specifies, so that
// test/conformance/ can hold every kit to the same behaviour. Runs as the async plugin `conformance-typescript`
// or, with CONFORMANCE_KIND=sync, as `conformance-sync-typescript`, or with CONFORMANCE_KIND=core, as
// `conformance-core-typescript`.
//   node --import tsx sidecars/typescript/conformance/main.ts
import { appendFileSync, existsSync } from "node:fs";
import type { JsonObject } from "@bufbuild/protobuf";
import {
  defineAsyncPlugin,
  defineCorePlugin,
  defineSyncPlugin,
  GrpcStatus,
  phasePermanentFailure,
  phaseRetryableFailure,
  phaseRunning,
  phaseSuccess,
  PluginError,
  readTextState,
  serve,
  textState,
  type PhaseResult,
  type Plugin,
  type PluginContext,
  type PluginState,
  type ServeHandle,
} from "@plugin-bridge/kit";
import { Behavior, ScriptSchema, type Script } from "@plugin-bridge/protocol/pluginbridge/conformance/v1/conformance_pb.js";
import { ErrorKind } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";

const LANGUAGE = "typescript";
const audit = process.env.CONFORMANCE_AUDIT_FILE;
const getsByAttempt = new Map<string, number>();
let instanceId = process.env.PLUGIN_BRIDGE_INSTANCE_ID ?? "";

const auditTimes = process.env.CONFORMANCE_AUDIT_TIMES === "1";

function record(call: string, ctx: PluginContext<Script>): void {
  if (audit) appendFileSync(audit, `${call} ${ctx.executionId} ${ctx.attempt} ${instanceId}${auditTimes ? ` ${Date.now()}` : ""}\n`);
}

function outputs(ctx: PluginContext<Script>, extra: JsonObject = {}): JsonObject {
  const result: JsonObject = { language: LANGUAGE, instance: instanceId, echo: ctx.spec.echo, ...extra };
  if (ctx.spec.outputBytes > 0) result.payload = "x".repeat(ctx.spec.outputBytes);
  // Which secrets arrived, and how long each is: proof of delivery without the values.
  const secrets = Object.entries(ctx.secrets);
  if (secrets.length > 0) result.secrets = Object.fromEntries(secrets.map(([name, value]) => [name, value.length]));
  return result;
}

/** Acts out a behavior: returns a failure phase to report, or undefined to go on and succeed. */
async function act(behavior: Behavior, ctx: PluginContext<Script>): Promise<PhaseResult | undefined> {
  const message = ctx.spec.message || "scripted failure";
  switch (behavior) {
    case Behavior.UNSPECIFIED:
    case Behavior.OK:
      return undefined;
    case Behavior.HANG:
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      throw new PluginError(GrpcStatus.CANCELLED, "cancelled");
    case Behavior.CRASH:
      throw new Error(message);
    case Behavior.USER_ERROR:
      throw new PluginError(GrpcStatus.INVALID_ARGUMENT, message);
    case Behavior.RETRYABLE:
      return phaseRetryableFailure("Scripted", message, ErrorKind.SYSTEM);
    case Behavior.PERMANENT:
      return phasePermanentFailure("Scripted", message, ErrorKind.USER);
  }
}

/** Acts out a behavior of a call that cannot report a phase (Create, Delete, Abort, Finalize). */
async function actWithoutPhase(behavior: Behavior, ctx: PluginContext<Script>, call: string): Promise<void> {
  if (await act(behavior, ctx)) throw new PluginError(GrpcStatus.INVALID_ARGUMENT, `${call} cannot report a phase`);
}

/** The layout of the core plugin's state: the attempt's Handle count as decimal ASCII. */
const STATE_VERSION = 1;

/** The Handles of the attempt so far, from the state the host passed back (none without one). */
function handlesSoFar(state: PluginState | undefined): number {
  const text = readTextState(state, STATE_VERSION) ?? "0";
  if (!/^[0-9]+$/.test(text)) {
    throw new PluginError(GrpcStatus.FAILED_PRECONDITION, `state data ${JSON.stringify(text)} is not a Handle count`);
  }
  return Number(text);
}

/** "<a>/<b>" from the environment as two numbers, or undefined when the variable is unset. */
function pair(variable: string): [number, number] | undefined {
  const value = process.env[variable];
  if (!value) return undefined;
  const [a, b] = value.split("/").map(Number);
  if (!Number.isFinite(a) || !Number.isFinite(b)) throw new Error(`${variable} must be "<number>/<number>", not "${value}"`);
  return [a!, b!];
}
const quota = pair("CONFORMANCE_QUOTA");
const readLimit = pair("CONFORMANCE_READ_LIMIT");
const writeLimit = pair("CONFORMANCE_WRITE_LIMIT");

const properties = {
  resyncInterval: Number(process.env.CONFORMANCE_RESYNC_MS ?? 200),
  createTimeout: 2_000,
  getTimeout: 2_000,
  deleteTimeout: 2_000,
  doTimeout: 2_000,
  handleTimeout: 2_000,
  abortTimeout: 2_000,
  finalizeTimeout: 2_000,
  maxSystemFailures: 2,
  ...(quota && { quota: { total: quota[0], perNamespace: quota[1] } }),
  ...(readLimit && { readLimit: { qps: readLimit[0], burst: readLimit[1] } }),
  ...(writeLimit && { writeLimit: { qps: writeLimit[0], burst: writeLimit[1] } }),
};

/** Set once serve() answers; pushes are scheduled for later, so it is always set by then. */
let server: ServeHandle | undefined;

/** Script.push_after_ms: a push of PHASE_SUCCESS that much later, as a plugin that learns of the end would send. */
function schedulePush(ctx: PluginContext<Script>, extra: JsonObject = {}): void {
  if (ctx.spec.pushAfterMs === 0) return;
  const execution = { executionId: ctx.executionId, attempt: ctx.attempt };
  setTimeout(() => server?.push(execution, phaseSuccess(outputs(ctx, { ...extra, pushed: true }))), ctx.spec.pushAfterMs);
}

function referencePlugin(kind: string | undefined): Plugin {
  switch (kind) {
    case "sync":
      return defineSyncPlugin({
        name: `conformance-sync-${LANGUAGE}`,
        version: "1.0.0",
        taskTypes: [{ type: `conformance-sync-${LANGUAGE}`, version: 1 }],
        specification: ScriptSchema,
        properties,
        async do(ctx) {
          const failed = await act(ctx.spec.do, ctx);
          record("do", ctx);
          return failed ?? phaseSuccess(outputs(ctx));
        },
      });
    case "core":
      return defineCorePlugin({
        name: `conformance-core-${LANGUAGE}`,
        version: "1.0.0",
        taskTypes: [{ type: `conformance-core-${LANGUAGE}`, version: 1 }],
        specification: ScriptSchema,
        properties,
        async handle(ctx, state) {
          const handles = handlesSoFar(state) + 1;
          const next = textState(STATE_VERSION, String(handles));
          if (handles === 1) schedulePush(ctx, { handles });
          if (handles <= ctx.spec.polls) {
            record("handle", ctx);
            return { ...phaseRunning("polling"), state: next };
          }
          if (ctx.spec.waitForFile && !existsSync(ctx.spec.waitForFile)) {
            record("handle", ctx);
            return { ...phaseRunning("waiting"), state: next };
          }
          const failed = await act(ctx.spec.handle, ctx);
          record("handle", ctx);
          return { ...(failed ?? phaseSuccess(outputs(ctx, { handles }))), state: next };
        },
        async abort(ctx) {
          await actWithoutPhase(ctx.spec.abort, ctx, "Abort");
          record("abort", ctx);
        },
        async finalize(ctx) {
          await actWithoutPhase(ctx.spec.finalize, ctx, "Finalize");
          record("finalize", ctx);
        },
      });
    default:
      return defineAsyncPlugin({
        name: `conformance-${LANGUAGE}`,
        version: "1.0.0",
        taskTypes: [{ type: `conformance-${LANGUAGE}`, version: 1 }],
        specification: ScriptSchema,
        properties,
        async create(ctx) {
          await actWithoutPhase(ctx.spec.create, ctx, "Create");
          if (ctx.spec.createDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, ctx.spec.createDelayMs));
          record("create", ctx);
          schedulePush(ctx);
          return { execution: ctx.executionId, attempt: ctx.attempt };
        },
        async get(ctx) {
          const key = `${ctx.executionId}/${ctx.attempt}`;
          const gets = (getsByAttempt.get(key) ?? 0) + 1;
          getsByAttempt.set(key, gets);
          if (ctx.spec.waitForFile && !existsSync(ctx.spec.waitForFile)) {
            record("get", ctx);
            return phaseRunning("waiting");
          }
          if (gets <= ctx.spec.polls) {
            record("get", ctx);
            return phaseRunning("polling");
          }
          const failed = await act(ctx.spec.get, ctx);
          record("get", ctx);
          return failed ?? phaseSuccess(outputs(ctx, { gets }));
        },
        async delete(ctx) {
          await actWithoutPhase(ctx.spec.delete, ctx, "Delete");
          record("delete", ctx);
        },
      });
  }
}

server = await serve(referencePlugin(process.env.CONFORMANCE_KIND));
instanceId = server.instanceId;
