import { create } from "@bufbuild/protobuf";
import { AgentSchema, type Agent } from "@plugin-bridge/protocol/flyteidl/admin/agent_pb.js";
import { PluginKind } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { describe, expect, it } from "vitest";
import type { FlyteAgentSettings } from "../../config-file.js";
import { agentPlugins, slug } from "./agent-descriptors.js";

const agent = (name: string, isSync: boolean, ...categories: Array<[string, number]>): Agent =>
  create(AgentSchema, { name, isSync, supportedTaskCategories: categories.map(([type, version]) => ({ name: type, version })) });
const served = [agent("Sensor", false, ["sensor", 0]), agent("BigQuery Connector", false, ["bigquery_query_job_task", 0]), agent("Webhook Connector", true, ["webhook", 0])];
const settings = (fields: Partial<FlyteAgentSettings> = {}): FlyteAgentSettings => ({ version: "flyte", outputPrefix: "", properties: {}, ...fields });

describe("a connector server's agents as plugins", () => {
  it("announces every agent by default, named by slug, with its task categories, kind and the configured properties", () => {
    const plugins = agentPlugins(served, settings({ version: "1.16", properties: { resyncIntervalMs: 1_500, maxSystemFailures: 3 } }));
    expect(plugins.map((plugin) => plugin.slug)).toEqual(["sensor", "bigquery-connector", "webhook-connector"]);
    expect(plugins[1]!.descriptor).toMatchObject({ name: "bigquery-connector", version: "1.16", kind: PluginKind.ASYNC, taskTypes: [{ type: "bigquery_query_job_task", version: 0 }] });
    expect(plugins[1]!.descriptor.properties).toMatchObject({ resyncInterval: { seconds: 1n, nanos: 500_000_000 }, maxSystemFailures: 3 });
    expect(plugins[1]!.descriptor.properties?.createTimeout).toBeUndefined();
    expect(plugins[2]!.descriptor.kind).toBe(PluginKind.SYNC);
  });

  it("picks agents by name or slug, and refuses one the server does not serve", () => {
    expect(agentPlugins(served, settings({ agents: ["BigQuery Connector", "sensor"] })).map((plugin) => plugin.agent)).toEqual(["Sensor", "BigQuery Connector"]);
    expect(() => agentPlugins(served, settings({ agents: ["Snowflake"] }))).toThrow('the connector serves no agent named "Snowflake" (it serves "Sensor", "BigQuery Connector", "Webhook Connector")');
  });

  it("keeps slugs apart and usable as NATS key tokens, and reads connectors that only list task types", () => {
    expect(slug("  Spark/Databricks Agent!")).toBe("spark-databricks-agent");
    expect(slug("???")).toBe("agent");
    const twins = agentPlugins([agent("A B", false, ["a", 0]), agent("a-b", false, ["b", 0])], settings());
    expect(twins.map((plugin) => plugin.slug)).toEqual(["a-b", "a-b-2"]);
    const old = agentPlugins([create(AgentSchema, { name: "Old", supportedTaskTypes: ["legacy"] })], settings());
    expect(old[0]!.descriptor.taskTypes).toMatchObject([{ type: "legacy", version: 0 }]);
  });
});
