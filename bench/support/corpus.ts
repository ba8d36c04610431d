/**
 * Text for the benches' word counts, made on the spot from a seeded PRNG (no files, no
 * dependencies): a vocabulary of made-up words and lines of 8 to 12 of them, drawn with Zipf's law
 * (the r-th most frequent word about 1/r as often as the first), as words are in natural text. The
 * first word of a line is capitalised and the line ends with a full stop, so the word-count
 * tokenizer lower-cases and splits as it does on real text.
 */
const SYLLABLES =
  'ba ce di fo gu ha je ki lo mu na pe qui ro su ta ve wi xo yu za bre cla dro fli gra pla sto tri ch sh th'.split(
    ' ',
  );

const MIN_WORDS = 8;
const MAX_WORDS = 12;

export class Corpus {
  /** The words, most frequent first. */
  readonly words: readonly string[];
  private readonly cumulative: Float64Array;

  constructor(
    vocabulary: number,
    private readonly random: () => number,
  ) {
    const words = new Set<string>();
    while (words.size < vocabulary) {
      const syllables = 1 + Math.floor(random() * 5);
      let word = '';
      for (let s = 0; s < syllables; s++) word += SYLLABLES[Math.floor(random() * SYLLABLES.length)] ?? '';
      words.add(word);
    }
    // Short words are the frequent ones, as in natural language.
    this.words = [...words].sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
    this.cumulative = new Float64Array(vocabulary);
    let total = 0;
    for (let rank = 0; rank < vocabulary; rank++) {
      total += 1 / (rank + 1);
      this.cumulative[rank] = total;
    }
  }

  /** `count` lines of text, each a record. */
  lines(count: number): Uint8Array[] {
    const lines: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const length = MIN_WORDS + Math.floor(this.random() * (MAX_WORDS - MIN_WORDS + 1));
      const words = Array.from({ length }, () => this.word());
      const first = words[0] ?? '';
      words[0] = first.charAt(0).toUpperCase() + first.slice(1);
      lines.push(Buffer.from(`${words.join(' ')}.`));
    }
    return lines;
  }

  /** Every word of the vocabulary once, ten to a line. */
  vocabularyLines(): Uint8Array[] {
    const lines: Uint8Array[] = [];
    for (let i = 0; i < this.words.length; i += 10) {
      lines.push(Buffer.from(this.words.slice(i, i + 10).join(' ')));
    }
    return lines;
  }

  /** A word drawn by Zipf's law: binary search of a uniform draw in the cumulative weights. */
  private word(): string {
    const total = this.cumulative[this.cumulative.length - 1] ?? 0;
    const target = this.random() * total;
    let low = 0;
    let high = this.cumulative.length - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((this.cumulative[mid] ?? 0) < target) low = mid + 1;
      else high = mid;
    }
    return this.words[low] ?? '';
  }
}
