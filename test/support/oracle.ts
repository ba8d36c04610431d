/**
 * A naive model of Spark Streaming's windowed and stateful DStream operators, batch by batch, to
 * check sluice's operators against. The oracle part uses no code from lib/: it recomputes every
 * window from the raw batches. The driver part at the end runs a sluice stage's operator in memory
 * the way a reduce task would, for the unit properties.
 */
import type { Downstream, WideStage } from '../../lib/dsl/types';
import { ShuffleMerger } from '../../lib/runtime/buffers';
import { StateTable } from '../../lib/state/table';

/** Records of batches 1, 2, 3...: `batches[n - 1]` is batch n. */
export type Batches<T> = readonly (readonly T[])[];
/** A keyed record. */
export type KV<K, V> = readonly [K, V];
/** A window in batches: output at batches n with n % slide == 0, covering n-length+1 .. n. */
export interface Geometry {
  readonly length: number;
  readonly slide: number;
}

// ---------------------------------------------------------------------------------------------
// Oracle
// ---------------------------------------------------------------------------------------------

/** `JSON.stringify` typed as it behaves: `undefined` for undefined. */
function stringify(value: unknown): string | undefined {
  return JSON.stringify(value);
}

/** A key's identity (keys in these tests are JSON values). */
export function keyId(key: unknown): string {
  return stringify(key) ?? 'undefined';
}

/** Whether batch n outputs a window. */
export function isWindowBatch(n: number, g: Geometry): boolean {
  return n % g.slide === 0;
}

/** The batches the window output at batch n covers (partial at the start of the stream). */
export function windowBatches(n: number, length: number): number[] {
  const out: number[] = [];
  for (let b = Math.max(1, n - length + 1); b <= n; b++) out.push(b);
  return out;
}

function recordsOf<T>(batches: Batches<T>, numbers: Iterable<number>): T[] {
  const out: T[] = [];
  for (const n of numbers) out.push(...(batches[n - 1] ?? []));
  return out;
}

interface Group<K, V> {
  readonly key: K;
  readonly values: V[];
}

/** Values per key, keys in order of first appearance, values in record order. */
function perKey<K, V>(records: Iterable<KV<K, V>>): Map<string, Group<K, V>> {
  const groups = new Map<string, Group<K, V>>();
  for (const [key, value] of records) {
    const id = keyId(key);
    const group = groups.get(id);
    if (group) group.values.push(value);
    else groups.set(id, { key, values: [value] });
  }
  return groups;
}

function reduceAll<V>(values: readonly V[], fn: (a: V, b: V) => V): V {
  if (values.length === 0) throw new Error('oracle: nothing to reduce');
  let result = values[0] as V;
  for (let i = 1; i < values.length; i++) result = fn(result, values[i] as V);
  return result;
}

/** Runs `each` at every batch; the batches that output no window give `[]`. */
function everyWindow<T, O>(batches: Batches<T>, g: Geometry, each: (window: T[], n: number) => O[]): O[][] {
  return batches.map((_, i) => {
    const n = i + 1;
    return isWindowBatch(n, g) ? each(recordsOf(batches, windowBatches(n, g.length)), n) : [];
  });
}

/** `reduceByKeyAndWindow` without an inverse: each key with values in the window, reduced. */
export function reduceByKeyAndWindowOracle<K, V>(
  batches: Batches<KV<K, V>>,
  g: Geometry,
  fn: (a: V, b: V) => V,
): [K, V][][] {
  return everyWindow(batches, g, (window) =>
    [...perKey(window).values()].map(({ key, values }): [K, V] => [key, reduceAll(values, fn)]),
  );
}

/** `groupByKeyAndWindow`: each key with values in the window, with all of them. */
export function groupByKeyAndWindowOracle<K, V>(batches: Batches<KV<K, V>>, g: Geometry): [K, V[]][][] {
  return everyWindow(batches, g, (window) =>
    [...perKey(window).values()].map(({ key, values }): [K, V[]] => [key, values]),
  );
}

/** `window`: every record of the window. */
export function windowOracle<T>(batches: Batches<T>, g: Geometry): T[][] {
  return everyWindow(batches, g, (window) => window);
}

/** `reduceByWindow` without an inverse: one value per non-empty window. */
export function reduceByWindowOracle<T>(batches: Batches<T>, g: Geometry, fn: (a: T, b: T) => T): T[][] {
  return everyWindow(batches, g, (window) => (window.length > 0 ? [reduceAll(window, fn)] : []));
}

