// A nats-server that asks more of a client than its URL, for the tests of PLUGIN_BRIDGE_NATS_CREDENTIALS and
// PLUGIN_BRIDGE_NATS_TLS_*: TLS with client certificates (a PKI made here with the openssl CLI), or operator mode
// with JWTs (made by the Go kit's nats-operator program: no JWT library for JavaScript is installed). Every wait
// is bounded and the server binds loopback only.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { freePort, natsServerBinary } from "../../../src/coordination/nats-server-process.js";
import { kitRoot } from "./helpers.js";

/** What a client of the TLS server uses (PEM files), and the tls block of the server's configuration. */
export interface NatsPki {
  ca: string;
  clientCert: string;
  clientKey: string;
  serverConfig: string;
}

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { stdio: "ignore", timeout: 30_000 });
}

/** A P-256 certificate signed by `ca` (or self-signed, for the CA itself), and its key. */
function certificate(dir: string, name: string, subject: string, extensions: string[], ca?: { cert: string; key: string }) {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  openssl(
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", subject,
    ...extensions.flatMap((extension) => ["-addext", extension]),
    ...(ca ? ["-CA", ca.cert, "-CAkey", ca.key] : []),
    "-keyout", key, "-out", cert,
  );
  return { cert, key };
}

/**
 * A CA of the test's own, a server certificate for 127.0.0.1 and a client certificate, both signed by it. The
 * server's certificate also names localhost: nats.js checks a server dialled by IP address against that name.
 */
export function makeNatsPki(dir: string): NatsPki {
  const ca = certificate(dir, "ca", "/CN=plugin-bridge test NATS CA", []);
  const leaf = ["basicConstraints=critical,CA:FALSE"];
  const serverNames = "subjectAltName=IP:127.0.0.1,DNS:localhost";
  const server = certificate(dir, "server", "/CN=127.0.0.1", [...leaf, serverNames, "extendedKeyUsage=serverAuth"], ca);
  const client = certificate(dir, "client", "/CN=sidecar", [...leaf, "extendedKeyUsage=clientAuth"], ca);
  const serverConfig = [
    "tls {",
    `  cert_file: ${JSON.stringify(server.cert)}`,
    `  key_file: ${JSON.stringify(server.key)}`,
    `  ca_file: ${JSON.stringify(ca.cert)}`,
    "  verify: true",
    "}",
    "",
  ].join("\n");
  return { ca: ca.cert, clientCert: client.cert, clientKey: client.key, serverConfig };
}

/** An operator's setup: the server's lines that trust it, and a user's .creds file of its JetStream account. */
export interface NatsOperator {
  serverConfig: string;
  credentials: string;
}

/** Runs `go run ./internal/cmd/nats-operator` in the Go kit (a first build can take a while on a busy machine). */
export function makeNatsOperator(dir: string): NatsOperator {
  execFileSync("go", ["run", "./internal/cmd/nats-operator", dir], {
    cwd: path.resolve(kitRoot, "..", "go"),
    stdio: ["ignore", "ignore", "pipe"],
    timeout: 300_000,
  });
  return { serverConfig: readFileSync(path.join(dir, "operator.conf"), "utf8"), credentials: path.join(dir, "user.creds") };
}

export interface ConfiguredNatsServer {
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts nats-server with JetStream and `config` in its configuration file; resolves once it is ready. */
export async function startConfiguredNatsServer(dir: string, config: string): Promise<ConfiguredNatsServer> {
  const port = await freePort();
  const configFile = path.join(dir, "nats-server.conf");
  await writeFile(configFile, `max_payload: 8388608\n${config}`);
  const child = spawn(
    natsServerBinary(),
    ["--config", configFile, "--jetstream", "--store_dir", path.join(dir, "jetstream"), "--addr", "127.0.0.1", "--port", String(port)],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let output = "";
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes("Server is ready")) resolve();
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then(() => reject(new Error(`nats-server exited before it was ready:\n${output.slice(-2000)}`)));
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  try {
    await ready;
  } finally {
    clearTimeout(killer);
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const forced = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(forced);
    },
  };
}
