// What a benchmark returns, the table printed at the end, and the JSON written to bench/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/** A target: the measured value compared with a bound, directly or as a ratio of a baseline. */
export interface Target {
  /** How the target reads in the table, such as "≤ 2.0× direct". */
  text: string;
  /** The compared quantity: the value itself, or value / baseline. */
  ratio?: number;
  bound: number;
  /** "max": the compared quantity must be ≤ bound; "min": ≥ bound. */
  kind: "max" | "min";
}

export interface Measurement {
  bench: string;
  name: string;
  value: number;
  unit: string;
  target?: Target;
  /** Free text shown after the row (conditions, counts). */
  note?: string;
  /** Where the row goes in the chart, if anywhere. */
  chart?: { panel: ChartPanel; series: string; target?: number };
}

export type ChartPanel = "latency" | "throughput" | "timing";

export interface BenchResult {
  name: string;
  measurements: Measurement[];
  /** Things that broke: errors, lost executions. Any entry makes the run exit non-zero. */
  breakages: string[];
  /** Things that did not finish inside a time bound but are not losses. */
  warnings: string[];
  /** Host settings and counts used. */
  settings: Record<string, unknown>;
  /** Everything else measured (raw percentiles, process stats, profiles). */
  details: Record<string, unknown>;
  seconds: number;
}

export function compared(target: Target, value: number): number {
  return target.ratio ?? value;
}

export function met(measurement: Measurement): boolean | undefined {
  const { target } = measurement;
  if (!target) return undefined;
  const quantity = compared(target, measurement.value);
  if (!Number.isFinite(quantity)) return false;
  return target.kind === "max" ? quantity <= target.bound : quantity >= target.bound;
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

export interface TableRow {
  bench: string;
  measurement: string;
  value: string;
  target: string;
  ratio: string;
  met: string;
}

export function tableRows(results: readonly BenchResult[]): TableRow[] {
  const rows: TableRow[] = [];
  for (const result of results) {
    for (const m of result.measurements) {
      const ok = met(m);
      rows.push({
        bench: m.bench,
        measurement: m.name + (m.note ? ` (${m.note})` : ""),
        value: `${formatNumber(m.value)} ${m.unit}`.trim(),
        target: m.target?.text ?? "",
        ratio: m.target?.ratio !== undefined ? `${formatNumber(m.target.ratio)}×` : "",
        met: ok === undefined ? "" : ok ? "met" : "NOT MET",
      });
    }
  }
  return rows;
}

const COLUMNS: Array<[keyof TableRow, string]> = [
  ["bench", "bench"],
  ["measurement", "measurement"],
  ["value", "value"],
  ["target", "target"],
  ["ratio", "ratio"],
  ["met", "met"],
];

/** A plain-text table for the terminal. */
export function textTable(rows: readonly TableRow[]): string {
  const widths = COLUMNS.map(([key, title]) => Math.max(title.length, ...rows.map((row) => row[key].length)));
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
  return [
    line(COLUMNS.map(([, title]) => title)),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map((row) => line(COLUMNS.map(([key]) => row[key]))),
  ].join("\n");
}

/** The same table in Markdown, for docs/benchmarks.md. */
export function markdownTable(rows: readonly TableRow[]): string {
  const escape = (text: string): string => text.replace(/\|/g, "\\|");
  return [
    `| ${COLUMNS.map(([, title]) => title).join(" | ")} |`,
    `|${COLUMNS.map(() => "---").join("|")}|`,
    ...rows.map((row) => `| ${COLUMNS.map(([key]) => escape(row[key])).join(" | ")} |`),
  ].join("\n");
}

export function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(value, null, 2) + "\n");
}

export function newResult(name: string): BenchResult {
  return { name, measurements: [], breakages: [], warnings: [], settings: {}, details: {}, seconds: 0 };
}