/** `countByValueAndWindow`: each distinct record of the window with its (non-zero) count. */
export function countByValueAndWindowOracle<T>(batches: Batches<T>, g: Geometry): [T, number][][] {
  return everyWindow(batches, g, (window) =>
    [...perKey(window.map((r): KV<T, null> => [r, null])).values()].map(({ key, values }): [T, number] => [
      key,
      values.length,
    ]),
  );
}

/**
 * `countByWindow`: the number of records in the window, present from the first window that had a
 * record on (incremental form without a filter: the count stays, at 0 when the window is empty).
 */
export function countByWindowOracle<T>(batches: Batches<T>, g: Geometry): number[][] {
  let seen = false;
  return everyWindow(batches, g, (window) => {
    seen ||= window.length > 0;
    return seen ? [window.length] : [];
  });
}

/**
 * The incremental window with an invertible `fn` and no filter, stated without the recurrence: every
 * key that had a value in some window so far, with the reduce of its values in this window, or
 * `zero` when it has none.
 */
export function invertibleWindowOracle<K, V>(
  batches: Batches<KV<K, V>>,
  g: Geometry,
  fn: (a: V, b: V) => V,
  zero: V,
): [K, V][][] {
  const seen = new Map<string, K>();
  return everyWindow(batches, g, (window) => {
    const groups = perKey(window);
    for (const [id, { key }] of groups) if (!seen.has(id)) seen.set(id, key);
    return [...seen].map(([id, key]): [K, V] => {
      const group = groups.get(id);
      return [key, group ? reduceAll(group.values, fn) : zero];
    });
  });
}

/**
 * The incremental window exactly as Spark's ReducedWindowedDStream computes it: from the previous
 * window's (filtered) output, take off the values of batches that left (in the previous window, not
 * in this one) and add those of batches that entered (in this one, not in the previous one); a key
 * with no previous value starts from what entered. Then drop the keys `filter` rejects.
 */
export function incrementalWindowOracle<K, V>(
  batches: Batches<KV<K, V>>,
  g: Geometry,
  fn: (a: V, b: V) => V,
  inverse: (a: V, b: V) => V,
  filter?: (pair: [K, V]) => boolean,
): [K, V][][] {
  let previous = new Map<string, { key: K; value: V }>();
  return batches.map((_, i) => {
    const n = i + 1;
    if (!isWindowBatch(n, g)) return [];
    const current = new Set(windowBatches(n, g.length));
    const before = new Set(n - g.slide >= 1 ? windowBatches(n - g.slide, g.length) : []);
    const left = perKey(
      recordsOf(
        batches,
        [...before].filter((b) => !current.has(b)),
      ),
    );
    const entered = perKey(
      recordsOf(
        batches,
        [...current].filter((b) => !before.has(b)),
      ),
    );
    const keys = new Map<string, K>();
    for (const [id, { key }] of previous) keys.set(id, key);
    for (const [id, { key }] of entered) if (!keys.has(id)) keys.set(id, key);
    const next = new Map<string, { key: K; value: V }>();
    for (const [id, key] of keys) {
      const prev = previous.get(id);
      const out = left.get(id);
      const into = entered.get(id);
      let value: V;
      if (prev) {
        value = prev.value;
        if (out) value = inverse(value, reduceAll(out.values, fn));
        if (into) value = fn(value, reduceAll(into.values, fn));
      } else {
        value = reduceAll((into as Group<K, V>).values, fn);
      }
      if (filter && !filter([key, value])) continue;
      next.set(id, { key, value });
    }
    previous = next;
    return [...next.values()].map(({ key, value }): [K, V] => [key, value]);
  });
}

/** `updateStateByKey`: every key with values or state gets `fn`; the output is every key's state. */
export function updateStateByKeyOracle<K, V, S>(
  batches: Batches<KV<K, V>>,
  fn: (values: V[], state: S | undefined) => S | undefined,
  initial: Iterable<KV<K, S>> = [],
): [K, S][][] {
  const state = new Map<string, { key: K; value: S }>();
  for (const [key, value] of initial) state.set(keyId(key), { key, value });
  return batches.map((batch) => {
    const groups = perKey(batch);
    const ids = new Map<string, K>();
    for (const [id, { key }] of state) ids.set(id, key);
    for (const [id, { key }] of groups) if (!ids.has(id)) ids.set(id, key);
    for (const [id, key] of ids) {
      const next = fn(groups.get(id)?.values ?? [], state.get(id)?.value);
      if (next === undefined) state.delete(id);
      else state.set(id, { key, value: next });
    }
    return structuredClone([...state.values()].map(({ key, value }): [K, S] => [key, value]));
  });
}

