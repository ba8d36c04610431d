import type { BatchId, ShardId, TaskId } from './ids';
import type { EventTimeHigh, WatermarkFold } from './watermark';
import type { StateLayouts } from './state/layout';

/*
 * The records the runtime keeps about its progress: where each shard's input stands, which batches
 * were sealed and how they are doing, what each task reported, and which failed batches wait for an
 * operator. They are stored as ledger items (`lib/storage/ledger/`), which add keys and a kind.
 */

/** Where a shard's input stands: the last segment taken into a sealed batch. */
export interface ShardCursor {
  /** The padded first sequence number of the last segment taken (its segment item's sort key). */
  readonly segmentStart: string;
  /** Last sequence number taken; records at or below it are never taken again. */
  readonly lastSeq: string;
}

/** Cursors of every shard, by shard id. */
export type Cursors = Readonly<Record<string, ShardCursor>>;

/** The pipeline's own ledger item: its zero time and how far sealing has gone. */
export interface PipelineItem {
  readonly zeroTime: number;
  readonly lastSealed: number;
  readonly cursors: Cursors;
  /** Event-time pipelines: the watermark fold so far (see `lib/watermark.ts`). */
  readonly watermarkFold?: WatermarkFold;
  /** Set while an operator has paused sealing (`sluice pause`): since when, and why. */
  readonly paused?: Pause;
  /** Each stateful stage's state layout as of the last sealed batch (unset before layouts were kept). */
  readonly layouts?: StateLayouts;
  /**
   * Every batch up to this one is complete or skipped: the sweep reads batch items after it only
   * (unset until a sweep has seen one; then it only moves up).
   */
  readonly settledThrough?: number;
  /** The ledger items of every batch up to this one are deleted (expired by the sweep). */
  readonly expiredThrough?: number;
  /**
   * Set while no coordinator invocation waits for the next batch because the stream is idle:
   * since when. The schedule's tick seals what came due; the first ingest that finds it set wakes a
   * coordinator.
   */
  readonly asleep?: number;
  /**
   * Set with `asleep` by a coordinator that does not wait for boundaries (`coordinatorWaits:
   * false`) when it ended its invocation while records arrive: the next batch boundary (epoch ms).
   * Only an ingest at or after it wakes a coordinator, which seals the batch that ended there.
   */
  readonly wakeAt?: number;
}

/** A pause of sealing: since when (epoch ms) and why. */
export interface Pause {
  readonly at: number;
  readonly reason: string;
}

/** A segment as registered by the ingest function. */
export interface SegmentItem {
  readonly shard: ShardId;
  readonly firstSeq: string;
  readonly lastSeq: string;
  readonly key: string;
  readonly records: number;
  readonly bytes: number;
  /** Block offsets and record counts, in `formatBlocks` form. */
  readonly blocks: string;
  /** How the segment's bytes are encoded (`DATA_FORMATS.segment` of the ingest that wrote it). */
  readonly format: string;
  /**
   * What the ingest invocation used to write the segment, up to registering it (a redelivery's
   * registration replaces it), when it was metered.
   */
  readonly usage?: TaskUsage;
}

/** Totals of a finished batch. */
export interface BatchSummary {
  readonly inputRecords: number;
  readonly deadLetters: number;
  readonly outputRecords: number;
  /** Output partitions that have an output object, in order. */
  readonly outputPartitions: readonly number[];
}

/**
 * Batch status: `sealed` while it runs, then `complete`; or `failed` (it stops there until it is
 * retried, which makes it `sealed` again, or skipped); a skipped batch is `skipping` while its
 * stateful partitions move their state past it, then `skipped`.
 */
export type BatchStatus = 'sealed' | 'complete' | 'failed' | 'skipping' | 'skipped';

/** The statuses in which a batch has work running: its own, or that of skipping it. */
export type RunningStatus = Extract<BatchStatus, 'sealed' | 'skipping'>;

