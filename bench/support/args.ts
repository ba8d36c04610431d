import { UsageError } from './report';

/**
 * A bench's command line, read flag by flag: each flag's value, a whole number, a list of them, or
 * names from a known set, with a `UsageError` naming the flag when the value is not one.
 *
 * @example
 * const args = new BenchArguments(process.argv.slice(2));
 * for (let flag = args.next(); flag !== undefined; flag = args.next()) {
 *   if (flag === '--runs') runs = args.whole();
 *   else args.unknown('use --runs N');
 * }
 */
export class BenchArguments {
  private index = -1;
  private flag = '';

  constructor(private readonly argv: readonly string[]) {}

  /** The next flag, or `undefined` after the last. */
  next(): string | undefined {
    this.index++;
    const flag = this.argv[this.index];
    if (flag !== undefined) this.flag = flag;
    return flag;
  }

  /** The current flag's value. */
  value(): string {
    this.index++;
    const value = this.argv[this.index];
    if (value === undefined) throw new UsageError(`${this.flag} needs a value`);
    return value;
  }

  /** The current flag's value as a whole number. */
  whole(): number {
    return this.wholeOf(this.value());
  }

  /** The current flag's value as whole numbers separated by commas; `word` maps a part first. */
  wholes(word: (part: string) => string | number = (part) => part): number[] {
    return this.value()
      .split(',')
      .map((part) => {
        const mapped = word(part);
        return typeof mapped === 'number' ? mapped : this.wholeOf(mapped);
      });
  }

  /** The current flag's value as names separated by commas, each one of `known`. */
  names<T extends string>(known: readonly T[], what: string): T[] {
    return this.value()
      .split(',')
      .map((name) => {
        const found = known.find((k) => k === name);
        if (!found) throw new UsageError(`unknown ${what} '${name}' (${known.join(', ')})`);
        return found;
      });
  }

  /** The current flag's value as `true` or `false`. */
  boolean(): boolean {
    const value = this.value();
    if (value === 'true' || value === 'false') return value === 'true';
    throw new UsageError(`${this.flag} is true or false, not '${value}'`);
  }

  /** Refuses the current flag, saying what the bench takes. */
  unknown(usage: string): never {
    throw new UsageError(`unknown argument '${this.flag}' (${usage})`);
  }

  private wholeOf(text: string): number {
    const n = Number(text);
    if (text.trim() === '' || !Number.isSafeInteger(n) || n < 0) {
      throw new UsageError(`${this.flag} needs whole numbers, not '${text}'`);
    }
    return n;
  }
}