/** Spark's `State[S]`, as the oracle's mapWithState hands it to the function. */
export interface OracleState<S> {
  exists(): boolean;
  get(): S;
  update(state: S): void;
  remove(): void;
  isTimingOut(): boolean;
}

class Wrapper<S> implements OracleState<S> {
  constructor(
    public present: boolean,
    public value: S | undefined,
    private readonly timingOut: boolean,
  ) {}
  exists(): boolean {
    return this.present;
  }
  get(): S {
    if (!this.present) throw new Error('oracle: get() without state');
    return this.value as S;
  }
  update(state: S): void {
    if (this.timingOut) throw new Error('oracle: update() while timing out');
    if (state === undefined) throw new Error('oracle: update(undefined)');
    this.present = true;
    this.value = state;
  }
  remove(): void {
    this.present = false;
    this.value = undefined;
  }
  isTimingOut(): boolean {
    return this.timingOut;
  }
}

/** Options of the mapWithState oracle; times are in batches. */
export interface MapWithStateOracleOptions<K, S> {
  /** A key idle for this many batches times out. */
  readonly timeout?: number;
  readonly initial?: Iterable<KV<K, S>>;
  /** Output every key's state after each batch instead of what `fn` returns. */
  readonly snapshots?: boolean;
}

/**
 * `mapWithState`: `fn(key, value, state)` for every record of the batch, in order. With a timeout,
 * a key with state that got no record this batch and whose last record (or update) was more than
 * `timeout` batches ago (Spark's `updateTime < batchTime - timeout`) is called once with no value
 * while timing out, then loses its state. Initial state counts as touched at batch 1.
 */
export function mapWithStateOracle<K, V, S, M>(
  batches: Batches<KV<K, V>>,
  fn: (key: K, value: V | undefined, state: OracleState<S>) => M | undefined,
  options: MapWithStateOracleOptions<K, S> = {},
): (M | [K, S])[][] {
  const state = new Map<string, { key: K; value: S; touched: number }>();
  for (const [key, value] of options.initial ?? []) state.set(keyId(key), { key, value, touched: 1 });
  return batches.map((batch, i) => {
    const n = i + 1;
    const out: (M | [K, S])[] = [];
    const touchedNow = new Set<string>();
    for (const [key, value] of batch) {
      const id = keyId(key);
      const stored = state.get(id);
      const wrapper = new Wrapper<S>(stored !== undefined, stored?.value, false);
      const mapped = fn(key, value, wrapper);
      if (mapped !== undefined) out.push(mapped);
      if (wrapper.present) state.set(id, { key, value: wrapper.value as S, touched: n });
      else state.delete(id);
      touchedNow.add(id);
    }
    if (options.timeout !== undefined) {
      for (const [id, entry] of [...state]) {
        if (touchedNow.has(id) || n - entry.touched <= options.timeout) continue;
        const mapped = fn(entry.key, undefined, new Wrapper<S>(true, entry.value, true));
        if (mapped !== undefined) out.push(mapped);
        state.delete(id);
      }
    }
    const result = options.snapshots
      ? [...state.values()].map(({ key, value }): [K, S] => [key, value])
      : out;
    return structuredClone(result);
  });
}

/** A batch's records in a canonical order, to compare outputs as multisets. */
export function canonical(records: readonly unknown[]): string[] {
  return records.map((r) => stringify(r) ?? 'undefined').sort();
}

/** Every batch's records in a canonical order. */
export function canonicalBatches(batches: readonly (readonly unknown[])[]): string[][] {
  return batches.map(canonical);
}

/** `[key, values]` records with their values sorted, so that groups compare as multisets. */
export function sortGroups<K>(batches: readonly (readonly [K, readonly number[]])[][]): [K, number[]][][] {
  return batches.map((batch) => batch.map(([k, vs]): [K, number[]] => [k, [...vs].sort((a, b) => a - b)]));
}

// ---------------------------------------------------------------------------------------------
// Driver: a sluice stage's operator, batch by batch, in memory
// ---------------------------------------------------------------------------------------------

