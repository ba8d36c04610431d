import { PipelineDefinitionError } from '../errors';
import { stageId } from '../ids';
import type { Encodable } from '../encoding/encodable';
import type { StatefulOperator } from '../state/operator';
import type { Aggregator, Downstream, JoinSide, Pair, WideSpec, WideStage } from './types';

/** Options every keyed stage takes. */
export interface KeyedStageOptions {
  /** Reduce partitions for this stage, like Spark's `numPartitions`. @default the pipeline's `partitions` */
  readonly partitions?: number;
}

function checkPartitions(id: string, partitions: number | undefined): number | undefined {
  if (partitions === undefined) return undefined;
  if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > 10_000) {
    throw new PipelineDefinitionError(`stage '${id}': partitions must be a whole number from 1 to 10000`);
  }
  return partitions;
}

export const fromPair = (value: Pair<unknown, unknown>, sink: Downstream): void =>
  sink.pair(value[0], value[1]);
export const toPair = (key: unknown, combiner: unknown): Pair<unknown, unknown> => [key, combiner];

/**
 * What a keyed stage's spec says beyond its id, partitions and map-side combining: its kind, and
 * the window, timeout, event-time or join fields that kind has.
 */
export type WideShape = WideSpec extends infer S
  ? S extends WideSpec
    ? Omit<S, 'id' | 'mapSideCombine' | 'partitions'>
    : never
  : never;

/** The parts of a keyed stage; every keyed operator is built from these. */
export interface WideStageParts<In, Out> {
  readonly mapSideCombine: boolean;
  readonly partitions?: number;
  readonly toPair: (value: In, sink: Downstream) => void;
  readonly aggregator: Aggregator<unknown, unknown>;
  readonly output: (key: unknown, combiner: unknown) => Out;
  readonly whenEmpty?: () => Out[];
  readonly stateful?: StatefulOperator;
  readonly expand?: WideStage<In, Out>['expand'];
  readonly join?: JoinSide;
}

/**
 * Builds a keyed stage from its spec's shape and its parts (for operator modules, not for pipeline
 * authors). A shape that says `stateful` must come with a stateful operator, and the reverse.
 */
export function wide<In, Out>(
  shape: WideShape,
  id: string,
  parts: WideStageParts<In, Out>,
): WideStage<In, Out> {
  const sid = stageId(id);
  const partitions = checkPartitions(id, parts.partitions);
  const statefulSpec = 'stateful' in shape && shape.stateful === true;
  if (statefulSpec !== (parts.stateful !== undefined)) {
    throw new PipelineDefinitionError(`stage '${id}': its spec and its operator disagree on keeping state`);
  }
  const { kind, ...fields } = shape;
  // Kind and id lead, so that specs read alike in a manifest.
  const spec = Object.freeze({
    kind,
    id: sid,
    mapSideCombine: parts.mapSideCombine,
    ...(partitions === undefined ? {} : { partitions }),
    ...fields,
  }) as WideSpec;
  return Object.freeze({
    shape: 'wide',
    id: sid,
    spec,
    toPair: parts.toPair,
    aggregator: parts.aggregator,
    output: parts.output,
    ...(parts.whenEmpty ? { whenEmpty: parts.whenEmpty } : {}),
    ...(parts.stateful ? { stateful: parts.stateful } : {}),
    ...(parts.expand ? { expand: parts.expand } : {}),
    ...(parts.join ? { join: parts.join } : {}),
  });
}

/**
 * Merges the values of each key with an associative, commutative function, like Spark's
 * `reduceByKey`. Values are combined inside each transform task before the shuffle.
 * Keys and values cross the shuffle, so `K` and `V` must be `Encodable`.
 *
 * @example
 * export default reduceByKey<string, number>('count', (a, b) => a + b);
 */
