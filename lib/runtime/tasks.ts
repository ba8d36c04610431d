import { decodeSegment } from '../encoding/segment';
import { decodeRun } from '../encoding/shuffle';
import { InvalidInputError, NotReadyError, RecordFailedError, type ErrorScope } from '../errors';
import { partitionId, type BatchId, type TaskId } from '../ids';
import { parseManifest, type Manifest, type Slice } from '../manifest';
import { assertSamePlan, outputPrefix, type CompiledPhase } from '../plan';
import { deadLetterKey, manifestKey, outputKey, shuffleKey } from '../storage/keys';
import type { TaskReport } from '../storage/ledger';
import { LateRecordError } from '../dsl/types';
import { OutputCollector, RecordStager, ShuffleBuffer, ShuffleMerger, fuseStages } from './buffers';
import type { RuntimeContext } from './context';
import type { TaskEvent } from './events';
import { toJsonLines } from './output';
import { advance } from './progress';
import {
  commitState,
  loadState,
  prepareState,
  stateCommitted,
  StateAlreadyCommitted,
  type PendingState,
} from './stateful';

/** A record that went to the dead-letter prefix, and why. */
export interface DeadLetter {
  readonly batch: number;
  readonly phase: number;
  readonly task: number;
  /**
   * `decode` (the source could not decode it), `stage` (stage code threw on it), or `late` (every
   * event-time window it belongs to had closed).
   */
  readonly kind: 'decode' | 'stage' | 'late';
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
  /**
   * When a keyed stage's merge function threw part-way through a record's output: how many of its
   * outputs were merged before the throw, and the outputs that were not (the record is not whole).
   */
  readonly applied?: number;
  readonly unapplied?: unknown;
}

/** Reads and checks a batch's manifest. */
export async function loadManifest(
  ctx: RuntimeContext,
  batch: BatchId,
  scope: ErrorScope,
): Promise<Manifest> {
  const manifest = parseManifest(await ctx.objects.get(manifestKey(batch), scope));
  assertSamePlan(manifest.plan, ctx.plan.spec);
  return manifest;
}

/**
 * Runs one task: reads its input (segment slices in phase 0, shuffle runs after), runs the phase's
 * stages, writes its one shuffle file (or its output), reports, and moves the batch on. A task that
 * has already reported only reports again, so duplicates and retries converge.
 *
 * @example
 * await runTask(ctx, parseTaskEvent(event));
 */
export async function runTask(ctx: RuntimeContext, event: TaskEvent): Promise<TaskReport> {
  const phase = ctx.plan.phases[event.phase];
  if (!phase) throw new InvalidInputError(`the plan has no phase ${event.phase}`, { batch: event.batch });
  const scope: ErrorScope = { batch: event.batch, task: event.task, stage: phase.spec.function };
  const manifest = await loadManifest(ctx, event.batch, scope);
  let report = await ctx.ledger.taskReport(event.batch, event.phase, event.task);
  if (
    report?.pendingState &&
    (await stateCommitted(ctx.state, phase.spec.function, event.task, event.batch))
  ) {
    // A run that committed the state stopped before marking its report final.
    report = { ...report, pendingState: false };
    await ctx.ledger.putTaskReport(report);
  }
  if (!report || report.pendingState) report = await executeAndReport(ctx, manifest, phase, event, scope);
  const item = await ctx.ledger.markTaskDone(
    event.batch,
    event.phase,
    event.task,
    report.withData,
    ctx.clock.now(),
  );
  await advance(ctx, item, { redrive: false });
  return report;
}

async function executeAndReport(
  ctx: RuntimeContext,
  manifest: Manifest,
  phase: CompiledPhase,
  event: TaskEvent,
  scope: ErrorScope,
): Promise<TaskReport> {
  let result: { report: TaskReport; state?: PendingState };
  try {
    result = await execute(ctx, manifest, phase, event.task, scope);
  } catch (error) {
    if (!(error instanceof StateAlreadyCommitted)) throw error;
    // A duplicate committed this batch's state; its report (written before its commit) stands.
    const theirs = await ctx.ledger.taskReport(event.batch, event.phase, event.task);
    if (!theirs)
      throw new NotReadyError(`state of batch ${event.batch} committed but its report not found`, scope);
    return { ...theirs, pendingState: false };
  }
  const { report, state } = result;
  if (state) {
    // Outputs are written; the report is stored before the state is committed, so a run that
    // stops after the commit can be finished by any replay without computing again.
    await ctx.ledger.putTaskReport({ ...report, pendingState: true });
    await commitState(ctx.state, state);
  }
  await ctx.ledger.putTaskReport(report);
  return report;
}