/** How the driver runs an operator. */
export interface DriveOptions {
  /** Reduce partitions, each with its own state table. @default 1 */
  readonly partitions?: number;
  /** Map-side tasks per batch, each taking a contiguous slice of the batch. @default 1 */
  readonly tasks?: number;
  /** Encode every table into this many chunks and load it into a fresh table between batches. */
  readonly persistChunks?: number;
  /**
   * Keep each table as the slotted layout's deltas do: only the keys the operator set or deleted
   * are carried to the next batch, onto the table as it was. An operator that changes a key
   * without saying so loses the change.
   */
  readonly persistDeltas?: boolean;
  /** @default 1000 */
  readonly intervalMs?: number;
  /** The stream's zero time; batch n's time is zero + n * interval. @default 1_700_000_000_000 */
  readonly zeroTime?: number;
}

/** The driver's partitioner: a deterministic function of the key, unrelated to the runtime's. */
export function partitionOfKey(key: unknown, partitions: number): number {
  const text = keyId(key);
  let hash = 7;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) >>> 0;
  return hash % partitions;
}

/** One map-side task: the stage's pairs, combined per key when the stage combines map-side. */
function mapSide<In>(stage: WideStage<In, unknown>, records: readonly In[]): [unknown, unknown][] {
  const raw: [unknown, unknown][] = [];
  const sink: Downstream = {
    value: () => {
      throw new Error('driver: toPair gave a value, not a pair');
    },
    pair: (key, value) => void raw.push([key, value]),
  };
  for (const record of records) stage.toPair(record, sink);
  if (!stage.spec.mapSideCombine) return raw;
  const combined = new Map<string, [unknown, unknown]>();
  for (const [key, value] of raw) {
    const entry = combined.get(keyId(key));
    if (entry) entry[1] = stage.aggregator.mergeValue(entry[1], value);
    else combined.set(keyId(key), [key, stage.aggregator.create(value)]);
  }
  return [...combined.values()];
}

/**
 * Runs a stateful stage over the batches as the runtime would with one reduce task per partition:
 * map-side tasks over contiguous slices, a ShuffleMerger per partition (runs merged in task order),
 * then the operator on every partition every batch, with state carried (or persisted) between
 * batches. Returns every batch's output, all partitions together.
 */
export function drive<In, Out>(
  stage: WideStage<In, Out>,
  batches: Batches<In>,
  options: DriveOptions = {},
): Out[][] {
  const operator = stage.stateful;
  if (!operator) throw new Error(`driver: stage ${stage.id} is not stateful`);
  const partitions = options.partitions ?? 1;
  const tasks = options.tasks ?? 1;
  const intervalMs = options.intervalMs ?? 1000;
  const zeroTime = options.zeroTime ?? 1_700_000_000_000;
  const asUnknown = stage as unknown as WideStage<unknown, unknown>;
  let tables = Array.from({ length: partitions }, () => new StateTable());
  for (const [key, value] of operator.initial?.() ?? []) {
    (tables[partitionOfKey(key, partitions)] as StateTable).set(key, value);
  }
  return batches.map((records, i) => {
    const n = i + 1;
    const mergers = tables.map(() => new ShuffleMerger(asUnknown));
    const size = Math.ceil(records.length / tasks);
    for (let t = 0; t < tasks; t++) {
      for (const [key, value] of mapSide(stage, records.slice(t * size, (t + 1) * size))) {
        (mergers[partitionOfKey(key, partitions)] as ShuffleMerger).add(key, value);
      }
    }
    // The oracle's functions never throw: a failed merge is a bug in the test, not data.
    for (const merger of mergers) for (const failure of merger.failures()) throw failure.error;
    const out: Out[] = [];
    const before = options.persistDeltas ? tables.map((table) => table.encode(1).bodies) : [];
    if (options.persistDeltas) for (const table of tables) table.trackChanges();
    tables.forEach((table, p) => {
      operator.apply(
        (mergers[p] as ShuffleMerger).entries(),
        table,
        { batch: n, time: zeroTime + n * intervalMs, intervalMs },
        (record) => out.push(record as Out),
        (_key, error) => {
          throw error;
        },
      );
    });
    if (options.persistDeltas) {
      tables = tables.map((table, p) => {
        const fresh = new StateTable();
        for (const body of before[p] ?? []) fresh.load(body);
        for (const part of table.encodeChanges(64 * 1024, Number.POSITIVE_INFINITY) ?? [])
          fresh.applyChanges(part);
        return fresh;
      });
    }
    const chunks = options.persistChunks;
    if (chunks !== undefined) {
      tables = tables.map((table) => {
        const fresh = new StateTable();
        for (const body of table.encode(chunks).bodies) fresh.load(body);
        return fresh;
      });
    }
    return structuredClone(out);
  });
}
