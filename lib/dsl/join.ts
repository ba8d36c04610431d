import type { Encodable } from '../encoding/encodable';
import { PipelineDefinitionError } from '../errors';
import { toMillis } from '../duration';
import { windowedReduce } from '../state/operators';
import { toPair, wide, type KeyedStageOptions } from './reduce';
import type { Source } from './source';
import type { Aggregator, ChainOutput, JoinSpec, NarrowStage, Pair, WideStage, Wired } from './types';
import type { WindowOptions } from './window';

declare const branchOutput: unique symbol;

/**
 * The other input of a join: a source and the record-level stages that key it. Give it the same
 * source as the pipeline for two branches of one stream, or another source for two streams.
 */
export interface Branch<Out> {
  readonly source: Source<unknown>;
  readonly stages: readonly NarrowStage<unknown, unknown>[];
  readonly [branchOutput]?: Out;
}

/**
 * Defines the other input of a join: a source and the record-level stages that turn its records
 * into keyed pairs. Stages must fit together, as in a pipeline.
 *
 * @example
 * const users = branch({
 *   source: kinesis({ stream: 'users', decode: json<User>() }),
 *   stages: [map<User, Pair<string, string>>('user-names', (u) => [u.id, u.name])],
 * });
 */
export function branch<In, const S extends readonly NarrowStage<never, unknown>[]>(options: {
  readonly source: Source<In>;
  readonly stages: S & Wired<In, S>;
}): Branch<ChainOutput<In, S>> {
  for (const stage of options.stages as readonly NarrowStage<never, unknown>[]) {
    if ((stage as { shape: string }).shape !== 'narrow') {
      throw new PipelineDefinitionError(
        `branch stage '${stage.id}': a branch holds record-level stages only`,
      );
    }
  }
  return Object.freeze({
    source: options.source as Source<unknown>,
    stages: Object.freeze([
      ...(options.stages as readonly NarrowStage<never, unknown>[]),
    ]) as unknown as readonly NarrowStage<unknown, unknown>[],
  });
}

/** Which records a join outputs for a key. */
export type JoinKind = 'inner' | 'leftOuter' | 'rightOuter' | 'fullOuter' | 'cogroup';

/** Options of the joins: within each batch, or within a sliding window of both streams. */
export interface JoinOptions extends KeyedStageOptions {
  /** Join the windows of both streams (Spark's `s1.window(l, s).join(s2.window(l, s))`). */
  readonly window?: Omit<WindowOptions, 'partitions'>;
}

/** A key's values from both sides: what `cogroup` outputs and every join expands. */
type Cogroup = [unknown[], unknown[]];

const cogrouping: Aggregator<unknown, unknown> = {
  create: (v) => {
    const [side, value] = v as [0 | 1, unknown];
    return (side === 0 ? [[value], []] : [[], [value]]) satisfies Cogroup;
  },
  mergeValue: (c, v) => {
    const [side, value] = v as [0 | 1, unknown];
    (c as Cogroup)[side].push(value);
    return c;
  },
  mergeCombiners: (l, r) => [
    (l as Cogroup)[0].concat((r as Cogroup)[0]),
    (l as Cogroup)[1].concat((r as Cogroup)[1]),
  ],
};

/** The records a join of one key gives, as Spark's joins give them (outer sides as `undefined`). */
function expand(kind: JoinKind, key: unknown, [left, right]: Cogroup, emit: (record: unknown) => void): void {
  if (kind === 'cogroup') {
    emit([key, [left, right]]);
    return;
  }
  const lefts = left.length === 0 && (kind === 'rightOuter' || kind === 'fullOuter') ? [undefined] : left;
  const rights = right.length === 0 && (kind === 'leftOuter' || kind === 'fullOuter') ? [undefined] : right;
  for (const l of lefts) for (const r of rights) emit([key, [l, r]]);
}

