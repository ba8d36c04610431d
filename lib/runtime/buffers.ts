import { raiseHigh, type EventTimeHigh } from '../watermark';
import { mapKey, partitionOf, passOf, type MapKey } from '../encoding/key';
import { ByteWriter } from '../encoding/bytes';
import { encodeShuffle, writePair, type EncodedShuffle } from '../encoding/shuffle';
import { estimateBytes } from './memory';
import { toJsonLine } from './output';
import { unencodable, UnencodableValueError } from '../encoding/value';
import { takesPairs } from '../dsl/spec';
import type { Downstream, EventTimeSink, WideStage } from '../dsl/types';

/**
 * Collects a phase's output for the shuffle into the next keyed stage, combining per key on the
 * map side when the stage allows it. Insertion order is kept, so equal input gives equal bytes.
 *
 * Under a memory budget (bytes, counted by `estimateBytes`) what it holds is spilled when the count
 * passes the budget: encoded, as the shuffle file's runs are, about a tenth of its size in memory,
 * and the map starts again. A partition's run is then its spills' runs and the rest's, one after
 * the other; a key may appear once per spill, and the reduce side merges its combiners as it does
 * those of different tasks. The count is a function of the input alone, so a replay spills at the
 * same records and writes the same bytes.
 */
export class ShuffleBuffer implements EventTimeSink {
  /**
   * Map key to its slot in the arrays below, in the order keys were first seen. A pair of a key
   * already held then costs one lookup (the combiner is replaced in its array, not set in the map
   * again), and there is no object per key, which showed in the garbage collector's time.
   */
  private readonly slots = new Map<MapKey, number>();
  /** Each slot's record key, as the map key gives it back (-0 as 0). */
  private readonly keys: unknown[] = [];
  private readonly combiners: unknown[] = [];
  /** Each slot's reduce partition. */
  private readonly partitionOfSlot: number[] = [];
  private readonly raw: [unknown, unknown][][];
  private readonly combine: boolean;
  private readonly create: (value: unknown) => unknown;
  private readonly mergeValue: (combiner: unknown, value: unknown) => unknown;
  records = 0;
  private inStage = false;
  private readonly takesPairs: boolean;
  /** The highest event time an event-time stage noted in this task's records. */
  eventTimeHigh: EventTimeHigh = null;
  /** The lowest, for the batch's progress record. */
  eventTimeLow: EventTimeHigh = null;
  /** Bytes held, as `estimateBytes` counts them, since the last spill. */
  private held = 0;
  /** What was spilled, encoded, in order. */
  private readonly spills: EncodedShuffle[] = [];

  constructor(
    private readonly stage: WideStage<unknown, unknown>,
    private readonly partitions: number,
    /** The high the batch was sealed with, from its manifest (the watermark before lateness). */
    readonly watermarkHigh: EventTimeHigh = null,
    /** The batch's time: event times far ahead of it are refused. */
    readonly batchTime: number = Date.now(),
    /**
     * Takes a pair the shuffle cannot encode (a key or combiner whose type changed after it was
     * checked, or a raw value): it is left out of the shuffle and dead-lettered.
     */
    private readonly onRefused?: (key: unknown, value: unknown, error: Error) => void,
    /** What it may hold before it spills, bytes. @default unbounded */
    private readonly budget = Number.POSITIVE_INFINITY,
  ) {
    this.combine = stage.spec.mapSideCombine;
    this.takesPairs = takesPairs(stage.spec);
    this.create = stage.aggregator.create;
    this.mergeValue = stage.aggregator.mergeValue;
    this.raw = this.combine ? [] : Array.from({ length: partitions }, () => []);
  }

  /** Every record goes through the stage's `toPair`, which calls back `pair` with its key and value. */
  value(value: unknown): void {
    this.inStage = true;
    try {
      this.stage.toPair(value, this);
    } finally {
      this.inStage = false;
    }
  }

  /** A record of a join's other side: tagged by the join's own `rightToPair`. */
  rightValue(value: unknown): void {
    const side = this.stage.join;
    if (!side) throw new Error(`stage '${this.stage.id}' is not a join`);
    this.inStage = true;
    try {
      side.rightToPair(value, this);
    } finally {
      this.inStage = false;
    }
  }

  observeEventTime(ms: number): void {
    this.eventTimeHigh = raiseHigh(this.eventTimeHigh, ms);
    if (this.eventTimeLow === null || ms < this.eventTimeLow) this.eventTimeLow = ms;
  }

  /**
   * A pair from the stage's `toPair`, or a keyed record from the stage before (a `transform`'s
   * emit). A keyed record is a record like any other: it goes through `toPair` too, except for
   * stages that take pairs as they are, where that would only cost a tuple.
   */
  pair(key: unknown, value: unknown): void {
    if (this.inStage || this.takesPairs) this.add(key, value);
    else this.value([key, value]);
  }

