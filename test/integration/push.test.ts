// Pushed statuses at the host: a push that does not belong (another attempt, an instance that does not serve the
// execution, bytes that do not decode, an execution that does not exist) changes nothing; the right one ends the
// execution between polls. The kits' own push is in the conformance suite.
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PushedStatusSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { pushSubject } from "../../src/coordination/names.js";
import { eventually, taskClient, waitForPlugin } from "../helpers/clients.js";
import { startHost, startReferencePlugin, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

const work = tempDir("push");
const INSTANCE = "push-reference";
let nats: TestNats;
let host: TestHost;
let sidecar: RunningProcess;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startTestNats();
  host = await startHost(nats.url);
  sidecar = startReferencePlugin(nats.url, path.join(work, "audit.log"), { PLUGIN_BRIDGE_INSTANCE_ID: INSTANCE });
  await waitForPlugin(host.url, "conformance-typescript");
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await sidecar?.stop();
  await host?.stop();
  await nats?.stop();
});

const push = (executionId: string, fields: { attempt?: number; instanceId?: string; phase?: Phase }) =>
  nc.publish(
    pushSubject(executionId),
    toBinary(PushedStatusSchema, create(PushedStatusSchema, {
      executionId,
      attempt: fields.attempt ?? 1,
      instanceId: fields.instanceId ?? INSTANCE,
      phaseInfo: { phase: fields.phase ?? Phase.SUCCESS, reason: "pushed" },
      outputs: { pushed: true },
    })),
  );

async function phaseOf(id: string): Promise<Phase> {
  const { execution } = await taskClient(host.url).getTask({ id });
  return execution!.phaseInfo!.phase;
}

describe("pushed status at the host", () => {
  it("drops pushes that do not belong, and applies the one that does", async () => {
    const { execution } = await taskClient(host.url).createTask({
      template: { type: "conformance-typescript", typeVersion: 1, custom: { waitForFile: path.join(work, "never") } },
    });
    const id = execution!.id;
    await eventually("polling", async () => ((await phaseOf(id)) === Phase.RUNNING ? true : undefined), 200, 50);

    push(id, { attempt: 2 });
    push(id, { instanceId: "somebody-else" });
    push(id, { phase: Phase.UNSPECIFIED });
    push("does-not-exist", {});
    nc.publish(pushSubject(id), new TextEncoder().encode("not a protobuf message at all"));
    await nc.flush();
    // Every push above had time to be handled (the plugin polls every 200 ms meanwhile): nothing changed.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await phaseOf(id)).toBe(Phase.RUNNING);
    expect(host.child.exitCode).toBeNull();

    push(id, {});
    await eventually("the push applied", async () => ((await phaseOf(id)) === Phase.SUCCESS ? true : undefined), 200, 50);
    const { execution: done } = await taskClient(host.url).getTask({ id });
    expect(done?.outputs).toEqual({ pushed: true });
    expect(done?.phaseInfo?.reason).toBe("pushed");
    expect(host.output()).toContain("dropping a status pushed by an instance that does not serve the execution");
    expect(host.output()).toContain("dropping a pushed status that does not decode");
  });
});
