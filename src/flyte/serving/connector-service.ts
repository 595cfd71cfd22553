// flyteidl2's connector protocol (flyteidl2.connector: AsyncConnectorService, ConnectorMetadataService), served by
// the agent protocol's implementation (agent-service.ts). The two are one protocol renamed: every message the
// connector services use has the same field numbers and wire types as its agent counterpart where both have the
// field, and a map<string, Literal> (LiteralMap, TypedInterface) is on the wire the same as flyteidl2's lists of
// {name or key = 1, value = 2} (Inputs, Outputs, VariableEntry). So each message crosses by its bytes, and fields
// only one side has (flyteidl2's `connection`, the agent Resource's deprecated `state`) are dropped on the way.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import * as agent from "@plugin-bridge/protocol/flyteidl/admin/agent_pb.js";
import * as connector from "@plugin-bridge/protocol/flyteidl2/connector/connector_pb.js";
import type { AsyncConnectorService, ConnectorMetadataService } from "@plugin-bridge/protocol/flyteidl2/connector/service_pb.js";
import { createAgentMetadataService, createAsyncAgentService, type FlyteServingDeps } from "./agent-service.js";

function cross<From extends DescMessage, To extends DescMessage>(from: From, to: To, message: MessageInitShape<From>): MessageShape<To> {
  return fromBinary(to, toBinary(from, create(from, message)), { readUnknownFields: false });
}

/** A unary agent method as the connector method that mirrors it. */
function mirrored<AReq extends DescMessage, ARes extends DescMessage, CReq extends DescMessage, CRes extends DescMessage>(
  schemas: { agentRequest: AReq; agentResponse: ARes; connectorRequest: CReq; connectorResponse: CRes },
  method: (request: MessageShape<AReq>, ctx: HandlerContext) => Promise<MessageInitShape<ARes>> | MessageInitShape<ARes>,
): (request: MessageShape<CReq>, ctx: HandlerContext) => Promise<MessageShape<CRes>> {
  return async (request, ctx) => {
    const answer = await method(cross(schemas.connectorRequest, schemas.agentRequest, request as MessageInitShape<CReq>), ctx);
    return cross(schemas.agentResponse, schemas.connectorResponse, answer);
  };
}

export function createAsyncConnectorService(deps: FlyteServingDeps): ServiceImpl<typeof AsyncConnectorService> {
  const agents = createAsyncAgentService(deps);
  return {
    createTask: mirrored(
      { agentRequest: agent.CreateTaskRequestSchema, agentResponse: agent.CreateTaskResponseSchema, connectorRequest: connector.CreateTaskRequestSchema, connectorResponse: connector.CreateTaskResponseSchema },
      agents.createTask,
    ),
    getTask: mirrored(
      { agentRequest: agent.GetTaskRequestSchema, agentResponse: agent.GetTaskResponseSchema, connectorRequest: connector.GetTaskRequestSchema, connectorResponse: connector.GetTaskResponseSchema },
      agents.getTask,
    ),
    deleteTask: mirrored(
      { agentRequest: agent.DeleteTaskRequestSchema, agentResponse: agent.DeleteTaskResponseSchema, connectorRequest: connector.DeleteTaskRequestSchema, connectorResponse: connector.DeleteTaskResponseSchema },
      agents.deleteTask,
    ),
    getTaskMetrics: mirrored(
      { agentRequest: agent.GetTaskMetricsRequestSchema, agentResponse: agent.GetTaskMetricsResponseSchema, connectorRequest: connector.GetTaskMetricsRequestSchema, connectorResponse: connector.GetTaskMetricsResponseSchema },
      agents.getTaskMetrics,
    ),
    // The agent's GetTaskLogs refuses before its first message: there are no messages to mirror.
    getTaskLogs: (request, ctx) => agents.getTaskLogs(cross(connector.GetTaskLogsRequestSchema, agent.GetTaskLogsRequestSchema, request), ctx) as never,
  };
}

export function createConnectorMetadataService(deps: FlyteServingDeps): ServiceImpl<typeof ConnectorMetadataService> {
  const agents = createAgentMetadataService(deps);
  return {
    getConnector: mirrored(
      { agentRequest: agent.GetAgentRequestSchema, agentResponse: agent.GetAgentResponseSchema, connectorRequest: connector.GetConnectorRequestSchema, connectorResponse: connector.GetConnectorResponseSchema },
      agents.getAgent,
    ),
    listConnectors: mirrored(
      { agentRequest: agent.ListAgentsRequestSchema, agentResponse: agent.ListAgentsResponseSchema, connectorRequest: connector.ListConnectorsRequestSchema, connectorResponse: connector.ListConnectorsResponseSchema },
      agents.listAgents,
    ),
  };
}
