import { stageId } from '../ids';
import type { NarrowSpec, NarrowStage, Pair } from './types';

function narrow<In, Out>(
  kind: NarrowSpec['kind'],
  id: string,
  compile: NarrowStage<In, Out>['compile'],
): NarrowStage<In, Out> {
  const sid = stageId(id);
  return Object.freeze({ shape: 'narrow', id: sid, spec: Object.freeze({ kind, id: sid }), compile });
}

/**
 * A record-level stage that emits keyed pairs: Spark's `flatMap(...).map(x => (k, v))` in one step.
 * Emit as many pairs per record as you like; they feed the next keyed stage.
 *
 * @example
 * export default transform<string, string, number>('tokenize', (line, emit) => {
 *   for (const w of line.toLowerCase().split(/\W+/)) if (w) emit(w, 1);
 * });
 */
export function transform<In, K, V>(
  id: string,
  fn: (record: In, emit: (key: K, value: V) => void) => void,
): NarrowStage<In, Pair<K, V>> {
  return narrow('sluice.stage/transform@1', id, (next) => {
    const emit = (key: K, value: V): void => next.pair(key, value);
    return (record) => fn(record, emit);
  });
}

/**
 * One record out for each record in, like Spark's `map`.
 *
 * @example
 * export default map<Reading, Pair<string, number>>('by-sensor', (r) => [r.sensor, r.celsius]);
 */
export function map<In, Out>(id: string, fn: (record: In) => Out): NarrowStage<In, Out> {
  return narrow('sluice.stage/map@1', id, (next) => (record) => next.value(fn(record)));
}

/**
 * Zero or more records out for each record in, like Spark's `flatMap`.
 *
 * @example
 * export default flatMap<string, string>('words', (line) => line.split(' '));
 */
export function flatMap<In, Out>(id: string, fn: (record: In) => Iterable<Out>): NarrowStage<In, Out> {
  return narrow('sluice.stage/flatMap@1', id, (next) => (record) => {
    for (const out of fn(record)) next.value(out);
  });
}

/**
 * Keeps the records for which the predicate holds, like Spark's `filter`. A type guard narrows the
 * record type for the stages after it.
 *
 * @example
 * export default filter<string>('non-empty', (w) => w.length > 0);
 */
export function filter<T, S extends T>(id: string, predicate: (record: T) => record is S): NarrowStage<T, S>;
export function filter<T>(id: string, predicate: (record: T) => boolean): NarrowStage<T, T>;
export function filter<T>(id: string, predicate: (record: T) => boolean): NarrowStage<T, T> {
  return narrow('sluice.stage/filter@1', id, (next) => (record) => {
    if (predicate(record)) next.value(record);
  });
}