/** Why a batch failed, and where. */
export interface BatchFailure {
  /** What went wrong, with the error's name and hint. */
  readonly message: string;
  readonly phase: number;
  readonly task: number;
  /** The phase function (stage id, or `read`). */
  readonly stage?: string;
  /** When it failed, epoch ms. */
  readonly at?: number;
  /** Set when the failure happened while the batch was being skipped: it is not skipped again by itself. */
  readonly duringSkip?: boolean;
}

/** The retry budget a task of a batch has used: attempts that failed transiently, since when. */
export interface TaskAttempts {
  readonly phase: number;
  readonly task: number;
  readonly attempts: number;
  /** The first failed attempt, epoch ms. */
  readonly since: number;
}

/** The marker of a failed batch that nobody has retried or skipped yet. */
export interface FailedMarker {
  readonly batch: BatchId;
  readonly message: string;
  readonly at: number;
}

/**
 * The `quietUntil` of a partition (and of a quiet batch) for which no batch without input ever
 * does anything: an empty state, or state without timeouts.
 */
export const QUIET_FOREVER = Number.MAX_SAFE_INTEGER;

/** What a stateful partition says of the batches without input after it (see `TaskReport`). */
export interface Quietness {
  readonly quietUntil: number;
  readonly quietHigh?: number;
}

/** The ledger item of one batch: what was sealed, and which tasks of which phases have reported. */
export interface BatchItem {
  readonly batch: BatchId;
  readonly time: number;
  readonly status: BatchStatus;
  readonly cursors: Cursors;
  readonly previousCursors: Cursors;
  readonly inputRecords: number;
  readonly inputBytes: number;
  /** Transform tasks of phase 0. */
  readonly tasks: number;
  readonly sealedAt: number;
  /** How long sealing took: from the sealing pass's start to the item's creation, ms. */
  readonly sealMs?: number;
  /** What the sealing coordinator pass used up to creating the item, when it was metered. */
  readonly sealUsage?: TaskUsage;
  /** What the ingest invocations of the batch's segments used, summed, when they were metered. */
  readonly ingestUsage?: IngestUsage;
  readonly updatedAt: number;
  readonly completedAt?: number;
  readonly summary?: BatchSummary;
  readonly failure?: BatchFailure;
  /** The last transient error of any task, for the failure message when the budget runs out. */
  readonly lastError?: string;
  /** Tasks that have failed transiently, with how often and since when. */
  readonly attempts: readonly TaskAttempts[];
  /** Event-time pipelines: the watermark fold this batch was sealed with (its manifest's high). */
  readonly watermarkFold?: WatermarkFold;
  /**
   * Each stateful stage's state layout this batch was sealed with: its partition count, and on a
   * rescaling batch the layout it re-hashes. Unset on items sealed before layouts were kept.
   */
  readonly layouts?: StateLayouts;
  /** Event-time pipelines: this batch's own highest event time, once its event-time phase started. */
  readonly eventTimeHigh?: EventTimeHigh;
  /**
   * Set on a quiet batch: one with no input and nothing due, completed by its seal without running
   * a task or writing a progress record. Until this time (epoch ms, `QUIET_FOREVER` if nothing is
   * ever due) a batch without input stays quiet too.
   */
  readonly quietUntil?: number;
  /**
   * With `quietUntil`, for a pipeline with event-time state: a batch without input stays quiet only
   * while the event-time high it is sealed with is at or below this. Unset: no such bound.
   */
  readonly quietHigh?: number;
  /**
   * The batch whose state this batch's stateful partitions apply on, when the batches just before
   * it were quiet (their partitions ran nothing). Unset: the batch before.
   */
  readonly stateFrom?: number;
  /** done[p]: tasks of phase p that have reported. */
  readonly done: Readonly<Record<number, readonly number[]>>;
  /** withData[p]: partitions of phase p that some task of phase p-1 wrote data for. */
  readonly withData: Readonly<Record<number, readonly number[]>>;
  /** expected[p]: the tasks phase p was started with (p >= 1). */
  readonly expected: Readonly<Record<number, readonly number[]>>;
  /**
   * Totals of the task reports so far, each task counted once, when it is marked done: the batch's
   * summary is these once every task is done, without reading the reports again.
   */
  readonly counted: {
    readonly deadLetters: number;
    readonly outputRecords: number;
    readonly outputPartitions: readonly number[];
    /** Request units tasks used after their reports' usage was taken (`LateUnits`), summed. */
    readonly readUnits: number;
    readonly writeUnits: number;
  };
}