export function reduceByKey<K extends Encodable<K>, V extends Encodable<V>>(
  id: string,
  fn: (left: V, right: V) => V,
  options: KeyedStageOptions = {},
): WideStage<Pair<K, V>, Pair<K, V>> {
  const merge = fn as (l: unknown, r: unknown) => unknown;
  return wide({ kind: 'sluice.stage/reduceByKey@1' }, id, {
    mapSideCombine: true,
    partitions: options.partitions,
    toPair: fromPair,
    aggregator: { create: (v) => v, mergeValue: merge, mergeCombiners: merge },
    output: toPair as (k: unknown, c: unknown) => Pair<K, V>,
  });
}

/** Collects values into arrays, in arrival order. */
export const listing: Aggregator<unknown, unknown> = {
  create: (v) => [v],
  mergeValue: (c, v) => {
    (c as unknown[]).push(v);
    return c;
  },
  mergeCombiners: (l, r) => (l as unknown[]).concat(r as unknown[]),
};

/**
 * Collects the values of each key into an array, like Spark's `groupByKey`. No map-side combining:
 * it would not make the shuffle smaller. Keys and values cross the shuffle, so `K` and `V` must be
 * `Encodable`.
 *
 * @example
 * export default groupByKey<string, number>('readings-by-sensor');
 */
export function groupByKey<K extends Encodable<K>, V extends Encodable<V>>(
  id: string,
  options: KeyedStageOptions = {},
): WideStage<Pair<K, V>, Pair<K, V[]>> {
  return wide({ kind: 'sluice.stage/groupByKey@1' }, id, {
    mapSideCombine: false,
    partitions: options.partitions,
    toPair: fromPair,
    aggregator: listing,
    output: toPair as (k: unknown, c: unknown) => Pair<K, V[]>,
  });
}

/** The three functions of Spark's `combineByKey`. */
export interface Combiner<V, C> {
  /** Starts a combiner from the first value of a key. */
  readonly create: (value: V) => C;
  /** Adds a value to a combiner. */
  readonly mergeValue: (combiner: C, value: V) => C;
  /** Merges two combiners of the same key (from different tasks). */
  readonly mergeCombiners: (left: C, right: C) => C;
}

/** Options of `combineByKey`. */
export interface CombineByKeyOptions extends KeyedStageOptions {
  /** Combine inside each transform task before the shuffle. @default true */
  readonly mapSideCombine?: boolean;
}

/**
 * What `combineByKey` lets `mapSideCombine` be for values of type `V`: anything when `V` is
 * `Encodable`, else only `true` (or unset), since without map-side combining the values themselves
 * cross the shuffle. (Tuple-wrapped so that a union `V` is checked whole, not member by member.)
 */
type MapSideCombineFor<V> = [V] extends [Encodable<V>]
  ? unknown
  : {
      /** `V` is not `Encodable`: its values cannot cross the shuffle, only combiners made from them. */
      readonly mapSideCombine?: true;
    };

/**
 * The general keyed aggregation, like Spark's `combineByKey`: per key, a combiner of type `C`.
 * Keys and combiners cross the shuffle, so `K` and `C` must be `Encodable`. Values are combined
 * before it, so `V` may be anything (`create` can turn a `Date` into a number), unless
 * `mapSideCombine` is false: then the values cross the shuffle too and must be `Encodable`.
 *
 * @example
 * export default combineByKey<string, number, { sum: number; n: number }>('avg', {
 *   create: (t) => ({ sum: t, n: 1 }),
 *   mergeValue: (c, t) => ({ sum: c.sum + t, n: c.n + 1 }),
 *   mergeCombiners: (a, b) => ({ sum: a.sum + b.sum, n: a.n + b.n }),
 * });
 */
export function combineByKey<K extends Encodable<K>, V, C extends Encodable<C>>(
  id: string,
  combiner: Combiner<V, C>,
  options: CombineByKeyOptions & MapSideCombineFor<V> = {},
): WideStage<Pair<K, V>, Pair<K, C>> {
  return wide({ kind: 'sluice.stage/combineByKey@1' }, id, {
    mapSideCombine: options.mapSideCombine ?? true,
    partitions: options.partitions,
    toPair: fromPair,
    aggregator: combiner as unknown as Aggregator<unknown, unknown>,
    output: toPair as (k: unknown, c: unknown) => Pair<K, C>,
  });
}

