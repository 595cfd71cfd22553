// 5. Start-up: from spawning `plugin-bridge serve` (NATS and an announced plugin already there) to the first
// CreateTask accepted; and from spawning a sidecar (host already running) to its first routed call.
import { create } from "@bufbuild/protobuf";
import { Kvm } from "@nats-io/kv";
import { Phase, TaskTemplateSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { createBridgeClient } from "@plugin-bridge/kit/sdk";
import { errorText, stopHost, type BenchContext } from "./lib/context.js";
import { FinalEvents, NatsProbe } from "./lib/jetstream.js";
import { HOST_FROM_SOURCE, startBenchHost, startBenchNats, startBenchPlugin } from "./lib/processes.js";
import { newResult, type BenchResult } from "./lib/report.js";
import { sleep, summarize } from "./lib/stats.js";

const POLL_MS = 10;

/** Calls `attempt` every POLL_MS until it resolves; returns when (Date.now()) it first did. */
async function firstSuccess(attempt: () => Promise<unknown>, timeoutMs: number, what: string): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await attempt();
      return Date.now();
    } catch (error) {
      last = error;
      await sleep(POLL_MS);
    }
  }
  throw new Error(`${what} not within ${timeoutMs} ms: ${errorText(last)}`);
}

export async function startup(ctx: BenchContext): Promise<BenchResult> {
  const result = newResult("startup");
  const rounds = ctx.mode === "quick" ? 1 : 5;
  result.settings = { rounds, pollMs: POLL_MS, natsAlreadyRunning: true };
  const nats = await startBenchNats();
  const probe = await NatsProbe.open(nats.url);
  const finals = new FinalEvents(probe.nc);
  const echo = await startBenchPlugin("echo", nats.url);
  try {
    // The plugin must be announced before a host can accept its tasks.
    const plugins = await new Kvm(probe.nc).create("pb_plugins", { history: 1, ttl: 15_000, markerTTL: 5_000 }).catch(async () => await new Kvm(probe.nc).open("pb_plugins"));
    const deadline = Date.now() + 30_000;
    while (!(await plugins.get(`bench-echo.${echo.instanceId}`)) && Date.now() < deadline) await sleep(50);

    // The bundle (npm run build: what operators run) and, for comparison, the sources through tsx.
    const hostTimes: Record<"bundle" | "source", number[]> = { bundle: [], source: [] };
    for (let i = 0; i < rounds; i++) {
      for (const entry of ["bundle", "source"] as const) {
        const options = entry === "bundle" ? ctx.options : { ...ctx.options, hostEntry: HOST_FROM_SOURCE };
        const host = await startBenchHost(nats.url, {}, options, false);
        try {
          const sdk = createBridgeClient({ baseUrl: host.url, protocol: "grpc" });
          const template = create(TaskTemplateSchema, { type: "bench-echo", typeVersion: 1, custom: { data: "x" } });
          const acceptedAt = await firstSuccess(() => sdk.submit(template), 60_000, "first task accepted");
          hostTimes[entry].push(acceptedAt - host.spawnedAt);
        } catch (error) {
          result.breakages.push(`host round ${i + 1} (${entry}): ${errorText(error)}`);
        } finally {
          await stopHost(host, ctx, result, `startup host ${i + 1} (${entry})`);
        }
      }
    }

    const host = await startBenchHost(nats.url, {}, ctx.options);
    const sidecarTimes: number[] = [];
    const readyTimes: number[] = [];
    try {
      const sdk = createBridgeClient({ baseUrl: host.url, protocol: "grpc" });
      for (let i = 0; i < rounds; i++) {
        const type = `bench-start-${i}`;
        const sidecar = await startBenchPlugin("echo", nats.url, { BENCH_TASK_TYPE: type }, false);
        try {
          void sidecar.waitFor("bench plugin ready", 60_000).then(() => readyTimes.push(Date.now() - sidecar.spawnedAt), () => undefined);
          const template = create(TaskTemplateSchema, { type, typeVersion: 1, custom: { data: "x" } });
          let id = "";
          await firstSuccess(async () => void (id = (await sdk.submit(template)).id), 60_000, "first task for a new sidecar accepted");
          const ended = await finals.waitAll([id], 30_000);
          if (ended < 1 || finals.finals.get(id)?.phase !== Phase.SUCCESS) throw new Error(`the first task on ${type} did not succeed`);
          const { firstCallAt } = await sidecar.stats<{ firstCallAt: number }>();
          sidecarTimes.push(firstCallAt - sidecar.spawnedAt);
        } catch (error) {
          result.breakages.push(`sidecar round ${i + 1}: ${errorText(error)}`);
        } finally {
          await sidecar.stop("SIGTERM", 10_000);
        }
      }
    } finally {
      await stopHost(host, ctx, result, "startup host (sidecar rounds)");
    }

    const bundled = summarize(hostTimes.bundle);
    const fromSource = summarize(hostTimes.source);
    const sidecars = summarize(sidecarTimes);
    const ready = summarize(readyTimes);
    result.details = { ...result.details, hostMs: hostTimes, sidecarFirstCallMs: sidecarTimes, sidecarReadyMs: readyTimes };
    ctx.log(`  serve → first task accepted: bundle ${hostTimes.bundle.join(", ")} ms, from source ${hostTimes.source.join(", ")} ms; sidecar start → first routed call: ${sidecarTimes.join(", ")} ms`);
    result.measurements.push(
      {
        bench: "startup", name: "serve → first task accepted, median", value: bundled.p50, unit: "ms",
        note: `${rounds} round(s), max ${bundled.max} ms, NATS already up, dist/plugin-bridge.mjs`,
        chart: { panel: "timing", series: "through the host" },
      },
      {
        bench: "startup", name: "serve → first task accepted from source (tsx), median", value: fromSource.p50, unit: "ms",
        note: `${rounds} round(s), max ${fromSource.max} ms, bin/plugin-bridge.js`,
      },
      {
        bench: "startup", name: "sidecar start → first routed call, median", value: sidecars.p50, unit: "ms",
        note: `${rounds} round(s), max ${sidecars.max} ms; process ready after ${ready.p50} ms`,
        chart: { panel: "timing", series: "through the host" },
      },
    );
  } finally {
    finals.stop();
    await probe.close();
    await echo.stop("SIGTERM", 10_000);
    await nats.stop();
  }
  return result;
}