  private add(key: unknown, value: unknown): void {
    if (!this.combine) {
      // Checked here, where the record can still be dead-lettered whole, not when the shuffle is
      // written. Primitives (nearly every key and value) cost a typeof.
      const reason = unencodable(key) ?? unencodable(value);
      if (reason !== undefined) throw new UnencodableValueError(reason);
      (this.raw[partitionOf(mapKey(key), this.partitions)] as [unknown, unknown][]).push([key, value]);
      this.records++;
      if (this.budget !== Number.POSITIVE_INFINITY)
        this.hold(PAIR_BYTES + estimateBytes(key) + estimateBytes(value));
      return;
    }
    const k = mapKey(key);
    const slot = this.slots.get(k);
    if (slot !== undefined) {
      this.combiners[slot] = this.mergeValue(this.combiners[slot], value);
      this.records++;
      return;
    }
    // Checked once per key, where a record can still be dead-lettered whole: a key or combiner
    // the shuffle cannot carry (a Date key, a Set combiner) is refused with the record.
    const created = this.create(value);
    const reason = unencodable(key) ?? unencodable(created);
    if (reason !== undefined) throw new UnencodableValueError(reason);
    this.slots.set(k, this.keys.length);
    // A map gives a -0 key back as 0: so did the shuffle when the combiners were kept in one.
    this.keys.push(Object.is(key, -0) ? 0 : key);
    this.combiners.push(created);
    this.partitionOfSlot.push(partitionOf(k, this.partitions));
    this.records++;
    // A combiner is counted as it was created: one that grows as it merges is counted low.
    if (this.budget !== Number.POSITIVE_INFINITY)
      this.hold(PAIR_BYTES + estimateBytes(key) + estimateBytes(created));
  }

  /** Counts bytes newly held, and spills what is held once past the budget. */
  private hold(bytes: number): void {
    this.held += bytes;
    if (this.held <= this.budget) return;
    this.spills.push(this.encodeHeld());
    this.held = 0;
    this.slots.clear();
    this.keys.length = 0;
    this.combiners.length = 0;
    this.partitionOfSlot.length = 0;
    for (const run of this.raw) run.length = 0;
  }

  /** Spills so far: how many times the budget was passed. */
  get spilled(): number {
    return this.spills.length;
  }

  /**
   * What is held, encoded: per partition, its keys in the order first seen. The slots are put in
   * partition order by counting them first, rather than by an array of pairs per partition: no
   * object per key.
   */
  private encodeHeld(): EncodedShuffle {
    if (!this.combine) return encodeShuffle(this.raw, this.onRefused);
    const { keys, combiners, partitionOfSlot, partitions } = this;
    const starts = new Array<number>(partitions + 1).fill(0);
    for (const p of partitionOfSlot) starts[p + 1] = (starts[p + 1] as number) + 1;
    for (let p = 0; p < partitions; p++) starts[p + 1] = (starts[p + 1] as number) + (starts[p] as number);
    const next = starts.slice(0, partitions);
    const order = new Uint32Array(keys.length);
    for (let slot = 0; slot < keys.length; slot++) {
      const p = partitionOfSlot[slot] as number;
      order[next[p] as number] = slot;
      next[p] = (next[p] as number) + 1;
    }
    const writer = new ByteWriter();
    const index = [0];
    for (let p = 0; p < partitions; p++) {
      const end = starts[p + 1] as number;
      for (let i = starts[p] as number; i < end; i++) {
        const slot = order[i] as number;
        writePair(writer, keys[slot], combiners[slot], this.onRefused);
      }
      index.push(writer.length);
    }
    return { body: writer.toBuffer(), index };
  }

  /** The shuffle file and the partitions that got data. */
  encode(): EncodedShuffle & { withData: number[] } {
    const last = this.encodeHeld();
    const encoded = this.spills.length === 0 ? last : concatRuns([...this.spills, last], this.partitions);
    // A partition has data when its run has bytes (a run of refused pairs has none).
    const { index } = encoded;
    const withData: number[] = [];
    for (let p = 0; p < this.partitions; p++) if ((index[p + 1] ?? 0) > (index[p] ?? 0)) withData.push(p);
    return { ...encoded, withData };
  }
}

/** What holding a pair costs beyond its key and value: a map entry, or an array of two. */
const PAIR_BYTES = 48;

