// The benchmarks' one entry: `npm run bench` (full), `npm run bench -- --quick` (or BENCH_QUICK=1), with
// `--only sync,async,scale,takeover,startup` and `--profile` (CPU profiles of the hosts into
// bench/results/profiles). Starts its own NATS, hosts and plugins; prints a table; writes JSON and an SVG chart
// to bench/results/. Exits non-zero only when something broke (errors, lost executions), never on a target.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { natsServerBinary } from "../src/coordination/nats-server-process.js";
import { asyncThroughput } from "./async-throughput.js";
import { renderChart, type Panel } from "./lib/chart.js";
import { errorText, type BenchContext, type Mode } from "./lib/context.js";
import { HOST_FROM_SOURCE, projectRoot } from "./lib/processes.js";
import { buildHost } from "../scripts/build.js";
import { markdownTable, met, newResult, tableRows, textTable, writeJson, type BenchResult, type ChartPanel } from "./lib/report.js";
import { scale } from "./scale.js";
import { startup } from "./startup.js";
import { syncOverhead } from "./sync-overhead.js";
import { takeover } from "./takeover.js";

const BENCHES: Record<string, (ctx: BenchContext) => Promise<BenchResult>> = {
  sync: syncOverhead,
  async: asyncThroughput,
  scale,
  takeover,
  startup,
};

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    quick: { type: "boolean" },
    full: { type: "boolean" },
    only: { type: "string" },
    profile: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(`npm run bench -- [--quick | --full] [--only ${Object.keys(BENCHES).join(",")}] [--profile]
  --quick    small counts, under 3 minutes (default when BENCH_QUICK=1)
  --full     the counts of the issue (default otherwise)
  --only     run only these benchmarks
  --profile  run every host from source with node --cpu-prof (bench/results/profiles) and summarize the profiles
`);
  process.exit(0);
}

const mode: Mode = values.full ? "full" : values.quick || process.env.BENCH_QUICK === "1" ? "quick" : "full";
const only = values.only ? values.only.split(",").map((name) => name.trim()).filter(Boolean) : Object.keys(BENCHES);
for (const name of only) {
  if (!BENCHES[name]) {
    process.stderr.write(`unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(", ")}\n`);
    process.exit(2);
  }
}

const resultsDir = path.join(projectRoot, "bench", "results");
// The hosts run from the bundle operators run, built now from the sources as they are; when profiling, from the
// sources themselves, so that the profile can say which package the time went to (a bundle is one file).
const hostEntry = values.profile ? HOST_FROM_SOURCE : await buildHost();
const ctx: BenchContext = {
  mode,
  options: { profile: values.profile ?? false, profileDir: path.join(resultsDir, "profiles"), hostEntry },
  log: (message) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`),
};
if (ctx.options.profile) mkdirSync(ctx.options.profileDir, { recursive: true });

function machine(): Record<string, unknown> {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown";
  let nats = "unknown";
  try {
    nats = execFileSync(natsServerBinary(), ["--version"], { encoding: "utf8" }).trim();
  } catch {
    // reported as unknown
  }
  return {
    nproc: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    cpu: model,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    natsServer: nats,
  };
}

function chartPanels(results: readonly BenchResult[]): Panel[] {
  const panels: Record<ChartPanel, Panel> = {
    latency: { title: "Sync call latency, sequential calls", unit: "ms", log: true, bars: [] },
    throughput: { title: "Throughput", unit: "/s", log: true, bars: [] },
    timing: { title: "Poll lag, takeover and start-up", unit: "ms", log: true, bars: [] },
  };
  for (const result of results) {
    for (const m of result.measurements) {
      if (!m.chart) continue;
      panels[m.chart.panel].bars.push({
        label: `${m.bench}: ${m.name}`,
        value: m.value,
        series: m.chart.series,
        ...(m.chart.target !== undefined ? { target: m.chart.target } : {}),
      });
    }
  }
  return Object.values(panels).filter((panel) => panel.bars.length > 0);
}

const started = Date.now();
const results: BenchResult[] = [];
ctx.log(`mode ${mode}: ${only.join(", ")}${ctx.options.profile ? " (profiling hosts)" : ""}`);
for (const name of only) {
  ctx.log(`${name}: starting`);
  const t0 = Date.now();
  let result: BenchResult;
  try {
    result = await BENCHES[name]!(ctx);
  } catch (error) {
    result = newResult(name);
    result.breakages.push(`${name} did not finish: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    ctx.log(`${name}: failed: ${errorText(error)}`);
  }
  result.seconds = Math.round((Date.now() - t0) / 100) / 10;
  ctx.log(`${name}: done in ${result.seconds} s`);
  results.push(result);
}

const seconds = Math.round((Date.now() - started) / 100) / 10;
const rows = tableRows(results);
const breakages = results.flatMap((r) => r.breakages.map((b) => `${r.name}: ${b}`));
const warnings = results.flatMap((r) => r.warnings.map((w) => `${r.name}: ${w}`));
const targets = results.flatMap((r) => r.measurements).filter((m) => m.target);
const missed = targets.filter((m) => met(m) === false);

const timestamp = new Date(started).toISOString().replace(/[:.]/g, "-");
const info = machine();
const command = `npm run bench -- --${mode}${values.only ? ` --only ${values.only}` : ""}${ctx.options.profile ? " --profile" : ""}`;
const report = {
  mode,
  startedAt: new Date(started).toISOString(),
  seconds,
  command,
  machine: info,
  table: rows,
  targets: { total: targets.length, met: targets.length - missed.length, missed: missed.map((m) => `${m.bench}: ${m.name}`) },
  breakages,
  warnings,
  results,
};
writeJson(path.join(resultsDir, `${mode}-${timestamp}.json`), report);
writeJson(path.join(resultsDir, `latest-${mode}.json`), report);
const subtitle = `${mode} mode, ${new Date(started).toISOString().slice(0, 16).replace("T", " ")} UTC; ${info.nproc} × ${info.cpu}, ${info.memoryGiB} GiB, Node ${info.node}, ${info.natsServer}`;
writeFileSync(path.join(resultsDir, `latest-${mode}.svg`), renderChart("plugin-bridge benchmarks", subtitle, chartPanels(results)));
writeFileSync(path.join(resultsDir, `latest-${mode}.md`), `${markdownTable(rows)}\n`);

process.stdout.write(`\nplugin-bridge benchmarks, ${mode} mode, ${seconds} s (${command})\n\n${textTable(rows)}\n\n`);
process.stdout.write(`targets: ${targets.length - missed.length} of ${targets.length} met${missed.length ? `; not met: ${missed.map((m) => `${m.bench}: ${m.name}`).join("; ")}` : ""}\n`);
for (const warning of warnings) process.stdout.write(`warning: ${warning}\n`);
for (const breakage of breakages) process.stdout.write(`BROKEN: ${breakage}\n`);
process.stdout.write(`results: bench/results/latest-${mode}.json, bench/results/latest-${mode}.svg\n`);
// Children (NATS, hosts, plugins) are stopped by each benchmark; the test helpers SIGKILL any left on exit.
process.exit(breakages.length > 0 ? 1 : 0);
