// Flyte's agent and connector protocols on the bridge's port (docs/flyte.md): what host.ts registers.
import type { ConnectRouter } from "@connectrpc/connect";
import { AgentMetadataService, AsyncAgentService, SyncAgentService } from "@plugin-bridge/protocol/flyteidl/service/agent_pb.js";
import { AsyncConnectorService, ConnectorMetadataService } from "@plugin-bridge/protocol/flyteidl2/connector/service_pb.js";
import { createAgentMetadataService, createAsyncAgentService, createSyncAgentService, type FlyteServingDeps } from "./agent-service.js";
import { createAsyncConnectorService, createConnectorMetadataService } from "./connector-service.js";

/** Registers Flyte's services; returns their names, for health. */
export function registerFlyteServices(router: ConnectRouter, deps: FlyteServingDeps): string[] {
  router.service(AsyncAgentService, createAsyncAgentService(deps));
  router.service(SyncAgentService, createSyncAgentService(deps));
  router.service(AgentMetadataService, createAgentMetadataService(deps));
  router.service(AsyncConnectorService, createAsyncConnectorService(deps));
  router.service(ConnectorMetadataService, createConnectorMetadataService(deps));
  return [AsyncAgentService, SyncAgentService, AgentMetadataService, AsyncConnectorService, ConnectorMetadataService].map((service) => service.typeName);
}
