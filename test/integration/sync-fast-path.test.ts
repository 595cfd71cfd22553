// The sync fast path against real processes: ExecuteTask on a sync plugin calls Do from the API handler and stores
// the execution once, with its outcome; anything but a final outcome is handed to the durable path; a caller that
// leaves or a host that is stopped does not lose an outcome.
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { eventually, taskClient, waitForPlugin } from "../helpers/clients.js";
import {
  startHost,
  startReferencePlugin,
  startTestNats,
  startTypeScriptSidecar,
  tempDir,
  type RunningProcess,
  type TestHost,
  type TestNats,
} from "../helpers/processes.js";

const SYNC_TYPE = "conformance-sync-typescript";
let nats: TestNats;
let host: TestHost;
const spareHosts: TestHost[] = [];
let nc: NatsConnection;
let jsm: JetStreamManager;
let slowTarget: Server;
let slowUrl: string;
const sidecars: RunningProcess[] = [];
const auditFile = path.join(tempDir("sync-fast-path"), "audit.log");

beforeAll(async () => {
  nats = await startTestNats();
  host = await startHost(nats.url);
  sidecars.push(startReferencePlugin(nats.url, auditFile, { CONFORMANCE_KIND: "sync" }));
  sidecars.push(startTypeScriptSidecar("sidecars/typescript/examples/http/main.ts", nats.url));
  // An HTTP server that answers after 1.5 s: a Do that is still running when the host is told to stop.
  slowTarget = createServer((_request, response) => {
    setTimeout(() => response.writeHead(200, { "content-type": "text/plain" }).end("slow answer"), 1_500);
  });
  await new Promise<void>((resolve) => slowTarget.listen(0, "127.0.0.1", resolve));
  const address = slowTarget.address();
  slowUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/slow`;
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  await waitForPlugin(host.url, SYNC_TYPE);
  await waitForPlugin(host.url, "http");
});

afterAll(async () => {
  await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
  await Promise.all(spareHosts.map((spare) => spare.stop()));
  await host?.stop();
  await nc?.close();
  await nats?.stop();
  await new Promise((resolve) => slowTarget?.close(resolve));
});

const script = (custom: Record<string, string | number>, retries = 0) => ({
  template: { type: SYNC_TYPE, typeVersion: 1, custom, metadata: { retries } },
});

async function collect(stream: AsyncIterable<{ event?: TaskEvent }>): Promise<TaskEvent[]> {
  const all: TaskEvent[] = [];
  for await (const { event } of stream) if (event) all.push(event);
  return all;
}

async function lastSequences(): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  for (const stream of ["KV_pb_executions", "PB_WORK", "PB_EVENTS"]) result[stream] = (await jsm.streams.info(stream)).state.last_seq;
  return result;
}

function doCalls(id: string): string[][] {
  if (!existsSync(auditFile)) return [];
  return readFileSync(auditFile, "utf8").split("\n").filter(Boolean).map((line) => line.split(" ")).filter(([call, execution]) => call === "do" && execution === id);
}

const phases = (events: TaskEvent[]) => events.map((event) => Phase[event.phaseInfo?.phase ?? 0]);
const occurredMs = (event: TaskEvent) => Number(event.phaseInfo?.occurredAt?.seconds ?? 0n) * 1000 + (event.phaseInfo?.occurredAt?.nanos ?? 0) / 1e6;

describe("ExecuteTask on a sync plugin", () => {
  it("stores the execution once, with its outcome: one record write, two events, no work item", async () => {
    await collect(taskClient(host.url).executeTask(script({ echo: "warm" }))); // the streams exist from here on
    const before = await lastSequences();
    const events = await collect(taskClient(host.url).executeTask(script({ echo: "fast" })));
    const after = await lastSequences();
    expect(phases(events)).toEqual(["QUEUED", "SUCCESS"]);
    expect(events.map((event) => event.sequence)).toEqual([1n, 2n]);
    expect(events[1]!.outputs?.echo).toBe("fast");
    expect({
      records: after.KV_pb_executions! - before.KV_pb_executions!,
      work: after.PB_WORK! - before.PB_WORK!,
      events: after.PB_EVENTS! - before.PB_EVENTS!,
    }).toEqual({ records: 1, work: 0, events: 2 });

    const id = events[0]!.executionId;
    const { execution } = await taskClient(host.url).getTask({ id });
    expect(execution?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(execution?.outputs?.echo).toBe("fast");
    expect(execution?.lastEventSequence).toBe(2n);
    expect(phases(await collect(taskClient(host.url).watchTask({ id })))).toEqual(["QUEUED", "SUCCESS"]);
    expect(doCalls(id)).toHaveLength(1);
  });

  it("records a user error as PERMANENT_FAILURE in the same single write", async () => {
    const events = await collect(taskClient(host.url).executeTask(script({ do: "BEHAVIOR_USER_ERROR", message: "bad input" })));
    expect(phases(events)).toEqual(["QUEUED", "PERMANENT_FAILURE"]);
    expect(events[1]!.phaseInfo?.error?.message).toContain("bad input");
    const { execution } = await taskClient(host.url).getTask({ id: events[0]!.executionId });
    expect(execution?.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
  });

  it("hands a retryable failure to the durable path, which runs the next attempt", async () => {
    const before = await lastSequences();
    const events = await collect(taskClient(host.url).executeTask(script({ do: "BEHAVIOR_RETRYABLE", message: "try again" }, 1)));
    const after = await lastSequences();
    expect(phases(events)).toEqual(["QUEUED", "RETRYABLE_FAILURE", "QUEUED", "PERMANENT_FAILURE"]);
    expect(events.map((event) => event.sequence)).toEqual([1n, 2n, 3n, 4n]);
    expect(events.map((event) => event.attempt)).toEqual([1, 1, 2, 2]);
    const id = events[0]!.executionId;
    expect(doCalls(id).map(([, , attempt]) => attempt)).toEqual(["1", "2"]);
    expect(after.PB_WORK! - before.PB_WORK!).toBe(1); // the handover's work item
    expect(phases(await collect(taskClient(host.url).watchTask({ id })))).toEqual(phases(events));
  });

  it("finishes a Do whose caller left, counts its system failures and waits out their backoff", async () => {
    // HANG: Do never answers within its 2 s deadline; the plugin allows 2 system failures, then the attempt fails.
    const leave = new AbortController();
    let id = "";
    try {
      for await (const { event } of taskClient(host.url).executeTask(script({ do: "BEHAVIOR_HANG" }), { signal: leave.signal })) {
        id = event!.executionId;
        leave.abort(); // gone after the QUEUED event, while Do runs
      }
    } catch {
      // the call was cancelled by its own caller
    }
    expect(id).not.toBe("");
    // The record appears when the first Do has failed and the execution is handed over; WatchTask runs to the end.
    const events = await eventually("the handed-over execution's events", async () => await collect(taskClient(host.url).watchTask({ id })), 300, 100);
    expect(phases(events)).toEqual(["QUEUED", "QUEUED", "QUEUED", "PERMANENT_FAILURE"]);
    expect(events[1]!.phaseInfo?.reason).toContain("system failure 1 of 2");
    expect(events[2]!.phaseInfo?.reason).toContain("system failure 2 of 2");
    expect(events[3]!.phaseInfo?.reason).toContain("3 system failures");
    // The second Do starts after the first failure's 1 s backoff and takes its 2 s deadline.
    expect(occurredMs(events[2]!) - occurredMs(events[1]!)).toBeGreaterThanOrEqual(2_900);
  });
});

describe("a host told to stop during a sync call whose caller has left", () => {
  it("stores the call's outcome before it exits", async () => {
    const other = await startHost(nats.url);
    spareHosts.push(other); // stopped in afterAll even if this test fails before it takes over
    const leave = new AbortController();
    let id = "";
    try {
      const template = { type: "http", typeVersion: 1, custom: { url: slowUrl, method: "GET" } };
      for await (const { event } of taskClient(host.url).executeTask({ template }, { signal: leave.signal })) {
        id = event!.executionId;
        leave.abort(); // gone after the QUEUED event, while Do waits for the slow server
      }
    } catch {
      // cancelled by its own caller
    }
    expect(id).not.toBe("");
    expect(await host.stop("SIGTERM")).toBe(0);
    const { execution } = await taskClient(other.url).getTask({ id });
    expect(execution?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(execution?.outputs?.body).toBe("slow answer");
    host = other;
  });
});