function joinStage<Out>(
  kind: JoinKind,
  id: string,
  right: Branch<unknown>,
  options: JoinOptions,
): WideStage<Pair<unknown, unknown>, Out> {
  const window = options.window
    ? { lengthMs: toMillis(options.window.length), slideMs: toMillis(options.window.slide), inverse: false }
    : undefined;
  const shape: Omit<JoinSpec, 'id' | 'mapSideCombine' | 'partitions'> = {
    kind: 'sluice.stage/join@1',
    join: { kind, source: right.source.spec, stages: right.stages.map((s) => s.spec) },
    ...(window ? { window, stateful: true } : {}),
  };
  return wide<Pair<unknown, unknown>, Out>(shape, id, {
    mapSideCombine: false,
    partitions: options.partitions,
    // Each side's pairs are tagged with the side they came from; the reducer cogroups them.
    toPair: (pair, sink) => sink.pair(pair[0], [0, pair[1]]),
    aggregator: cogrouping,
    output: toPair as (k: unknown, c: unknown) => Out,
    join: {
      kind,
      right,
      rightToPair: (pair, sink) =>
        sink.pair((pair as Pair<unknown, unknown>)[0], [1, (pair as Pair<unknown, unknown>)[1]]),
    },
    ...(window
      ? {
          stateful: windowedReduce({
            lengthMs: window.lengthMs,
            slideMs: window.slideMs,
            reduce: cogrouping.mergeCombiners,
            output: (key, value, emit) => expand(kind, key, value as Cogroup, emit),
          }),
        }
      : {
          expand: (key: unknown, combiner: unknown, emit: (record: unknown) => void) =>
            expand(kind, key, combiner as Cogroup, emit),
        }),
  });
}

/**
 * Joins two keyed streams on their keys, like Spark's `join`: for a key with values v1..vn on this
 * side and w1..wm on the other, the pairs [key, [vi, wj]]. Within each batch, or within a window.
 * Keys and both sides' values cross the shuffle (and a windowed join keeps them as state), so `K`,
 * `V` and `W` must be `Encodable`; so it is for every join below.
 *
 * @example
 * export default join<string, Click, string>('clicks-with-names', users);
 */
export function join<K extends Encodable<K>, V extends Encodable<V>, W extends Encodable<W>>(
  id: string,
  right: Branch<Pair<K, W>>,
  options: JoinOptions = {},
): WideStage<Pair<K, V>, Pair<K, [V, W]>> {
  return joinStage('inner', id, right, options) as unknown as WideStage<Pair<K, V>, Pair<K, [V, W]>>;
}

/**
 * Like `join`, and keys with no value on the other side still give [key, [v, undefined]], like
 * Spark's `leftOuterJoin` (with `undefined` for `None`).
 *
 * @example
 * export default leftOuterJoin<string, Click, string>('clicks-maybe-named', users);
 */
export function leftOuterJoin<K extends Encodable<K>, V extends Encodable<V>, W extends Encodable<W>>(
  id: string,
  right: Branch<Pair<K, W>>,
  options: JoinOptions = {},
): WideStage<Pair<K, V>, Pair<K, [V, W | undefined]>> {
  return joinStage('leftOuter', id, right, options) as unknown as WideStage<
    Pair<K, V>,
    Pair<K, [V, W | undefined]>
  >;
}

/**
 * Like `join`, keeping keys that only the other side has, like Spark's `rightOuterJoin`.
 *
 * @example
 * export default rightOuterJoin<string, Click, string>('users-maybe-clicked', users);
 */
export function rightOuterJoin<K extends Encodable<K>, V extends Encodable<V>, W extends Encodable<W>>(
  id: string,
  right: Branch<Pair<K, W>>,
  options: JoinOptions = {},
): WideStage<Pair<K, V>, Pair<K, [V | undefined, W]>> {
  return joinStage('rightOuter', id, right, options) as unknown as WideStage<
    Pair<K, V>,
    Pair<K, [V | undefined, W]>
  >;
}

/**
 * Like `join`, keeping keys of either side, like Spark's `fullOuterJoin`.
 *
 * @example
 * export default fullOuterJoin<string, number, number>('both', other);
 */
export function fullOuterJoin<K extends Encodable<K>, V extends Encodable<V>, W extends Encodable<W>>(
  id: string,
  right: Branch<Pair<K, W>>,
  options: JoinOptions = {},
): WideStage<Pair<K, V>, Pair<K, [V | undefined, W | undefined]>> {
  return joinStage('fullOuter', id, right, options) as unknown as WideStage<
    Pair<K, V>,
    Pair<K, [V | undefined, W | undefined]>
  >;
}

/**
 * Groups both streams' values of each key, like Spark's `cogroup`: [key, [values here, values there]].
 *
 * @example
 * export default cogroup<string, number, number>('both-sides', other);
 */
export function cogroup<K extends Encodable<K>, V extends Encodable<V>, W extends Encodable<W>>(
  id: string,
  right: Branch<Pair<K, W>>,
  options: JoinOptions = {},
): WideStage<Pair<K, V>, Pair<K, [V[], W[]]>> {
  return joinStage('cogroup', id, right, options) as unknown as WideStage<Pair<K, V>, Pair<K, [V[], W[]]>>;
}
