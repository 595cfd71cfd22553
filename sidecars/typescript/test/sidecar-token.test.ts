// A sidecar given a token signs what it tells the hosts over NATS: every announcement (the first, each heartbeat,
// the draining one) and every push. Checked against real sidecar processes (the conformance plugin, which pushes on
// request) and a real nats-server, with HMACs computed here over the bytes the contract names; a sidecar without a
// token writes exactly what it always did, and half a token stops the sidecar at start.
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import path from "node:path";
import { inspect } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { credentials } from "@grpc/grpc-js";
import { Kvm, type KvWatchEntry } from "@nats-io/kv";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import {
  createGrpcClient,
  PLUGINS_BUCKET,
  PLUGINS_BUCKET_OPTIONS,
  PUSH_KEY_ID_HEADER,
  PUSH_SIGNATURE_HEADER,
  sidecarToken,
} from "@plugin-bridge/kit";
import {
  PluginAnnouncementSchema,
  PushedStatusSchema,
  type PluginAnnouncement,
} from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { AsyncPluginService, PluginInstanceSchema, type PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../../../src/coordination/nats-server-process.js";
import { eventually, examplesMain, kitRoot, startSidecar, taskContext, tempDir, type Sidecar } from "./helpers.js";

const TOKEN = randomBytes(32).toString("hex");
const TOKEN_ID = "conformance-typescript";
const PLUGIN = "conformance-typescript";

function hmac(...parts: Uint8Array[]): Buffer {
  const mac = createHmac("sha256", Buffer.from(TOKEN, "utf8"));
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** The instance a signed announcement carries, once its signature is checked over the documented bytes. */
function verifiedInstance(announcement: PluginAnnouncement): PluginInstance {
  expect(announcement.instance).toBeUndefined();
  expect(announcement.keyId).toBe(TOKEN_ID);
  expect(announcement.ttlSeconds).toBe(10);
  const ttl = Buffer.alloc(4);
  ttl.writeUInt32BE(announcement.ttlSeconds);
  const expected = hmac(Buffer.from("pbv1"), ttl, announcement.signedInstance);
  expect(Buffer.from(announcement.signature).toString("hex")).toBe(expected.toString("hex"));
  return fromBinary(PluginInstanceSchema, announcement.signedInstance);
}

describe("sidecarToken", () => {
  it("takes the options over the environment, and nothing from neither", () => {
    const env = { PLUGIN_BRIDGE_TOKEN: "env-token", PLUGIN_BRIDGE_TOKEN_ID: "env-id" };
    expect(sidecarToken({}, env)?.id).toBe("env-id");
    expect(sidecarToken({ tokenId: "option-id", token: "option-token" }, env)?.id).toBe("option-id");
    expect(sidecarToken({}, {})).toBeUndefined();
    expect(sidecarToken({}, { PLUGIN_BRIDGE_TOKEN: "", PLUGIN_BRIDGE_TOKEN_ID: "" })).toBeUndefined();
  });

  it("refuses half a token, naming what is missing and never the token", () => {
    expect(() => sidecarToken({}, { PLUGIN_BRIDGE_TOKEN: TOKEN })).toThrow(/PLUGIN_BRIDGE_TOKEN_ID .*is not set/);
    expect(() => sidecarToken({ token: TOKEN }, {})).toThrow(/PLUGIN_BRIDGE_TOKEN_ID \(serve option tokenId\)/);
    expect(() => sidecarToken({}, { PLUGIN_BRIDGE_TOKEN_ID: "a" })).toThrow(/PLUGIN_BRIDGE_TOKEN \(serve option token\) is not set/);
    try {
      sidecarToken({}, { PLUGIN_BRIDGE_TOKEN: TOKEN });
    } catch (error) {
      expect((error as Error).message).not.toContain(TOKEN);
    }
  });

  it("keeps the token out of anything that prints it", () => {
    const token = sidecarToken({ token: TOKEN, tokenId: TOKEN_ID });
    expect(JSON.stringify(token)).not.toContain(TOKEN);
    expect(inspect(token, { showHidden: true, depth: 5 })).not.toContain(TOKEN);
  });
});

describe("a sidecar with a token, and one without", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let nats: NatsServerProcess;
  let nc: NatsConnection;
  let signed: Sidecar;
  let unsigned: Sidecar;
  /** Every write to each sidecar's key, in order, from before its first. */
  const writes = new Map<string, KvWatchEntry[]>();

  const keyOf = (sidecar: Sidecar) => `${PLUGIN}.${sidecar.instanceId}`;
  const puts = (sidecar: Sidecar) =>
    (writes.get(keyOf(sidecar)) ?? []).filter((entry) => entry.operation === "PUT").map((entry) => fromBinary(PluginAnnouncementSchema, entry.value));

  /** Creates an execution whose Create pushes PHASE_SUCCESS at once (Script.push_after_ms), and returns the push. */
  async function pushFrom(sidecar: Sidecar, executionId: string): Promise<Msg> {
    const subscription = nc.subscribe(`pb.push.${executionId}`, { max: 1, timeout: 30_000 });
    const plugin = createGrpcClient(AsyncPluginService, sidecar.endpoint, credentials.createInsecure());
    try {
      await plugin.create({ context: taskContext(executionId, { pushAfterMs: 1 }, { type: PLUGIN }) });
      for await (const message of subscription) return message;
      throw new Error("the subscription ended without a push");
    } finally {
      plugin.close();
    }
  }

  beforeAll(async () => {
    dir = await tempDir("token");
    nats = await startNatsServer({ dataDir: path.join(dir.path, "nats") });
    nc = await connect({ servers: nats.url });
    // The bucket as the kit would create it, watched before the sidecars start: the first writes are seen too.
    const kv = await new Kvm(nc).create(PLUGINS_BUCKET, { ...PLUGINS_BUCKET_OPTIONS });
    const watch = await kv.watch({ key: `${PLUGIN}.>` });
    void (async () => {
      for await (const entry of watch) writes.set(entry.key, [...(writes.get(entry.key) ?? []), entry]);
    })();
    const env = { PLUGIN_BRIDGE_LOG_LEVEL: "debug" };
    [signed, unsigned] = await Promise.all([
      startSidecar(examplesMain.conformance, {
        natsUrl: nats.url,
        socketDir: dir.path,
        instanceId: "signed-1",
        env: { ...env, PLUGIN_BRIDGE_TOKEN: TOKEN, PLUGIN_BRIDGE_TOKEN_ID: TOKEN_ID },
      }),
      startSidecar(examplesMain.conformance, { natsUrl: nats.url, socketDir: dir.path, instanceId: "unsigned-1", env }),
    ]);
  });

  afterAll(async () => {
    await signed?.stop();
    await unsigned?.stop();
    await nc?.close();
    await nats?.stop();
    await dir?.remove();
  });

  it("signs its pushes over the exact payload bytes", async () => {
    const message = await pushFrom(signed, "token-push-1");
    expect(message.headers?.get(PUSH_KEY_ID_HEADER)).toBe(TOKEN_ID);
    const signature = message.headers?.get(PUSH_SIGNATURE_HEADER);
    expect(signature).toBe(hmac(Buffer.from("pbv1push"), message.data).toString("hex"));
    const status = fromBinary(PushedStatusSchema, message.data);
    expect([status.executionId, status.instanceId, status.phaseInfo?.phase]).toEqual(["token-push-1", "signed-1", Phase.SUCCESS]);
  });

  it("pushes without headers when it has no token", async () => {
    const message = await pushFrom(unsigned, "token-push-2");
    expect(message.headers?.get(PUSH_KEY_ID_HEADER) ?? "").toBe("");
    expect(message.headers?.get(PUSH_SIGNATURE_HEADER) ?? "").toBe("");
    expect(fromBinary(PushedStatusSchema, message.data).instanceId).toBe("unsigned-1");
  });

  it("announces unsigned without a token, as always", async () => {
    const [first] = await eventually("the unsigned announcement", () => (puts(unsigned).length > 0 ? puts(unsigned) : undefined));
    expect(first!.instance?.instanceId).toBe("unsigned-1");
    expect(first!.instance?.endpoint).toBe(unsigned.endpoint);
    expect([first!.signedInstance.length, first!.keyId, first!.signature.length]).toEqual([0, "", 0]);
  });

  it("signs its first announcement, each heartbeat and the draining one", async () => {
    // The first write and at least one heartbeat (every 3 s).
    const announced = await eventually("a heartbeat", () => (puts(signed).length >= 2 ? puts(signed) : undefined), 300, 100);
    const instances = announced.map(verifiedInstance);
    for (const instance of instances) {
      expect(instance.instanceId).toBe("signed-1");
      expect(instance.endpoint).toBe(signed.endpoint);
      expect(instance.descriptor?.name).toBe(PLUGIN);
      expect(instance.draining).toBe(false);
    }
    expect(instances[1]!.heartbeatAt).not.toEqual(instances[0]!.heartbeatAt);

    expect(await signed.stop()).toBe(0);
    const all = await eventually("the key's deletion", () => {
      const entries = writes.get(keyOf(signed)) ?? [];
      return entries.at(-1)?.operation === "PUT" ? undefined : entries;
    });
    const draining = fromBinary(PluginAnnouncementSchema, all.filter((entry) => entry.operation === "PUT").at(-1)!.value);
    expect(verifiedInstance(draining).draining).toBe(true);
  });

  it("never logs its token", () => {
    expect(signed.logs()).toContain("signing announcements and pushes");
    expect(signed.logs()).not.toContain(TOKEN);
  });
});

describe("a sidecar with half a token", () => {
  it("fails at start, naming the missing variable", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", examplesMain.conformance], {
      cwd: path.resolve(kitRoot, "..", ".."),
      env: { ...process.env, PLUGIN_BRIDGE_NATS_URL: "nats://127.0.0.1:1", PLUGIN_BRIDGE_TOKEN: TOKEN, PLUGIN_BRIDGE_TOKEN_ID: "" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    clearTimeout(killer);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stderr).toContain("PLUGIN_BRIDGE_TOKEN_ID (serve option tokenId) is not set");
    expect(stderr).not.toContain(TOKEN);
  });
});
