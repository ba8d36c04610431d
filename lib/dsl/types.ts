import type { EventTimeHigh } from '../watermark';
import type { StageId } from '../ids';
import type { StatefulOperator } from '../state/operator';
import type { Source, SourceSpec } from './source';

declare const stageTypes: unique symbol;

/** A keyed record: what keyed stages consume and produce, like a Scala `(K, V)`. */
export type Pair<K, V> = [K, V];

/** Where a stage sends a record. */
export type Emit<T> = (value: T) => void;

/**
 * Receives the output of a narrow stage. Keyed output takes the `pair` path so that keyed stages
 * feeding a shuffle do not allocate a tuple per record.
 */
export interface Downstream {
  value(value: unknown): void;
  pair(key: unknown, value: unknown): void;
}

/**
 * The shuffle into an event-time stage: it knows the batch's watermark (records of windows that
 * closed before it are late) and notes the event times it sees (they move the next watermark).
 */
export interface EventTimeSink extends Downstream {
  /** The high the batch was sealed with: the watermark before the stage's lateness. */
  readonly watermarkHigh: EventTimeHigh;
  /** The batch's time (processing time, epoch ms): how far ahead an event time may be is measured from it. */
  readonly batchTime: number;
  observeEventTime(ms: number): void;
}

/** Thrown for a record whose every window has closed: it goes to the dead-letter prefix as late. */
export class LateRecordError extends Error {
  override readonly name = 'LateRecordError';
}

/**
 * Thrown for a record whose event time cannot be used: not a finite whole number of milliseconds
 * within the safe integers, or further ahead of the batch's processing time than the stage allows
 * (a producer with a wrong clock). It goes to the dead-letter prefix as `invalid-event-time` and
 * does not move the watermark, so one bad clock cannot make every later record late.
 */
export class InvalidEventTimeError extends Error {
  override readonly name = 'InvalidEventTimeError';
}

/** Compile-time only: the record types a stage takes and gives. Never present at run time. */
interface StageTypes<In, Out> {
  readonly [stageTypes]?: { readonly in: (value: In) => void; readonly out: Out };
}

/** Spec of a narrow (record-level) stage, as serialized into the sealed manifest. */
export interface NarrowSpec {
  readonly kind:
    'sluice.stage/map@1' | 'sluice.stage/flatMap@1' | 'sluice.stage/filter@1' | 'sluice.stage/transform@1';
  readonly id: StageId;
}

/** Kinds of keyed stages that aggregate each batch on its own. */
export type KeyedKind =
  | 'sluice.stage/reduceByKey@1'
  | 'sluice.stage/groupByKey@1'
  | 'sluice.stage/combineByKey@1'
  | 'sluice.stage/aggregateByKey@1'
  | 'sluice.stage/countByValue@1'
  | 'sluice.stage/count@1'
  | 'sluice.stage/reduce@1';

/** Kinds of keyed stages over a processing-time window. */
export type WindowKind =
  | 'sluice.stage/reduceByKeyAndWindow@1'
  | 'sluice.stage/groupByKeyAndWindow@1'
  | 'sluice.stage/countByValueAndWindow@1'
  | 'sluice.stage/countByWindow@1'
  | 'sluice.stage/reduceByWindow@1'
  | 'sluice.stage/window@1';

/** Kinds of keyed stages that keep user state per key. */
export type StateKind = 'sluice.stage/updateStateByKey@1' | 'sluice.stage/mapWithState@1';

/** A window over processing time: its length and slide, multiples of the batch interval. */
export interface ProcessingWindow {
  readonly lengthMs: number;
  readonly slideMs: number;
  /** Kept incrementally with an inverse function (Spark's `invReduceFunc`). */
  readonly inverse: boolean;
}

/** What every keyed stage's spec holds. */
interface WideSpecCommon {
  readonly id: StageId;
  /** Values are combined per key inside each transform task before the shuffle. */
  readonly mapSideCombine: boolean;
  /** Reduce partitions; unset means the pipeline's default. `count` and `reduce` use exactly 1. */
  readonly partitions?: number;
}

/** A keyed stage that aggregates each batch on its own (no state across batches). */
export interface KeyedSpec extends WideSpecCommon {
  readonly kind: KeyedKind;
}

/** A keyed stage over a processing-time window: its panes are kept as state. */
export interface WindowSpec extends WideSpecCommon {
  readonly kind: WindowKind;
  readonly window: ProcessingWindow;
  readonly stateful: true;
}

/** `updateStateByKey` or `mapWithState`: user state per key. */
export interface StateSpec extends WideSpecCommon {
  readonly kind: StateKind;
  readonly stateful: true;
  /** mapWithState: the idle time after which a key's state times out. */
  readonly timeoutMs?: number;
}

