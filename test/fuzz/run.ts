// Runs cases with a bounded number in flight and a bounded time, counts the answers per target and method, and
// keeps findings grouped by what went wrong (one kind of bug found 3,000 times is one line with its first
// reproductions, not 3,000 lines). Every finding names the seed, the target and the case index that replay it.
import type { Message } from "@bufbuild/protobuf";

export const SEED = Number(process.env.FUZZ_SEED ?? 20_260_401);
/** FUZZ_CASES scales every target's share; the default gives a little over 50,000 cases in all. */
export const TOTAL_CASES = Number(process.env.FUZZ_CASES ?? 52_000);
/** FUZZ_REPLAY=<target>:<index> runs that one case and prints it in full. */
export const REPLAY = parseReplay(process.env.FUZZ_REPLAY);
/** Cases in flight at once. The servers mostly wait (NATS round trips), not compute: 32 keeps two cores busy. */
export const CONCURRENCY = Number(process.env.FUZZ_CONCURRENCY ?? 32);

function parseReplay(value: string | undefined): { target: string; index: number } | undefined {
  if (!value) return undefined;
  const colon = value.lastIndexOf(":");
  return { target: value.slice(0, colon), index: Number(value.slice(colon + 1)) };
}

export interface CaseOutcome {
  method: string;
  label: string;
  how: string;
  /** What is wrong with the answer; undefined for an accepted answer. */
  finding?: { kind: string; why: string };
  /** Printed on replay: the request and the raw answer. */
  details?: () => string;
  /** An accepted answer worth counting in the report's notes (an INTERNAL a gRPC library gives by its own rule). */
  note?: string;
  /** The messages of an OK answer, decoded. */
  answers?: Message[];
}

export interface Finding {
  target: string;
  method: string;
  index: number;
  how: string;
  label: string;
  /** Groups findings of one bug: the same kind across cases and methods. */
  kind: string;
  why: string;
}

const EXAMPLES_PER_KIND = 3;

export class Report {
  private readonly counts = new Map<string, Map<string, Map<string, number>>>();
  /** Milliseconds the cases of each target and method took, summed (a case in flight overlaps others). */
  private readonly busy = new Map<string, number>();
  private readonly kinds = new Map<string, { count: number; methods: Set<string>; examples: Finding[] }>();
  readonly notes: string[] = [];
  /** Accepted answers worth a note, per target: "INTERNAL from the library: Error deserializing request". */
  private readonly noted = new Map<string, number>();
  /** Answers per kind of hostile input (a 10,000-deep Struct, a message at the read limit, 300 headers, …). */
  private readonly byKind = new Map<string, Map<string, number>>();
  readonly ran = new Map<string, { cases: number; ms: number; stoppedEarly: boolean }>();

  countKinds(how: string, label: string): void {
    for (const kind of hostileKinds(how)) {
      let labels = this.byKind.get(kind);
      if (!labels) this.byKind.set(kind, (labels = new Map()));
      labels.set(label, (labels.get(label) ?? 0) + 1);
    }
  }

  note(target: string, note: string): void {
    this.noted.set(`${target}: ${note}`, (this.noted.get(`${target}: ${note}`) ?? 0) + 1);
  }

  /** The counted notes, one line each. */
  notedLines(): string[] {
    return [...this.noted.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([note, n]) => `${note} (${n} cases)`);
  }

