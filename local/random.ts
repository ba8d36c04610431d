/**
 * A small seeded PRNG (mulberry32): the same seed gives the same sequence, so a run with injected
 * faults, a generated corpus or a benchmark input can be repeated exactly.
 *
 * @example
 * const random = seededRandom(7);
 * random(); // a number in [0, 1)
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
