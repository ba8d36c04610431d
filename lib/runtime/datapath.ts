import type { DeadLetterKind } from '../batch';
import type { EventTimeHigh } from '../watermark';
import type { Decoder } from '../dsl/source';
import { SegmentCursor } from '../encoding/segment';
import { UnencodableValueError } from '../encoding/value';
import { InvalidEventTimeError, LateRecordError } from '../dsl/types';
import type { CompiledPhase } from '../plan';
import { jsonSafe } from './output';
import { OutputCollector, RecordStager, ShuffleBuffer, fuseStages } from './buffers';
import type { Downstream } from '../dsl/types';

/** A record that went to the dead-letter prefix, and why. */
export interface DeadLetter {
  readonly batch: number;
  readonly phase: number;
  readonly task: number;
  /**
   * `decode`: the source could not decode it. `stage`: stage code threw on it (or a keyed stage's
   * merge threw on its key). `late`: every event-time window it belongs to had closed.
   * `invalid-event-time`: its event time is not a usable time, or too far ahead. `encode`: a key,
   * value or output record sluice cannot carry (see `UnencodableValueError`). `state`: a state
   * function threw on its key, or its state outgrew an item. `batch`: the whole input of a skipped
   * batch (under `dead-letter/skipped/`).
   */
  readonly kind: DeadLetterKind;
  readonly stage: string;
  readonly reason: string;
  /** For input records: where the record is in the stream. */
  readonly shard?: string;
  readonly seq?: string;
  readonly segment?: string;
  /** The record: base64 bytes for input that did not decode, JSON for records. */
  readonly data?: string;
  readonly record?: unknown;
  readonly key?: unknown;
  /** A keyed value that could not go on: the values of a key whose merge or state function threw. */
  readonly values?: unknown;
  /** A key's state that was refused (too large, or not encodable). */
  readonly state?: unknown;
  /**
   * When a keyed stage's merge function threw part-way through a record's output: how many of its
   * outputs were merged before the throw, and the outputs that were not (the record is not whole).
   */
  readonly applied?: number;
  readonly unapplied?: unknown;
}

/** The dead-letter kind of an error thrown while a record went through stages. */
function kindOf(error: unknown): DeadLetterKind {
  if (error instanceof LateRecordError) return 'late';
  if (error instanceof InvalidEventTimeError) return 'invalid-event-time';
  if (error instanceof UnencodableValueError) return 'encode';
  return 'stage';
}

/** An input record with where it sits in the stream. */
export interface RawRecord {
  readonly shard: string;
  readonly seq: string;
  readonly segment: string;
  readonly data: Uint8Array;
}

/** One chain of fused stages, staging each record's output before it goes into its terminal. */
interface Lane {
  readonly stager: RecordStager;
  readonly fused: (value: unknown) => void;
  readonly terminal: Downstream;
  /** The stage named when the commit into the terminal throws. */
  readonly commitStage: string;
  /** The stage named when the chain throws before it reaches a stage of its own. */
  readonly stages: string;
}

function lane(
  stages: CompiledPhase['narrow'],
  terminal: Downstream,
  commitStage: string,
  current: { stage: string },
): Lane {
  const stager = new RecordStager();
  return {
    stager,
    fused: fuseStages(stages, stager, current),
    terminal,
    commitStage,
    stages: stages[0]?.id ?? commitStage,
  };
}

/** What `decode` gives for a record that went to the dead-letter prefix. */
const FAILED: unique symbol = Symbol('failed');

/** Marks a record that has no key to report (input records, outputs of `whenEmpty`). */
export const NO_KEY: unique symbol = Symbol('no key');

function reasonOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Where a phase's records end: the shuffle into the next keyed stage, or, in the last phase, the
 * pipeline's output.
 */
export type Terminal =
  | { readonly kind: 'shuffle'; readonly shuffle: ShuffleBuffer }
  | { readonly kind: 'output'; readonly output: OutputCollector };

