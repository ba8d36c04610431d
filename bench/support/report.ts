/** The median of some numbers (0 of none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** A whole number with thousands separators. */
export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

/** US dollars: cents under $100, whole dollars above. */
export function usd(value: number): string {
  if (value >= 100) return `$${fmt(value)}`;
  if (value >= 0.01 || value === 0) return `$${value.toFixed(2)}`;
  return `$${value.toPrecision(2)}`;
}

/**
 * Rows as aligned text: the first `left` columns padded on the right, the others (numbers) on the
 * left, every column as wide as its widest cell.
 */
export function table(rows: readonly (readonly string[])[], left = 1): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i < left ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** A mistake on a bench's command line: reported in one line, without a stack trace. */
export class UsageError extends Error {}

/** Runs a bench's main, reporting a `UsageError` as one line on stderr (exit code 2). */
export function runBench(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${name}: ${error.message}`);
    process.exitCode = 2;
  });
}
