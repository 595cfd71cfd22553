// The fuzzer (issue 7, point 3): mutated protobuf and JSON, structured hostile inputs and broken framing and headers
// sent to every public RPC of a real host (gRPC over h2c, Connect JSON and binary and gRPC-Web over HTTP/1.1 and
// h2c), straight to each kit's gRPC server, and into the NATS inputs the host reads from sidecars (announcements
// in `pb_plugins`, pushed statuses on `pb.push.<id>`). The oracle wants a well-formed status from the allowed set for
// every case, no hang, every process alive and announced, no bogus instance routed, no execution changed by a bad
// push, and a normal task still running to SUCCESS on every kit at the end. Deterministic: FUZZ_SEED and FUZZ_CASES
// pick the cases; each finding prints the FUZZ_REPLAY that runs it alone. docs/fuzzing.md has the figures.
import * as http from "node:http";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { PLUGINS_BUCKET } from "../../src/coordination/names.js";
import { eventually, registryClient, taskClient } from "../helpers/clients.js";
import { FUZZ_SIGNED_PLUGIN, FUZZ_SIGNER, startEnvironment, type Environment, type KitSidecar } from "./environment.js";
import { acceptedExecutions, hostMethods, unreadableExecution } from "./host-targets.js";
import { MiB } from "./hostile.js";
import { createdResourceMeta, kitMethods, LIBRARY_PARSE_INTERNAL, LIBRARY_PROTOCOL_INTERNAL } from "./kit-targets.js";
import { announcement, fakeInstance } from "./nats-cases.js";
import { fuzzAnnouncements, fuzzPushes, natsReconnects, pushLongExecutionId, startVictim, typeClaimedBySigner, type Victim } from "./nats-targets.js";
import { Random } from "./random.js";
import type { MethodTarget, RpcCaseOptions } from "./rpc-cases.js";
import { endpointTarget, sendRpcCase, transportCounts } from "./rpc-send.js";
import { CONCURRENCY, Report, REPLAY, runTargets, SEED, TOTAL_CASES, type TargetRun } from "./run.js";
import { Http2Pool } from "./wire.js";

/** Each target's share of FUZZ_CASES. */
const SHARES = {
  "host/grpc": 0.28,
  "host/connect-json": 0.17,
  "host/connect-binary": 0.13,
  "host/grpc-web": 0.12,
  "kit/typescript": 0.06,
  "kit/python": 0.06,
  "kit/go": 0.06,
  "nats/announcements": 0.06,
  "nats/pushes": 0.06,
} as const;
type Target = keyof typeof SHARES;

const casesOf = (target: Target): number => Math.round(TOTAL_CASES * SHARES[target]);

/** The host's read limit (src/api/limits.ts): sizes are tried at it and just over it. */
const READ_LIMIT = 4 * MiB;
/** The kits' gRPC servers take messages of up to 16 MiB (the host's client limit). */
const KIT_READ_LIMIT = 16 * MiB;
/** How long one case may take before it counts as a hang; the large ones get longer on a loaded 2-core machine. */
const DEADLINE_MS = 10_000;
const HEAVY_DEADLINE_MS = 60_000;
/** Each group of targets stops taking new cases after this long (reported, never failed: speed is not under test). */
const HOST_BUDGET_MS = Number(process.env.FUZZ_HOST_BUDGET_MS ?? 180_000);
const KIT_BUDGET_MS = Number(process.env.FUZZ_KIT_BUDGET_MS ?? 90_000);
const NATS_BUDGET_MS = Number(process.env.FUZZ_NATS_BUDGET_MS ?? 60_000);

const BASE_OPTIONS = { readLimit: READ_LIMIT, heavyChance: 0.0025, deadlineMs: DEADLINE_MS, heavyDeadlineMs: HEAVY_DEADLINE_MS };

/**
 * connect-es's words for a binary message it cannot decode, INTERNAL as gRPC's status code table has it ("Error
 * parsing request proto"), as grpc-go, grpc-java and the kits' libraries answer too (docs/fuzzing.md).
 */
const HOST_PARSE_INTERNAL = /^parse binary: /;