/** What a phase runner needs. */
export interface PhaseRunnerOptions {
  readonly phase: CompiledPhase;
  /** The phase after this one; its keyed stage is what this one shuffles into. */
  readonly next: CompiledPhase | undefined;
  /** The pipeline source's decoder, for phase 0. */
  readonly decoder: Decoder<unknown>;
  /** The pipeline source's stream name (records' shard ids start with it). */
  readonly stream: string;
  /** The high the batch was sealed with (from its manifest), for an event-time stage next. */
  readonly watermarkHigh: EventTimeHigh;
  /** Batch, phase and task, put on every dead letter. */
  readonly where: { readonly batch: number; readonly phase: number; readonly task: number };
  /** The batch's time (epoch ms). @default Date.now() */
  readonly batchTime?: number;
  /** Takes each dead letter (or throws, to fail the task under `onError: 'fail'`). */
  readonly onDeadLetter: (entry: DeadLetter, error: unknown) => void;
  /** What the shuffle may hold before it spills, bytes (`ShuffleBuffer`). @default unbounded */
  readonly memoryBudget?: number;
  /**
   * In the last phase, keep the output records as well as their JSON Lines (a `foreachBatch` sink
   * takes them). @default false
   */
  readonly keepOutput?: boolean;
}

/**
 * The record-level work of one task, in memory: input bytes are decoded, run through the phase's
 * fused narrow stages, and committed record by record into the terminal (the shuffle into the next
 * keyed stage, or the output). The task executors and the data-path benchmark both use it, so the
 * benchmark measures exactly what Lambda runs.
 *
 * @example
 * const runner = new PhaseRunner({ phase, next, decoder, stream, watermarkHigh: null, where, onDeadLetter });
 * runSlice(runner, body, slice);
 * if (runner.terminal.kind === 'shuffle') runner.terminal.shuffle.encode();
 */
export class PhaseRunner {
  readonly terminal: Terminal;
  private readonly current: { stage: string };
  private readonly left: Lane;
  /** A join's other side, when this is phase 0 of a pipeline whose first keyed stage is a join. */
  private readonly right:
    (Lane & { readonly stream: string; readonly decoder: Decoder<unknown> }) | undefined;
  private readonly stream: string;
  private readonly decodeStage: string;

  constructor(private readonly options: PhaseRunnerOptions) {
    const { phase, next } = options;
    const wide = next?.wide;
    const terminal: Terminal = wide
      ? {
          kind: 'shuffle',
          shuffle: new ShuffleBuffer(
            wide,
            next.spec.partitions ?? 1,
            options.watermarkHigh,
            options.batchTime ?? Date.now(),
            (key, value, error) => this.refused(wide.id, key, value, error),
            options.memoryBudget,
          ),
        }
      : {
          kind: 'output',
          output: new OutputCollector({
            keepRecords: options.keepOutput === true,
            onRefused: (record, error) => this.outputRefused(record, error),
          }),
        };
    this.terminal = terminal;
    this.current = { stage: phase.spec.function };
    this.stream = options.stream;
    this.decodeStage = `source:${options.decoder.name}`;
    const commitStage = wide?.id ?? 'output';
    this.left = lane(
      phase.narrow,
      terminal.kind === 'shuffle' ? terminal.shuffle : terminal.output,
      commitStage,
      this.current,
    );
    const right = phase.right;
    if (right && terminal.kind === 'shuffle') {
      // The other side's records enter the shuffle through the join's own tagging.
      const shuffle = terminal.shuffle;
      const into = {
        value: (v: unknown) => shuffle.rightValue(v),
        pair: (k: unknown, v: unknown) => shuffle.rightValue([k, v]),
      };
      this.right = {
        ...lane(right.narrow, into, commitStage, this.current),
        stream: right.source.spec.stream,
        decoder: right.source.decoder,
      };
    } else {
      this.right = undefined;
    }
  }

  /**
   * One input record (phase 0), decoded by its source and run through the stages that read that
   * source: this pipeline's, a join's other side's, or both when the two branch from one stream.
   */
  input(raw: RawRecord): void {
    const right = this.right;
    if (!right) {
      const value = this.decode(raw, this.options.decoder, this.decodeStage);
      if (value !== FAILED) this.record(value, raw, NO_KEY);
      return;
    }
    const stream = raw.shard.slice(0, raw.shard.indexOf('/'));
    const ours = stream === this.stream;
    const theirs = stream === right.stream;
    const decoder = ours ? this.options.decoder : right.decoder;
    const value = this.decode(raw, decoder, `source:${decoder.name}`);
    if (value === FAILED) return;
    if (ours) this.record(value, raw, NO_KEY);
    if (theirs) this.run(right, value, raw, NO_KEY, right.stages);
  }

