import type { StatefulOperator } from './operator';

/**
 * Processing-time window geometry in batches, as Spark's DStream defines windows: output at
 * batches n that are multiples of the slide s (counted from the stream's zero time), covering
 * batches n-l+1 .. n. Batches are grouped into panes of g = gcd(l, s) batches, so a window is a
 * whole number of panes and a slide moves it by whole panes.
 */
export interface WindowShape {
  readonly length: number;
  readonly slide: number;
  readonly pane: number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** The window shape, in batches, of a window given in milliseconds. */
export function windowShape(lengthMs: number, slideMs: number, intervalMs: number): WindowShape {
  const length = lengthMs / intervalMs;
  const slide = slideMs / intervalMs;
  return { length, slide, pane: gcd(length, slide) };
}

/** Pane number of a batch (batch 1 is in pane 0). */
export function paneOf(batch: number, shape: WindowShape): number {
  return Math.floor((batch - 1) / shape.pane);
}

/** A key's window state: its recent panes, and (inverse form) the window value last output. */
type WindowEntry = [panes: [number, unknown][], window?: unknown];

/** Options of the windowed reduction every processing-time window operator is built on. */
export interface WindowedReduceOptions {
  readonly lengthMs: number;
  readonly slideMs: number;
  /** Merges two combiners (values of panes). */
  readonly reduce: (left: unknown, right: unknown) => unknown;
  /**
   * Spark's incremental form: the new window is the previous one, minus the panes that left
   * (`inverse`), plus the panes that entered. Keys then stay (with the value the inverse leaves,
   * say 0) unless `keep` drops them.
   */
  readonly inverse?: (left: unknown, right: unknown) => unknown;
  readonly keep?: (key: unknown, value: unknown) => boolean;
  /** Turns a key and its window value into output records. */
  readonly output: (key: unknown, value: unknown, emit: (record: unknown) => void) => void;
}

function reduceAll(values: readonly unknown[], reduce: (l: unknown, r: unknown) => unknown): unknown {
  let result = values[0];
  for (let i = 1; i < values.length; i++) result = reduce(result, values[i]);
  return result;
}

function panesIn(panes: readonly [number, unknown][], from: number, to: number): unknown[] {
  return panes.filter(([p]) => p >= from && p <= to).map(([, v]) => v);
}

/**
 * The first pane any later window output needs, seen from batch n: the first of the window at the
 * first window batch at or after n; with an inverse function, the first of the window before it,
 * whose panes that batch subtracts. Older panes are never read again.
 */
function firstPaneNeeded(n: number, shape: WindowShape, inverse: boolean): number {
  const windowBatch = Math.ceil(n / shape.slide) * shape.slide;
  return (windowBatch - (inverse ? shape.slide : 0) - shape.length) / shape.pane;
}

/**
 * The windowed reduction: adds each batch's combiners to the key's current pane, and at window
 * batches outputs every key's window (plainly, or incrementally with an inverse function).
 *
 * A key's entry is set only when it changes: when the batch has values for it, when panes enter
 * or leave its window value (inverse form), or when it is dropped. Panes too old for any later
 * window are pruned when the entry is written anyway, or dropped with the key once it has no
 * other: a window batch does not rewrite every key to forget its oldest pane, so what a batch
 * changes (and the state's delta writes) follows the keys entering and leaving the window.
 *
 * @example
 * const op = windowedReduce({ lengthMs: 30_000, slideMs: 10_000, reduce: sum, output: (k, v, emit) => emit([k, v]) });
 */
export function windowedReduce(options: WindowedReduceOptions): StatefulOperator {
  const { reduce, inverse, keep, output } = options;
  return {
    // Between window batches a batch only adds its values to its pane: one without any changes
    // nothing, up to the batch before the next window batch.
    idleUntil(batch) {
      const { slide } = windowShape(options.lengthMs, options.slideMs, batch.intervalMs);
      const nextWindow = (Math.floor(batch.batch / slide) + 1) * slide;
      return batch.time + (nextWindow - 1 - batch.batch) * batch.intervalMs;
    },
    apply(input, state, batch, emit, fail) {
      const shape = windowShape(options.lengthMs, options.slideMs, batch.intervalMs);
      const pane = paneOf(batch.batch, shape);
      const needed = firstPaneNeeded(batch.batch, shape, inverse !== undefined);
      for (const { key, combiner } of input) {
        const stored = state.get(key)?.value as WindowEntry | undefined;
        const entry = stored ?? [[]];
        try {
          // A new array, not the stored one: a reduce that throws must not change what goes to
          // the dead letter.
          const panes = entry[0].filter(([p]) => p >= needed);
          const last = panes[panes.length - 1];
          if (last && last[0] === pane) panes[panes.length - 1] = [pane, reduce(last[1], combiner)];
          else panes.push([pane, combiner]);
          state.set(key, entry.length > 1 ? [panes, entry[1]] : [panes]);
        } catch (error) {
          fail(key, error, { values: [combiner], ...(stored ? { state: stored } : {}) });
          state.delete(key);
        }
      }
      const n = batch.batch;
      if (n % shape.slide !== 0) return;
      const first = (n - shape.length) / shape.pane;
      const last = n / shape.pane - 1;
      const nextFirst = (n + shape.slide - shape.length) / shape.pane;
      const stale = (entry: WindowEntry): boolean => entry[0].every(([p]) => p < nextFirst);
      // A key's output is held until its window is computed whole: a throw emits none of it.
      const held: unknown[] = [];
      const hold = (record: unknown): void => void held.push(record);
      if (!inverse) {
        for (const item of [...state.values()]) {
          const entry = item.value as WindowEntry;
          const values = panesIn(entry[0], first, last);
          held.length = 0;
          try {
            if (values.length > 0) output(item.key, reduceAll(values, reduce), hold);
          } catch (error) {
            fail(item.key, error, { state: entry });
            state.delete(item.key);
            continue;
          }
          for (const record of held) emit(record);
          if (stale(entry)) state.delete(item.key);
        }
        return;
      }
      // The previous window is [previousFirst, previousLast]. With a slide longer than the window,
      // panes between the two windows were in neither: they are neither subtracted nor added.
      const previousFirst = (n - shape.slide - shape.length) / shape.pane;
      const previousLast = (n - shape.slide) / shape.pane - 1;
      for (const item of [...state.values()]) {
        const entry = item.value as WindowEntry;
        held.length = 0;
        try {
          const leaving = panesIn(entry[0], previousFirst, Math.min(previousLast, first - 1));
          const entering = panesIn(entry[0], Math.max(first, previousLast + 1), last);
          let value = entry.length > 1 ? entry[1] : undefined;
          const had = entry.length > 1;
          if (had) {
            if (leaving.length > 0) value = inverse(value, reduceAll(leaving, reduce));
            if (entering.length > 0) value = reduce(value, reduceAll(entering, reduce));
          } else if (entering.length > 0) {
            value = reduceAll(entering, reduce);
          }
          const kept = (had || entering.length > 0) && (!keep || keep(item.key, value));
          if (kept) output(item.key, value, hold);
          if (kept) {
            // A kept value that no pane entered or left stands as stored.
            if (!had || leaving.length > 0 || entering.length > 0)
              state.set(item.key, [prune(entry[0], first), value]);
          } else if (stale(entry)) state.delete(item.key);
          else if (had) state.set(item.key, [prune(entry[0], first)]);
        } catch (error) {
          fail(item.key, error, { state: entry });
          state.delete(item.key);
          continue;
        }
        for (const record of held) emit(record);
      }
    },
  };
}

/** A key's panes from `from` on (those before it were subtracted or never will be read). */
function prune(panes: readonly [number, unknown][], from: number): [number, unknown][] {
  return panes.filter(([p]) => p >= from);
}

/** Options of updateStateByKey. */
export interface UpdateStateOptions {
  readonly update: (values: unknown[], state: unknown) => unknown;
  readonly initial?: () => Iterable<readonly [unknown, unknown]>;
}

/**
 * Spark's updateStateByKey: every key with new values or with state gets `update(values, state)`;
 * `undefined` removes it; the output is every key's state after the batch.
 */
export function updateState(options: UpdateStateOptions): StatefulOperator {
  return {
    ...(options.initial ? { initial: options.initial } : {}),
    apply(input, state, _batch, emit, fail) {
      // Keys with state are updated in state order, then new keys in input order: a fixed order.
      const incoming = new Map<object, unknown[]>();
      const fresh: { key: unknown; values: unknown[] }[] = [];
      for (const { key, combiner } of input) {
        const existing = state.get(key);
        if (existing) incoming.set(existing, combiner as unknown[]);
        else fresh.push({ key, values: combiner as unknown[] });
      }
      for (const entry of [...state.values()]) {
        const values = incoming.get(entry) ?? [];
        try {
          const next = options.update(values, entry.value);
          if (next === undefined) state.delete(entry.key);
          else state.set(entry.key, next);
        } catch (error) {
          fail(entry.key, error, { values, state: entry.value });
          state.delete(entry.key);
        }
      }
      for (const { key, values } of fresh) {
        try {
          const next = options.update(values, undefined);
          if (next !== undefined) state.set(key, next);
        } catch (error) {
          fail(key, error, { values });
        }
      }
      for (const entry of state.values()) emit([entry.key, entry.value]);
    },
  };
}

/** A key's state as `mapWithState` functions see it, as Spark's `State[S]`. */
export interface KeyState<S> {
  /** Whether the key has state. */
  exists(): boolean;
  /** The state; throws if there is none. */
  get(): S;
  /** Sets the state (not allowed while timing out). */
  update(state: S): void;
  /** Removes the state. */
  remove(): void;
  /** True when called because the key was idle for the timeout; the state goes after this call. */
  isTimingOut(): boolean;
}

/** Options of mapWithState. */
export interface MapWithStateOptions {
  readonly fn: (key: unknown, value: unknown, state: KeyState<unknown>) => unknown;
  readonly timeoutMs?: number;
  readonly initial?: () => Iterable<readonly [unknown, unknown]>;
  /** Output every key's state after each batch instead of the mapped records (Spark's stateSnapshots). */
  readonly snapshots?: boolean;
}

class Cell implements KeyState<unknown> {
  present: boolean;
  changed = false;
  constructor(
    public value: unknown,
    present: boolean,
    private readonly timingOut: boolean,
  ) {
    this.present = present;
  }
  exists(): boolean {
    return this.present;
  }
  get(): unknown {
    if (!this.present) throw new Error('the key has no state: check exists() first');
    return this.value;
  }
  update(state: unknown): void {
    if (this.timingOut) throw new Error('a state that is timing out cannot be updated');
    if (state === undefined) throw new Error('state cannot be undefined: use remove()');
    this.value = state;
    this.present = true;
    this.changed = true;
  }
  remove(): void {
    this.present = false;
    this.changed = true;
  }
  isTimingOut(): boolean {
    return this.timingOut;
  }
}

/**
 * Spark's mapWithState: `fn(key, value, state)` for each record in the batch, in order; with a
 * timeout, once more with no value for each key idle that long, after which its state is gone.
 * Stored per key: `[state, lastTouched]` (batch time of the last record or update).
 */
export function mapWithState(options: MapWithStateOptions): StatefulOperator {
  const { timeoutMs } = options;
  return {
    ...(options.initial
      ? { initial: () => [...(options.initial?.() ?? [])].map(([k, s]) => [k, [s, null]] as const) }
      : {}),
    // Snapshots output every key's state every batch; otherwise a batch needs only its own keys
    // and, with a timeout, the keys idle that long, which the time index names.
    ...(options.snapshots ? {} : { reads: 'keys' as const }),
    ...(timeoutMs === undefined
      ? {}
      : {
          dueAt: (value: unknown) => {
            const touched = (value as [unknown, number | null])[1];
            return touched === null ? undefined : touched + timeoutMs;
          },
        }),
    apply(input, state, batch, emit, fail) {
      const seen = new Set<object>();
      const held: unknown[] = [];
      for (const { key, combiner } of input) {
        const entry = state.get(key);
        if (entry) seen.add(entry);
        const stored = entry?.value as [unknown, number | null] | undefined;
        const cell = new Cell(stored?.[0], stored !== undefined, false);
        held.length = 0;
        try {
          // A key's records are applied as one: if the function throws on any of them, none of
          // its output is emitted and its state stays as it was.
          for (const value of combiner as unknown[]) {
            const mapped = options.fn(key, value, cell);
            if (mapped !== undefined && !options.snapshots) held.push(mapped);
          }
          if (!cell.present) state.delete(key);
          else state.set(key, [cell.value, batch.time]);
        } catch (error) {
          fail(key, error, { values: combiner, ...(stored ? { state: stored[0] } : {}) });
          state.delete(key);
          continue;
        }
        for (const record of held) emit(record);
      }
      if (options.timeoutMs !== undefined) {
        for (const entry of [...state.values()]) {
          if (seen.has(entry)) continue;
          const [value, touched] = entry.value as [unknown, number | null];
          if (touched === null) {
            // Initial state counts as touched at the first batch, as in Spark.
            state.set(entry.key, [value, batch.time]);
            continue;
          }
          // Strictly longer than the timeout, as Spark's `updateTime < batchTime - timeout`.
          if (batch.time - touched <= options.timeoutMs) continue;
          try {
            const mapped = options.fn(entry.key, undefined, new Cell(value, true, true));
            if (mapped !== undefined && !options.snapshots) emit(mapped);
          } catch (error) {
            fail(entry.key, error, { state: value });
          }
          // The key has timed out either way.
          state.delete(entry.key);
        }
      }
      if (options.snapshots)
        for (const entry of state.values()) emit([entry.key, (entry.value as [unknown, number])[0]]);
    },
  };
}
