// The figures of a scenario as text for people (printed by the suite; docs/reliability.md quotes them), and as
// JSON into $CHAOS_REPORT_DIR when that is set.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { ScenarioFigures } from "./scenario.js";

const ms = (value: number): string => (Number.isFinite(value) ? `${Math.round(value).toLocaleString("en-US")} ms` : "n/a");

export function formatFigures(figures: ScenarioFigures): string {
  const lines = [
    `scenario ${figures.name}, CHAOS_SEED=${figures.seed}: ${figures.executions} executions (${Object.entries(figures.byRoute).map(([route, n]) => `${route} ${n}`).join(", ")}), ${figures.accepted} accepted, ${Math.round(figures.durationMs / 1000)} s`,
    `  lost ${figures.lost.length}, duplicate effective Creates ${figures.duplicateCreates.length}, wrong terminal phases ${figures.wrongPhases.length}`,
    `  callers retried ${figures.retriedCalls} calls (${Object.entries(figures.retriedByCode).map(([code, n]) => `${code} ${n}`).join(", ") || "none"}); direct sync calls sent again ${figures.directResends}`,
  ];
  for (const fault of figures.faults) {
    const t = fault.takeover;
    lines.push(
      `  ${fault.fault} ${fault.victim} at ${ms(fault.atMs)}${fault.downMs !== undefined ? `, down ${ms(fault.downMs)}` : ""}` +
        `${fault.healthyAfterRestartMs !== undefined ? `, JetStream current ${ms(fault.healthyAfterRestartMs)} after the restart` : ""}` +
        `${fault.held ? `; held: ${fault.held.join(", ") || "nothing"}` : ""}`,
      `    next call after the kill (${t.measuredOn}: ${t.executions}${t.missing ? `, ${t.missing} without one` : ""}): p50 ${ms(t.p50Ms)}, p99 ${ms(t.p99Ms)}, max ${ms(t.maxMs)}`,
    );
  }
  const percent = (part: number, whole: number): string => (whole ? `${((100 * part) / whole).toFixed(1)} %` : "n/a");
  const totalCalls = figures.hostShares.reduce((sum, host) => sum + host.pluginCalls, 0);
  const totalBefore = figures.hostShares.reduce((sum, host) => sum + (host.pluginCallsBeforeFaults ?? 0), 0);
  for (const host of figures.hostShares) {
    const before = host.pluginCallsBeforeFaults !== undefined ? `; before the first fault ${host.pluginCallsBeforeFaults} (${percent(host.pluginCallsBeforeFaults, totalBefore)})` : "";
    lines.push(`  ${host.host}${host.killed ? " (killed; until its last reading)" : ""}: ${host.pluginCalls} plugin calls (${percent(host.pluginCalls, totalCalls)})${before}`);
  }
  lines.push(`  instances: ${figures.instanceShares.map((instance) => `${instance.instance} ${instance.calls}`).join(", ")}`);
  for (const item of figures.lost.slice(0, 10)) lines.push(`  LOST #${item.index} (${item.shape}) ${item.id ?? ""}: ${item.why}`);
  for (const item of figures.duplicateCreates.slice(0, 10)) lines.push(`  DUPLICATE Create ${item.attempt} on ${item.instances.join(", ")}`);
  for (const item of figures.wrongPhases.slice(0, 10)) lines.push(`  WRONG #${item.index} (${item.shape}) ${item.id}: expected ${item.expected}, got ${item.got}`);
  for (const [code, message] of Object.entries(figures.retryMessages)) lines.push(`  first ${code}: ${message}`);
  return lines.join("\n");
}

export function saveFigures(figures: ScenarioFigures): void {
  const dir = process.env.CHAOS_REPORT_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `chaos-${figures.name}-${figures.seed}.json`), `${JSON.stringify(figures, null, 2)}\n`);
}
