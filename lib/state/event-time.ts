import { watermarkOf } from '../watermark';
import type { StatefulOperator } from './operator';

/** Options of the event-time window operator. */
export interface EventTimeWindowsOptions {
  readonly lengthMs: number;
  readonly latenessMs: number;
  readonly mode: 'final' | 'update';
  readonly merge: (left: unknown, right: unknown) => unknown;
  readonly result: (accumulator: unknown) => unknown;
}

/**
 * Keeps one accumulator per (key, window start) and outputs a window when the batch's watermark
 * has passed its end, then forgets it. State entries: key `[key, start]`, value `[records, acc]`.
 *
 * A batch needs only the windows its records fall in and those the watermark has just closed: the
 * time index holds each window under its end (due once the watermark passes it), so the keyed
 * layout reads and writes what a batch touches, not every open window.
 *
 * @example
 * const op = eventTimeWindows({ lengthMs: 60_000, latenessMs: 5_000, mode: 'final', merge, result });
 */
export function eventTimeWindows(options: EventTimeWindowsOptions): StatefulOperator {
  return {
    reads: 'keys',
    // Final when `end <= watermark`, and a key is due when its due time is before the clock.
    dueAt: (_value, key) => (key as [unknown, number])[1] + options.lengthMs - 1,
    clock: { kind: 'watermark', latenessMs: options.latenessMs },
    apply(input, state, batch, emit, fail) {
      const changed = new Set<unknown>();
      for (const { key, combiner } of input) {
        const [records, accumulator] = combiner as [number, unknown];
        const entry = state.get(key);
        try {
          if (entry) {
            const [before, previous] = entry.value as [number, unknown];
            state.set(key, [before + records, options.merge(previous, accumulator)]);
          } else {
            state.set(key, [records, accumulator]);
          }
          changed.add(state.get(key));
        } catch (error) {
          fail(key, error, { values: [accumulator], ...(entry ? { state: entry.value } : {}) });
          state.delete(key);
        }
      }
      const watermark = watermarkOf(batch.watermarkHigh, options.latenessMs);
      for (const entry of [...state.values()]) {
        const [userKey, start] = entry.key as [unknown, number];
        const end = start + options.lengthMs;
        const final = end <= watermark;
        if (!final && !(options.mode === 'update' && changed.has(entry))) continue;
        const [, accumulator] = entry.value as [number, unknown];
        try {
          emit([userKey, { start, end, value: options.result(accumulator), final }]);
        } catch (error) {
          fail(entry.key, error, { state: entry.value });
          state.delete(entry.key);
          continue;
        }
        if (final) state.delete(entry.key);
      }
    },
  };
}
