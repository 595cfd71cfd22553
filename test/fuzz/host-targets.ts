// Every public RPC of the host, with valid seed messages and the codes each may answer besides OK,
// INVALID_ARGUMENT and RESOURCE_EXHAUSTED: TaskService, PluginRegistryService, SidecarService, grpc.health.v1, both
// reflection services, and Flyte's agent (flyteidl) and connector (flyteidl2) services. Seeds that create executions carry an idempotency key, so that the many mutations that
// leave a request valid find the same execution (or ALREADY_EXISTS) instead of starting thousands of tasks.
import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { Health, HealthCheckRequestSchema } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "@plugin-bridge/protocol/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "@plugin-bridge/protocol/grpc/reflection/v1alpha/reflection_pb.js";
import { GetPluginRequestSchema, ListPluginsRequestSchema, PluginRegistryService } from "@plugin-bridge/protocol/pluginbridge/v1/registry_service_pb.js";
import { ListSidecarsRequestSchema, SidecarService, UpgradeSidecarRequestSchema } from "@plugin-bridge/protocol/pluginbridge/v1/sidecar_service_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import {
  AbortTaskRequestSchema,
  CreateTaskRequestSchema,
  CreateTaskResponseSchema,
  ExecuteTaskResponseSchema,
  ExecuteTaskRequestSchema,
  GetTaskRequestSchema,
  ListTasksRequestSchema,
  TaskService,
  WatchTaskRequestSchema,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import * as agent from "@plugin-bridge/protocol/flyteidl/admin/agent_pb.js";
import { AgentMetadataService, AsyncAgentService, SyncAgentService } from "@plugin-bridge/protocol/flyteidl/service/agent_pb.js";
import * as connector from "@plugin-bridge/protocol/flyteidl2/connector/connector_pb.js";
import { AsyncConnectorService, ConnectorMetadataService } from "@plugin-bridge/protocol/flyteidl2/connector/service_pb.js";
import { ConnectError, type Client } from "@connectrpc/connect";
import type { CodeName } from "./oracle.js";
import type { MethodTarget } from "./rpc-cases.js";

export interface HostSeedContext {
  /** The kits' languages: their reference plugins' task types make valid templates. */
  languages: readonly string[];
  /** An execution that has ended: GetTask, WatchTask and AbortTask seeds name it. */
  finishedId: string;
}

const method = <S extends { methods: ReadonlyArray<{ name: string }> }>(service: S, name: string) => {
  const found = service.methods.find((m) => m.name === name);
  if (!found) throw new Error(`no method ${name}`);
  return found as unknown as MethodTarget["method"];
};

function target(service: { methods: ReadonlyArray<{ name: string }> }, name: string, seeds: Message[], codes: CodeName[], weight = 1): MethodTarget {
  return { method: method(service, name), seeds, codes, weight };
}

