// The plugin's gRPC services: Describe, and the Async, Sync or Core service, calling the author's methods with a
// decoded PluginContext and turning their results into responses.
import { create, type DescMessage, type JsonObject, type Message } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { status, type UntypedServiceImplementation } from "@grpc/grpc-js";
import {
  AsyncPluginService,
  CorePluginService,
  PluginMetadataService,
  SyncPluginService,
  type PluginDescriptor,
  type PluginState as PluginStateMessage,
} from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Phase, PhaseInfoSchema, type PhaseInfo } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { buildPluginContext } from "./context.js";
import { PluginError } from "./errors.js";
import type { IdempotentCalls } from "./idempotency.js";
import { implementService, type CallGate, type CallInfo, type CallObserver } from "./grpc-service.js";
import { createKey, finalizeKey } from "./keys.js";
import type { Logger } from "./log.js";
import { decodeResourceMeta, encodeResourceMeta } from "./meta.js";
import { isTerminalPhase, type PhaseResult } from "./phases.js";
import type { AsyncPlugin, CorePlugin, Plugin, PluginContext, PluginState, SyncPlugin } from "./plugin.js";

/** A JSON round trip: drops `undefined`, turns Dates into strings, so any plain value fits a Struct. */
function plainJson(value: JsonObject | undefined, what: string): JsonObject | undefined {
  if (value === undefined) return undefined;
  const plain: unknown = JSON.parse(JSON.stringify(value));
  if (typeof plain !== "object" || plain === null || Array.isArray(plain)) {
    throw new PluginError(status.INTERNAL, `${what} must be a JSON object`);
  }
  return plain as JsonObject;
}

/** Checks and completes what a plugin returned from Get, Do or Handle, or pushes. */
export function phaseResponse(result: PhaseResult, method: string): { phaseInfo: PhaseInfo; outputs?: JsonObject } {
  if (!result || typeof result !== "object" || !result.phaseInfo) {
    throw new PluginError(status.INTERNAL, `${method} returned no phaseInfo; return phaseSuccess(), phaseRunning() ...`);
  }
  const init = result.phaseInfo;
  const phaseInfo = create(PhaseInfoSchema, { ...init, customInfo: plainJson(init.customInfo, "phaseInfo.customInfo") });
  if (phaseInfo.phase === Phase.UNSPECIFIED) {
    throw new PluginError(status.INTERNAL, `${method} returned PHASE_UNSPECIFIED`);
  }
  phaseInfo.occurredAt ??= timestampNow();
  return { phaseInfo, outputs: plainJson(result.outputs, "outputs") };
}

/** Describe: the same descriptor every announcement carries. */
export function metadataService(descriptor: PluginDescriptor, gate?: CallGate): UntypedServiceImplementation {
  return implementService(
    PluginMetadataService,
    { describe: async () => ({ plugin: descriptor }) },
    gate,
  );
}

function contextFor(plugin: Plugin, log: Logger) {
  return (request: { context?: Parameters<typeof buildPluginContext>[1] }, info: CallInfo) =>
    buildPluginContext(plugin.specification, request.context, info.signal, log) as PluginContext<Message>;
}

/** AsyncPluginService over an async plugin, with Create made idempotent by `creates`. */
export function asyncService(
  plugin: AsyncPlugin<DescMessage, unknown>,
  creates: IdempotentCalls,
  log: Logger,
  gate?: CallGate,
  observe?: CallObserver,
): UntypedServiceImplementation {
  const encoding = plugin.resourceMeta ?? "json";
  const context = contextFor(plugin, log);
  return implementService(
    AsyncPluginService,
    {
      async create(request, info) {
        // The context is decoded before the idempotency lookup so a bad `custom` fails fast with its field.
        const ctx = context(request, info);
        const key = createKey(plugin.name, ctx.executionId, ctx.attempt);
        const resourceMeta = await creates.run(key, info.signal, async (signal) => {
          log("info", "create", { execution: ctx.executionId, attempt: ctx.attempt });
          return encodeResourceMeta(encoding, await plugin.create({ ...ctx, signal }));
        });
        return { resourceMeta };
      },
      async get(request, info) {
        const ctx = context(request, info);
        const meta = decodeResourceMeta(encoding, request.resourceMeta);
        return phaseResponse(await plugin.get(ctx, meta), "get");
      },
      async delete(request, info) {
        const ctx = context(request, info);
        const meta = decodeResourceMeta(encoding, request.resourceMeta);
        log("info", "delete", { execution: ctx.executionId, attempt: ctx.attempt });
        await plugin.delete(ctx, meta);
        return {};
      },
    },
    gate,
    observe,
  );
}