/**
 * Folds the values of each key into an accumulator that starts from `zero`, like Spark's
 * `aggregateByKey`. `zero` is copied (structured clone) for every key, so it may be an object.
 * Keys and accumulators cross the shuffle, so `K` and `A` must be `Encodable`; values are folded
 * before it, so `V` may be anything.
 *
 * @example
 * export default aggregateByKey<string, number, [number, number]>('sum-count', [0, 0],
 *   (acc, t) => [acc[0] + t, acc[1] + 1], (a, b) => [a[0] + b[0], a[1] + b[1]]);
 */
export function aggregateByKey<K extends Encodable<K>, V, A extends Encodable<A>>(
  id: string,
  zero: A,
  seqOp: (accumulator: A, value: V) => A,
  combOp: (left: A, right: A) => A,
  options: KeyedStageOptions = {},
): WideStage<Pair<K, V>, Pair<K, A>> {
  const seq = seqOp as (a: unknown, v: unknown) => unknown;
  return wide({ kind: 'sluice.stage/aggregateByKey@1' }, id, {
    mapSideCombine: true,
    partitions: options.partitions,
    toPair: fromPair,
    aggregator: {
      create: (v) => seq(structuredClone(zero), v),
      mergeValue: seq,
      mergeCombiners: combOp as (l: unknown, r: unknown) => unknown,
    },
    output: toPair as (k: unknown, c: unknown) => Pair<K, A>,
  });
}

export const sum = (a: unknown, b: unknown): unknown => (a as number) + (b as number);
export const counting: Aggregator<unknown, unknown> = {
  create: () => 1,
  mergeValue: (c) => (c as number) + 1,
  mergeCombiners: sum,
};

/**
 * Counts each distinct record, like Spark's `countByValue`: `[record, count]` pairs.
 * Records are the shuffle's keys, so `T` must be `Encodable`.
 *
 * @example
 * export default countByValue<string>('word-counts');
 */
export function countByValue<T extends Encodable<T>>(
  id: string,
  options: KeyedStageOptions = {},
): WideStage<T, Pair<T, number>> {
  return wide({ kind: 'sluice.stage/countByValue@1' }, id, {
    mapSideCombine: true,
    partitions: options.partitions,
    toPair: (value: T, sink) => sink.pair(value, 1),
    aggregator: counting,
    output: toPair as (k: unknown, c: unknown) => Pair<T, number>,
  });
}

/**
 * Counts the records of each batch, like Spark's `DStream.count`: exactly one number per batch,
 * 0 for an empty batch.
 *
 * @example
 * export default count<string>('lines');
 */
export function count<T>(id: string): WideStage<T, number> {
  return wide({ kind: 'sluice.stage/count@1' }, id, {
    mapSideCombine: true,
    partitions: 1,
    toPair: (_value: T, sink) => sink.pair(null, 1),
    aggregator: counting,
    output: (_key, combiner) => combiner as number,
    whenEmpty: () => [0],
  });
}

/**
 * Reduces all records of a batch to one with an associative, commutative function, like Spark's
 * `DStream.reduce`. An empty batch gives no record.
 * Records cross the shuffle, so `T` must be `Encodable`.
 *
 * @example
 * export default reduce<number>('max', (a, b) => Math.max(a, b));
 */
export function reduce<T extends Encodable<T>>(id: string, fn: (left: T, right: T) => T): WideStage<T, T> {
  const merge = fn as (l: unknown, r: unknown) => unknown;
  return wide({ kind: 'sluice.stage/reduce@1' }, id, {
    mapSideCombine: true,
    partitions: 1,
    toPair: (value: T, sink) => sink.pair(null, value),
    aggregator: { create: (v) => v, mergeValue: merge, mergeCombiners: merge },
    output: (_key, combiner) => combiner as T,
  });
}
