// A Flyte connector that runs elsewhere (`flyteConnectors:` in the host's config file): flytekit's own server
// (test/flyte/serve_connector.py with test/flyte/bridge_connectors.py) is started by this test, not by the host, on
// a loopback port. The real host probes it, announces its agents (signed with the token of the connector's name, as
// the hosts require tokens here), runs tasks on them, withdraws them when the server dies and announces them again
// when it is back on the same port; stopping the host leaves the announcements to the other hosts and the TTL.
import { writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { create, fromBinary, type JsonObject } from "@bufbuild/protobuf";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createBridgeClient, type BridgeClient } from "@plugin-bridge/kit/sdk";
import { PluginAnnouncementSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { PluginKind, PluginProtocol, type PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Phase, TaskTemplateSchema, type TaskTemplate } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/coordination/nats-server-process.js";
import { eventually } from "../helpers/clients.js";
import { projectRoot, run, startHost, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

/** Made by scripts/setup.sh (test/flyte/requirements.txt): real flytekit. */
const flytePython = path.join(projectRoot, ".tools", "flyte-venv", "bin", "python");
const NAME = "remote-echo";
const ASYNC = "bridge-echo-connector";
const SYNC = "bridge-echo-sync-connector";

let nats: TestNats;
let nc: NatsConnection;
let plugins: KV;
let host: TestHost;
let client: BridgeClient;
let connector: RunningProcess;
let port: number;
let work: string;

const template = (custom: JsonObject): TaskTemplate => create(TaskTemplateSchema, { type: "bridge_echo", typeVersion: 0, custom });

/** flytekit's connector server on `port`, as its own Deployment would run it: the host has no hand in it. */
async function startConnector(): Promise<RunningProcess> {
  const server = run(flytePython, ["test/flyte/serve_connector.py", "--port", String(port), "--modules", "bridge_connectors"]);
  await server.waitFor("serve_connector: listening", 60_000);
  return server;
}

async function routed(): Promise<PluginInstance[]> {
  const listed = await client.registry.listPlugins({});
  return listed.plugins.flatMap((plugin) => plugin.instances);
}

async function keys(): Promise<string[]> {
  const found: string[] = [];
  for await (const key of await plugins.keys()) found.push(key);
  return found.sort();
}

beforeAll(async () => {
  work = tempDir("flyte-remote");
  port = await freePort();
  const starting = startConnector();
  const secretFile = path.join(work, "sidecar.secret");
  writeFileSync(secretFile, randomBytes(32).toString("hex"));
  const configFile = path.join(work, "host.yaml");
  writeFileSync(configFile, JSON.stringify({
    auth: { sidecars: { secret: { file: secretFile } } },
    flyteConnectors: [{
      name: NAME,
      endpoint: `127.0.0.1:${port}`,
      // flytekit's built-in Sensor and Webhook Connector are left out.
      agents: ["Bridge Echo Connector", SYNC],
      version: "1.16.31",
      outputPrefix: `file://${work}/outputs`,
      properties: { resyncIntervalMs: 200 },
    }],
  }));
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
  plugins = await new Kvm(nc).open("pb_plugins");
  [connector, host] = await Promise.all([starting, startHost(nats.url, { config: configFile })]);
  client = createBridgeClient({ baseUrl: host.url, protocol: "grpc" });
  await eventually("the remote connector's agents routed", async () => ((await routed()).length === 2 ? true : undefined), 300, 100);
}, 120_000);

afterAll(async () => {
  await host?.stop();
  await connector?.stop();
  await nc?.close();
  await nats?.stop();
});

describe("a remote Flyte connector (flyteConnectors), started by nobody but itself", () => {
  it("is announced by the host: one plugin per picked agent, at the configured endpoint, signed with its name's token", async () => {
    const instances = await routed();
    expect(instances.map((instance) => instance.instanceId).sort()).toEqual([`${NAME}-${ASYNC}`, `${NAME}-${SYNC}`]);
    for (const instance of instances) {
      expect(instance.protocol).toBe(PluginProtocol.FLYTE_AGENT);
      expect(instance.endpoint).toBe(`127.0.0.1:${port}`);
    }
    const echo = instances.find((instance) => instance.descriptor?.name === ASYNC)!;
    expect(echo.descriptor).toMatchObject({ version: "1.16.31", kind: PluginKind.ASYNC, taskTypes: [{ type: "bridge_echo", version: 0 }] });
    expect(echo.descriptor?.properties?.resyncInterval?.nanos).toBe(200_000_000);
    const stored = fromBinary(PluginAnnouncementSchema, (await plugins.get(`${ASYNC}.${NAME}-${ASYNC}`))!.value);
    expect(stored.keyId).toBe(NAME);
    expect(stored.signature.length).toBeGreaterThan(0);
  });

  it("runs an async task to SUCCESS from the TypeScript SDK, with the configured output prefix", async () => {
    const final = await client.run(template({ prefix: "hi", polls: 1 }), { inputs: { name: "remote" } });
    expect(final.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(final.outputs).toEqual({ greeting: "hi remote", polls: 2 });
    expect(final.phaseInfo?.customInfo).toMatchObject({ created_with: { output_prefix: `file://${work}/outputs/${final.executionId}/1` } });
  });

  it("withdraws the agents when the connector dies, and announces them again when it is back on the same port", async () => {
    await connector.stop("SIGKILL");
    const gone = Date.now();
    await eventually("the agents withdrawn", async () => ((await routed()).length === 0 ? true : undefined), 150, 100);
    // Deleted by the host (about two failed probes), well before the heartbeats' TTL would end them.
    expect(Date.now() - gone).toBeLessThan(9_000);
    expect(await keys()).toEqual([]);

    connector = await startConnector();
    await eventually("the agents announced again", async () => ((await routed()).length === 2 ? true : undefined), 300, 100);
    const final = await client.run(template({ polls: 0 }), { inputs: { name: "again" } });
    expect(final.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(final.outputs).toMatchObject({ greeting: "hello again" });
  });

  it("leaves the announcements when the host stops: other hosts may still serve them, the TTL ends them", async () => {
    expect(await host.stop()).toBe(0);
    expect(await keys()).toEqual([`${ASYNC}.${NAME}-${ASYNC}`, `${SYNC}.${NAME}-${SYNC}`]);
  });
});
