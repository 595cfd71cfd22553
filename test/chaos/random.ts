// A seeded random source: the same CHAOS_SEED gives the same workload and the same kill moments and victims, so a
// failure can be run again as it happened (up to the machine's own timing).

export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both included. */
  int(min: number, max: number): number;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
}

/** mulberry32: small, fast, and good enough to spread kills and scripts; not for anything secret. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

/** The suite's seed: $CHAOS_SEED, else a fixed default, so CI runs the same chaos every time. */
export function chaosSeed(): number {
  const fromEnv = process.env.CHAOS_SEED;
  if (fromEnv === undefined || fromEnv === "") return 20261126;
  const seed = Number(fromEnv);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`CHAOS_SEED must be a whole number ≥ 0, not "${fromEnv}"`);
  return seed;
}
