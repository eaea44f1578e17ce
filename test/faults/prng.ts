// Seeded pseudo-random numbers for the fault suite. Decisions are derived from (seed, a stable key)
// rather than drawn in arrival order, so concurrent requests get the same faults on every run of a
// seed whatever order they happen to arrive in.

/** 32-bit FNV-1a of a string: a stable, well-mixed key hash. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: small, fast and good enough to pick faults; returns a generator of [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator for one decision: the same seed and key always give the same sequence. */
export function rngFor(seed: number, key: string): () => number {
  return mulberry32(hash32(`${seed}|${key}`));
}

/** Fisher–Yates with a seeded generator. */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
