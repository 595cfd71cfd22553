import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_CONFIG, envName, flagName, loadConfig } from "./config.js";

const folder = mkdtempSync(path.join(tmpdir(), "pb-config-"));
let files = 0;
const file = (content: string): string => {
  const name = path.join(folder, `config-${files++}.yaml`);
  writeFileSync(name, content);
  return name;
};

/** The ConfigError a file (and environment) is refused with; fails when it is accepted. */
function refused(yaml: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig({}, env, file(yaml));
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("accepted");
}

describe("loadConfig", () => {
  it("names settings consistently", () => {
    expect(envName("natsUrl")).toBe("PLUGIN_BRIDGE_NATS_URL");
    expect(flagName("readMaxBytes")).toBe("read-max-bytes");
  });

  it("takes defaults, then the YAML file, then the environment, then flags", () => {
    const config = loadConfig(
      { listenPort: "9003" },
      { PLUGIN_BRIDGE_LISTEN_PORT: "9002", PLUGIN_BRIDGE_CONCURRENCY: "8" },
      file(`
nats:
  url: nats://a:4222
listen:
  port: 9001
engine:
  concurrency: 4
  ackWaitMs: 7000
secrets:
  dir: secrets
  envPrefix: PB_SECRET_
  access:
    - sql=db/password,db/user
    - "*=shared/ca"
`),
    );
    expect(config).toMatchObject({
      listenPort: 9003,
      concurrency: 8,
      ackWaitMs: 7000,
      natsUrl: "nats://a:4222",
      readMaxBytes: DEFAULT_CONFIG.readMaxBytes,
      secretsDir: path.join(folder, "secrets"),
      secretsEnvPrefix: "PB_SECRET_",
      secretAccess: "sql=db/password,db/user;*=shared/ca",
      sidecars: [],
    });
  });

  it("reads sidecars with their defaults, paths resolved against the file's folder", () => {
    const config = loadConfig({}, {}, file(`
sidecars:
  - name: sql
    command: python
    args: [-m, plugin_bridge.examples.sql]
    env: { SQL_DIR: /var/sql }
    workingDir: plugins/sql
    replicas: 2
    transport: tcp
  - name: batch
    command: ./batch
`));
    expect(config.sidecars).toEqual([
      {
        name: "sql", command: "python", args: ["-m", "plugin_bridge.examples.sql"], env: { SQL_DIR: "/var/sql" },
        workingDir: path.join(folder, "plugins", "sql"), replicas: 2, transport: "tcp", startTimeoutMs: 30_000, protocol: "plugin-bridge",
      },
      { name: "batch", command: "./batch", args: [], env: {}, workingDir: folder, replicas: 1, transport: "socket", startTimeoutMs: 30_000, protocol: "plugin-bridge" },
    ]);
  });

  it("reads a Flyte connector sidecar: always TCP, with its agents, version, output prefix and properties", () => {
    const config = loadConfig({}, {}, file(`
sidecars:
  - name: connectors
    protocol: flyte-agent
    command: pyflyte
    args: [serve, connector, --port, "{port}"]
    agents: [BigQuery Connector]
    version: "1.16"
    outputPrefix: s3://bucket/bridge
    properties: { resyncIntervalMs: 2000, maxSystemFailures: 3 }
  - name: plain
    protocol: flyte-agent
    command: pyflyte
`));
    expect(config.sidecars[0]).toMatchObject({
      protocol: "flyte-agent",
      transport: "tcp",
      flyte: { agents: ["BigQuery Connector"], version: "1.16", outputPrefix: "s3://bucket/bridge", properties: { resyncIntervalMs: 2000, maxSystemFailures: 3 } },
    });
    expect(config.sidecars[1]!.flyte).toEqual({ version: "flyte", outputPrefix: "", properties: {} });
  });

  it("refuses Flyte settings on a bridge sidecar, and a socket for a Flyte connector", () => {
    expect(refused("sidecars:\n  - name: a\n    command: x\n    agents: [A]\n")).toMatch(/sidecars\[0\]\.agents: only for protocol: flyte-agent/);
    expect(refused("sidecars:\n  - name: a\n    command: x\n    protocol: flyte-agent\n    transport: socket\n")).toMatch(/sidecars\[0\]\.transport: a flyte-agent sidecar listens on TCP/);
    expect(refused("sidecars:\n  - name: a\n    command: x\n    protocol: flyte\n")).toMatch(/sidecars\[0\]\.protocol: /);
    expect(refused("sidecars:\n  - name: a\n    command: x\n    protocol: flyte-agent\n    properties: { resyncMs: 1 }\n")).toMatch(/sidecars\[0\]\.properties: unknown key\(s\) resyncMs/);
  });

  it("reads remote Flyte connectors with their agents, version, output prefix and properties", () => {
    const config = loadConfig({}, {}, file(`
flyteConnectors:
  - name: bigquery
    endpoint: bigquery-connector.flyte.svc:8000
    agents: [BigQuery Connector]
    version: "1.16"
    outputPrefix: s3://bucket/pb
    properties: { resyncIntervalMs: 5000 }
  - { name: plain_1, endpoint: "[::1]:9000" }
`));
    expect(config.flyteConnectors).toEqual([
      {
        name: "bigquery",
        endpoint: "bigquery-connector.flyte.svc:8000",
        flyte: { agents: ["BigQuery Connector"], version: "1.16", outputPrefix: "s3://bucket/pb", properties: { resyncIntervalMs: 5000 } },
      },
      { name: "plain_1", endpoint: "[::1]:9000", flyte: { version: "flyte", outputPrefix: "", properties: {} } },
    ]);
    expect(loadConfig({}, {}, file("listen: { port: 1 }\n")).flyteConnectors).toEqual([]);
  });

  it("refuses a remote Flyte connector without an endpoint, with a bad name or endpoint, or a name taken", () => {
    expect(refused("flyteConnectors:\n  - name: bq\n")).toMatch(/flyteConnectors\[0\]\.endpoint: /);
    expect(refused("flyteConnectors:\n  - { name: bq, endpoint: \"h:1\" }\n  - { name: big query, endpoint: \"h:1\" }\n")).toMatch(/flyteConnectors\[1\]\.name: must be 1-64 letters/);
    for (const endpoint of ["bigquery", "h:0", "h:65536", "http://h:80", "h:80/x"]) {
      expect(refused(`flyteConnectors:\n  - { name: bq, endpoint: "${endpoint}" }\n`)).toMatch(/flyteConnectors\[0\]\.endpoint: must be host:port/);
    }
    expect(refused("sidecars:\n  - { name: bq, command: x }\nflyteConnectors:\n  - { name: bq, endpoint: \"h:1\" }\n")).toMatch(/flyteConnectors\[0\]\.name: "bq" is used by sidecars too/);
    expect(refused("flyteConnectors:\n  - { name: bq, endpoint: \"h:1\" }\n  - { name: bq, endpoint: \"h:2\" }\n")).toMatch(/flyteConnectors\[1\]\.name: "bq" is used twice/);
    expect(refused("flyteConnectors:\n  - { name: bq, endpoint: \"h:1\", command: x }\n")).toMatch(/flyteConnectors\[0\]: unknown key\(s\) command/);
    expect(refused("flyteConnectors:\n  - { name: bq, endpoint: \"h:1\", properties: { resyncMs: 1 } }\n")).toMatch(/flyteConnectors\[0\]\.properties: unknown key\(s\) resyncMs/);
  });

  it("refuses a wrong key or value in the file with its path, and starts nothing", () => {
    expect(refused("listen:\n  portt: 1\n")).toMatch(/listen: unknown key\(s\) portt/);
    expect(refused("nats: {url: 5}\n")).toMatch(/nats\.url: /);
    expect(refused("sidecars:\n  - name: a\n    command: x\n  - name: b\n    command: y\n    replicas: 0\n")).toMatch(/sidecars\[1\]\.replicas: /);
    expect(refused("sidecars:\n  - name: bad name\n    command: x\n")).toMatch(/sidecars\[0\]\.name: must be 1-64 letters/);
    expect(refused("sidecars:\n  - name: a\n    command: x\n  - name: a\n    command: y\n")).toMatch(/sidecars\[1\]\.name: "a" is used twice/);
    expect(refused("sidecars:\n  - name: a\n    command: x\n    transport: pigeon\n")).toMatch(/sidecars\[0\]\.transport: /);
    expect(refused("secrets:\n  access: [\"sql\"]\n")).toMatch(/secretAccess: rule 1/);
    expect(refused("engine: {concurrency: 1.5}\n")).toMatch(/engine\.concurrency: /);
    expect(refused("a: 1\na: 2\n")).toMatch(/not YAML/);
    expect(refused("- 1\n")).toMatch(/\(top level\)/);
  });

  it("refuses wrong values from the environment and the command line, naming them", () => {
    expect(() => loadConfig({ concurrency: "many" }, {})).toThrow(/command line: concurrency must be a whole number/);
    expect(() => loadConfig({}, { PLUGIN_BRIDGE_READ_MAX_BYTES: "-1" })).toThrow(/environment: readMaxBytes/);
    expect(() => loadConfig({ listenPort: "70000" }, {})).toThrow(/not a port/);
    expect(() => loadConfig({ orphanGraceMs: "1000" }, {})).toThrow(/duplicate window/);
    expect(() => loadConfig({}, {}, path.join(folder, "missing.yaml"))).toThrow(/config file .*missing\.yaml: ENOENT/);
  });

  it("reads the security settings' files and secrets at start, and refuses what cannot be used", () => {
    writeFileSync(path.join(folder, "a.token"), "team-a-token-0123456789\n");
    writeFileSync(path.join(folder, "short.token"), "short");
    writeFileSync(path.join(folder, "sidecar.secret"), "x".repeat(32));
    writeFileSync(path.join(folder, "cert.pem"), "CERT");
    writeFileSync(path.join(folder, "key.pem"), "KEY");
    writeFileSync(path.join(folder, "ca.pem"), "CA");
    const config = loadConfig({}, { TEAM_B: "team-b-token-0123456789" }, file(`
listen: { tls: { cert: cert.pem, key: key.pem, clientCa: ca.pem } }
nats: { tls: { ca: ca.pem } }
auth:
  clients:
    - { name: a, token: { file: a.token }, namespaces: [team-a] }
    - { name: b, token: { env: TEAM_B }, namespaces: ["*"], admin: true }
    - { name: ops, certificate: { commonName: ops }, namespaces: ["", shared] }
  sidecars: { secret: { file: sidecar.secret }, remote: [{ name: far, plugins: [sql], taskTypes: [sql_query] }] }
`));
    expect(config.listenTlsCert).toBe(path.join(folder, "cert.pem"));
    expect(config.security.tls?.cert.toString()).toBe("CERT");
    expect(config.security.tls?.clientCa?.toString()).toBe("CA");
    expect(config.security.nats.tls?.ca?.toString()).toBe("CA");
    expect(config.security.clients.map((client) => [client.identity.name, client.identity.admin, client.tokenSha256?.length ?? 0, client.certificateCommonName]))
      .toEqual([["a", false, 32, undefined], ["b", true, 32, undefined], ["ops", false, 0, "ops"]]);
    expect(config.security.clients[0]!.identity.namespaces).toEqual(new Set(["team-a"]));
    expect(config.security.clients[1]!.identity.namespaces).toBe("*");
    expect(config.security.sidecarSecret?.length).toBe(32);
    // The token itself is kept nowhere in the configuration, only its digest.
    expect(JSON.stringify(config)).not.toContain("team-a-token");

    expect(refused("auth: { clients: [{ name: a, token: { file: missing.token }, namespaces: [x] }] }")).toMatch(/auth\.clients\[0\]\.token\.file: cannot read .*missing\.token/);
    expect(refused("auth: { clients: [{ name: a, token: { env: NOPE }, namespaces: [x] }] }")).toMatch(/auth\.clients\[0\]\.token: environment variable NOPE is not set/);
    expect(refused("auth: { clients: [{ name: a, token: { file: short.token }, namespaces: [x] }] }")).toMatch(/at least 16 characters/);
    expect(refused("auth: { clients: [{ name: a, namespaces: [x] }] }")).toMatch(/auth\.clients\[0\]: needs a token or a certificate/);
    expect(refused("auth: { clients: [{ name: a, certificate: { commonName: a }, namespaces: [x] }] }")).toMatch(/certificate: needs listen\.tls\.clientCa/);
    expect(refused("auth: { clients: [{ name: a, token: { file: a.token }, namespaces: [Bad!] }] }")).toMatch(/namespaces\[0\]: is not a namespace/);
    expect(refused("auth: { clients: [{ name: a, token: { file: a.token }, namespaces: [x] }, { name: a, token: { file: a.token }, namespaces: [y] }] }")).toMatch(/auth\.clients\[1\]\.name: "a" is used twice/);
    expect(refused("auth: { sidecars: { remote: [{ name: r, plugins: [p], taskTypes: [t] }] } }")).toMatch(/remote: needs auth\.sidecars\.secret/);
    expect(refused("auth: { sidecars: { secret: { file: sidecar.secret }, remote: [{ name: r, plugins: [p] }] } }")).toMatch(/auth\.sidecars\.remote\[0\]\.taskTypes: /);
    expect(refused("auth: { sidecars: { secret: { file: short.token } } }")).toMatch(/at least 32 bytes/);
    expect(refused("listen: { tls: { cert: cert.pem } }")).toMatch(/listen\.tls\.key: /);
    expect(refused("listen: { tls: { cert: cert.pem, key: nothing.pem } }")).toMatch(/listen\.tls\.key: cannot read/);
    expect(() => loadConfig({ listenTlsClientCa: path.join(folder, "ca.pem") }, {})).toThrow(/listen\.tls\.clientCa: needs cert and key/);
  });
});