/**
 * Request units a task's invocation used after its report's usage was taken: the report's own put
 * and a stateful partition's commit. Its done mark adds them to the batch's counts.
 */
export interface LateUnits {
  readonly readUnits: number;
  readonly writeUnits: number;
}

/** What a task reports once its outputs are written. */
export interface TaskReport {
  readonly batch: BatchId;
  readonly phase: number;
  readonly task: TaskId;
  /** The task's shuffle file, when the phase feeds another. */
  readonly shuffle?: string;
  /** Byte offsets of each next-phase partition's run: `index[p]..index[p+1]`. */
  readonly index?: readonly number[];
  readonly withData: readonly number[];
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly deadLetters: number;
  readonly deadLetterKey?: string;
  /** The output object, when the phase is the last one and produced records. */
  readonly output?: string;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /**
   * Set on the report of a task that commits state: it is written (once) before the commit, and
   * stands once the partition's state head is at its batch; until then a replay computes again.
   */
  readonly commitsState?: boolean;
  /** The highest event time the task's output into an event-time stage carried. */
  readonly eventTimeHigh?: number;
  /** The lowest event time the task's output into an event-time stage carried. */
  readonly eventTimeLow?: number;
  /** The task's dead letters by kind (`decode`, `stage`, `late`...), when it had any. */
  readonly deadLetterKinds?: Readonly<Partial<Record<DeadLetterKind, number>>>;
  /** A stateful task's state: what it read, what it wrote, and its size after the batch. */
  readonly state?: StateUsage;
  /** Set when the task only moved its partition's state past a skipped batch. */
  readonly skipped?: boolean;
  /** How often the task's shuffle passed its memory budget and was spilled (encoded), when it was. */
  readonly spills?: number;
  /** How many passes a reduce task's merge took, when its shuffle input did not fit its budget at once. */
  readonly mergePasses?: number;
  /**
   * A stateful partition's: a batch without input at or before this time (epoch ms) would change
   * neither its state nor its output (`QUIET_FOREVER`: no such batch ever would). Unset: any might.
   */
  readonly quietUntil?: number;
  /**
   * A stateful partition on the watermark's clock (event-time windows): a batch without input
   * sealed with an event-time high at or below this would change neither its state nor its output.
   * Unset: no bound beyond `quietUntil`.
   */
  readonly quietHigh?: number;
  /** What the task's invocation used up to its report, when it was metered. */
  readonly usage?: TaskUsage;
}

/** What several ingest invocations used, summed: one invocation per segment. */
export interface IngestUsage extends TaskUsage {
  readonly invocations: number;
}

/**
 * One stateful partition's state in one batch: its size after the batch (keys, chunks and their
 * encoded bytes) and the chunks read to load it and written to commit it.
 */
export interface StateUsage {
  readonly keys: number;
  readonly chunks: number;
  readonly bytes: number;
  readonly chunksRead: number;
  readonly bytesRead: number;
  readonly chunksWritten: number;
  readonly bytesWritten: number;
}

/**
 * What a task's invocation used up to its report: its duration so far and its requests by
 * operation (`s3:GetObject`), with DynamoDB's request units. The few requests after the report
 * (marking the task done, starting the next phase) are not in it.
 */
export interface TaskUsage {
  readonly durationMs: number;
  readonly requests: Readonly<Record<string, number>>;
  readonly readUnits: number;
  readonly writeUnits: number;
}

/**
 * Every kind of dead letter; see `DeadLetter.kind`.
 *
 * @example
 * DEAD_LETTER_KINDS.includes('late'); // true
 */
export const DEAD_LETTER_KINDS = Object.freeze([
  'decode',
  'stage',
  'late',
  'invalid-event-time',
  'encode',
  'state',
  'batch',
] as const);

/** What a dead letter is about; see `DeadLetter.kind`. */
export type DeadLetterKind = (typeof DEAD_LETTER_KINDS)[number];
