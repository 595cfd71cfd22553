// Flyte's agent protocol (flyteidl.service: AsyncAgentService, SyncAgentService, AgentMetadataService) on the
// bridge's own port, so a Flyte deployment that calls agents reaches every bridge plugin, in any language, with the
// bridge's machinery behind it. Each call is the bridge's own TaskService call underneath, made with the Flyte
// call's context: the same authentication, namespaces, validation, quotas and durability as any SDK's call.
// An agent is a plugin; its task categories are the plugin's (task type, type version) pairs.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { AgentSchema, type Agent, type ExecuteTaskSyncRequest } from "@plugin-bridge/protocol/flyteidl/admin/agent_pb.js";
import type { AgentMetadataService, AsyncAgentService, SyncAgentService } from "@plugin-bridge/protocol/flyteidl/service/agent_pb.js";
import { PluginKind, type PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import {
  AbortTaskRequestSchema,
  ExecuteTaskRequestSchema,
  GetTaskRequestSchema,
  TaskExecutionSchema,
  type CreateTaskRequest,
  type TaskService,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { quoted } from "../../api/error-text.js";
import { isFinalPhase } from "../../machinery/phases.js";
import type { RoutingTable } from "../../registry/routing-table.js";
import { decodeResourceMeta, encodeResourceMeta } from "./resource-meta.js";
import { bridgeRequest, outputTypes, resourceOf } from "./task-mapping.js";

export interface FlyteServingDeps {
  /** The bridge's TaskService, as served: Flyte's calls are its calls. */
  tasks: ServiceImpl<typeof TaskService>;
  routing: RoutingTable;
}

export function createAsyncAgentService(deps: FlyteServingDeps): ServiceImpl<typeof AsyncAgentService> {
  return {
    async createTask(request, ctx) {
      const bridge = bridgeRequest(request.template, request.inputs, request.taskExecutionMetadata);
      const { execution } = await deps.tasks.createTask(bridge, ctx);
      return { resourceMeta: encodeResourceMeta({ execution: execution?.id ?? "", outputs: outputTypes(request.template) }) };
    },

    async getTask(request, ctx) {
      const meta = decodeResourceMeta(request.resourceMeta);
      const { execution } = await deps.tasks.getTask(create(GetTaskRequestSchema, { id: meta.execution }), ctx);
      return { resource: resourceOf(create(TaskExecutionSchema, execution), meta.outputs) };
    },

    async deleteTask(request, ctx) {
      const meta = decodeResourceMeta(request.resourceMeta);
      try {
        await deps.tasks.abortTask(create(AbortTaskRequestSchema, { id: meta.execution, reason: "deleted by Flyte" }), ctx);
      } catch (error) {
        // Flyte deletes a task's resource after it ended too (cleanup): nothing is left to stop, and that is fine.
        if (!(error instanceof ConnectError && error.code === Code.FailedPrecondition)) throw error;
      }
      return {};
    },

    getTaskMetrics() {
      throw new ConnectError("the bridge keeps no per-task metrics; its Prometheus metrics are on /metrics", Code.Unimplemented);
    },

    async *getTaskLogs() {
      throw new ConnectError("the bridge serves no task logs; a plugin's log links come with GetTask", Code.Unimplemented);
    },
  };
}

export function createSyncAgentService(deps: FlyteServingDeps): ServiceImpl<typeof SyncAgentService> {
  return {
    async *executeTaskSync(requests, ctx) {
      const { header, inputs } = await headerAndInputs(requests);
      const bridge = bridgeRequest(header.template, inputs, header.taskExecutionMetadata);
      const execution = await runToEnd(deps, bridge, ctx);
      yield { res: { case: "header", value: { resource: resourceOf(execution, outputTypes(header.template)) } } };
    },
  };
}

/** Flyte's sync call: a header, then (optionally, flytekit always sends it) the inputs; nothing after them. */
async function headerAndInputs(requests: AsyncIterable<ExecuteTaskSyncRequest>) {
  let header: Extract<ExecuteTaskSyncRequest["part"], { case: "header" }>["value"] | undefined;
  let inputs: Extract<ExecuteTaskSyncRequest["part"], { case: "inputs" }>["value"] | undefined;
  for await (const request of requests) {
    if (request.part.case === "header" && !header && !inputs) header = request.part.value;
    else if (request.part.case === "inputs" && header && !inputs) inputs = request.part.value;
    else throw new ConnectError("ExecuteTaskSync takes one header, then at most one inputs message", Code.InvalidArgument);
  }
  if (!header) throw new ConnectError("ExecuteTaskSync takes one header, then at most one inputs message", Code.InvalidArgument);
  return { header, inputs };
}

/** ExecuteTask to its final event, read back as the execution it ended as. */
async function runToEnd(deps: FlyteServingDeps, request: CreateTaskRequest, ctx: HandlerContext) {
  let id = "";
  const { template, inputs, metadata, idempotencyKey } = request;
  for await (const { event } of deps.tasks.executeTask(create(ExecuteTaskRequestSchema, { template, inputs, metadata, idempotencyKey }), ctx)) {
    id = event?.executionId ?? id;
    if (isFinalPhase(event?.phaseInfo?.phase ?? Phase.UNSPECIFIED)) break;
  }
  const { execution } = await deps.tasks.getTask(create(GetTaskRequestSchema, { id }), ctx);
  return create(TaskExecutionSchema, execution);
}

export function createAgentMetadataService(deps: FlyteServingDeps): ServiceImpl<typeof AgentMetadataService> {
  return {
    listAgents() {
      return { agents: agents(deps.routing.live()) };
    },
    getAgent(request) {
      const agent = agents(deps.routing.live()).find((candidate) => candidate.name === request.name);
      if (!agent) throw new ConnectError(`no live plugin is named ${quoted(request.name)}`, Code.NotFound);
      return { agent };
    },
  };
}

/** One agent per plugin name, with every task category its live instances serve. */
function agents(instances: readonly PluginInstance[]): Agent[] {
  const byName = new Map<string, Agent>();
  for (const instance of instances) {
    const descriptor = instance.descriptor;
    if (!descriptor) continue;
    const agent = byName.get(descriptor.name) ?? create(AgentSchema, { name: descriptor.name, isSync: descriptor.kind === PluginKind.SYNC });
    for (const { type, version } of descriptor.taskTypes) {
      if (agent.supportedTaskCategories.some((category) => category.name === type && category.version === version)) continue;
      agent.supportedTaskCategories.push({ $typeName: "flyteidl.admin.TaskCategory", name: type, version });
      if (!agent.supportedTaskTypes.includes(type)) agent.supportedTaskTypes.push(type);
    }
    byName.set(descriptor.name, agent);
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}