/** SyncPluginService over a sync plugin. */
export function syncService(
  plugin: SyncPlugin<DescMessage>,
  log: Logger,
  gate?: CallGate,
  observe?: CallObserver,
): UntypedServiceImplementation {
  const context = contextFor(plugin, log);
  return implementService(
    SyncPluginService,
    {
      async do(request, info) {
        const ctx = context(request, info);
        const response = phaseResponse(await plugin.do(ctx), "do");
        // DoResponse carries the end of the task: a non-terminal phase would leave the host nothing to poll.
        if (!isTerminalPhase(response.phaseInfo.phase)) {
          throw new PluginError(
            status.INTERNAL,
            `do returned the non-terminal phase ${Phase[response.phaseInfo.phase]}; sync plugins must finish the task`,
          );
        }
        return response;
      },
    },
    gate,
    observe,
  );
}

/** The state a core plugin method gets: a plain copy of the request's, or undefined on a first Handle. */
function stateIn(state: PluginStateMessage | undefined): PluginState | undefined {
  return state ? { version: state.version, data: state.data } : undefined;
}

/** Checks the state a Handle returned; undefined leaves the response's state unset, which keeps the old one. */
function stateOut(state: PluginState | undefined): PluginState | undefined {
  if (state === undefined) return undefined;
  const valid =
    typeof state === "object" &&
    state !== null &&
    Number.isInteger(state.version) &&
    state.version >= 0 &&
    state.version <= 0xffff_ffff &&
    state.data instanceof Uint8Array;
  if (!valid) {
    throw new PluginError(status.INTERNAL, "handle returned a state that is not { version: uint32, data: Uint8Array }");
  }
  return { version: state.version, data: state.data };
}

/** What Finalize stores in `pb_creates` once it succeeded: the presence of the key is what counts. */
const FINALIZED = new TextEncoder().encode("finalized");

/** CorePluginService over a core plugin, with Finalize made to run once per attempt by `finalizes`. */
export function coreService(
  plugin: CorePlugin<DescMessage>,
  finalizes: IdempotentCalls,
  log: Logger,
  gate?: CallGate,
  observe?: CallObserver,
): UntypedServiceImplementation {
  const context = contextFor(plugin, log);
  return implementService(
    CorePluginService,
    {
      async handle(request, info) {
        const ctx = context(request, info);
        const result = await plugin.handle(ctx, stateIn(request.state));
        return { ...phaseResponse(result, "handle"), state: stateOut(result.state) };
      },
      async abort(request, info) {
        const ctx = context(request, info);
        log("info", "abort", { execution: ctx.executionId, attempt: ctx.attempt, reason: request.reason });
        await plugin.abort(ctx, stateIn(request.state), request.reason);
        return {};
      },
      async finalize(request, info) {
        // Decoded before the idempotency lookup, as for Create: a bad `custom` fails fast with its field.
        const ctx = context(request, info);
        const key = finalizeKey(plugin.name, ctx.executionId, ctx.attempt);
        await finalizes.run(key, info.signal, async (signal) => {
          log("info", "finalize", { execution: ctx.executionId, attempt: ctx.attempt });
          await plugin.finalize({ ...ctx, signal }, stateIn(request.state));
          return FINALIZED;
        });
        return {};
      },
    },
    gate,
    observe,
  );
}