  /** Cases per kind of hostile input, with how often each answer came (all targets together). */
  kindTable(): string {
    const rows = [...this.byKind.entries()].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true })).map(([kind, labels]) => {
      const total = [...labels.values()].reduce((sum, n) => sum + n, 0);
      const answers = [...labels.entries()].sort((a, b) => b[1] - a[1]).map(([label, n]) => `${label} ${n}`).join(", ");
      return [kind, String(total), answers];
    });
    rows.unshift(["hostile input", "cases", "answers"]);
    const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
    return rows.map((row) => `${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}`).join("\n");
  }

  count(target: string, method: string, label: string, ms: number): void {
    this.busy.set(`${target} ${method}`, (this.busy.get(`${target} ${method}`) ?? 0) + ms);
    let methods = this.counts.get(target);
    if (!methods) this.counts.set(target, (methods = new Map()));
    let labels = methods.get(method);
    if (!labels) methods.set(method, (labels = new Map()));
    labels.set(label, (labels.get(label) ?? 0) + 1);
  }

  find(finding: Finding): void {
    // A hang or a missing status is told apart by the method: different methods hang for different reasons.
    const kind = `${finding.target} ${finding.kind}${/^(HANG|NO-STATUS)/.test(finding.kind) ? ` in ${finding.method}` : ""}`;
    let entry = this.kinds.get(kind);
    if (!entry) this.kinds.set(kind, (entry = { count: 0, methods: new Set(), examples: [] }));
    entry.count++;
    // One example per method first: the same bug in another method is the likelier fix to miss.
    const newMethod = !entry.methods.has(finding.method);
    entry.methods.add(finding.method);
    if (entry.examples.length < EXAMPLES_PER_KIND || (newMethod && entry.examples.length < 2 * EXAMPLES_PER_KIND)) entry.examples.push(finding);
  }

  get findingCount(): number {
    let total = 0;
    for (const entry of this.kinds.values()) total += entry.count;
    return total;
  }

  /** The findings (those `which` selects), one paragraph per kind, each with the cases that replay it. */
  findings(which: (finding: Finding) => boolean = () => true): string {
    const lines: string[] = [];
    for (const [, entry] of [...this.kinds.entries()].sort((a, b) => b[1].count - a[1].count)) {
      const first = entry.examples[0]!;
      if (!which(first)) continue;
      lines.push(`${entry.count} × ${first.target} ${first.kind} (in ${[...entry.methods].sort().join(", ")})`);
      for (const example of entry.examples) {
        lines.push(`    replay: FUZZ_SEED=${SEED} FUZZ_REPLAY=${example.target}:${example.index}   ${example.method} (${example.how.slice(0, 160)}): ${example.why.slice(0, 300)}`);
      }
    }
    return lines.join("\n");
  }

  /** Cases per target and method, with how often each answer came. */
  table(): string {
    const rows: string[][] = [["target", "method", "cases", "ms/case", "answers"]];
    for (const [target, methods] of this.counts) {
      const run = this.ran.get(target);
      for (const [method, labels] of [...methods.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        const total = [...labels.values()].reduce((sum, n) => sum + n, 0);
        const answers = [...labels.entries()].sort((a, b) => b[1] - a[1]).map(([label, n]) => `${label} ${n}`).join(", ");
        rows.push([target, method, String(total), String(Math.round((this.busy.get(`${target} ${method}`) ?? 0) / total)), answers]);
      }
      if (run) rows.push([target, "(all)", String(run.cases), "", `${(run.ms / 1000).toFixed(1)} s${run.stoppedEarly ? ", stopped at its time budget" : ""}`]);
    }
    const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
    return rows.map((row) => row.map((cell, column) => (column < 4 ? cell.padEnd(widths[column]!) : cell)).join("  ")).join("\n");
  }

  total(): number {
    let total = 0;
    for (const run of this.ran.values()) total += run.cases;
    return total;
  }
}

/** A target's cases: `run(index)` for index first..first+count-1 (first defaults to 0). */
export interface TargetRun {
  target: string;
  count: number;
  first?: number;
  run: (index: number) => Promise<CaseOutcome>;
}

/**
 * Runs the targets' cases interleaved (so one target's slow tail overlaps the others' cases), at most CONCURRENCY
 * at once, and stops taking new ones when `budgetMs` has passed: noted in the report, never a failure, since the
 * machine's speed is not under test. With FUZZ_REPLAY, runs that one case alone.
 */
