import { seededRandom } from '../../local/random';

/**
 * Deterministic test input and an independent oracle for word count. The oracle deliberately
 * tokenizes with a different mechanism (a global match, not split) than the example's stage.
 */
const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'su', 'ta', 'ri', 'po', 'ven', 'dra', 'ül', 'ço'];

/** Lines of 1-14 words from a skewed vocabulary, with capitals and punctuation to strip. */
export function generateLines(count: number, seed = 42, vocabulary = 5_000): string[] {
  const random = seededRandom(seed);
  const words: string[] = [];
  for (let i = 0; i < vocabulary; i++) {
    let w = '';
    for (let n = i; ; n = Math.floor(n / SYLLABLES.length)) {
      w += SYLLABLES[n % SYLLABLES.length] as string;
      if (n < SYLLABLES.length) break;
    }
    words.push(w);
  }
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const length = 1 + Math.floor(random() * 14);
    const parts: string[] = [];
    for (let j = 0; j < length; j++) {
      // Squaring skews towards the first words: a few very hot keys, a long tail.
      const word = words[Math.floor(random() ** 2 * vocabulary)] as string;
      const r = random();
      parts.push(r < 0.1 ? word.toUpperCase() : r < 0.15 ? `${word},` : r < 0.18 ? `(${word})` : word);
    }
    lines.push(parts.join(' '));
  }
  return lines;
}

/** Counts words the way the word-count example defines them, by other means. */
export function countWords(lines: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) {
    for (const word of line.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []) {
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  return counts;
}

/** Output records of a keyed count as a map, failing on a key that appears twice. */
export function toCountMap(records: readonly unknown[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const record of records) {
    const [word, n] = record as [string, number];
    if (counts.has(word)) throw new Error(`key '${word}' appears twice in one batch's output`);
    counts.set(word, n);
  }
  return counts;
}

/** Sorted entries, for readable deep-equality failures. */
export function sortedEntries<V>(map: ReadonlyMap<string, V>): [string, V][] {
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Every space-separated word's count over all lines, as `spaceSeparatedWords` counts them. */
export function spaceSeparatedCounts(lines: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) {
    for (const word of line.split(' ')) if (word) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}
