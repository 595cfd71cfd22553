// @plugin-bridge/kit: write a plugin-bridge plugin in TypeScript. Declare it, implement its methods, serve().
// The SDK half (submit tasks, watch them) is exported separately as "@plugin-bridge/kit/sdk".
export {
  defineAsyncPlugin,
  defineCorePlugin,
  defineSyncPlugin,
  type AsyncPlugin,
  type AsyncPluginDefinition,
  type Awaitable,
  type CorePlugin,
  type CorePluginDefinition,
  type HandleResult,
  type Plugin,
  type PluginContext,
  type PluginDeclaration,
  type PluginProperties,
  type PluginState,
  type RateLimit,
  type ResourceQuota,
  type ResourceMetaEncoding,
  type SyncPlugin,
  type SyncPluginDefinition,
  type TaskTypeRef,
} from "./plugin.js";
export {
  isTerminalPhase,
  phaseInitializing,
  phasePermanentFailure,
  phaseQueued,
  phaseRetryableFailure,
  phaseRunning,
  phaseSuccess,
  phaseWaitingForResources,
  type PhaseDetails,
  type PhaseResult,
} from "./phases.js";
export { jsonState, readJsonState, readTextState, textState } from "./state.js";
export { GrpcStatus, isPluginError, PluginError, toServiceError } from "./errors.js";
export { serve, type ServeHandle, type ServeOptions } from "./serve.js";
export { decodeSpecification, buildPluginContext } from "./context.js";
export { fileDescriptorSetFor, pluginDescriptor } from "./descriptor.js";
export {
  createGrpcClient,
  grpcMethodPath,
  grpcServiceDefinition,
  implementService,
  type CallGate,
  type CallInfo,
  type CallObserver,
  type ObservedCall,
  type ClientCallOptions,
  type MethodsOf,
  type PromiseClient,
  type ServiceImplementation,
} from "./grpc-service.js";
export { HealthState, healthService, ServingStatus } from "./health.js";
export { batchOptionsFromEnv, KIT_TRACER_NAME, startTracing, tracingRequested, type KitTracing, type TracedPlugin } from "./tracing.js";
export {
  CREATE_CALL,
  FINALIZE_CALL,
  IdempotentCalls,
  KvIdempotencyStore,
  MemoryIdempotencyStore,
  type IdempotencyStore,
  type IdempotentCall,
} from "./idempotency.js";
export { announcement, Announcer, ANNOUNCEMENT_TTL_SECONDS, HEARTBEAT_INTERVAL_MS, type AnnouncerOptions } from "./announce.js";
export { PUSH_KEY_ID_HEADER, PUSH_SIGNATURE_HEADER, SidecarToken, sidecarToken } from "./sidecar-token.js";
export {
  CREATES_BUCKET,
  CREATES_BUCKET_OPTIONS,
  NatsLink,
  PLUGINS_BUCKET,
  PLUGINS_BUCKET_OPTIONS,
} from "./nats.js";
export { natsSecurity, type NatsSecuritySettings } from "./nats-security.js";
export { createKey, finalizeKey, kvKey } from "./keys.js";
export { parseEndpoint, type Endpoint } from "./endpoint.js";
export { createLogger, type Logger, type LogLevel, type LogFields } from "./log.js";
export { decodeResourceMeta, encodeResourceMeta } from "./meta.js";