/** One shuffle file of several encoded in turn: each partition's run is theirs, one after the other. */
function concatRuns(parts: readonly EncodedShuffle[], partitions: number): EncodedShuffle {
  const writer = new ByteWriter();
  const index = [0];
  for (let p = 0; p < partitions; p++) {
    for (const part of parts) writer.raw(part.body.subarray(part.index[p] ?? 0, part.index[p + 1] ?? 0));
    index.push(writer.length);
  }
  return { body: writer.toBuffer(), index };
}

/**
 * Holds one input record's output until the record has gone through every stage, so that a record
 * whose stage code throws half-way contributes nothing (it goes to the dead-letter prefix whole).
 * If the next keyed stage's own merge function throws while the output is committed, the pairs
 * merged before it cannot be taken back (merge functions may mutate combiners): `unapplied()` then
 * says exactly which outputs did not go in, for the dead letter.
 */
export class RecordStager implements Downstream {
  private readonly keys: unknown[] = [];
  private readonly values: unknown[] = [];
  private size = 0;
  private applied = 0;

  value(value: unknown): void {
    this.keys[this.size] = RecordStager.NOT_A_PAIR;
    this.values[this.size++] = value;
  }

  pair(key: unknown, value: unknown): void {
    this.keys[this.size] = key;
    this.values[this.size++] = value;
  }

  commit(to: Downstream): number {
    const n = this.size;
    for (this.applied = 0; this.applied < n; this.applied++) {
      const key = this.keys[this.applied];
      if (key === RecordStager.NOT_A_PAIR) to.value(this.values[this.applied]);
      else to.pair(key, this.values[this.applied]);
    }
    this.discard();
    return n;
  }

  /** After a commit threw: how many outputs went in, and the ones that did not. */
  unapplied(): { applied: number; rest: unknown[] } {
    const rest: unknown[] = [];
    for (let i = this.applied; i < this.size; i++) {
      const key = this.keys[i];
      rest.push(key === RecordStager.NOT_A_PAIR ? this.values[i] : [key, this.values[i]]);
    }
    return { applied: this.applied, rest };
  }

  discard(): void {
    // Drop references so large records can be collected; the arrays keep their capacity.
    for (let i = 0; i < this.size; i++) {
      this.keys[i] = undefined;
      this.values[i] = undefined;
    }
    this.size = 0;
    this.applied = 0;
  }

  private static readonly NOT_A_PAIR = Symbol('value');
}

/** Output text is turned into bytes every so many characters, so no string grows with the output. */
const OUTPUT_PART_CHARS = 1 << 16;

/**
 * Collects a last phase's output records as JSON Lines, encoded as they are made: a partition's
 * output is held as its bytes, not as objects. A record JSON would change (NaN, a Map, a function)
 * goes to `onRefused` instead of the output. With `keepRecords` (a `foreachBatch` sink takes the
 * records written) the records are kept as well.
 *
 * @example
 * const output = new OutputCollector({ keepRecords: false, onRefused: (record, error) => dead(record, error) });
 * output.value(['spark', 3]);
 * output.body().toString(); // '["spark",3]\n'
 */
export class OutputCollector implements Downstream {
  /** Records written. */
  count = 0;
  /** The records written, in order, when kept. */
  readonly records: unknown[] | undefined;
  private readonly parts: Buffer[] = [];
  private text = '';
  private readonly onRefused: ((record: unknown, error: unknown) => void) | undefined;

  constructor(
    options: {
      /** Keep the records written as well as their bytes. @default false */
      readonly keepRecords?: boolean;
      /** Takes a record that cannot be written as JSON. @default throw its error */
      readonly onRefused?: (record: unknown, error: unknown) => void;
    } = {},
  ) {
    this.records = options.keepRecords ? [] : undefined;
    this.onRefused = options.onRefused;
  }

  value(value: unknown): void {
    this.add(value);
  }

  pair(key: unknown, value: unknown): void {
    this.add([key, value]);
  }

  /** The JSON Lines written so far. */
  body(): Buffer {
    if (this.text.length > 0) this.flush();
    return this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
  }

  private add(record: unknown): void {
    let line: string;
    try {
      line = toJsonLine(record);
    } catch (error) {
      if (!this.onRefused) throw error;
      this.onRefused(record, error);
      return;
    }
    this.text += `${line}\n`;
    this.count++;
    this.records?.push(record);
    if (this.text.length >= OUTPUT_PART_CHARS) this.flush();
  }

  private flush(): void {
    this.parts.push(Buffer.from(this.text, 'utf8'));
    this.text = '';
  }
}

/**
 * Fuses narrow stages into one per-record function ending in `terminal`. `current.stage` names the
 * innermost stage running when something throws, for the dead-letter reason.
 */
