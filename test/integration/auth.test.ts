// Authentication and authorization through a real host whose config file turns them on: TLS on the public port
// (with client certificates), bearer tokens from a file and from the environment, namespaces per identity, admin
// calls, and sidecars that must sign their announcements and pushes with a token the hosts issued.
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PushedStatusSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { Health } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import { PluginRegistryService } from "@plugin-bridge/protocol/pluginbridge/v1/registry_service_pb.js";
import { SidecarService } from "@plugin-bridge/protocol/pluginbridge/v1/sidecar_service_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { TaskService } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { pushSubject } from "../../src/coordination/names.js";
import { makeCertificates, type TestCertificates } from "../helpers/certificates.js";
import { runCli } from "../helpers/cli.js";
import { codeOf } from "../helpers/clients.js";
import { eventually } from "../helpers/eventually.js";
import { projectRoot, startHost, startReferencePlugin, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

const work = tempDir("auth");
const configFile = path.join(work, "plugin-bridge.yaml");
const TEAM_A_TOKEN = "team-a-token-0123456789abcdef";
const TEAM_B_TOKEN = "team-b-token-fedcba9876543210";
let certificates: TestCertificates;
let nats: TestNats;
let host: TestHost;
let nc: NatsConnection;
const sidecars: RunningProcess[] = [];

function transport(options: { token?: string; client?: { cert: Buffer; key: Buffer }; protocol?: "grpc" | "connect"; ca?: Buffer | null } = {}): Transport {
  const ca = options.ca === null ? undefined : (options.ca ?? certificates.ca);
  const interceptors = options.token ? [bearer(options.token)] : [];
  const nodeOptions = { ...(ca && { ca }), ...options.client };
  return options.protocol === "connect"
    ? createConnectTransport({ baseUrl: host.url, httpVersion: "1.1", nodeOptions, interceptors })
    : createGrpcTransport({ baseUrl: host.url, nodeOptions, interceptors });
}

const bearer = (token: string): Interceptor => (next) => async (request) => {
  request.header.set("authorization", `Bearer ${token}`);
  return await next(request);
};

function tasks(options: Parameters<typeof transport>[0] = {}): Client<typeof TaskService> {
  return createClient(TaskService, transport(options));
}

beforeAll(async () => {
  certificates = makeCertificates(work);
  writeFileSync(path.join(work, "team-a.token"), `${TEAM_A_TOKEN}\n`);
  writeFileSync(path.join(work, "sidecar.secret"), "a-sidecar-secret-of-at-least-32-bytes-0123456789");
  writeFileSync(configFile, [
    "listen:",
    `  tls: { cert: ${JSON.stringify(certificates.serverCertFile)}, key: ${JSON.stringify(certificates.serverKeyFile)}, clientCa: ${JSON.stringify(certificates.caFile)} }`,
    "auth:",
    "  clients:",
    "    - { name: team-a, token: { file: team-a.token }, namespaces: [team-a] }",
    "    - { name: team-b, token: { env: TEAM_B_TOKEN }, namespaces: [team-b, shared] }",
    "    - { name: ops, certificate: { commonName: ops }, namespaces: ['*'], admin: true }",
    "  sidecars:",
    "    secret: { file: sidecar.secret }",
    "    remote: [{ name: remote-reference, plugins: [conformance-typescript], taskTypes: [conformance-typescript] }]",
    "sidecars:",
    "  - name: supervised-sync",
    `    command: ${JSON.stringify(process.execPath)}`,
    "    args: [--import, tsx, sidecars/typescript/conformance/main.ts]",
    `    workingDir: ${JSON.stringify(projectRoot)}`,
    "    env: { CONFORMANCE_KIND: sync }",
    "",
  ].join("\n"));
  nats = await startTestNats();
  host = await startHost(nats.url, { config: configFile }, { TEAM_B_TOKEN });
  nc = await connect({ servers: nats.url });
}, 120_000);

afterAll(async () => {
  await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
  await host?.stop();
  await nc?.close();
  await nats?.stop();
});

const template = (namespace: string) => ({ template: { type: "conformance-sync-typescript", typeVersion: 1, custom: {} }, metadata: { namespace } });

describe("the public port with TLS and client authentication", () => {
  it("speaks TLS only, gRPC and Connect, and refuses a client that does not trust its CA", async () => {
    expect(host.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = createClient(Health, transport());
    expect((await health.check({})).status).toBeGreaterThan(0);
    expect(await codeOf(createClient(Health, transport({ protocol: "connect" })).check({}))).toBe("ok");
    const untrusted = await createClient(Health, transport({ ca: null })).check({}).catch((error: unknown) => ConnectError.from(error));
    expect(untrusted).toBeInstanceOf(ConnectError);
    expect(String(untrusted)).toMatch(/certificate/);
    const cleartext = createClient(Health, createGrpcTransport({ baseUrl: host.url.replace("https:", "http:") }));
    expect(await codeOf(cleartext.check({}))).not.toBe("ok");
  });

  it("asks every call but health for a known token or certificate", async () => {
    expect(await codeOf(tasks().listTasks({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(tasks({ token: "not-a-token-anybody-was-given" }).listTasks({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(createClient(PluginRegistryService, transport()).listPlugins({}))).toBe(Code.Unauthenticated);
    // A certificate from another CA names nobody.
    const stranger = makeCertificates(tempDir("auth-stranger"), "another CA").client("ops");
    expect(await codeOf(tasks({ client: stranger }).listTasks({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(tasks({ token: TEAM_A_TOKEN }).listTasks({}))).toBe("ok");
    expect(await codeOf(tasks({ token: TEAM_B_TOKEN, protocol: "connect" }).listTasks({}))).toBe("ok");
    expect(await codeOf(tasks({ client: certificates.client("ops") }).listTasks({}))).toBe("ok");
    expect(await codeOf(tasks({ client: certificates.client("someone-else") }).listTasks({}))).toBe(Code.Unauthenticated);
  });
});

describe("namespaces per identity", () => {
  let teamAExecution: string;

  beforeAll(async () => {
    await eventually("the supervised sidecar to be routed", async () => {
      const { plugins } = await createClient(PluginRegistryService, transport({ token: TEAM_A_TOKEN })).listPlugins({});
      return plugins.some((plugin) => plugin.name === "conformance-sync-typescript") ? true : undefined;
    }, 600, 100);
    teamAExecution = (await tasks({ token: TEAM_A_TOKEN }).createTask(template("team-a"))).execution!.id;
  });

  it("lets an identity use its namespaces only", async () => {
    expect(await codeOf(tasks({ token: TEAM_A_TOKEN }).createTask(template("team-b")))).toBe(Code.PermissionDenied);
    expect(await codeOf(tasks({ token: TEAM_A_TOKEN }).createTask(template("")))).toBe(Code.PermissionDenied);
    expect(await codeOf(tasks({ token: TEAM_B_TOKEN }).createTask(template("shared")))).toBe("ok");
    const denied = await codeOf(tasks({ token: TEAM_A_TOKEN }).executeTask(template("shared"))[Symbol.asyncIterator]().next());
    expect(denied).toBe(Code.PermissionDenied);
  });

  it("never shows another namespace's execution: get, watch and abort are PERMISSION_DENIED, lists leave it out", async () => {
    const teamB = tasks({ token: TEAM_B_TOKEN });
    expect(await codeOf(teamB.getTask({ id: teamAExecution }))).toBe(Code.PermissionDenied);
    expect(await codeOf(teamB.watchTask({ id: teamAExecution })[Symbol.asyncIterator]().next())).toBe(Code.PermissionDenied);
    expect(await codeOf(teamB.abortTask({ id: teamAExecution }))).toBe(Code.PermissionDenied);
    expect(await codeOf(teamB.listTasks({ namespace: "team-a" }))).toBe(Code.PermissionDenied);
    const listed = (await teamB.listTasks({ pageSize: 1000 })).executions;
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((execution) => ["team-b", "shared"].includes(execution.metadata?.namespace ?? ""))).toBe(true);
    // The owner and an identity with every namespace see it.
    expect((await tasks({ token: TEAM_A_TOKEN }).getTask({ id: teamAExecution })).execution?.id).toBe(teamAExecution);
    const ops = await tasks({ client: certificates.client("ops") }).listTasks({ pageSize: 1000 });
    expect(ops.executions.some((execution) => execution.id === teamAExecution)).toBe(true);
  });

  it("takes the CLI's token from the environment and its CA from a flag", async () => {
    const listed = await runCli(host.url, ["ls", "--json", "--ca", certificates.caFile], 60_000, { PLUGIN_BRIDGE_API_TOKEN: TEAM_A_TOKEN });
    expect(listed.code, listed.stderr).toBe(0);
    const namespaces = listed.stdout.split("\n").filter(Boolean).map((line) => (JSON.parse(line) as { metadata?: { namespace?: string } }).metadata?.namespace);
    expect(namespaces.length).toBeGreaterThan(0);
    expect(namespaces.every((namespace) => namespace === "team-a")).toBe(true);
    const anonymous = await runCli(host.url, ["ls", "--ca", certificates.caFile]);
    expect(anonymous.code).toBe(5);
    expect(anonymous.stderr).toContain("Unauthenticated");
    const sidecarsDenied = await runCli(host.url, ["sidecars", "ls"], 60_000, { PLUGIN_BRIDGE_API_TOKEN: TEAM_A_TOKEN, PLUGIN_BRIDGE_API_CA: certificates.caFile });
    expect(sidecarsDenied.code).toBe(5);
    expect(sidecarsDenied.stderr).toContain("PermissionDenied");
  });

  it("keeps SidecarService to admin identities", async () => {
    expect(await codeOf(createClient(SidecarService, transport({ token: TEAM_A_TOKEN })).listSidecars({}))).toBe(Code.PermissionDenied);
    const { sidecars: listed } = await createClient(SidecarService, transport({ client: certificates.client("ops") })).listSidecars({});
    expect(listed.map((sidecar) => sidecar.name)).toEqual(["supervised-sync"]);
  });
});

describe("sidecars must prove who they are", () => {
  const plugins = async (): Promise<string[]> => {
    const { plugins: live } = await createClient(PluginRegistryService, transport({ token: TEAM_A_TOKEN })).listPlugins({});
    return live.flatMap((plugin) => plugin.instances.map((instance) => instance.instanceId));
  };

  async function issued(name: string): Promise<{ PLUGIN_BRIDGE_TOKEN_ID: string; PLUGIN_BRIDGE_TOKEN: string }> {
    const printed = await runCli(host.url, ["sidecar-token", name, "--config", configFile]);
    expect(printed.code, printed.stderr).toBe(0);
    return Object.fromEntries(printed.stdout.trim().split("\n").map((line) => line.split("=") as [string, string])) as never;
  }

  it("routes a supervised sidecar (its token from the supervisor) and a remote one with an issued token", async () => {
    const token = await issued("remote-reference");
    expect(token.PLUGIN_BRIDGE_TOKEN).toMatch(/^[0-9a-f]{64}$/);
    sidecars.push(startReferencePlugin(nats.url, path.join(work, "audit.log"), { ...token, PLUGIN_BRIDGE_INSTANCE_ID: "remote-ok" }));
    await eventually("the remote sidecar routed", async () => ((await plugins()).includes("remote-ok") ? true : undefined), 600, 100);
    const { execution } = await tasks({ token: TEAM_A_TOKEN }).createTask({ template: { type: "conformance-typescript", typeVersion: 1, custom: {} }, metadata: { namespace: "team-a" } });
    let last: Phase | undefined;
    for await (const { event } of tasks({ token: TEAM_A_TOKEN }).watchTask({ id: execution!.id })) last = event?.phaseInfo?.phase ?? last;
    expect(last).toBe(Phase.SUCCESS);
  });

  it("ignores and logs announcements that are unsigned, forged, or for a plugin the key may not announce", async () => {
    sidecars.push(startReferencePlugin(nats.url, path.join(work, "audit.log"), { PLUGIN_BRIDGE_INSTANCE_ID: "unsigned" }));
    sidecars.push(startReferencePlugin(nats.url, path.join(work, "audit.log"), {
      PLUGIN_BRIDGE_INSTANCE_ID: "forged",
      PLUGIN_BRIDGE_TOKEN_ID: "remote-reference",
      PLUGIN_BRIDGE_TOKEN: "0".repeat(64),
    }));
    // remote-reference may announce conformance-typescript only, not the sync plugin.
    sidecars.push(startReferencePlugin(nats.url, path.join(work, "audit.log"), {
      ...(await issued("remote-reference")),
      PLUGIN_BRIDGE_INSTANCE_ID: "overreaching",
      CONFORMANCE_KIND: "sync",
    }));
    await eventually("three refusals logged", () => {
      const refusals = host.output().split("\n").filter((line) => line.includes("ignoring an unauthenticated plugin announcement"));
      const why = (instance: string) => refusals.find((line) => line.includes(instance));
      return why("unsigned")?.includes("not signed") && why("forged")?.includes("signature does not hold") && why("overreaching")?.includes("may not announce plugin")
        ? true
        : undefined;
    }, 600, 100);
    const live = await plugins();
    for (const instance of ["unsigned", "forged", "overreaching"]) expect(live).not.toContain(instance);
  });

  it("applies a pushed status only when the pushing instance's key signed it", async () => {
    const goFile = path.join(work, "never");
    const client = tasks({ token: TEAM_A_TOKEN });
    const { execution } = await client.createTask({ template: { type: "conformance-typescript", typeVersion: 1, custom: { waitForFile: goFile } }, metadata: { namespace: "team-a" } });
    const id = execution!.id;
    await eventually("RUNNING", async () => ((await client.getTask({ id })).execution?.phaseInfo?.phase === Phase.RUNNING ? true : undefined));
    const payload = toBinary(PushedStatusSchema, create(PushedStatusSchema, { executionId: id, attempt: 1, instanceId: "remote-ok", phaseInfo: { phase: Phase.SUCCESS, reason: "pushed" } }));
    const { PLUGIN_BRIDGE_TOKEN: token } = await issued("remote-reference");
    const sign = (key: string): string => createHmac("sha256", key).update("pbv1push").update(payload).digest("hex");
    const publish = (keyId?: string, signature?: string): void => {
      const h = natsHeaders();
      if (keyId) h.set("Pb-Key-Id", keyId);
      if (signature) h.set("Pb-Signature", signature);
      nc.publish(pushSubject(id), payload, { headers: h });
    };
    publish();
    publish("remote-reference", sign("0".repeat(64)));
    publish("supervised-sync", sign(token));
    await nc.flush();
    await eventually("the refusals logged", () => (host.output().split("ignoring a pushed status").length > 3 ? true : undefined));
    expect((await client.getTask({ id })).execution?.phaseInfo?.phase).toBe(Phase.RUNNING);
    publish("remote-reference", sign(token));
    await eventually("the signed push applied", async () => ((await client.getTask({ id })).execution?.phaseInfo?.phase === Phase.SUCCESS ? true : undefined));
  });
});