export async function runTargets(report: Report, targets: readonly TargetRun[], budgetMs: number, concurrency = CONCURRENCY): Promise<void> {
  const jobs: Array<{ target: TargetRun; index: number }> = [];
  if (REPLAY) {
    const target = targets.find((t) => t.target === REPLAY.target && (t.first ?? 0) <= REPLAY.index && REPLAY.index < (t.first ?? 0) + t.count);
    if (target) jobs.push({ target, index: REPLAY.index });
  } else {
    const longest = Math.max(0, ...targets.map((t) => t.count));
    for (let i = 0; i < longest; i++) for (const target of targets) if (i < target.count) jobs.push({ target, index: (target.first ?? 0) + i });
  }
  const started = Date.now();
  const done = new Map<string, number>();
  let next = 0;
  let stoppedEarly = false;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      if (Date.now() - started > budgetMs) {
        stoppedEarly = true;
        return;
      }
      const { target, index } = jobs[next++]!;
      let outcome: CaseOutcome;
      const caseStarted = Date.now();
      try {
        outcome = await target.run(index);
      } catch (error) {
        const why = `the fuzzer itself failed: ${error instanceof Error ? error.stack : String(error)}`;
        outcome = { method: "?", label: "FUZZER-ERROR", how: "", finding: { kind: `fuzzer error ${String(error).slice(0, 80)}`, why } };
      }
      const ms = Date.now() - caseStarted;
      done.set(target.target, (done.get(target.target) ?? 0) + 1);
      report.count(target.target, outcome.method, outcome.label, ms);
      report.countKinds(outcome.how, outcome.label);
      if (outcome.note) report.note(target.target, outcome.note);
      if (outcome.finding) report.find({ target: target.target, method: outcome.method, index, how: outcome.how, label: outcome.label, ...outcome.finding });
      if (REPLAY) console.log(`case ${target.target}:${index} (seed ${SEED}): ${outcome.method} ${outcome.how}\n→ ${outcome.label}${outcome.finding ? `\nFINDING: ${outcome.finding.why}` : ""}\n${outcome.details?.() ?? ""}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  for (const target of targets) {
    if (!done.has(target.target) && !stoppedEarly) continue;
    const before = report.ran.get(target.target);
    report.ran.set(target.target, {
      cases: (before?.cases ?? 0) + (done.get(target.target) ?? 0),
      ms: (before?.ms ?? 0) + Date.now() - started,
      stoppedEarly: (before?.stoppedEarly ?? false) || stoppedEarly,
    });
  }
}

/** The structured hostile inputs and protocol breakages a case's description names, for the per-kind table. */
export function hostileKinds(how: string): string[] {
  const kinds: string[] = [];
  const add = (pattern: RegExp, name: (match: RegExpExecArray) => string): void => {
    const match = pattern.exec(how);
    if (match) kinds.push(name(match));
  };
  add(/\bsize\(([^)]*)\)/, (m) => `message size ${m[1]}`);
  add(/\bdeep-(struct|list)\([^,]*,(\d+)\)/, (m) => `Struct nested ${m[2]} deep (through ${m[1]})`);
  add(/\bdeep-groups\((\d+)\)/, (m) => `unknown groups nested ${m[1]} deep`);
  add(/\bhuge-string\([^,]*,(\d+)\)/, (m) => `string of ${m[1]} characters`);
  add(/\bhuge-map\([^,]*,(\d+)\)/, (m) => `map of ${m[1]} keys`);
  add(/\blong-list\([^,]*,(\d+)\)/, (m) => `list of ${m[1]} elements`);
  add(/bad-utf8/, () => "invalid UTF-8");
  add(/\bout-of-range\(|extreme-varint|overlong-varint/, () => "number out of range / overlong varint");
  add(/surrogate/, () => "lone UTF-16 surrogate (JSON)");
  add(/\bheaders\((\d+)\)/, (m) => `${m[1]} extra headers`);
  add(/\blarge-header\((\d+)\)/, (m) => `one header of ${m[1]} bytes`);
  add(/\bframe-([a-z0-9-]+)/, (m) => `envelope: ${m[1]!.replace(/\(.*/, "")}`);
  add(/grpc-timeout\(|connect-timeout-ms\(/, () => "timeout header");
  add(/\bencoding\(/, () => "encoding header");
  add(/\bcontent-type\(|web-text/, () => "content type");
  add(/\bmethod\(/, () => "HTTP method");
  add(/\bpath\(/, () => "path");
  add(/\bre-signed\b/, () => "announcement re-signed after mutation");
  add(/\bsigned$| signed\b/, () => "push signed by its instance's key");
  return kinds;
}
