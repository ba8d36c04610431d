import { PipelineDefinitionError } from './errors';

/** A duration as users write it: `'500ms'`, `'10s'`, `'1m'`, `'2h'`, or milliseconds. */
export type Duration = number | `${number}ms` | `${number}s` | `${number}m` | `${number}h`;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

/**
 * Converts a duration to whole milliseconds.
 *
 * @example
 * toMillis('10s'); // 10000
 */
export function toMillis(duration: Duration, options: { readonly allowZero?: boolean } = {}): number {
  if (typeof duration === 'number') return check(duration, String(duration), options.allowZero === true);
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(duration);
  if (!match) throw new PipelineDefinitionError(`'${duration}' is not a duration like '500ms', '10s', '1m'`);
  const [, amount, unit] = match as unknown as [string, string, keyof typeof UNIT_MS];
  return check(Number(amount) * UNIT_MS[unit], duration, options.allowZero === true);
}

function check(ms: number, text: string, allowZero: boolean): number {
  if (!Number.isInteger(ms) || ms < 0 || (ms === 0 && !allowZero)) {
    const what = allowZero ? 'a whole, non-negative' : 'a positive whole';
    throw new PipelineDefinitionError(`duration '${text}' must be ${what} number of milliseconds`);
  }
  return ms;
}
