// 2. Async throughput: executions/s from CreateTask to SUCCESS with a zero-work async plugin (Create returns at
// once, the first Get answers SUCCESS, resync 1 ms), at 1,000 and 10,000 executions; JetStream writes per
// execution from stream sequences; raw KV puts/s (64 in flight, record-sized values) on the same NATS.
import { create } from "@bufbuild/protobuf";
import { Kvm } from "@nats-io/kv";
import { Phase, TaskTemplateSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { createBridgeClient } from "@plugin-bridge/kit/sdk";
import { waitForPlugin } from "../test/helpers/clients.js";
import { errorText, stopHost, type BenchContext } from "./lib/context.js";
import { FinalEvents, NatsProbe, rawKvPuts, writesBetween } from "./lib/jetstream.js";
import { ProcessMonitor, startBenchHost, startBenchNats, startBenchPlugin } from "./lib/processes.js";
import { newResult, type BenchResult, type Measurement } from "./lib/report.js";
import { nowMs, pool, round } from "./lib/stats.js";

const IN_FLIGHT = 64;
const TARGET_SHARE = 0.06;

export async function asyncThroughput(ctx: BenchContext): Promise<BenchResult> {
  const result = newResult("async-throughput");
  const quick = ctx.mode === "quick";
  const sizes = quick ? [1_000] : [1_000, 10_000];
  const settings = {
    sizes,
    warmup: 200,
    submitInFlight: IN_FLIGHT,
    resyncMs: 1,
    finishMaxMs: quick ? 60_000 : 240_000,
    raw: { count: quick ? 20_000 : 100_000, inFlight: IN_FLIGHT, maxMs: quick ? 5_000 : 10_000 },
    hostFlags: {} as Record<string, string>,
  };
  result.settings = settings;

  const nats = await startBenchNats();
  const plugin = await startBenchPlugin("zero", nats.url, { BENCH_RESYNC_MS: "1" });
  const host = await startBenchHost(nats.url, settings.hostFlags, ctx.options);
  const probe = await NatsProbe.open(nats.url);
  const finals = new FinalEvents(probe.nc);
  const pending: Measurement[] = [];
  let recordBytes = 0;
  try {
    await waitForPlugin(host.url, "bench-zero");
    const sdk = createBridgeClient({ baseUrl: host.url, protocol: "grpc" });
    const template = create(TaskTemplateSchema, { type: "bench-zero", typeVersion: 1, custom: { n: 1 } });

    const runBatch = async (count: number, label: string): Promise<Record<string, unknown>> => {
      const ids: string[] = [];
      let errors = 0;
      const firstErrors: string[] = [];
      const before = await probe.sequences();
      const monitor = new ProcessMonitor({ host: host.child.pid, plugin: plugin.child.pid, nats: nats.child.pid });
      const started = nowMs();
      await pool(
        count,
        IN_FLIGHT,
        async () => {
          ids.push((await sdk.submit(template)).id);
        },
        (error) => {
          errors++;
          if (firstErrors.length < 3) firstErrors.push(errorText(error));
        },
      );
      const submitted = nowMs();
      const finished = await finals.waitAll(ids, settings.finishMaxMs);
      const processes = monitor.stop();
      const lastFinal = Math.max(...ids.map((id) => finals.finals.get(id)?.at ?? 0));
      const seconds = (lastFinal - started) / 1000;
      const notSuccess = ids.filter((id) => finals.finals.has(id) && finals.finals.get(id)!.phase !== Phase.SUCCESS);
      if (errors > 0) result.breakages.push(`${label}: ${errors} CreateTask calls failed (${firstErrors.join("; ")})`);
      if (finished < ids.length) {
        result.breakages.push(`${label}: ${ids.length - finished} of ${ids.length} executions did not reach a final phase within ${settings.finishMaxMs / 1000} s`);
      }
      if (notSuccess.length > 0) result.breakages.push(`${label}: ${notSuccess.length} executions ended other than SUCCESS`);
      // Let stragglers (acks, events) land before reading sequences.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const writes = writesBetween(before, await probe.sequences());
      return {
        count,
        created: ids.length,
        finished,
        seconds: round(seconds),
        executionsPerSecond: ids.length / seconds,
        submitPerSecond: ids.length / ((submitted - started) / 1000),
        writesPerExecution: Object.fromEntries(Object.entries(writes).map(([k, v]) => [k, round(v / Math.max(1, ids.length), 2)])),
        processes,
        ids: ids.slice(0, 1),
      };
    };

    ctx.log(`  warm-up: ${settings.warmup} executions`);
    await runBatch(settings.warmup, "warm-up");
    const batches: Record<string, unknown> = {};
    for (const count of sizes) {
      const batch = await runBatch(count, `${count} executions`);
      batches[String(count)] = batch;
      ctx.log(`  ${count}: ${Math.round(batch.executionsPerSecond as number)} executions/s, ${(batch.writesPerExecution as Record<string, number>).total} writes each`);
      const writes = batch.writesPerExecution as Record<string, number>;
      pending.push({
        bench: "async", name: `executions/s, ${count.toLocaleString("en-US")} executions`, value: batch.executionsPerSecond as number, unit: "/s",
        note: `CreateTask→SUCCESS, ${IN_FLIGHT} submits in flight`,
      });
      if (count === sizes[0]) {
        pending.push({
          bench: "async", name: "JetStream writes per execution", value: writes.total!, unit: "",
          note: `records ${writes.KV_pb_executions}, work ${writes.PB_WORK}, events ${writes.PB_EVENTS}, kit creates ${writes.KV_pb_creates}`,
        });
      }
    }
    result.details.batches = batches;

    // The record size, so the raw KV baseline writes values of the same size.
    const sample = (batches[String(sizes[0])] as { ids: string[] }).ids[0];
    const kv = await new Kvm(probe.nc).open("pb_executions");
    recordBytes = sample ? ((await kv.get(sample))?.length ?? 512) : 512;
    const raw = await rawKvPuts(nats.url, { ...settings.raw, bytes: recordBytes });
    if (raw.errors > 0) result.breakages.push(`raw KV: ${raw.errors} puts failed`);
    result.details.rawKv = { ...raw, bytes: recordBytes };
    ctx.log(`  raw KV: ${Math.round(raw.putsPerSecond)} puts/s (${recordBytes} B values)`);
    for (const m of pending) {
      if (m.unit === "/s") {
        m.target = { text: `≥ ${TARGET_SHARE} × raw KV puts/s`, ratio: m.value / raw.putsPerSecond, bound: TARGET_SHARE, kind: "min" };
        m.chart = { panel: "throughput", series: "through the host", target: TARGET_SHARE * raw.putsPerSecond };
      }
    }
    result.measurements.push(...pending, {
      bench: "async", name: "raw KV puts/s, same NATS", value: raw.putsPerSecond, unit: "/s",
      note: `${IN_FLIGHT} in flight, ${recordBytes} B values`,
      chart: { panel: "throughput", series: "raw NATS baseline" },
    });
  } finally {
    finals.stop();
    await probe.close();
    await stopHost(host, ctx, result, "async-throughput host");
    await plugin.stop("SIGTERM", 10_000);
    await nats.stop();
  }
  return result;
}