export function hostMethods(context: HostSeedContext): MethodTarget[] {
  const { languages, finishedId } = context;
  const template = (type: string, custom: Record<string, unknown> = { echo: "fuzz" }) => ({ type, typeVersion: 1, custom: custom as never });
  const richMetadata = { namespace: "fuzz", labels: { team: "a" }, annotations: { note: "n" }, owner: "fuzzer", environment: { E: "1" } };
  const submits = [
    ...languages.map((language) => ({ template: template(`conformance-sync-${language}`), idempotencyKey: `fuzz-sync-${language}` })),
    {
      template: { ...template("conformance-typescript", { echo: "é ✓ 💥" }), metadata: { timeout: { seconds: 30n }, retries: 1, interruptible: true }, config: { k: "v" } },
      inputs: { x: 1, y: ["a", true, null] } as never,
      metadata: richMetadata,
      idempotencyKey: "fuzz-async",
    },
    { template: { ...template("conformance-sync-go"), secrets: [{ group: "vault", key: "token" }] }, idempotencyKey: "fuzz-secret" },
    { template: { type: "no-such-type", typeVersion: 3 } },
  ];
  const submitCodes: CodeName[] = ["NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "PERMISSION_DENIED"];
  // The same request in both reflection versions: built once as data, created with each version's schema.
  const reflectionRequests = [
    { messageRequest: { case: "listServices", value: "" } },
    { host: "localhost", messageRequest: { case: "fileByFilename", value: "pluginbridge/v1/task_service.proto" } },
    { messageRequest: { case: "fileContainingSymbol", value: "pluginbridge.v1.TaskService.CreateTask" } },
    { messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.Struct", extensionNumber: 5 } } },
    { messageRequest: { case: "allExtensionNumbersOfType", value: "pluginbridge.v1.TaskTemplate" } },
  ] as const;
  const reflectionV1Seeds = reflectionRequests.map((request) => create(reflectionV1.ServerReflectionRequestSchema, request));
  const reflectionV1alphaSeeds = reflectionRequests.map((request) => create(reflectionV1alpha.ServerReflectionRequestSchema, request));
  return [
    target(TaskService, "CreateTask", submits.map((seed) => create(CreateTaskRequestSchema, seed)), submitCodes, 4),
    target(TaskService, "ExecuteTask", [
      ...languages.map((language) => create(ExecuteTaskRequestSchema, { template: template(`conformance-sync-${language}`), inputs: { x: 1.5, list: [1, "a"] } as never })),
      create(ExecuteTaskRequestSchema, { template: template("conformance-sync-python"), idempotencyKey: "fuzz-execute", metadata: richMetadata }),
      create(ExecuteTaskRequestSchema, { template: { type: "no-such-type", typeVersion: 1 } }),
    ], submitCodes, 3),
    target(TaskService, "GetTask", [create(GetTaskRequestSchema, { id: finishedId }), create(GetTaskRequestSchema, { id: "fuzz-missing" })], ["NOT_FOUND"], 2),
    target(TaskService, "WatchTask", [create(WatchTaskRequestSchema, { id: finishedId }), create(WatchTaskRequestSchema, { id: finishedId, fromSequence: 2n })], ["NOT_FOUND"], 2),
    target(TaskService, "AbortTask", [create(AbortTaskRequestSchema, { id: finishedId, reason: "fuzz" })], ["NOT_FOUND", "FAILED_PRECONDITION"], 2),
    // ListTasks reads records for every call: rarer, and small pages.
    target(TaskService, "ListTasks", [
      create(ListTasksRequestSchema, { pageSize: 3 }),
      create(ListTasksRequestSchema, { namespace: "fuzz", phases: [Phase.SUCCESS, Phase.RUNNING], pageSize: 2 }),
      create(ListTasksRequestSchema, { pageSize: 1, pageToken: Buffer.from(`after:${finishedId}`).toString("base64url") }),
    ], [], 0.5),
    target(PluginRegistryService, "ListPlugins", [create(ListPluginsRequestSchema, {}), create(ListPluginsRequestSchema, { taskType: "conformance-typescript" })], [], 1),
    target(PluginRegistryService, "GetPlugin", [create(GetPluginRequestSchema, { name: "conformance-go" })], ["NOT_FOUND"], 1),
    target(SidecarService, "ListSidecars", [create(ListSidecarsRequestSchema, {})], [], 0.5),
    target(SidecarService, "UpgradeSidecar", [create(UpgradeSidecarRequestSchema, { name: "nothing-supervised" })], ["NOT_FOUND", "FAILED_PRECONDITION"], 1),
    target(Health, "Check", [create(HealthCheckRequestSchema, {}), create(HealthCheckRequestSchema, { service: "pluginbridge.v1.TaskService" })], ["NOT_FOUND"], 1),
    target(Health, "Watch", [create(HealthCheckRequestSchema, {}), create(HealthCheckRequestSchema, { service: "pluginbridge.v1.PluginRegistryService" })], ["NOT_FOUND"], 0.5),
    target(reflectionV1.ServerReflection, "ServerReflectionInfo", reflectionV1Seeds, [], 1),
    target(reflectionV1alpha.ServerReflection, "ServerReflectionInfo", reflectionV1alphaSeeds, [], 0.5),
    ...flyteMethods(context, submitCodes),
  ];
}

/**
 * Flyte's services. Seeds that create name a task execution, which makes its idempotency key: the mutations that
 * keep a request valid meet the same execution. The resource meta seeds name the finished execution.
 */
function flyteMethods({ languages, finishedId }: HostSeedContext, submitCodes: CodeName[]): MethodTarget[] {
  const flyteTemplate = (type: string) => ({ type, taskTypeVersion: 1, custom: { echo: "fuzz" } as never });
  const taskExecutionId = (name: string) => ({ nodeExecutionId: { nodeId: "n0", executionId: { project: "fuzz", domain: "development", name } }, retryAttempt: 0 });
  const inputs = { literals: { n: { value: { case: "scalar", value: { value: { case: "primitive", value: { value: { case: "integer", value: 3n } } } } } } } } as const;
  const creates = languages.map((language) => ({
    template: flyteTemplate(`conformance-sync-${language}`),
    inputs,
    taskExecutionMetadata: { taskExecutionId: taskExecutionId(`fuzz-${language}`), namespace: "fuzz", labels: { team: "a" } },
  }));
  const resourceMeta = new TextEncoder().encode(JSON.stringify({ execution: finishedId, outputs: {} }));
  const category = { name: "conformance-sync-go", version: 1 };
  const header = { template: flyteTemplate("conformance-sync-typescript"), taskExecutionMetadata: { taskExecutionId: taskExecutionId("fuzz-sync"), namespace: "fuzz" } };
  return [
    target(AsyncAgentService, "CreateTask", creates.map((seed) => create(agent.CreateTaskRequestSchema, seed)), submitCodes, 1.5),
    target(AsyncAgentService, "GetTask", [create(agent.GetTaskRequestSchema, { resourceMeta, taskCategory: category })], ["NOT_FOUND"], 1),
    target(AsyncAgentService, "DeleteTask", [create(agent.DeleteTaskRequestSchema, { resourceMeta, taskCategory: category })], ["NOT_FOUND"], 0.5),
    target(AsyncAgentService, "GetTaskMetrics", [create(agent.GetTaskMetricsRequestSchema, { resourceMeta, queries: ["q"] })], ["UNIMPLEMENTED"], 0.25),
    target(AsyncAgentService, "GetTaskLogs", [create(agent.GetTaskLogsRequestSchema, { resourceMeta, lines: 10n })], ["UNIMPLEMENTED"], 0.25),
    target(SyncAgentService, "ExecuteTaskSync", [
      create(agent.ExecuteTaskSyncRequestSchema, { part: { case: "header", value: header } }),
    ], submitCodes, 1),
    target(AgentMetadataService, "ListAgents", [create(agent.ListAgentsRequestSchema, {})], [], 0.5),
    target(AgentMetadataService, "GetAgent", [create(agent.GetAgentRequestSchema, { name: "conformance-go" })], ["NOT_FOUND"], 0.5),
    target(AsyncConnectorService, "CreateTask", creates.map((seed) => create(connector.CreateTaskRequestSchema, { ...seed, inputs: { literals: [{ name: "n", value: inputs.literals.n }] } })), submitCodes, 1),
    target(AsyncConnectorService, "GetTask", [create(connector.GetTaskRequestSchema, { resourceMeta, taskCategory: category })], ["NOT_FOUND"], 0.5),
    target(AsyncConnectorService, "DeleteTask", [create(connector.DeleteTaskRequestSchema, { resourceMeta, taskCategory: category })], ["NOT_FOUND"], 0.25),
    target(ConnectorMetadataService, "ListConnectors", [create(connector.ListConnectorsRequestSchema, {})], [], 0.25),
    target(ConnectorMetadataService, "GetConnector", [create(connector.GetConnectorRequestSchema, { name: "conformance-go" })], ["NOT_FOUND"], 0.25),
  ];
}

/** The executions an OK CreateTask or ExecuteTask answer names (Flyte's CreateTask: in its resource meta). */
export function acceptedExecutions(answers: readonly Message[]): string[] {
  const ids = new Set<string>();
  for (const answer of answers) {
    if (isMessage(answer, CreateTaskResponseSchema) && answer.execution?.id) ids.add(answer.execution.id);
    if (isMessage(answer, ExecuteTaskResponseSchema) && answer.event?.executionId) ids.add(answer.event.executionId);
    if (isMessage(answer, agent.CreateTaskResponseSchema) || isMessage(answer, connector.CreateTaskResponseSchema)) {
      const { execution } = JSON.parse(new TextDecoder().decode(answer.resourceMeta)) as { execution?: string };
      if (execution) ids.add(execution);
    }
  }
  return [...ids];
}

/**
 * Why the host cannot serve an execution it accepted as JSON (Connect), or undefined when it can: whatever a request
 * put in, the record must be readable by every client the API speaks to, and JSON is the strictest encoding.
 */
export async function unreadableExecution(client: Client<typeof TaskService>, id: string): Promise<string | undefined> {
  try {
    await client.getTask({ id });
    return undefined;
  } catch (error) {
    const failure = ConnectError.from(error);
    return `GetTask over Connect JSON of accepted execution ${id}: ${failure.code} ${failure.rawMessage.slice(0, 200)}`;
  }
}
