// 1. Sync overhead: the same sync plugin (bench/plugins/echo.ts) called directly over grpc-js, and through the
// host (SDK ExecuteTask → host → sidecar → events back), with 64 B and 16 KiB payloads: p50/p99 of sequential
// calls and calls/s with 64 in flight.
import { create } from "@bufbuild/protobuf";
import { SyncPluginService } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Phase, TaskContextSchema, TaskTemplateSchema, type TaskTemplate } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { createBridgeClient } from "@plugin-bridge/kit/sdk";
import { PluginClients } from "../src/registry/plugin-client.js";
import { waitForPlugin } from "../test/helpers/clients.js";
import { errorText, stopHost, type BenchContext } from "./lib/context.js";
import { NatsProbe, writesBetween } from "./lib/jetstream.js";
import { ProcessMonitor, startBenchHost, startBenchNats, startBenchPlugin } from "./lib/processes.js";
import { newResult, type BenchResult } from "./lib/report.js";
import { nowMs, pool, round, summarize, type Summary } from "./lib/stats.js";

const IN_FLIGHT = 64;
const PAYLOADS: Array<[string, number]> = [["64 B", 64], ["16 KiB", 16 * 1024]];

interface PathResult {
  sequential: Summary;
  callsPerSecond: number;
  concurrentCalls: number;
  concurrentSeconds: number;
  concurrentLatency: Summary;
  errors: number;
}

