// The bench plugins' loopback stats endpoint: counters and samples live in memory (no per-call file writes at
// thousands of calls per second); the bench reads them over HTTP.
//   GET  /stats           counters, first call time, Get rate per second, poll lag percentiles
//   POST /reset           forgets samples and counters (not the per-execution due times)
//   POST /mark            remembers "now" as the mark; /takeover reports each execution's first Get after it
//   GET  /takeover        { markAt, count, delaysMs: [...], latenessMs: [...] }
import { createServer } from "node:http";

interface Execution {
  /** When the host should call Get next (last call + resync), epoch ms. */
  dueAt: number;
  /** Filled after a mark: the first Get's time. */
  firstGetAfterMark?: number;
  dueAtMark?: number;
}

export class PluginStats {
  readonly counts: Record<string, number> = {};
  firstCallAt = 0;
  /** Poll lag samples (ms): a Get's time minus when it was due. */
  private lags: number[] = [];
  private readonly getsPerSecond = new Map<number, number>();
  private readonly executions = new Map<string, Execution>();
  private readonly polledSinceReset = new Set<string>();
  private markAt = 0;
  private resetAt = Date.now();

  constructor(private readonly resyncMs: number) {}

  count(call: string): void {
    if (this.firstCallAt === 0) this.firstCallAt = Date.now();
    this.counts[call] = (this.counts[call] ?? 0) + 1;
  }

  created(executionId: string): void {
    this.count("create");
    this.executions.set(executionId, { dueAt: Date.now() + this.resyncMs });
  }

  polled(executionId: string, final: boolean): void {
    this.count("get");
    const now = Date.now();
    const second = Math.floor(now / 1000);
    this.getsPerSecond.set(second, (this.getsPerSecond.get(second) ?? 0) + 1);
    this.polledSinceReset.add(executionId);
    const execution = this.executions.get(executionId);
    if (execution) {
      this.lags.push(now - execution.dueAt);
      if (this.markAt > 0 && execution.firstGetAfterMark === undefined) execution.firstGetAfterMark = now;
      execution.dueAt = now + this.resyncMs;
      if (final && this.markAt === 0) this.executions.delete(executionId);
    }
  }

  reset(): void {
    this.lags = [];
    this.getsPerSecond.clear();
    this.polledSinceReset.clear();
    for (const key of Object.keys(this.counts)) delete this.counts[key];
    this.resetAt = Date.now();
  }

  mark(): void {
    this.markAt = Date.now();
    for (const execution of this.executions.values()) {
      execution.firstGetAfterMark = undefined;
      execution.dueAtMark = execution.dueAt;
    }
  }

  summary(): Record<string, unknown> {
    const sorted = Float64Array.from(this.lags).sort();
    const at = (p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN);
    const seconds = [...this.getsPerSecond.entries()].sort((a, b) => a[0] - b[0]);
    // The first and the current second are partial: leave them out of the rate.
    const full = seconds.slice(1, -1).map(([, n]) => n);
    return {
      counts: this.counts,
      firstCallAt: this.firstCallAt,
      resetAt: this.resetAt,
      now: Date.now(),
      tracked: this.executions.size,
      polledSinceReset: this.polledSinceReset.size,
      getsPerSecond: full,
      lagMs: { count: sorted.length, p50: at(50), p90: at(90), p99: at(99), max: at(100), min: at(0) },
      rssMiB: Math.round(process.memoryUsage().rss / 1048576),
    };
  }

  takeover(): Record<string, unknown> {
    const delays: number[] = [];
    const lateness: number[] = [];
    let waiting = 0;
    for (const execution of this.executions.values()) {
      if (execution.firstGetAfterMark === undefined) {
        waiting++;
        continue;
      }
      delays.push(execution.firstGetAfterMark - this.markAt);
      lateness.push(execution.firstGetAfterMark - Math.max(this.markAt, execution.dueAtMark ?? this.markAt));
    }
    return { markAt: this.markAt, count: delays.length, waiting, delaysMs: delays, latenessMs: lateness };
  }
}

export function serveStats(stats: PluginStats): void {
  const port = Number(process.env.BENCH_STATS_PORT ?? 0);
  if (!port) return;
  createServer((request, response) => {
    let body: unknown = { ok: true };
    if (request.method === "GET" && request.url === "/stats") body = stats.summary();
    else if (request.method === "GET" && request.url === "/takeover") body = stats.takeover();
    else if (request.method === "POST" && request.url === "/reset") stats.reset();
    else if (request.method === "POST" && request.url === "/mark") stats.mark();
    else {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  }).listen(port, "127.0.0.1");
}
