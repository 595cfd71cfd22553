// Reading the reference plugins' audit files ("<call> <execution> <attempt> <instance> <epoch ms>", one line per
// effective call): duplicate effective Creates, each instance's share, and how long after a kill an execution's
// next call came.
import { existsSync, readFileSync } from "node:fs";

export interface AuditLine {
  call: string;
  execution: string;
  attempt: number;
  instance: string;
  at: number;
}

export function readAudit(files: string[]): AuditLine[] {
  const lines: AuditLine[] = [];
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const text of readFileSync(file, "utf8").split("\n")) {
      const [call, execution, attempt, instance, at] = text.split(" ");
      // A process killed mid-write may leave a partial last line: it carries no time, so it is not counted.
      if (!call || !execution || !instance || !at) continue;
      lines.push({ call, execution, attempt: Number(attempt), instance, at: Number(at) });
    }
  }
  return lines.sort((a, b) => a.at - b.at);
}

/** "<execution> <attempt>" of every attempt with more than one effective Create, with the instances that ran them. */
export function duplicateCreates(lines: AuditLine[]): Array<{ attempt: string; instances: string[] }> {
  const byAttempt = new Map<string, string[]>();
  for (const line of lines) {
    if (line.call !== "create") continue;
    const key = `${line.execution} ${line.attempt}`;
    byAttempt.set(key, [...(byAttempt.get(key) ?? []), line.instance]);
  }
  return [...byAttempt].filter(([, instances]) => instances.length > 1).map(([attempt, instances]) => ({ attempt, instances }));
}

/** Calls per instance, by call name. */
export function instanceShares(lines: AuditLine[]): Map<string, Map<string, number>> {
  const shares = new Map<string, Map<string, number>>();
  for (const line of lines) {
    const calls = shares.get(line.instance) ?? new Map<string, number>();
    calls.set(line.call, (calls.get(line.call) ?? 0) + 1);
    shares.set(line.instance, calls);
  }
  return shares;
}

export interface NextCallDelays {
  /** Executions measured: polled shortly before the moment and called again after it. */
  executions: number;
  /** Of those, the ones whose next call did not come within the bound. */
  missing: number;
  delaysMs: number[];
}

/**
 * For every execution in `watched` whose latest call before `at` passes `affected` and lies within `lookbackMs` of
 * `at` (so it was being polled), the time from `at` to its first call after `at` (up to `boundMs`): the delay an
 * execution saw before the system carried on with it.
 */
export function nextCallDelays(
  lines: AuditLine[],
  at: number,
  watched: Set<string>,
  options: { lookbackMs: number; boundMs: number; affected?: (last: AuditLine) => boolean },
): NextCallDelays {
  const lastBefore = new Map<string, AuditLine>();
  const firstAfter = new Map<string, AuditLine>();
  for (const line of lines) {
    if (!watched.has(line.execution)) continue;
    if (line.at <= at) lastBefore.set(line.execution, line);
    else if (!firstAfter.has(line.execution)) firstAfter.set(line.execution, line);
  }
  const delaysMs: number[] = [];
  let missing = 0;
  for (const [execution, last] of lastBefore) {
    if (at - last.at > options.lookbackMs) continue;
    if (options.affected && !options.affected(last)) continue;
    const next = firstAfter.get(execution);
    if (next && next.at - at <= options.boundMs) delaysMs.push(next.at - at);
    else missing++;
  }
  return { executions: delaysMs.length + missing, missing, delaysMs: delaysMs.sort((a, b) => a - b) };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