export function fuseStages(
  stages: readonly {
    readonly id: string;
    readonly compile: (next: Downstream) => (value: unknown) => void;
  }[],
  terminal: Downstream,
  current: { stage: string },
): (value: unknown) => void {
  let next: Downstream = terminal;
  let fn: (value: unknown) => void = (value) => terminal.value(value);
  for (let i = stages.length - 1; i >= 0; i--) {
    const stage = stages[i] as (typeof stages)[number];
    const inner = stage.compile(next);
    const id = stage.id;
    fn = (value: unknown): void => {
      const outer = current.stage;
      current.stage = id;
      inner(value);
      current.stage = outer;
    };
    const call = fn;
    next = { value: call, pair: (k, v) => call([k, v]) };
  }
  return fn;
}

/** A key whose reduce-side merge threw: every value it got, for its dead letter. */
export interface FailedMerge {
  readonly key: unknown;
  readonly error: unknown;
  /**
   * What the key had when its merge threw (its combiner so far, as the merge function left it; the
   * first value if it had no combiner), then the value being merged, then every later value.
   */
  readonly values: unknown[];
}

/** One of the passes a reduce partition's input is merged in (`mergePlan`): `index` of `of`. */
export interface MergePass {
  readonly index: number;
  readonly of: number;
}

/** Marks the slot of a key whose merge threw (no key of a shuffle is a symbol). */
const GONE: unique symbol = Symbol('gone');

/** What takes a reduce partition's output records, with the key each came from (a `PhaseRunner`). */
export interface KeyedRecords {
  record(value: unknown, raw: null, key: unknown): void;
}

/**
 * Merges the shuffle runs of one reduce partition per key: combiners with `mergeCombiners` when
 * the map side combined, raw values with `create`/`mergeValue` otherwise. A key whose merge throws
 * is taken out whole and never merged half-way: what it had, the value that failed and every
 * later value of it are kept for its dead letter (`failures()`). In one pass of several it merges
 * only the keys `passOf` gives that pass.
 */
export class ShuffleMerger {
  /**
   * Map key to its slot in the arrays below, in the order keys were first seen: no object per key
   * (they all lived until the partition's end, which showed in the garbage collector's time).
   */
  private readonly slots = new Map<MapKey, number>();
  /** Each slot's key as first seen, or `GONE` once its merge threw. */
  private readonly keys: unknown[] = [];
  private readonly combiners: unknown[] = [];
  private readonly failed = new Map<MapKey, FailedMerge>();
  private readonly combined: boolean;

  constructor(
    private readonly stage: WideStage<unknown, unknown>,
    /** The merge pass this merger is, when the partition is merged in several: other keys are skipped. */
    private readonly pass?: MergePass,
  ) {
    this.combined = stage.spec.mapSideCombine;
  }

  /** Takes one (key, value) pair of a run; pass it as `decodeRun`'s callback. */
  readonly add = (key: unknown, value: unknown): void => {
    // Plain strings are their own map key (the common case, kept off the slow path).
    const k = mapKey(key);
    if (this.pass !== undefined && passOf(k, this.pass.of) !== this.pass.index) return;
    const failure = this.failed.size > 0 ? this.failed.get(k) : undefined;
    if (failure) {
      failure.values.push(value);
      return;
    }
    const { create, mergeValue, mergeCombiners } = this.stage.aggregator;
    const slot = this.slots.get(k);
    try {
      if (slot === undefined) {
        const combiner = this.combined ? value : create(value);
        this.slots.set(k, this.keys.length);
        this.keys.push(key);
        this.combiners.push(combiner);
      } else {
        const combiner = this.combiners[slot];
        this.combiners[slot] = this.combined ? mergeCombiners(combiner, value) : mergeValue(combiner, value);
      }
    } catch (error) {
      if (slot !== undefined) {
        this.slots.delete(k);
        this.keys[slot] = GONE;
      }
      const values = slot === undefined ? [value] : [this.combiners[slot], value];
      this.failed.set(k, { key, error, values });
    }
  };

  /** The merged combiner of every key, in the order keys were first seen. */
  *entries(): Generator<{ key: unknown; combiner: unknown }> {
    const { keys, combiners } = this;
    for (let slot = 0; slot < keys.length; slot++) {
      const key = keys[slot];
      if (key !== GONE) yield { key, combiner: combiners[slot] };
    }
  }

  /**
   * The stage's output records into `runner`, in the order keys were first seen, without an object
   * per key.
   */
  outputTo(runner: KeyedRecords): void {
    const { keys, combiners } = this;
    const output = this.stage.output;
    for (let slot = 0; slot < keys.length; slot++) {
      const key = keys[slot];
      if (key !== GONE) runner.record(output(key, combiners[slot]), null, key);
    }
  }

  /** Keys whose merge threw, with their values, in the order they failed. */
  failures(): IterableIterator<FailedMerge> {
    return this.failed.values();
  }
}
