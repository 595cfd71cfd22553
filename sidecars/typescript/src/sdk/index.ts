// @plugin-bridge/kit/sdk: submit tasks to plugin-bridge from TypeScript and follow them.
export {
  createBridgeClient,
  createBridgeTransport,
  executionMetadata,
  type BridgeClient,
  type BridgeClientOptions,
  type BridgeProtocol,
  type ListOptions,
  type RunOptions,
  type SubmitOptions,
  type WatchOptions,
} from "./client.js";
export { API_TOKEN_VARIABLE, type BridgeTlsOptions, type Pem } from "./auth.js";
export { taskTemplate, type TaskTemplateExtras } from "./template.js";
export { customProblem } from "./custom-problem.js";
export { type TaskSpecification } from "./specifications.js";
export { type TaskSchema } from "./schema.js";
