// A sidecar connects to a NATS that asks for more than a URL: TLS with a CA of its own and client certificates,
// and operator mode with a user's .creds file. Checked against real sidecar processes and a real nats-server;
// without the CA, or without credentials, the sidecar serves but never connects and logs why. The files' settings
// are read at start: half a client certificate, or a file that cannot be read, stops the sidecar there.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { natsSecurity } from "@plugin-bridge/kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, examplesMain, kitRoot, startSidecar, tempDir, type Sidecar } from "./helpers.js";
import {
  makeNatsOperator,
  makeNatsPki,
  startConfiguredNatsServer,
  type ConfiguredNatsServer,
  type NatsPki,
} from "./secured-nats.js";

const PLUGIN = "conformance-typescript";

/** Whether `key` is in pb_plugins, read by a client the server accepts. */
async function announced(nc: NatsConnection, key: string): Promise<boolean> {
  try {
    const entry = await (await new Kvm(nc).open("pb_plugins")).get(key);
    return entry?.operation === "PUT";
  } catch {
    return false;
  }
}

describe("natsSecurity", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let pem: string;
  beforeAll(async () => {
    dir = await tempDir("nats-settings");
    pem = path.join(dir.path, "present.pem");
    await writeFile(pem, "-----BEGIN CERTIFICATE-----\n");
  });
  afterAll(async () => {
    await dir?.remove();
  });

  it("adds nothing when nothing is set, or set empty", () => {
    expect(natsSecurity({}, {})).toEqual({});
    expect(natsSecurity({}, { PLUGIN_BRIDGE_NATS_CREDENTIALS: "", PLUGIN_BRIDGE_NATS_TLS_CA: "" })).toEqual({});
  });

  it("reads the TLS files, the options over the environment", () => {
    const missing = path.join(dir.path, "missing.pem");
    expect(natsSecurity({}, { PLUGIN_BRIDGE_NATS_TLS_CA: pem }).tls).toEqual({ ca: "-----BEGIN CERTIFICATE-----\n" });
    expect(natsSecurity({ natsTlsCa: pem }, { PLUGIN_BRIDGE_NATS_TLS_CA: missing }).tls).toEqual({ ca: "-----BEGIN CERTIFICATE-----\n" });
    expect(natsSecurity({ natsTlsCert: pem, natsTlsKey: pem }, {}).tls).toEqual({ cert: "-----BEGIN CERTIFICATE-----\n", key: "-----BEGIN CERTIFICATE-----\n" });
    expect(natsSecurity({ natsCredentials: "" }, { PLUGIN_BRIDGE_NATS_CREDENTIALS: missing })).toEqual({});
  });

  it("refuses half a client certificate, naming the missing variable", () => {
    expect(() => natsSecurity({}, { PLUGIN_BRIDGE_NATS_TLS_CERT: pem })).toThrow(
      "a NATS client certificate needs its key: PLUGIN_BRIDGE_NATS_TLS_KEY (serve option natsTlsKey) is not set",
    );
    expect(() => natsSecurity({ natsTlsKey: pem }, {})).toThrow(
      "a NATS client key needs its certificate: PLUGIN_BRIDGE_NATS_TLS_CERT (serve option natsTlsCert) is not set",
    );
  });

  it("refuses a file it cannot read, naming the variable and the path", () => {
    const missing = path.join(dir.path, "missing.creds");
    expect(() => natsSecurity({}, { PLUGIN_BRIDGE_NATS_CREDENTIALS: missing })).toThrow(
      `PLUGIN_BRIDGE_NATS_CREDENTIALS (serve option natsCredentials): cannot read ${missing}: ENOENT`,
    );
    expect(() => natsSecurity({}, { PLUGIN_BRIDGE_NATS_TLS_CA: dir.path })).toThrow(
      `PLUGIN_BRIDGE_NATS_TLS_CA (serve option natsTlsCa): cannot read ${dir.path}: EISDIR`,
    );
  });
});

