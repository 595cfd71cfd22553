// Secrets end to end: a template names what it needs, the host resolves it from a directory and from the
// environment, passes only what is named and allowed for that plugin, and no value it handed out is found in any
// NATS stream or bucket, nor in the logs, even when the plugin puts it in its outputs, a reason or an error.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { taskClient, waitForPlugin } from "../helpers/clients.js";
import { startHost, startTestNats, startTypeScriptSidecar, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

// Planted values, unique to this run, so that finding one anywhere can only mean a leak.
const fileSecret = `file-${randomBytes(12).toString("hex")}`;
const envSecret = `env-${randomBytes(12).toString("hex")}`;
const otherSecret = `other-${randomBytes(12).toString("hex")}`;
const ENV_PREFIX = "PB_TEST_SECRET_";

let nats: TestNats;
let host: TestHost;
let sidecar: RunningProcess;

beforeAll(async () => {
  const secretsDir = tempDir("secrets");
  mkdirSync(path.join(secretsDir, "vault"));
  writeFileSync(path.join(secretsDir, "vault", "token"), fileSecret);
  writeFileSync(path.join(secretsDir, "vault", "other"), otherSecret);
  // The host inherits this process's environment.
  process.env[`${ENV_PREFIX}CLOUD_API_KEY`] = envSecret;
  nats = await startTestNats();
  host = await startHost(nats.url, {
    "secrets-dir": secretsDir,
    "secrets-env-prefix": ENV_PREFIX,
    // vault/other exists but is not allowed for secret-echo.
    "secret-access": "secret-echo=vault/token,cloud/api-key;nobody=vault/*",
  });
  sidecar = startTypeScriptSidecar("test/fixtures/secret-echo.ts", nats.url);
  await waitForPlugin(host.url, "secret-echo");
});

afterAll(async () => {
  await sidecar?.stop();
  await host?.stop();
  await nats?.stop();
});

const template = (secrets: Array<[string, string]>, leak = "") => ({
  type: "secret-echo",
  typeVersion: 1,
  custom: (leak ? { leak } : {}) as JsonObject,
  secrets: secrets.map(([group, key]) => ({ group, key })),
});

async function execute(request: ReturnType<typeof template>): Promise<TaskEvent> {
  let last: TaskEvent | undefined;
  for await (const { event } of taskClient(host.url).executeTask({ template: request })) last = event ?? last;
  return last!;
}

describe("secrets", () => {
  it("come from a file and from the environment, and the plugin gets exactly those named", async () => {
    const last = await execute(template([["vault", "token"], ["cloud", "api-key"]]));
    expect(last.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(last.outputs?.names).toEqual(["cloud/api-key", "vault/token"]);
    expect(last.outputs?.lengths).toEqual([envSecret.length, fileSecret.length]);
    // The plugin echoed the values; the host kept only their names.
    expect(last.outputs?.values).toEqual(["[secret cloud/api-key]", "[secret vault/token]"]);
    const only = await execute(template([["vault", "token"]]));
    expect(only.outputs?.names).toEqual(["vault/token"]);
  });

  it("refuses a secret the plugin is not allowed, though it exists, with PERMISSION_DENIED", async () => {
    const error = await taskClient(host.url)
      .createTask({ template: template([["vault", "token"], ["vault", "other"]]) })
      .then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(error?.rawMessage).toBe("secret vault/other is not allowed for plugin secret-echo (the host's secretAccess rules)");
  });

  it("keeps values out of a phase reason and an error message", async () => {
    const reason = await execute(template([["vault", "token"]], "reason"));
    expect(reason.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(reason.phaseInfo?.reason).toBe("the secrets were [secret vault/token]");
    const error = await execute(template([["cloud", "api-key"]], "error"));
    expect(error.phaseInfo?.error?.message).toBe("refusing token [secret cloud/api-key]");
  });

  it("are found in no NATS stream or bucket and in no log", async () => {
    const planted = [fileSecret, envSecret, otherSecret];
    const nc = await connect({ servers: nats.url });
    const found: string[] = [];
    let messages = 0;
    try {
      const jsm = await jetstreamManager(nc);
      // Every stream, KV buckets included (KV_*), every message still stored, subject, headers and data.
      for await (const info of jsm.streams.list()) {
        const name = info.config.name;
        for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
          const message = await jsm.streams.getMessage(name, { seq }).catch(() => null);
          if (!message) continue;
          messages++;
          const text = `${message.subject} ${message.header?.toString() ?? ""} ${Buffer.from(message.data).toString("latin1")}`;
          for (const value of planted) if (text.includes(value)) found.push(`${name} #${seq}`);
        }
      }
    } finally {
      await nc.close();
    }
    expect(messages).toBeGreaterThan(10); // records, events and announcements were searched
    for (const [name, output] of [["host", host.output()], ["sidecar", sidecar.output()]] as const) {
      for (const value of planted) if (output.includes(value)) found.push(`${name} log`);
    }
    expect(found).toEqual([]);
  });
});
