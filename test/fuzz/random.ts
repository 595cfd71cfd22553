// The fuzzer's only source of chance: a small seeded generator (sfc32, Chris Doty-Humphrey's "small fast
// counting" generator), so that a run is a pure function of its seed. Every case gets its own generator, derived
// from the run's seed, its target's name and its index, so one case replays alone without running those before it.

/** 32-bit FNV-1a of a string's UTF-16 code units: turns a target's name into seed material. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** One step of splitmix32: spreads a counter into well-mixed 32-bit words for sfc32's initial state. */
function splitmix32(state: { value: number }): number {
  state.value = (state.value + 0x9e3779b9) >>> 0;
  let z = state.value;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  private constructor(seed: number) {
    const state = { value: seed >>> 0 };
    this.a = splitmix32(state);
    this.b = splitmix32(state);
    this.c = splitmix32(state);
    this.d = 1;
    // sfc32's first outputs still show the seed: run it a little before use.
    for (let i = 0; i < 12; i++) this.next();
  }

  /** The generator of case `index` of `stream` in the run seeded `seed`. */
  static for(seed: number, stream: string, index: number): Random {
    const mixed = { value: (seed ^ fnv1a(stream)) >>> 0 };
    splitmix32(mixed);
    return new Random((splitmix32(mixed) + Math.imul(index, 0x2545f491)) >>> 0);
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** A uniform integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(probability: number): boolean {
    return this.float() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(items.length)]!;
  }

  /** One of `choices`, each as likely as its weight. */
  weighted<T>(choices: ReadonlyArray<readonly [number, T]>): T {
    const total = choices.reduce((sum, [weight]) => sum + weight, 0);
    let point = this.float() * total;
    for (const [weight, value] of choices) {
      point -= weight;
      if (point < 0) return value;
    }
    return choices[choices.length - 1]![1];
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      const word = this.next();
      out[i] = word & 0xff;
      if (i + 1 < length) out[i + 1] = (word >>> 8) & 0xff;
      if (i + 2 < length) out[i + 2] = (word >>> 16) & 0xff;
      if (i + 3 < length) out[i + 3] = word >>> 24;
    }
    return out;
  }

  /** A short string of the letters a NATS token, a namespace and an id all accept. */
  word(maxLength = 12): string {
    const letters = "abcdefghijklmnopqrstuvwxyz0123456789-_";
    let out = "";
    for (let i = this.range(1, maxLength); i > 0; i--) out += letters[this.int(letters.length)];
    return out;
  }
}
