import { toMillis, type Duration } from '../duration';
import type { Encodable } from '../encoding/encodable';
import { windowedReduce } from '../state/operators';
import { counting, fromPair, listing, sum, toPair, wide, type KeyedStageOptions } from './reduce';
import type { Aggregator, Pair, ProcessingWindow, WideStage, WindowKind } from './types';

/** A processing-time window: length and slide, each a multiple of the batch interval. */
export interface WindowOptions extends KeyedStageOptions {
  /** How much of the stream each window covers, like Spark's `windowDuration`. */
  readonly length: Duration;
  /** How often a window is output, like Spark's `slideDuration`. */
  readonly slide: Duration;
}

/** Options of the incremental window form. */
export interface InverseWindowOptions<K, V> extends WindowOptions {
  /**
   * Takes values that left the window off the previous window's value (Spark's `invReduceFunc`),
   * so each slide costs the panes that changed, not the whole window. Keys then stay in the output
   * (at the value the inverse leaves them, such as 0) unless `filter` drops them.
   */
  readonly inverse?: (left: V, right: V) => V;
  /** With `inverse`: which keys to keep in the window (Spark's `filterFunc`). */
  readonly filter?: (pair: Pair<K, V>) => boolean;
}

function windowed<In, Out>(
  kind: WindowKind,
  id: string,
  options: WindowOptions,
  parts: {
    partitions?: number;
    toPair: WideStage<In, Out>['toPair'];
    aggregator: Aggregator<unknown, unknown>;
    reduce: (l: unknown, r: unknown) => unknown;
    inverse?: (l: unknown, r: unknown) => unknown;
    keep?: (key: unknown, value: unknown) => boolean;
    output: (key: unknown, value: unknown, emit: (record: unknown) => void) => void;
  },
): WideStage<In, Out> {
  const window: ProcessingWindow = {
    lengthMs: toMillis(options.length),
    slideMs: toMillis(options.slide),
    inverse: parts.inverse !== undefined,
  };
  return wide<In, Out>({ kind, window, stateful: true }, id, {
    mapSideCombine: true,
    partitions: parts.partitions,
    toPair: parts.toPair,
    aggregator: parts.aggregator,
    output: toPair as (k: unknown, c: unknown) => Out,
    stateful: windowedReduce({
      lengthMs: window.lengthMs,
      slideMs: window.slideMs,
      reduce: parts.reduce,
      ...(parts.inverse ? { inverse: parts.inverse } : {}),
      ...(parts.keep ? { keep: parts.keep } : {}),
      output: parts.output,
    }),
  });
}

const emitPair = (key: unknown, value: unknown, emit: (record: unknown) => void): void => emit([key, value]);
const emitValue = (_key: unknown, value: unknown, emit: (record: unknown) => void): void => emit(value);

/**
 * Reduces the values of each key over a sliding window, like Spark's `reduceByKeyAndWindow`.
 * Output at batch times that are multiples of `slide`, covering the batches in (t - length, t].
 * With `inverse`, the window is kept incrementally, and keys stay (say at 0) unless `filter`
 * drops them, exactly as in Spark. Keys and values cross the shuffle and are kept as window
 * state, so `K` and `V` must be `Encodable`.
 *
 * @example
 * export default reduceByKeyAndWindow<string, number>('count', (a, b) => a + b,
 *   { length: '30s', slide: '10s', inverse: (a, b) => a - b, filter: ([, n]) => n > 0 });
 */
export function reduceByKeyAndWindow<K extends Encodable<K>, V extends Encodable<V>>(
  id: string,
  fn: (left: V, right: V) => V,
  options: InverseWindowOptions<K, V>,
): WideStage<Pair<K, V>, Pair<K, V>> {
  const reduce = fn as (l: unknown, r: unknown) => unknown;
  const filter = options.filter;
  return windowed('sluice.stage/reduceByKeyAndWindow@1', id, options, {
    partitions: options.partitions,
    toPair: fromPair,
    aggregator: { create: (v) => v, mergeValue: reduce, mergeCombiners: reduce },
    reduce,
    ...(options.inverse ? { inverse: options.inverse as (l: unknown, r: unknown) => unknown } : {}),
    ...(filter ? { keep: (k: unknown, v: unknown) => filter([k as K, v as V]) } : {}),
    output: emitPair,
  });
}

