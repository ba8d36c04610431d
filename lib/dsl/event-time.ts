import { watermarkOf } from '../watermark';
import { toMillis, type Duration } from '../duration';
import type { Encodable } from '../encoding/encodable';
import { PipelineDefinitionError } from '../errors';
import { eventTimeWindows } from '../state/event-time';
import { toPair, wide, type KeyedStageOptions } from './reduce';
import {
  InvalidEventTimeError,
  LateRecordError,
  type Downstream,
  type EventTimeSink,
  type Pair,
  type WideStage,
} from './types';

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
  /**
   * How far ahead of the batch's processing time an event time may be. A record further ahead is
   * dead-lettered as `invalid-event-time` instead of moving the watermark (one far-future reading
   * would otherwise make every later record late). @default '1h'
   */
  readonly maxFutureSkew?: Duration;
  readonly aggregate: EventTimeAggregate<V, A, R>;
  /**
   * `final`: each window is output once, when the watermark passes its end. `update`: also output
   * (with `final: false`) each batch in which a window changed before that.
   * @default 'final'
   */
  readonly mode?: 'final' | 'update';
}

/** At most this many sliding windows hold one record (length / slide). */
export const MAX_WINDOWS_PER_RECORD = 1000;

/**
 * The start of every window of `length`, sliding by `slide`, that holds time `ts` (a safe integer:
 * beyond 2^53 subtracting the slide would not move the start, and the loop would never end).
 *
 * @example
 * windowStarts(65_000, 60_000, 30_000); // [30_000, 60_000]
 */
export function windowStarts(ts: number, lengthMs: number, slideMs: number): number[] {
  if (!Number.isSafeInteger(ts)) throw new InvalidEventTimeError(`event time ${ts} is not a safe integer`);
  const starts: number[] = [];
  const last = Math.floor(ts / slideMs) * slideMs;
  for (let start = last; start > ts - lengthMs; start -= slideMs) starts.unshift(start);
  return starts;
}

/** An epoch-ms time as ISO 8601 where a Date can hold it, else as a number. */
function instant(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms`;
}

/** Refuses an event time that is not a safe whole number of ms, or too far ahead of the batch. */
function checkEventTime(
  ts: unknown,
  raw: unknown,
  batchTime: number,
  maxFutureSkewMs: number,
): asserts ts is number {
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts)) {
    throw new InvalidEventTimeError(
      `event time ${String(raw)} is not a whole number of milliseconds within ±2^53`,
    );
  }
  if (ts > batchTime + maxFutureSkewMs) {
    throw new InvalidEventTimeError(
      `event time ${instant(ts)} is more than ${maxFutureSkewMs} ms ahead of the batch time ${instant(batchTime)}`,
    );
  }
}

/**
 * Aggregates each key over tumbling or sliding windows of event time (a time taken from the
 * record, as Structured Streaming and Flink do), with a watermark: the highest event time seen
 * minus the allowed lateness. A window is output when the watermark passes its end (and, in
 * `update` mode, each batch it changes before that); a record whose windows have all closed is
 * late and goes to the dead-letter prefix as `late`. Batch n uses the watermark known when it was
 * sealed: that of the batches completed before it.
 * Keys and accumulators cross the shuffle and are kept as state, so `K` and `A` must be
 * `Encodable`; values are added to accumulators before the shuffle and results are only output,
 * so `V` and `R` may be anything.
 *
 * @example
 * export default eventTimeWindow<string, Reading, [number, number], number>('per-minute', {
 *   timestamp: ([, r]) => Date.parse(r.at), length: '1m', lateness: '30s',
 *   aggregate: { create: (r) => [r.celsius, 1], add: ([s, n], r) => [s + r.celsius, n + 1],
 *     merge: ([s1, n1], [s2, n2]) => [s1 + s2, n1 + n2], result: ([s, n]) => s / n },
 * });
 */
export function eventTimeWindow<K extends Encodable<K>, V, A extends Encodable<A>, R>(
  id: string,
  options: EventTimeWindowOptions<K, V, A, R>,
): WideStage<Pair<K, V>, Pair<K, EventWindow<R>>> {
  const lengthMs = toMillis(options.length);
  const slideMs = options.slide === undefined ? lengthMs : toMillis(options.slide);
  const latenessMs = options.lateness === undefined ? 0 : toMillis(options.lateness, { allowZero: true });
  if (lengthMs % slideMs !== 0) {
    throw new PipelineDefinitionError(`stage '${id}': window length must be a multiple of its slide`);
  }
  if (lengthMs / slideMs > MAX_WINDOWS_PER_RECORD) {
    throw new PipelineDefinitionError(
      `stage '${id}': a record would fall into ${lengthMs / slideMs} windows; at most ${MAX_WINDOWS_PER_RECORD} (make the slide longer)`,
    );
  }
  const maxFutureSkewMs = toMillis(options.maxFutureSkew ?? '1h', { allowZero: true });
  const mode = options.mode ?? 'final';
  const { create, add, merge, result } = options.aggregate as unknown as EventTimeAggregate<
    unknown,
    unknown,
    unknown
  >;
  const timestamp = options.timestamp as (pair: Pair<unknown, unknown>) => number | Date;
  return wide(
    {
      kind: 'sluice.stage/eventTimeWindow@1',
      stateful: true,
      eventTime: { lengthMs, slideMs, latenessMs, mode },
    },
    id,
    {
      mapSideCombine: true,
      partitions: options.partitions,
      toPair: (pair: Pair<K, V>, sink: Downstream) => {
        const raw = timestamp(pair);
        const ts = raw instanceof Date ? raw.getTime() : raw;
        const events = sink as EventTimeSink;
        checkEventTime(ts, raw, events.batchTime, maxFutureSkewMs);
        events.observeEventTime(ts);
        const watermark = watermarkOf(events.watermarkHigh, latenessMs);
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
      stateful: eventTimeWindows({ lengthMs, latenessMs, mode, merge, result }),
    },
  );
}
