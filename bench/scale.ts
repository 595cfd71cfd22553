// 3. Scale: many in-flight async executions on one host, each polled every resync interval (30 s in full mode):
// host RSS, NATS storage, Get calls/s sustained, and poll lag (a Get's time minus when it was due, measured by
// the plugin). Then the executions are released (the plugin's go file) and every one must end in SUCCESS.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { Phase, TaskTemplateSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { createBridgeClient } from "@plugin-bridge/kit/sdk";
import { waitForPlugin } from "../test/helpers/clients.js";
import { errorText, stopHost, type BenchContext } from "./lib/context.js";
import { FinalEvents, NatsProbe } from "./lib/jetstream.js";
import { diskBytes, ProcessMonitor, rssBytes, startBenchHost, startBenchNats, startBenchPlugin, tempDir } from "./lib/processes.js";
import { newResult, type BenchResult } from "./lib/report.js";
import { nowMs, pool, round, sleep } from "./lib/stats.js";

interface PluginSummary {
  counts: Record<string, number>;
  polledSinceReset: number;
  getsPerSecond: number[];
  lagMs: { count: number; p50: number; p90: number; p99: number; max: number; min: number };
  rssMiB: number;
}

const MiB = 1024 * 1024;

export async function scale(ctx: BenchContext): Promise<BenchResult> {
  const result = newResult("scale");
  const quick = ctx.mode === "quick";
  const settings = {
    executions: quick ? 5_000 : 100_000,
    resyncMs: quick ? 5_000 : 30_000,
    submitInFlight: 64,
    createMaxMs: quick ? 60_000 : 420_000,
    // Three resync rounds: every execution is due three times in the window, so a host that falls behind shows
    // as a Get rate below the due rate and as growing lag, not as an artefact of where the window falls.
    observeMs: quick ? 10_000 : 90_000,
    finishMaxMs: quick ? 90_000 : 240_000,
    hostFlags: {} as Record<string, string>,
  };
  result.settings = settings;
  const goFile = path.join(tempDir("scale"), "go");

  const nats = await startBenchNats();
  const plugin = await startBenchPlugin("zero", nats.url, { BENCH_RESYNC_MS: String(settings.resyncMs), BENCH_GO_FILE: goFile });
  const host = await startBenchHost(nats.url, settings.hostFlags, ctx.options);
  const probe = await NatsProbe.open(nats.url);
  const finals = new FinalEvents(probe.nc);
  const whole = new ProcessMonitor({ host: host.child.pid, plugin: plugin.child.pid, nats: nats.child.pid }, 1_000);
  const rssTimeline: Array<[number, number]> = [];
  const t0 = Date.now();
  const rssTimer = setInterval(() => rssTimeline.push([Math.round((Date.now() - t0) / 1000), Math.round(rssBytes(host.child.pid) / MiB)]), 5_000);
  try {
    await waitForPlugin(host.url, "bench-zero");
    const sdk = createBridgeClient({ baseUrl: host.url, protocol: "grpc" });
    const template = create(TaskTemplateSchema, { type: "bench-zero", typeVersion: 1, custom: { n: 1 } });

    // Create, with progress.
    const ids: string[] = [];
    let errors = 0;
    const firstErrors: string[] = [];
    const started = nowMs();
    const progress = setInterval(() => ctx.log(`  created ${ids.length} (${Math.round(ids.length / ((nowMs() - started) / 1000))}/s), host RSS ${Math.round(rssBytes(host.child.pid) / MiB)} MiB`), 15_000);
    await pool(
      settings.executions,
      settings.submitInFlight,
      async () => {
        ids.push((await sdk.submit(template)).id);
      },
      (error) => {
        errors++;
        if (firstErrors.length < 3) firstErrors.push(errorText(error));
      },
      started + settings.createMaxMs,
    );
    clearInterval(progress);
    const createSeconds = (nowMs() - started) / 1000;
    ctx.log(`  created ${ids.length} in ${round(createSeconds, 1)} s`);
    if (errors > 0) result.breakages.push(`${errors} CreateTask calls failed (${firstErrors.join("; ")})`);
    if (ids.length < settings.executions) result.warnings.push(`time bound: created ${ids.length} of ${settings.executions} executions`);

    // Steady state: one resync interval for every execution to be on its regular poll, then observe.
    await sleep(settings.resyncMs);
    await plugin.post("/reset");
    const monitor = new ProcessMonitor({ host: host.child.pid, plugin: plugin.child.pid, nats: nats.child.pid }, 1_000);
    await sleep(settings.observeMs);
    const processes = monitor.stop();
    const stats = await plugin.stats<PluginSummary>();
    const natsBytes = diskBytes(nats.dataDir);
    const gets = stats.getsPerSecond;
    const getsPerSecond = gets.length ? gets.reduce((a, b) => a + b, 0) / gets.length : NaN;
    const expected = ids.length / (settings.resyncMs / 1000);
    ctx.log(`  steady state: ${Math.round(getsPerSecond)} Gets/s (due ${Math.round(expected)}/s), lag p50 ${stats.lagMs.p50} ms p99 ${stats.lagMs.p99} ms, host ${processes.host!.rssPeakMiB} MiB`);
    result.details.steadyState = { stats, processes, expectedGetsPerSecond: expected, natsStorageBytes: natsBytes };
    result.details.create = { created: ids.length, seconds: round(createSeconds), perSecond: ids.length / createSeconds };

    // Release everything; every execution must end in SUCCESS.
    writeFileSync(goFile, "go");
    const finishStarted = nowMs();
    const finished = await finals.waitAll(ids, settings.finishMaxMs);
    const finishSeconds = (nowMs() - finishStarted) / 1000;
    const notSuccess = ids.filter((id) => finals.finals.has(id) && finals.finals.get(id)!.phase !== Phase.SUCCESS).length;
    if (notSuccess > 0) result.breakages.push(`${notSuccess} executions ended other than SUCCESS`);
    if (finished < ids.length) {
      // Not finished in time is not lost as long as each still has its work item.
      const workItems = await probe.streamMessages("PB_WORK");
      const open = ids.length - finished;
      if (workItems >= open) result.warnings.push(`${open} executions still running when the ${settings.finishMaxMs / 1000} s bound passed (each still has a work item: ${workItems} in PB_WORK)`);
      else result.breakages.push(`${open} executions unfinished but only ${workItems} work items left: ${open - workItems} lost`);
    }
    result.details.finish = { finished, seconds: round(finishSeconds), perSecond: finished / finishSeconds };
    ctx.log(`  released: ${finished} of ${ids.length} SUCCESS in ${round(finishSeconds, 1)} s`);

    const whole_ = whole.stop();
    result.details.wholeRun = whole_;
    result.details.hostRssTimelineMiB = rssTimeline;
    const n = ids.length.toLocaleString("en-US");
    result.measurements.push(
      {
        bench: "scale", name: `host RSS peak, ${n} in flight`, value: whole_.host!.rssPeakMiB, unit: "MiB",
        target: { text: "≤ 256 MiB", bound: 256, kind: "max" },
      },
      { bench: "scale", name: "NATS storage", value: natsBytes / MiB, unit: "MiB", note: `${n} records, work items, events` },
      {
        bench: "scale", name: "Get calls/s sustained", value: getsPerSecond, unit: "/s",
        note: `due ${Math.round(expected)}/s at ${settings.resyncMs / 1000} s resync`,
        target: { text: `≥ ${Math.round(expected)}/s (every poll on time)`, ratio: getsPerSecond / expected, bound: 0.95, kind: "min" },
        chart: { panel: "throughput", series: "through the host", target: expected },
      },
      {
        bench: "scale", name: "poll lag p50", value: stats.lagMs.p50, unit: "ms",
        chart: { panel: "timing", series: "through the host" },
      },
      {
        bench: "scale", name: "poll lag p99", value: stats.lagMs.p99, unit: "ms",
        target: { text: "≤ 2,000 ms", bound: 2_000, kind: "max" },
        chart: { panel: "timing", series: "through the host", target: 2_000 },
      },
      {
        bench: "scale", name: "executions polled in the window", value: stats.polledSinceReset, unit: "",
        note: `of ${n}; ${round(settings.observeMs / settings.resyncMs, 1)} resync rounds observed`,
      },
      { bench: "scale", name: "CreateTask/s while filling", value: ids.length / createSeconds, unit: "/s" },
    );
  } finally {
    clearInterval(rssTimer);
    finals.stop();
    await probe.close();
    await stopHost(host, ctx, result, "scale host");
    await plugin.stop("SIGTERM", 10_000);
    await nats.stop();
  }
  return result;
}
