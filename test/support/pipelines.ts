import { kinesis, pipeline, transform, updateStateByKey, utf8 } from '../../lib';
import type { OracleState } from './oracle';

/**
 * A running word count (`updateStateByKey`) over space-separated words: the smallest stateful
 * pipeline, for tests of how state moves (commits, crashes, catching up).
 */
export const runningCount = pipeline({
  name: 'running',
  batchInterval: '1s',
  source: kinesis({ stream: 'words', decode: utf8 }),
  stages: [
    transform<string, string, number>('ones', (line, emit) => {
      for (const word of line.split(' ')) if (word) emit(word, 1);
    }),
    updateStateByKey<string, number, number>('running', (values, total) => (total ?? 0) + values.length),
  ],
});

/** A record-level stage: each space-separated word of a line, counted once. */
export const spaceSeparatedWords = transform<string, string, number>('words', (line, emit) => {
  for (const word of line.split(' ')) if (word) emit(word, 1);
});

/** Running totals per word (`updateStateByKey`), after `spaceSeparatedWords`. */
export const wordTotals = updateStateByKey<string, number, number>('totals', (values, total) =>
  values.reduce((sum, v) => sum + v, total ?? 0),
);

/** What `visits` outputs: a key's count, or that it timed out with its last count. */
export type Visit = [string, number] | [string, 'timed out', number];

/**
 * A `mapWithState` function (and its oracle's): a running count per key; a key idle past the
 * timeout says so with its last count.
 */
export function visits(key: string, value: number | undefined, state: OracleState<number>): Visit {
  if (state.isTimingOut()) return [key, 'timed out', state.get()];
  const count = (state.exists() ? state.get() : 0) + (value ?? 0);
  state.update(count);
  return [key, count];
}