const report = new Report();
let env: Environment;
let hostMethodsList: MethodTarget[];
let hostHttp2: Http2Pool;
let hostAgent: http.Agent;
/** Executions the host accepted and the fuzzer read back already (idempotency keys give the same one again). */
const readBack = new Set<string>();
/** Per kit language: an HTTP/2 pool to each of its instances, and the methods its cases call. */
const kitTargets = new Map<string, Array<{ pool: Http2Pool; methods: MethodTarget[] }>>();

/** The sidecar keys the fuzzer signs with: each kit's own, and the fuzz signer allowed one plugin of its own. */
const keyOf = (name: string) => ({ keyId: name, token: env.auth.tokenFor(name) });
const fuzzSigner = () => ({ ...keyOf(FUZZ_SIGNER), plugin: FUZZ_SIGNED_PLUGIN });

async function routedInstanceIds(): Promise<Set<string>> {
  const { plugins } = await registryClient(env.host.url, "connect-binary").listPlugins({});
  return new Set(plugins.flatMap((plugin) => plugin.instances.filter((instance) => !instance.draining).map((instance) => instance.instanceId)));
}

describe("the fuzzer", () => {
  beforeAll(async () => {
    const started = Date.now();
    env = await startEnvironment();
    report.notes.push(`processes started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // An execution that has ended, for the seeds of GetTask, WatchTask and AbortTask.
    let finishedId = "";
    for await (const { event } of taskClient(env.host.url).executeTask({ template: { type: "conformance-sync-typescript", typeVersion: 1, custom: { echo: "seed" } } })) {
      if (event) finishedId = event.executionId;
    }
    hostMethodsList = hostMethods({ languages: [...new Set(env.sidecars.map((s) => s.kit.language))], finishedId });
    hostHttp2 = Http2Pool.to({ url: env.host.url });
    hostAgent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    for (const sidecar of env.sidecars) {
      const pool = Http2Pool.to(endpointTarget(sidecar.instance.endpoint), 2);
      const resourceMeta = sidecar.kind === "async" ? await createdResourceMeta(pool, sidecar.type) : new Uint8Array();
      const targets = kitTargets.get(sidecar.kit.language) ?? [];
      targets.push({ pool, methods: kitMethods(sidecar.kind, sidecar.type, resourceMeta) });
      kitTargets.set(sidecar.kit.language, targets);
    }
  }, 300_000);

  afterAll(async () => {
    if (hostHttp2) {
      report.notes.push(
        `host transport: GOAWAY on shared HTTP/2 sessions by code ${JSON.stringify(Object.fromEntries(hostHttp2.goaways))}; ` +
          `${transportCounts.refusedStreams} refused streams retried; ${transportCounts.answeredBeforeRequestEnd} HTTP/2 answers complete before the request was`,
      );
    }
    hostHttp2?.close();
    for (const targets of kitTargets.values()) for (const { pool } of targets) pool.close();
    hostAgent?.destroy();
    console.log(`fuzz seed ${SEED}, ${report.total()} cases\n${report.table()}\n\n${report.kindTable()}\n\n${[...report.notes, ...report.notedLines()].join("\n")}`);
    if (report.findingCount > 0) console.log(`findings:\n${report.findings()}`);
    await env?.stop();
  }, 120_000);

  it("answers every mangled call on the public port with a proper status, and never hangs", async () => {
    const reconnects = await natsReconnects(env.host.url);
    const { hostname, port } = new URL(env.host.url);
    const http1 = { host: hostname, port: Number(port), agent: hostAgent };
    const jsonReader = taskClient(env.host.url, "connect-json");
    const over = (target: Target, protocol: RpcCaseOptions["protocol"], json: boolean | "sometimes", http1Share: number): TargetRun => ({
      target,
      count: casesOf(target),
      run: async (index) => {
        const random = Random.for(SEED, target, index);
        const overHttp1 = random.chance(http1Share);
        const asJson = json === "sometimes" ? random.chance(0.2) : json;
        const options = { ...BASE_OPTIONS, protocol, json: asJson, http1: overHttp1, libraryInternal: HOST_PARSE_INTERNAL };
        const outcome = await sendRpcCase(random, hostMethodsList, options, overHttp1 ? { http1 } : { http2: hostHttp2 });
        // An execution the host accepted must be readable afterwards, in JSON and in binary.
        for (const id of acceptedExecutions(outcome.answers ?? [])) {
          if (readBack.has(id)) continue;
          readBack.add(id);
          const problem = await unreadableExecution(jsonReader, id);
          if (problem && !outcome.finding) outcome.finding = { kind: `an accepted execution cannot be read back: ${problem.replace(/ of accepted execution \S+/, "").slice(0, 60)}`, why: problem };
        }
        return outcome;
      },
    });
    await runTargets(report, [
      over("host/grpc", "grpc", "sometimes", 0),
      over("host/connect-json", "connect", true, 0.75),
      over("host/connect-binary", "connect", false, 0.75),
      over("host/grpc-web", "grpc-web", "sometimes", 0.75),
    ], HOST_BUDGET_MS);
    expect(env.host.child.exitCode, `the host exited:\n${env.host.output().slice(-3000)}`).toBeNull();
    expect(await natsReconnects(env.host.url), "NATS reconnects of the host during the calls").toBe(reconnects);
    const findings = report.findings((finding) => finding.target.startsWith("host/"));
    expect(findings, findings).toBe("");
  }, 600_000);

  it("answers every mangled call on each kit's gRPC server with a proper status, never hangs, and stays announced", async () => {
    await runTargets(report, [...kitTargets.entries()].map(([language, instances]): TargetRun => ({
      target: `kit/${language}`,
      count: casesOf(`kit/${language}` as Target),
      run: (index) => {
        const random = Random.for(SEED, `kit/${language}`, index);
        const { pool, methods } = random.pick(instances);
        return sendRpcCase(random, methods, {
          ...BASE_OPTIONS,
          readLimit: KIT_READ_LIMIT,
          protocol: "grpc",
          json: false,
          http1: false,
          // Every call carries a deadline, as the host's do: a plugin that waits must give up by itself.
          baseHeaders: { "grpc-timeout": "8S" },
          extraCodes: ["DEADLINE_EXCEEDED", "CANCELLED"],
          libraryInternal: LIBRARY_PARSE_INTERNAL[language],
          libraryProtocolInternal: LIBRARY_PROTOCOL_INTERNAL[language],
        }, { http2: pool });
      },
    })), KIT_BUDGET_MS);
    for (const sidecar of env.sidecars) {
      expect(sidecar.process.child.exitCode, `${sidecar.instanceId} exited:\n${sidecar.process.output().slice(-3000)}`).toBeNull();
    }
    // Alive is not enough: each sidecar must still announce itself, or the host stops routing to it. A heartbeat is
    // due every 3 s and an announcement counts for 10 s: wait a little longer than that.
    for (const sidecar of env.sidecars) {
      const routed = await eventually(`${sidecar.instanceId} to be routed`, async () => ((await routedInstanceIds()).has(sidecar.instanceId) ? true : undefined), 60, 250).catch(() => false);
      expect(routed, `${sidecar.instanceId} is alive but no longer routed; its last output:\n${sidecar.process.output().slice(-3000)}`).toBe(true);
    }
    const findings = report.findings((finding) => finding.target.startsWith("kit/"));
    expect(findings, findings).toBe("");
  }, 600_000);

  it("never routes a bad announcement, never lets a bad push change an execution, and keeps every process alive", async () => {
    const reconnects = await natsReconnects(env.host.url);
    const nc = await connect({ servers: env.nats.url });
    try {
      const kv = await new Kvm(nc).open(PLUGINS_BUCKET);
      const signer = fuzzSigner();
      const seeds: Array<{ value: Uint8Array; name: string }> = [];
      for (const sidecar of env.sidecars.filter((s) => s.kind === "async")) {
        const entry = await kv.get(`${sidecar.type}.${sidecar.instanceId}`);
        if (entry) seeds.push({ value: entry.value, name: `genuine(${sidecar.instanceId})` });
      }
      seeds.push(
        { value: announcement(fakeInstance("unsigned-1", "conformance-go", "conformance-go")), name: "unsigned" },
        { value: announcement(fakeInstance("overreaching-1", "conformance-typescript", "conformance-typescript"), keyOf("fuzz-go")), name: "overreaching" },
        { value: announcement(fakeInstance("signed-seed", signer.plugin, `${signer.plugin}-type`), signer), name: "signer" },
      );
      await fuzzAnnouncements({
        report,
        hostUrl: env.host.url,
        kv,
        count: casesOf("nats/announcements"),
        budgetMs: NATS_BUDGET_MS,
        genuine: env.sidecars.map((sidecar) => sidecar.instance),
        seeds,
        signer,
      });

      // Victims run on the sidecars the host still routes (one the kit fuzz took out is a finding there already).
      const routed = await routedInstanceIds();
      const languages = [...new Set(env.sidecars.map((sidecar) => sidecar.kit.language))];
      const victimOf = async (sidecar: KitSidecar): Promise<Victim> => ({
        id: await startVictim(env.host.url, sidecar.type),
        type: sidecar.type,
        instanceId: sidecar.instanceId,
        keys: { own: keyOf(`fuzz-${sidecar.kit.language}`), other: keyOf(`fuzz-${languages.find((l) => l !== sidecar.kit.language)!}`) },
      });
      const pushers = env.sidecars.filter((sidecar) => sidecar.kind !== "sync" && routed.has(sidecar.instanceId));
      const victims = await Promise.all(pushers.map(victimOf));
      const signedVictims = await Promise.all(pushers.map(victimOf));
      await fuzzPushes({ report, hostUrl: env.host.url, nc, count: casesOf("nats/pushes"), budgetMs: NATS_BUDGET_MS, victims, signedVictims });
      const client = taskClient(env.host.url);
      for (const victim of [...victims, ...signedVictims]) await client.abortTask({ id: victim.id, reason: "fuzz over" }).catch(() => undefined);
    } finally {
      await nc.close();
    }
    expect(env.host.child.exitCode, `the host exited:\n${env.host.output().slice(-3000)}`).toBeNull();
    const findings = report.findings((finding) => finding.target.startsWith("nats/"));
    expect(await natsReconnects(env.host.url), `NATS reconnects of the host during the NATS inputs\n${findings}`).toBe(reconnects);
    expect(findings, findings).toBe("");
  }, 600_000);

  it("routes a task type only to the plugin that serves it, not to one a sidecar key may announce under its own name", async () => {
    if (REPLAY) return;
    const nc = await connect({ servers: env.nats.url });
    try {
      const kv = await new Kvm(nc).open(PLUGINS_BUCKET);
      // The fuzz signer may announce plugin "fuzz-signed" only; here it claims the TypeScript plugin's task type.
      const routed = await typeClaimedBySigner(kv, env.host.url, fuzzSigner(), "conformance-typescript");
      expect(routed, `conformance-typescript routes to ${routed.join(", ")}`).toEqual(["fuzz-typescript-async (plugin conformance-typescript)"]);
    } finally {
      await nc.close();
    }
  }, 60_000);

  it("keeps its NATS connection when a push names an execution id no host gives", async () => {
    if (REPLAY) return;
    const nc = await connect({ servers: env.nats.url });
    try {
      const before = await natsReconnects(env.host.url);
      await pushLongExecutionId(nc, "fuzz-typescript-async", keyOf("fuzz-typescript"));
      // Give the host time to take the push, lose the connection if it does, and count the reconnect.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(await natsReconnects(env.host.url), "NATS reconnects of the host").toBe(before);
    } finally {
      await nc.close();
    }
  }, 60_000);

  it("keeps every process alive and a normal task running to SUCCESS on every kit", async () => {
    if (REPLAY) return;
    expect(env.host.child.exitCode, "the host exited").toBeNull();
    const client = taskClient(env.host.url);
    const failed: string[] = [];
    for (const sidecar of env.sidecars) {
      expect(sidecar.process.child.exitCode, `${sidecar.instanceId} exited:\n${sidecar.process.output().slice(-2000)}`).toBeNull();
      let phase = Phase.UNSPECIFIED;
      try {
        for await (const { event } of client.executeTask({ template: { type: sidecar.type, typeVersion: 1, custom: { echo: "after the fuzz" } } })) {
          if (event?.phaseInfo) phase = event.phaseInfo.phase;
        }
      } catch (error) {
        failed.push(`${sidecar.type}: ${String(error)}`);
        continue;
      }
      if (phase !== Phase.SUCCESS) failed.push(`${sidecar.type}: ended ${Phase[phase]}`);
    }
    expect(failed, failed.join("\n")).toEqual([]);
  }, 120_000);
});