/** An event-time window: length, slide, allowed lateness, and what is output when. */
export interface EventTimeWindowSpec extends WideSpecCommon {
  readonly kind: 'sluice.stage/eventTimeWindow@1';
  readonly stateful: true;
  readonly eventTime: {
    readonly lengthMs: number;
    readonly slideMs: number;
    readonly latenessMs: number;
    readonly mode: 'final' | 'update';
  };
}

/** A join of two keyed streams, within each batch or (with `window`) over a processing-time window. */
export interface JoinSpec extends WideSpecCommon {
  readonly kind: 'sluice.stage/join@1';
  readonly join: {
    readonly kind: 'inner' | 'leftOuter' | 'rightOuter' | 'fullOuter' | 'cogroup';
    readonly source: SourceSpec;
    readonly stages: readonly NarrowSpec[];
  };
  readonly window?: ProcessingWindow;
  /** Set for a windowed join, whose window is kept as state. */
  readonly stateful?: true;
}

/**
 * Spec of a wide (keyed, shuffling) stage, as serialized into the sealed manifest: a union by
 * `kind`, so code that needs a window, a timeout or an event-time spec narrows to the stage kind
 * that has it.
 */
export type WideSpec = KeyedSpec | WindowSpec | StateSpec | EventTimeWindowSpec | JoinSpec;

/**
 * A record-level stage (map, flatMap, filter, keyed transform). Consecutive narrow stages fuse into
 * one function: they run in the same task, record by record.
 */
export interface NarrowStage<In, Out> extends StageTypes<In, Out> {
  readonly shape: 'narrow';
  readonly id: StageId;
  readonly spec: NarrowSpec;
  /** Builds the per-record function once per task, bound to what follows it. */
  readonly compile: (next: Downstream) => (value: In) => void;
}

/**
 * How a wide stage aggregates the values of one key, in Spark's `combineByKey` terms.
 * `C` is the combiner: what map-side combining produces and the shuffle carries.
 */
export interface Aggregator<V, C> {
  readonly create: (value: V) => C;
  readonly mergeValue: (combiner: C, value: V) => C;
  readonly mergeCombiners: (left: C, right: C) => C;
}

/**
 * A keyed stage that shuffles: records are keyed, combined per key in each transform task (when
 * `spec.mapSideCombine`), written to the shuffle, and merged by reduce partition.
 */
export interface WideStage<In, Out> extends StageTypes<In, Out> {
  readonly shape: 'wide';
  readonly id: StageId;
  readonly spec: WideSpec;
  /** Turns an input record into the key and value the aggregator sees. */
  readonly toPair: (value: In, sink: Downstream) => void;
  readonly aggregator: Aggregator<unknown, unknown>;
  /** Turns a key and its final combiner into the stage's output record. */
  readonly output: (key: unknown, combiner: unknown) => Out;
  /** Output for a batch with no input at all (`count` gives 0, as Spark's does). */
  readonly whenEmpty?: () => Out[];
  /** Set for stages that keep state across batches; they run every batch on every partition. */
  readonly stateful?: StatefulOperator;
  /** Set for stages that give any number of records per key (joins) instead of `output`'s one. */
  readonly expand?: (key: unknown, combiner: unknown, emit: (record: unknown) => void) => void;
  /** A join's other side: its source, its record-level stages, and how its pairs enter the shuffle. */
  readonly join?: JoinSide;
}

/** The other input of a join stage, run by the transform tasks beside the pipeline's own stages. */
export interface JoinSide {
  readonly kind: JoinSpec['join']['kind'];
  readonly right: {
    readonly source: Source<unknown>;
    readonly stages: readonly NarrowStage<unknown, unknown>[];
  };
  readonly rightToPair: (value: unknown, sink: Downstream) => void;
}

/** Any stage. */
export type Stage<In, Out> = NarrowStage<In, Out> | WideStage<In, Out>;

/** A stage of any types; stages are contravariant in their input, so `never` accepts all. */
export type AnyStage = NarrowStage<never, unknown> | WideStage<never, unknown>;

/** The output record type of a stage. */
export type StageOutput<S> = S extends StageTypes<never, infer O> ? O : never;

/**
 * What each position of a stage list must be so that the stages connect: stage i takes what stage
 * i-1 gives (the source's type for the first). Used as `stages: S & Wired<T, S>` so a mis-wired list
 * is a compile error at the stage that does not fit.
 */
export type Wired<In, S extends readonly unknown[]> = S extends readonly [infer Head, ...infer Rest]
  ? readonly [Stage<In, StageOutput<Head>>, ...Wired<StageOutput<Head>, Rest>]
  : readonly [];

/** The record type a list of stages produces from an input of type `In`. */
export type ChainOutput<In, S extends readonly unknown[]> = S extends readonly [...unknown[], infer Last]
  ? StageOutput<Last>
  : In;
