import { toMillis, type Duration } from '../duration';
import { PipelineDefinitionError } from '../errors';
import { eventTimeWindows } from '../state/event-time';
import { toPair, wide, type KeyedStageOptions } from './reduce';
import { LateRecordError, type Downstream, type EventTimeSink, type Pair, type WideStage } from './types';

/** One event-time window's result for a key. */
export interface EventWindow<R> {
  /** Window start, epoch ms (inclusive). */
  readonly start: number;
  /** Window end, epoch ms (exclusive). */
  readonly end: number;
  readonly value: R;
  /** True when the watermark has passed the window's end: this is its last output. */
  readonly final: boolean;
}

/** How values of one key and window are aggregated; `result` turns the accumulator into the output. */
export interface EventTimeAggregate<V, A, R> {
  readonly create: (value: V) => A;
  readonly add: (accumulator: A, value: V) => A;
  readonly merge: (left: A, right: A) => A;
  readonly result: (accumulator: A) => R;
}

/** Options of `eventTimeWindow`. */
export interface EventTimeWindowOptions<K, V, A, R> extends KeyedStageOptions {
  /** The record's event time, epoch milliseconds (or a Date). */
  readonly timestamp: (pair: Pair<K, V>) => number | Date;
  /** Window length. */
  readonly length: Duration;
  /** Window slide. @default length (tumbling windows) */
  readonly slide?: Duration;
  /** How far behind the highest event time seen a record may be and still count. @default 0 */
  readonly lateness?: Duration;
  readonly aggregate: EventTimeAggregate<V, A, R>;
  /**
   * `final`: each window is output once, when the watermark passes its end. `update`: also output
   * (with `final: false`) each batch in which a window changed before that.
   * @default 'final'
   */
  readonly mode?: 'final' | 'update';
}

/** The start of every window of `length`, sliding by `slide`, that holds time `ts`. */
export function windowStarts(ts: number, lengthMs: number, slideMs: number): number[] {
  const starts: number[] = [];
  const last = Math.floor(ts / slideMs) * slideMs;
  for (let start = last; start > ts - lengthMs; start -= slideMs) starts.unshift(start);
  return starts;
}

/**
 * Aggregates each key over tumbling or sliding windows of event time (a time taken from the
 * record, as Structured Streaming and Flink do), with a watermark: the highest event time seen
 * minus the allowed lateness. A window is output when the watermark passes its end (and, in
 * `update` mode, each batch it changes before that); a record whose windows have all closed is
 * late and goes to the dead-letter prefix as `late`. Batch n uses the watermark known when it was
 * sealed: that of the batches completed before it.
 *
 * @example
 * export default eventTimeWindow<string, Reading, [number, number], number>('per-minute', {
 *   timestamp: ([, r]) => Date.parse(r.at), length: '1m', lateness: '30s',
 *   aggregate: { create: (r) => [r.celsius, 1], add: ([s, n], r) => [s + r.celsius, n + 1],
 *     merge: ([s1, n1], [s2, n2]) => [s1 + s2, n1 + n2], result: ([s, n]) => s / n },
 * });
 */
export function eventTimeWindow<K, V, A, R>(
  id: string,
  options: EventTimeWindowOptions<K, V, A, R>,
): WideStage<Pair<K, V>, Pair<K, EventWindow<R>>> {
  const lengthMs = toMillis(options.length);
  const slideMs = options.slide === undefined ? lengthMs : toMillis(options.slide);
  const latenessMs = options.lateness === undefined ? 0 : toMillis(options.lateness, { allowZero: true });
  if (lengthMs % slideMs !== 0) {
    throw new PipelineDefinitionError(`stage '${id}': window length must be a multiple of its slide`);
  }
  const mode = options.mode ?? 'final';
  const { create, add, merge, result } = options.aggregate as unknown as EventTimeAggregate<
    unknown,
    unknown,
    unknown
  >;
  const timestamp = options.timestamp as (pair: Pair<unknown, unknown>) => number | Date;
  return wide('sluice.stage/eventTimeWindow@1', id, {
    mapSideCombine: true,
    partitions: options.partitions,
    toPair: (pair: Pair<K, V>, sink: Downstream) => {
      const raw = timestamp(pair as Pair<unknown, unknown>);
      const ts = raw instanceof Date ? raw.getTime() : raw;
      if (!Number.isFinite(ts)) throw new TypeError(`event time ${String(raw)} is not a time`);
      const events = sink as EventTimeSink;
      events.observeEventTime(ts);
      const watermark = events.eventTime === null ? -Infinity : events.eventTime - latenessMs;
      const open = windowStarts(ts, lengthMs, slideMs).filter((start) => start + lengthMs > watermark);
      if (open.length === 0) {
        throw new LateRecordError(
          `event time ${new Date(ts).toISOString()} is behind the watermark ${new Date(watermark).toISOString()}`,
        );
      }
      // The shuffle key is (key, window start): each window of each key is combined on its own.
      for (const start of open) sink.pair([pair[0], start], [1, pair[1]]);
    },
    aggregator: {
      create: (v) => [(v as [number, unknown])[0], create((v as [number, unknown])[1])],
      mergeValue: (c, v) => [
        (c as [number, unknown])[0] + 1,
        add((c as [number, unknown])[1], (v as [number, unknown])[1]),
      ],
      mergeCombiners: (l, r) => [
        (l as [number, unknown])[0] + (r as [number, unknown])[0],
        merge((l as [number, unknown])[1], (r as [number, unknown])[1]),
      ],
    },
    output: toPair as (k: unknown, c: unknown) => Pair<K, EventWindow<R>>,
    spec: { eventTime: { lengthMs, slideMs, latenessMs, mode } },
    stateful: eventTimeWindows({ lengthMs, latenessMs, mode, merge, result }),
  });
}
