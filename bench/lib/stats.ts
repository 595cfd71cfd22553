// Percentiles and small number helpers shared by every benchmark.

/** The p-th percentile (0–100) of `values` by nearest rank; NaN for none. Sorts a copy. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return percentileSorted(sorted, p);
}

export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Summary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    min: sorted.length ? sorted[0]! : NaN,
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    mean: sorted.length ? sum / sorted.length : NaN,
  };
}

export const round = (value: number, digits = 3): number =>
  Number.isFinite(value) ? Number(value.toFixed(digits)) : value;

/** Milliseconds since an arbitrary origin, sub-millisecond. */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `total` calls of `call(i)` with at most `inFlight` at once; stops starting new ones once `deadline`
 * (a nowMs() value) passes. Returns how many were started. Errors are handed to `onError`, never thrown.
 */
export async function pool(
  total: number,
  inFlight: number,
  call: (index: number) => Promise<void>,
  onError: (error: unknown, index: number) => void,
  deadline = Infinity,
): Promise<number> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < total && nowMs() < deadline) {
      const index = next++;
      try {
        await call(index);
      } catch (error) {
        onError(error, index);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, lane));
  return next;
}
