import { toMillis, type Duration } from '../duration';
import type { Encodable } from '../encoding/encodable';
import { mapWithState as mapWithStateOperator, updateState, type KeyState } from '../state/operators';
import { fromPair, listing, toPair, wide, type KeyedStageOptions } from './reduce';
import type { Pair, WideStage } from './types';

export type { KeyState } from '../state/operators';

/** Options of `updateStateByKey`. */
export interface UpdateStateByKeyOptions<K, S> extends KeyedStageOptions {
  /** State before the first batch, like Spark's `initialRDD`. */
  readonly initialState?: Iterable<readonly [K, S]>;
}

/**
 * Keeps a state per key across batches, like Spark's `updateStateByKey`: every batch, every key
 * with new values or with state gets `fn(values, state)`; returning `undefined` removes the key.
 * The output is every key's state after the batch. Keys and values cross the shuffle and states
 * are stored, so `K`, `V` and `S` must be `Encodable`.
 *
 * @example
 * export default updateStateByKey<string, number, number>('running-count',
 *   (values, total) => (total ?? 0) + values.reduce((a, b) => a + b, 0));
 */
export function updateStateByKey<K extends Encodable<K>, V extends Encodable<V>, S extends Encodable<S>>(
  id: string,
  fn: (values: V[], state: S | undefined) => S | undefined,
  options: UpdateStateByKeyOptions<K, S> = {},
): WideStage<Pair<K, V>, Pair<K, S>> {
  const initial = options.initialState ? [...options.initialState] : undefined;
  return wide({ kind: 'sluice.stage/updateStateByKey@1', stateful: true }, id, {
    mapSideCombine: false,
    partitions: options.partitions,
    toPair: fromPair,
    aggregator: listing,
    output: toPair as (k: unknown, c: unknown) => Pair<K, S>,
    stateful: updateState({
      update: fn as (values: unknown[], state: unknown) => unknown,
      ...(initial ? { initial: () => initial } : {}),
    }),
  });
}

/** Options of `mapWithState`, as Spark's `StateSpec`. */
export interface MapWithStateOptions<K, S> extends KeyedStageOptions {
  /** A key idle this long times out: the function is called once more, with no value. */
  readonly timeout?: Duration;
  /** State before the first batch. */
  readonly initialState?: Iterable<readonly [K, S]>;
  /** Output every key's state after each batch instead of the mapped records (`stateSnapshots()`). */
  readonly snapshots?: boolean;
}

/**
 * Maps each record with access to its key's state, like Spark's `mapWithState`: the function is
 * called for every record of the batch, in order, and may read, update or remove the state; what it
 * returns (unless `undefined`) is the output. With `timeout`, a key idle that long is called once
 * more with `value` undefined and `state.isTimingOut()` true, then its state is gone. Keys and
 * values cross the shuffle and states are stored, so `K`, `V` and `S` must be `Encodable`; what
 * the function returns is only output, so `M` may be anything.
 *
 * @example
 * export default mapWithState<string, number, number, [string, number]>('sessions',
 *   (user, clicks, state) => {
 *     if (state.isTimingOut()) return [user, state.get()];
 *     state.update((state.exists() ? state.get() : 0) + (clicks ?? 0));
 *     return undefined;
 *   }, { timeout: '30m' });
 */
export function mapWithState<K extends Encodable<K>, V extends Encodable<V>, S extends Encodable<S>, M>(
  id: string,
  fn: (key: K, value: V | undefined, state: KeyState<S>) => M | undefined,
  options?: MapWithStateOptions<K, S> & { readonly snapshots?: false },
): WideStage<Pair<K, V>, M>;
/**
 * `mapWithState` with `snapshots: true`: outputs every key's state after each batch, like Spark's
 * `stateSnapshots()`, instead of what the function returns.
 *
 * @example
 * export default mapWithState<string, number, number, never>('totals',
 *   (_user, clicks, state) => { state.update((state.exists() ? state.get() : 0) + (clicks ?? 0)); },
 *   { snapshots: true });
 */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- M kept: callers pass the same four type arguments as without snapshots
export function mapWithState<K extends Encodable<K>, V extends Encodable<V>, S extends Encodable<S>, M>(
  id: string,
  fn: (key: K, value: V | undefined, state: KeyState<S>) => M | undefined,
  options: MapWithStateOptions<K, S> & { readonly snapshots: true },
): WideStage<Pair<K, V>, Pair<K, S>>;
export function mapWithState<K extends Encodable<K>, V extends Encodable<V>, S extends Encodable<S>, M>(
  id: string,
  fn: (key: K, value: V | undefined, state: KeyState<S>) => M | undefined,
  options: MapWithStateOptions<K, S> = {},
): WideStage<Pair<K, V>, M | Pair<K, S>> {
  const initial = options.initialState ? [...options.initialState] : undefined;
  const timeoutMs = options.timeout === undefined ? undefined : toMillis(options.timeout);
  return wide(
    {
      kind: 'sluice.stage/mapWithState@1',
      stateful: true,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    },
    id,
    {
      mapSideCombine: false,
      partitions: options.partitions,
      toPair: fromPair,
      aggregator: listing,
      output: toPair as (k: unknown, c: unknown) => M,
      stateful: mapWithStateOperator({
        fn: fn as (key: unknown, value: unknown, state: KeyState<unknown>) => unknown,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        ...(initial ? { initial: () => initial } : {}),
        ...(options.snapshots ? { snapshots: true } : {}),
      }),
    },
  );
}