describe("a sidecar and a NATS that requires TLS with client certificates", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let pki: NatsPki;
  let nats: ConfiguredNatsServer;
  let nc: NatsConnection;
  const sidecars: Sidecar[] = [];

  beforeAll(async () => {
    dir = await tempDir("nats-tls");
    pki = makeNatsPki(dir.path);
    nats = await startConfiguredNatsServer(dir.path, pki.serverConfig);
    const tls: ConnectionOptions["tls"] = { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey };
    nc = await connect({ servers: nats.url, tls });
  });

  afterAll(async () => {
    for (const sidecar of sidecars) await sidecar.stop();
    await nc?.close();
    await nats?.stop();
    await dir?.remove();
  });

  it("announces itself with the CA and a client certificate, and never connects without the CA", async () => {
    const start = async (instanceId: string, env: Record<string, string>): Promise<Sidecar> => {
      const sidecar = await startSidecar(examplesMain.conformance, { natsUrl: nats.url, socketDir: dir.path, instanceId, env });
      sidecars.push(sidecar);
      return sidecar;
    };
    const untrusting = await start("no-ca", { PLUGIN_BRIDGE_NATS_TLS_CERT: pki.clientCert, PLUGIN_BRIDGE_NATS_TLS_KEY: pki.clientKey });
    await eventually("the sidecar without the CA to say why it cannot connect", () =>
      /NATS not reachable; retrying.*certificate/.test(untrusting.logs()) ? true : undefined,
    );

    await start("tls-1", {
      PLUGIN_BRIDGE_NATS_TLS_CA: pki.ca,
      PLUGIN_BRIDGE_NATS_TLS_CERT: pki.clientCert,
      PLUGIN_BRIDGE_NATS_TLS_KEY: pki.clientKey,
    });
    await eventually("the announcement over TLS", async () => ((await announced(nc, `${PLUGIN}.tls-1`)) ? true : undefined), 300, 100);
    expect(await announced(nc, `${PLUGIN}.no-ca`)).toBe(false);
  });
});

describe("a sidecar and a NATS in operator mode", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let credentials: string;
  let nats: ConfiguredNatsServer;
  let nc: NatsConnection;
  const sidecars: Sidecar[] = [];

  beforeAll(async () => {
    dir = await tempDir("nats-creds");
    const operator = makeNatsOperator(dir.path);
    credentials = operator.credentials;
    nats = await startConfiguredNatsServer(dir.path, operator.serverConfig);
    nc = await connect({ servers: nats.url, authenticator: credsAuthenticator(readFileSync(credentials)) });
  }, 360_000);

  afterAll(async () => {
    for (const sidecar of sidecars) await sidecar.stop();
    await nc?.close();
    await nats?.stop();
    await dir?.remove();
  });

  it("announces itself with a user's .creds file, never logs it, and is refused without it", async () => {
    const start = async (instanceId: string, env: Record<string, string>): Promise<Sidecar> => {
      const sidecar = await startSidecar(examplesMain.conformance, { natsUrl: nats.url, socketDir: dir.path, instanceId, env });
      sidecars.push(sidecar);
      return sidecar;
    };
    const anonymous = await start("anonymous", {});
    await eventually("the sidecar without credentials to say why it cannot connect", () =>
      /NATS not reachable; retrying.*authorization violation/i.test(anonymous.logs()) ? true : undefined,
    );

    const sidecar = await start("creds-1", { PLUGIN_BRIDGE_NATS_CREDENTIALS: credentials, PLUGIN_BRIDGE_LOG_LEVEL: "debug" });
    await eventually("the announcement with credentials", async () => ((await announced(nc, `${PLUGIN}.creds-1`)) ? true : undefined), 300, 100);
    expect(await announced(nc, `${PLUGIN}.anonymous`)).toBe(false);
    for (const line of readFileSync(credentials, "utf8").split("\n").filter((text) => text.length > 20)) {
      expect(sidecar.logs()).not.toContain(line);
    }
  });
});

describe("a sidecar with half a NATS client certificate", () => {
  it("fails at start, naming the missing variable", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", examplesMain.conformance], {
      cwd: path.resolve(kitRoot, "..", ".."),
      env: { ...process.env, PLUGIN_BRIDGE_NATS_URL: "nats://127.0.0.1:1", PLUGIN_BRIDGE_NATS_TLS_CERT: "/nowhere/client.pem" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    clearTimeout(killer);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stderr).toContain("PLUGIN_BRIDGE_NATS_TLS_KEY (serve option natsTlsKey) is not set");
  });
});