/**
 * Collects the values of each key over a sliding window, like Spark's `groupByKeyAndWindow`;
 * values come in batch order. Keys and values cross the shuffle and are kept as window state,
 * so `K` and `V` must be `Encodable`.
 *
 * @example
 * export default groupByKeyAndWindow<string, number>('recent', { length: '1m', slide: '10s' });
 */
export function groupByKeyAndWindow<K extends Encodable<K>, V extends Encodable<V>>(
  id: string,
  options: WindowOptions,
): WideStage<Pair<K, V>, Pair<K, V[]>> {
  return windowed('sluice.stage/groupByKeyAndWindow@1', id, options, {
    partitions: options.partitions,
    toPair: fromPair,
    aggregator: listing,
    reduce: listing.mergeCombiners,
    output: emitPair,
  });
}

/**
 * Counts each distinct record over a sliding window, like Spark's `countByValueAndWindow`
 * (incrementally; records whose count falls to 0 leave the output). Records are the shuffle's
 * keys and the window state's, so `T` must be `Encodable`.
 *
 * @example
 * export default countByValueAndWindow<string>('trending', { length: '5m', slide: '1m' });
 */
export function countByValueAndWindow<T extends Encodable<T>>(
  id: string,
  options: WindowOptions,
): WideStage<T, Pair<T, number>> {
  return windowed('sluice.stage/countByValueAndWindow@1', id, options, {
    partitions: options.partitions,
    toPair: (value: T, sink) => sink.pair(value, 1),
    aggregator: counting,
    reduce: sum,
    inverse: (a, b) => (a as number) - (b as number),
    keep: (_k, v) => v !== 0,
    output: emitPair,
  });
}

/**
 * Counts the records in a sliding window, like Spark's `countByWindow`: one number per window
 * (incrementally, so 0 once records have left; nothing before the first record).
 *
 * @example
 * export default countByWindow<string>('lines-per-minute', { length: '1m', slide: '10s' });
 */
export function countByWindow<T>(
  id: string,
  options: Omit<WindowOptions, 'partitions'>,
): WideStage<T, number> {
  return windowed('sluice.stage/countByWindow@1', id, options, {
    partitions: 1,
    toPair: (_value: T, sink) => sink.pair(null, 1),
    aggregator: counting,
    reduce: sum,
    inverse: (a, b) => (a as number) - (b as number),
    output: emitValue,
  });
}

/**
 * Reduces all records of a sliding window to one, like Spark's `reduceByWindow`; with `inverse`,
 * incrementally. Records cross the shuffle and are kept as window state, so `T` must be
 * `Encodable`.
 *
 * @example
 * export default reduceByWindow<number>('max', Math.max, { length: '1m', slide: '10s' });
 */
export function reduceByWindow<T extends Encodable<T>>(
  id: string,
  fn: (left: T, right: T) => T,
  options: Omit<WindowOptions, 'partitions'> & { readonly inverse?: (left: T, right: T) => T },
): WideStage<T, T> {
  const reduce = fn as (l: unknown, r: unknown) => unknown;
  return windowed('sluice.stage/reduceByWindow@1', id, options, {
    partitions: 1,
    toPair: (value: T, sink) => sink.pair(null, value),
    aggregator: { create: (v) => v, mergeValue: reduce, mergeCombiners: reduce },
    reduce,
    ...(options.inverse ? { inverse: options.inverse as (l: unknown, r: unknown) => unknown } : {}),
    output: emitValue,
  });
}

/**
 * All the records of a sliding window, like Spark's `window`: each window output holds every
 * record of the batches it covers (as a multiset: the order of records is not kept). Records are
 * the shuffle's keys and the window state's, so `T` must be `Encodable`.
 *
 * @example
 * export default window<string>('last-minute', { length: '1m', slide: '10s' });
 */
export function window<T extends Encodable<T>>(id: string, options: WindowOptions): WideStage<T, T> {
  return windowed('sluice.stage/window@1', id, options, {
    partitions: options.partitions,
    toPair: (value: T, sink) => sink.pair(value, 1),
    aggregator: counting,
    reduce: sum,
    output: (key, count, emit) => {
      for (let i = 0; i < (count as number); i++) emit(key);
    },
  });
}