/** Collects dead letters, or fails the task at the first one under `onError: 'fail'`. */
class DeadLetters {
  readonly entries: DeadLetter[] = [];
  constructor(
    private readonly ctx: RuntimeContext,
    private readonly scope: ErrorScope,
  ) {}

  add(entry: DeadLetter, cause: unknown): void {
    if (this.ctx.pipeline.onError === 'fail') {
      throw new RecordFailedError(
        `${entry.kind} error in ${entry.stage}: ${entry.reason}`,
        this.scope,
        cause,
      );
    }
    this.entries.push(entry);
  }
}

/** Marks a record that has no key to report (input records, outputs of `whenEmpty`). */
const NO_KEY = Symbol('no key');

function reasonOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

async function execute(
  ctx: RuntimeContext,
  manifest: Manifest,
  phase: CompiledPhase,
  task: TaskId,
  scope: ErrorScope,
): Promise<{ report: TaskReport; state?: PendingState }> {
  const index = phase.spec.phase;
  const next = ctx.plan.phases[index + 1];
  const terminal = next?.wide
    ? new ShuffleBuffer(next.wide, next.spec.partitions ?? 1, manifest.eventTime ?? null)
    : new OutputCollector();
  const dead = new DeadLetters(ctx, scope);
  const current = { stage: phase.spec.function as string };
  const stager = new RecordStager();
  const run = fuseStages(phase.narrow, stager, current);
  const base = { batch: manifest.batch, phase: index, task };

  const read: { records: number; bytes: number; state?: () => PendingState } =
    index === 0
      ? await readSegments(ctx, manifest, task, scope, (raw) => {
          let value: unknown;
          try {
            value = ctx.pipeline.source.decoder.decode(raw.data);
          } catch (error) {
            dead.add(
              {
                ...base,
                kind: 'decode',
                stage: `source:${ctx.plan.spec.source.decoder}`,
                reason: reasonOf(error),
                shard: raw.shard,
                seq: raw.seq,
                segment: raw.segment,
                data: Buffer.from(raw.data).toString('base64'),
              },
              error,
            );
            return;
          }
          processRecord(value, raw, NO_KEY);
        })
      : await reduceInput(
          ctx,
          manifest,
          phase,
          task,
          scope,
          (value, key) => processRecord(value, null, key),
          (key, error) =>
            dead.add(
              {
                ...base,
                kind: 'stage',
                stage: phase.spec.function,
                reason: reasonOf(error),
                key: jsonSafe(key),
              },
              error,
            ),
        );

  /**
   * Runs one record through the phase's stages into the terminal. Where it came from is only turned
   * into a dead-letter entry if it fails: building that for every record was a quarter of the
   * data path's time.
   */
  function processRecord(value: unknown, raw: RawRecord | null, key: unknown): void {
    current.stage = phase.spec.function;
    let committing = false;
    try {
      run(value);
      current.stage = next?.wide?.id ?? 'output';
      committing = true;
      stager.commit(terminal);
    } catch (error) {
      // A throw while committing comes from the next keyed stage: say what did not go in.
      const partial = committing ? stager.unapplied() : undefined;
      stager.discard();
      const where = raw
        ? { ...base, shard: raw.shard, seq: raw.seq, segment: raw.segment }
        : key === NO_KEY
          ? base
          : { ...base, key };
      dead.add(
        {
          ...where,
          kind: error instanceof LateRecordError ? 'late' : 'stage',
          stage: current.stage,
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

  const state = read.state;
  if (index > 0 && read.records === 0 && phase.wide?.whenEmpty) {
    for (const value of phase.wide.whenEmpty()) processRecord(value, null, NO_KEY);
  }

  let bytesWritten = 0;
  let deadLetterKeyWritten: string | undefined;
  if (dead.entries.length > 0) {
    const body = toJsonLines(dead.entries);
    deadLetterKeyWritten = deadLetterKey(manifest.batch, index, task);
    await ctx.objects.put(deadLetterKeyWritten, body, 'application/x-ndjson');
    bytesWritten += body.length;
  }
  const common = {
    ...base,
    recordsIn: read.records,
    deadLetters: dead.entries.length,
    bytesRead: read.bytes,
    ...(deadLetterKeyWritten ? { deadLetterKey: deadLetterKeyWritten } : {}),
  };

  if (terminal instanceof ShuffleBuffer) {
    const encoded = terminal.encode();
    const key = shuffleKey(manifest.batch, index, task);
    if (encoded.withData.length > 0) {
      await ctx.objects.put(key, encoded.body);
      bytesWritten += encoded.body.length;
    }
    const report: TaskReport = {
      ...common,
      ...(terminal.maxEventTime === null ? {} : { maxEventTime: terminal.maxEventTime }),
      recordsOut: terminal.records,
      withData: encoded.withData,
      ...(encoded.withData.length > 0 ? { shuffle: key, index: encoded.index } : {}),
      bytesWritten,
    };
    return state ? { report, state: state() } : { report };
  }
  const records = terminal.records;
  let output: string | undefined;
  if (records.length > 0) {
    output = outputKey(outputPrefix(ctx.plan.spec), manifest.batch, partitionId(task));
    const body = toJsonLines(records);
    await ctx.objects.put(output, body, 'application/x-ndjson');
    bytesWritten += body.length;
    for (const sink of ctx.pipeline.sinks) {
      if (sink.spec.kind !== 'sluice.sink/foreachBatch@1' || !('write' in sink)) continue;
      await sink.write(records, {
        pipeline: ctx.pipeline.name,
        batch: manifest.batch,
        time: manifest.time,
        partition: partitionId(task),
      });
    }
  }
  const report: TaskReport = {
    ...common,
    recordsOut: records.length,
    withData: [],
    ...(output ? { output } : {}),
    bytesWritten,
  };
  return state ? { report, state: state() } : { report };
}

function jsonSafe(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value) ?? 'null') as unknown;
  } catch {
    return String(value);
  }
}

interface RawRecord {
  readonly shard: string;
  readonly seq: string;
  readonly segment: string;
  readonly data: Uint8Array;
}

/** Reads a transform task's slices with one ranged GET each and feeds their records in order. */
async function readSegments(
  ctx: RuntimeContext,
  manifest: Manifest,
  task: TaskId,
  scope: ErrorScope,
  onRecord: (raw: RawRecord) => void,
): Promise<{ records: number; bytes: number }> {
  const slices: readonly Slice[] | undefined = manifest.tasks[task];
  if (!slices) throw new InvalidInputError(`batch ${manifest.batch} has no task ${task}`, scope);
  let records = 0;
  let bytes = 0;
  for (const slice of slices) {
    const body = await ctx.objects.getRange(slice.segment, slice.start, slice.end, scope);
    bytes += body.length;
    const after = slice.afterSeq === undefined ? undefined : BigInt(slice.afterSeq);
    for (const record of decodeSegment(body)) {
      if (after !== undefined && BigInt(record.seq) <= after) continue;
      records++;
      onRecord({ shard: slice.shard, seq: record.seq, segment: slice.segment, data: record.data });
    }
  }
  return { records, bytes };
}

/**
 * Reads this partition's run from every previous-phase task that has one and merges per key (in
 * task order, so the merge order is fixed); then feeds the keyed stage's output records, or, for a
 * stateful stage, applies the batch to the partition's state and feeds what the operator emits.
 */
async function reduceInput(
  ctx: RuntimeContext,
  manifest: Manifest,
  phase: CompiledPhase,
  partition: TaskId,
  scope: ErrorScope,
  onRecord: (value: unknown, key: unknown) => void,
  onMergeError: (key: unknown, error: unknown) => void,
): Promise<{ records: number; bytes: number; state?: () => PendingState }> {
  const wide = phase.wide;
  if (!wide) throw new InvalidInputError(`phase ${phase.spec.phase} has no keyed stage`, scope);
  const stage = phase.spec.function;
  const partitions = phase.spec.partitions ?? 1;
  // State first: if the previous batch is not applied yet there is no point reading the shuffle.
  const loaded = wide.stateful
    ? await loadState(ctx.state, stage, partition, partitions, manifest.batch, wide.stateful, scope)
    : undefined;
  const reports = await ctx.ledger.taskReports(manifest.batch, phase.spec.phase - 1);
  const merger = new ShuffleMerger(wide, onMergeError);
  let pairs = 0;
  let bytes = 0;
  for (const report of reports) {
    if (!report.shuffle || !report.index || !report.withData.includes(partition)) continue;
    const start = report.index[partition] ?? 0;
    const end = report.index[partition + 1] ?? start;
    const body = await ctx.objects.getRange(report.shuffle, start, end, scope);
    bytes += body.length;
    pairs += decodeRun(body, 0, body.length, merger.add);
  }
  if (!wide.stateful || !loaded) {
    for (const { key, record } of merger.outputs()) onRecord(record, key);
    return { records: pairs, bytes };
  }
  const { head, table, before } = loaded;
  wide.stateful.apply(
    merger.entries(),
    table,
    {
      batch: manifest.batch,
      time: manifest.time,
      intervalMs: ctx.pipeline.batchIntervalMs,
      eventTime: manifest.eventTime ?? null,
    },
    (record) => onRecord(record, undefined),
  );
  return {
    records: pairs,
    bytes,
    state: () => prepareState(stage, partition, manifest.batch, head, table, before),
  };
}