  private decode(raw: RawRecord, decoder: Decoder<unknown>, stage: string): unknown {
    try {
      return decoder.decode(raw.data);
    } catch (error) {
      this.options.onDeadLetter(
        {
          ...this.options.where,
          kind: 'decode',
          stage,
          reason: reasonOf(error),
          shard: raw.shard,
          seq: raw.seq,
          segment: raw.segment,
          data: Buffer.from(raw.data).toString('base64'),
        },
        error,
      );
      return FAILED;
    }
  }

  /**
   * One record through the stages into the terminal; a record that fails contributes nothing and
   * becomes a dead letter. Where it came from is only turned into an entry when it fails: doing
   * that for every record was a quarter of the data path's time.
   */
  record(value: unknown, raw: RawRecord | null, key: unknown): void {
    this.run(this.left, value, raw, key, this.left.stages);
  }

  private run(lane: Lane, value: unknown, raw: RawRecord | null, key: unknown, first: string): void {
    this.current.stage = first;
    let committing = false;
    try {
      lane.fused(value);
      this.current.stage = lane.commitStage;
      committing = true;
      lane.stager.commit(lane.terminal);
    } catch (error) {
      // A throw while committing comes from the next keyed stage: say what did not go in.
      const partial = committing ? lane.stager.unapplied() : undefined;
      lane.stager.discard();
      const base = this.options.where;
      const where = raw
        ? { ...base, shard: raw.shard, seq: raw.seq, segment: raw.segment }
        : key === NO_KEY
          ? base
          : { ...base, key };
      this.options.onDeadLetter(
        {
          ...where,
          kind: kindOf(error),
          stage: this.current.stage,
          reason: reasonOf(error),
          record: jsonSafe(value),
          ...(partial && partial.applied > 0
            ? { applied: partial.applied, unapplied: jsonSafe(partial.rest) }
            : {}),
        },
        error,
      );
    }
  }

  /** A dead letter for a key whose merge threw in a reduce task, with every value it got. */
  mergeFailed(failure: { readonly key: unknown; readonly error: unknown; readonly values: unknown }): void {
    this.letter('stage', this.options.phase.spec.function, failure.error, {
      key: failure.key,
      values: failure.values,
    });
  }

  /** A dead letter for a key whose state function threw, or whose state was refused. */
  stateFailed(
    key: unknown,
    error: unknown,
    detail: { readonly values?: unknown; readonly state?: unknown },
  ): void {
    this.letter('state', this.options.phase.spec.function, error, { key, ...detail });
  }

  /** A dead letter for an output record that cannot be written as JSON. */
  outputRefused(record: unknown, error: unknown): void {
    this.letter('encode', 'output', error, { record });
  }

  /** A pair the shuffle could not encode: left out of the shuffle, dead-lettered. */
  private refused(stage: string, key: unknown, value: unknown, error: unknown): void {
    this.letter('encode', stage, error, { key, values: [value] });
  }

  /** A dead letter about a key, its values or state, or an output record (each kept as JSON keeps it). */
  private letter(
    kind: DeadLetterKind,
    stage: string,
    error: unknown,
    about: Partial<Record<'key' | 'values' | 'state' | 'record', unknown>>,
  ): void {
    const fields = Object.fromEntries(Object.entries(about).map(([name, value]) => [name, jsonSafe(value)]));
    this.options.onDeadLetter(
      { ...this.options.where, kind, stage, reason: reasonOf(error), ...fields },
      error,
    );
  }
}

/**
 * Feeds the records of one slice's bytes (a ranged GET of a segment) to a runner, skipping those
 * at or below the slice's `afterSeq` (taken by an earlier batch). Returns how many it fed.
 *
 * @example
 * records += runSlice(runner, await objects.getRange(slice.segment, slice.start, slice.end), slice);
 */
export function runSlice(
  runner: PhaseRunner,
  body: Buffer,
  slice: { readonly shard: string; readonly segment: string; readonly afterSeq?: string },
): number {
  const cursor = new SegmentCursor(body, slice.shard, slice.segment);
  const after = slice.afterSeq === undefined ? undefined : BigInt(slice.afterSeq);
  let records = 0;
  while (cursor.next()) {
    if (after !== undefined && BigInt(cursor.seq) <= after) continue;
    records++;
    runner.input(cursor);
  }
  return records;
}
