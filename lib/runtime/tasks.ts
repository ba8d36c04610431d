import { decodeSegment } from '../encoding/segment';
import { decodeRun } from '../encoding/shuffle';
import { InvalidInputError, RecordFailedError, type ErrorScope } from '../errors';
import { partitionId, type BatchId, type TaskId } from '../ids';
import { parseManifest, type Manifest, type Slice } from '../manifest';
import { assertSamePlan, outputPrefix, type CompiledPhase } from '../plan';
import { deadLetterKey, manifestKey, outputKey, shuffleKey } from '../storage/keys';
import type { TaskReport } from '../storage/ledger';
import { OutputCollector, RecordStager, ShuffleBuffer, ShuffleMerger, fuseStages } from './buffers';
import type { RuntimeContext } from './context';
import type { TaskEvent } from './events';
import { toJsonLines } from './output';
import { advance } from './progress';

/** A record that went to the dead-letter prefix, and why. */
export interface DeadLetter {
  readonly batch: number;
  readonly phase: number;
  readonly task: number;
  /** `decode` (the source could not decode it) or `stage` (stage code threw on it). */
  readonly kind: 'decode' | 'stage';
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
  if (!report) {
    report = await execute(ctx, manifest, phase, event.task, scope);
    await ctx.ledger.putTaskReport(report);
  }
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

function reasonOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

async function execute(
  ctx: RuntimeContext,
  manifest: Manifest,
  phase: CompiledPhase,
  task: TaskId,
  scope: ErrorScope,
): Promise<TaskReport> {
  const index = phase.spec.phase;
  const next = ctx.plan.phases[index + 1];
  const terminal = next?.wide
    ? new ShuffleBuffer(next.wide, next.spec.partitions ?? 1)
    : new OutputCollector();
  const dead = new DeadLetters(ctx, scope);
  const current = { stage: phase.spec.function as string };
  const stager = new RecordStager();
  const run = fuseStages(phase.narrow, stager, current);
  const base = { batch: manifest.batch, phase: index, task };

  const read =
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
          processRecord(value, { ...base, shard: raw.shard, seq: raw.seq, segment: raw.segment });
        })
      : await readShuffle(
          ctx,
          manifest,
          phase,
          task,
          scope,
          (value, key) => processRecord(value, { ...base, key }),
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

  function processRecord(value: unknown, where: Partial<DeadLetter> & typeof base): void {
    current.stage = phase.spec.function;
    try {
      run(value);
      current.stage = next?.wide?.id ?? 'output';
      stager.commit(terminal);
    } catch (error) {
      stager.discard();
      dead.add(
        { ...where, kind: 'stage', stage: current.stage, reason: reasonOf(error), record: jsonSafe(value) },
        error,
      );
    }
  }

  if (index > 0 && read.records === 0 && phase.wide?.whenEmpty) {
    for (const value of phase.wide.whenEmpty()) processRecord(value, base);
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
    return {
      ...common,
      recordsOut: terminal.records,
      withData: encoded.withData,
      ...(encoded.withData.length > 0 ? { shuffle: key, index: encoded.index } : {}),
      bytesWritten,
    };
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
  return { ...common, recordsOut: records.length, withData: [], ...(output ? { output } : {}), bytesWritten };
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
 * Reads this partition's run from every previous-phase task that has one, merges per key, and feeds
 * the keyed stage's output records. Runs are read in task order, so the merge order is fixed.
 */
async function readShuffle(
  ctx: RuntimeContext,
  manifest: Manifest,
  phase: CompiledPhase,
  partition: TaskId,
  scope: ErrorScope,
  onRecord: (value: unknown, key: unknown) => void,
  onMergeError: (key: unknown, error: unknown) => void,
): Promise<{ records: number; bytes: number }> {
  const wide = phase.wide;
  if (!wide) throw new InvalidInputError(`phase ${phase.spec.phase} has no keyed stage`, scope);
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
  for (const { key, record } of merger.outputs()) onRecord(record, key);
  return { records: pairs, bytes };
}