export async function syncOverhead(ctx: BenchContext): Promise<BenchResult> {
  const result = newResult("sync-overhead");
  const quick = ctx.mode === "quick";
  const counts = {
    warmup: quick ? 100 : 300,
    sequential: quick ? 500 : 2000,
    concurrent: quick ? 1500 : 10000,
    sequentialMaxMs: quick ? 8_000 : 60_000,
    concurrentMaxMs: quick ? 15_000 : 45_000,
  };
  const hostFlags: Record<string, string> = {};
  result.settings = { ...counts, inFlight: IN_FLIGHT, hostFlags, protocol: "grpc (SDK createBridgeClient, ExecuteTask)" };

  const nats = await startBenchNats();
  const plugin = await startBenchPlugin("echo", nats.url);
  const host = await startBenchHost(nats.url, hostFlags, ctx.options);
  const probe = await NatsProbe.open(nats.url);
  const clients = new PluginClients();
  try {
    await waitForPlugin(host.url, "bench-echo");
    const sdk = createBridgeClient({ baseUrl: host.url, protocol: "grpc" });
    const target = { endpoint: plugin.endpoint, instanceId: plugin.instanceId };
    const details: Record<string, unknown> = {};

    for (const [label, bytes] of PAYLOADS) {
      const template: TaskTemplate = create(TaskTemplateSchema, { type: "bench-echo", typeVersion: 1, custom: { data: "x".repeat(bytes) } });
      let seq = 0;
      const direct = async (): Promise<void> => {
        const context = create(TaskContextSchema, { executionId: { id: `direct-${seq++}`, attempt: 1 }, template });
        const response = await clients.call(SyncPluginService.method.do, target, { context }, 60_000);
        if (response.phaseInfo?.phase !== Phase.SUCCESS || response.outputs?.size !== bytes) {
          throw new Error(`direct Do answered ${Phase[response.phaseInfo?.phase ?? 0]} size ${String(response.outputs?.size)}`);
        }
      };
      // Where the time goes inside one execution, from the client's clock and the events' timestamps (same
      // machine, millisecond resolution): call start → the host accepted it (QUEUED's time) → the plugin's Do
      // (SUCCESS's time, set inside Do) → the final event received by the client. The QUEUED event itself arrives
      // with the outcome (the fast path sends both at the end), so its arrival time says nothing.
      const startToAccepted: number[] = [];
      const acceptedToDo: number[] = [];
      const doToClient: number[] = [];
      const epochMs = (): number => performance.timeOrigin + performance.now();
      // Only the sequential calls are broken down: with 64 in flight, queueing would dominate every stage.
      let breakdown = false;
      const throughHost = async (): Promise<void> => {
        let acceptedAt = 0;
        const callStart = epochMs();
        const last = await sdk.run(template, {
          onEvent: (event) => {
            const at = event.phaseInfo?.occurredAt;
            const ms = at ? Number(at.seconds) * 1000 + at.nanos / 1e6 : 0;
            if (!breakdown) return;
            if (event.phaseInfo?.phase === Phase.QUEUED) {
              acceptedAt = ms;
              startToAccepted.push(ms - callStart);
            } else if (event.phaseInfo?.phase === Phase.SUCCESS && acceptedAt) {
              acceptedToDo.push(ms - acceptedAt);
              doToClient.push(epochMs() - ms);
            }
          },
        });
        if (last.phaseInfo?.phase !== Phase.SUCCESS || last.outputs?.size !== bytes) {
          throw new Error(`ExecuteTask ended ${Phase[last.phaseInfo?.phase ?? 0]} size ${String(last.outputs?.size)}: ${last.phaseInfo?.reason}`);
        }
      };

      const measure = async (name: string, call: () => Promise<void>): Promise<PathResult> => {
        let errors = 0;
        const firstErrors: string[] = [];
        const onError = (error: unknown): void => {
          errors++;
          if (firstErrors.length < 3) firstErrors.push(errorText(error));
        };
        await pool(counts.warmup, 16, call, onError);
        const sequential: number[] = [];
        const seqDeadline = nowMs() + counts.sequentialMaxMs;
        breakdown = name === "host";
        for (let i = 0; i < counts.sequential && nowMs() < seqDeadline; i++) {
          const started = nowMs();
          try {
            await call();
            sequential.push(nowMs() - started);
          } catch (error) {
            onError(error);
          }
        }
        breakdown = false;
        const concurrent: number[] = [];
        const started = nowMs();
        const done = await pool(
          counts.concurrent,
          IN_FLIGHT,
          async () => {
            const t = nowMs();
            await call();
            concurrent.push(nowMs() - t);
          },
          onError,
          started + counts.concurrentMaxMs,
        );
        const seconds = (nowMs() - started) / 1000;
        if (errors > 0) result.breakages.push(`${name} ${label}: ${errors} failed calls (${firstErrors.join("; ")})`);
        if (sequential.length < counts.sequential) result.warnings.push(`${name} ${label}: time bound hit after ${sequential.length} sequential calls`);
        if (done < counts.concurrent) result.warnings.push(`${name} ${label}: time bound hit after ${done} concurrent calls`);
        const out = {
          sequential: summarize(sequential),
          callsPerSecond: concurrent.length / seconds,
          concurrentCalls: concurrent.length,
          concurrentSeconds: round(seconds),
          concurrentLatency: summarize(concurrent),
          errors,
        };
        ctx.log(`  ${name} ${label}: p50 ${out.sequential.p50.toFixed(3)} ms, p99 ${out.sequential.p99.toFixed(3)} ms, ${Math.round(out.callsPerSecond)} calls/s`);
        return out;
      };

      const directResult = await measure("direct", direct);
      const monitor = new ProcessMonitor({ host: host.child.pid, plugin: plugin.child.pid, nats: nats.child.pid });
      const seqBefore = await probe.sequences();
      const executionsBefore = (await plugin.stats<{ counts: Record<string, number> }>()).counts.do ?? 0;
      const hostResult = await measure("host", throughHost);
      const writes = writesBetween(seqBefore, await probe.sequences());
      const executions = ((await plugin.stats<{ counts: Record<string, number> }>()).counts.do ?? 0) - executionsBefore;
      const processes = monitor.stop();
      details[label] = {
        direct: directResult,
        host: hostResult,
        jetstreamWritesPerExecution: Object.fromEntries(Object.entries(writes).map(([k, v]) => [k, round(v / Math.max(1, executions), 2)])),
        processesDuringHostPhase: processes,
        breakdownMs: {
          callStartToAccepted: summarize(startToAccepted),
          acceptedToPluginDo: summarize(acceptedToDo),
          pluginDoToSuccessEventReceived: summarize(doToClient),
        },
      };

      const p50Ratio = hostResult.sequential.p50 / directResult.sequential.p50;
      const tputRatio = hostResult.callsPerSecond / directResult.callsPerSecond;
      result.measurements.push(
        {
          bench: "sync", name: `direct p50, ${label}`, value: directResult.sequential.p50, unit: "ms",
          chart: { panel: "latency", series: "direct grpc-js" },
        },
        {
          bench: "sync", name: `direct p99, ${label}`, value: directResult.sequential.p99, unit: "ms",
          chart: { panel: "latency", series: "direct grpc-js" },
        },
        {
          bench: "sync", name: `host p50, ${label}`, value: hostResult.sequential.p50, unit: "ms",
          target: { text: "≤ 2.0× direct p50", ratio: p50Ratio, bound: 2.0, kind: "max" },
          chart: { panel: "latency", series: "through the host", target: 2 * directResult.sequential.p50 },
        },
        {
          bench: "sync", name: `host p99, ${label}`, value: hostResult.sequential.p99, unit: "ms",
          note: `${round(hostResult.sequential.p99 / directResult.sequential.p99, 1)}× direct p99`,
          chart: { panel: "latency", series: "through the host" },
        },
        {
          bench: "sync", name: `direct calls/s, ${label}`, value: directResult.callsPerSecond, unit: "/s", note: `${IN_FLIGHT} in flight`,
          chart: { panel: "throughput", series: "direct grpc-js" },
        },
        {
          bench: "sync", name: `host calls/s, ${label}`, value: hostResult.callsPerSecond, unit: "/s", note: `${IN_FLIGHT} in flight`,
          target: { text: "≥ 0.5× direct calls/s", ratio: tputRatio, bound: 0.5, kind: "min" },
          chart: { panel: "throughput", series: "through the host", target: 0.5 * directResult.callsPerSecond },
        },
        { bench: "sync", name: `JetStream writes per sync call, ${label}`, value: writes.total! / Math.max(1, executions), unit: "" },
        {
          bench: "sync", name: `host: call → accepted by the host, p50, ${label}`, value: summarize(startToAccepted).p50, unit: "ms",
        },
        {
          bench: "sync", name: `host: accepted → plugin Do, p50, ${label}`, value: summarize(acceptedToDo).p50, unit: "ms",
        },
        {
          bench: "sync", name: `host: plugin Do → SUCCESS event at client, p50, ${label}`, value: summarize(doToClient).p50, unit: "ms",
        },
      );
    }
    result.details = { ...result.details, ...details };
  } finally {
    clients.close();
    await probe.close();
    await stopHost(host, ctx, result, "sync-overhead host");
    await plugin.stop("SIGTERM", 10_000);
    await nats.stop();
  }
  return result;
}
