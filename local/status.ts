import type { Cursors, Pause } from '../lib/batch';
import { waitingSegments } from '../lib/runtime/coordinator';
import type { RuntimeContext } from '../lib/runtime/context';
import type { UiBatch, UiBatchDetail } from './ui/server';

/** What `sluice status` says of a running pipeline. */
export interface PipelineStatus {
  readonly kind: 'sluice.status@1';
  readonly pipeline: string;
  /** When it was read, epoch ms. */
  readonly at: number;
  readonly started: boolean;
  readonly lastSealed: number;
  /** The newest batch that completed, and when. */
  readonly lastCompleted?: { readonly batch: number; readonly time: number; readonly completedAt?: number };
  /** The time of the next batch to seal, and how long past it is (0 when it is not due yet). */
  readonly nextBatchTime?: number;
  readonly schedulingDelayMs: number;
  readonly paused?: Pause;
  /** Since when the coordinator sleeps because the stream is idle (the tick still seals each minute). */
  readonly asleep?: number;
  /** With `asleep`, on a stream with records: the boundary after which the first ingest wakes one. */
  readonly wakeAt?: number;
  /** Sealed batches not finished yet. */
  readonly open: readonly number[];
  /** Records and segments written ahead but not in any batch yet. */
  readonly waiting: { readonly records: number; readonly segments: number };
  /** Failed batches that nobody has retried or skipped, with why. */
  readonly failed: readonly { readonly batch: number; readonly reason: string; readonly at: number }[];
  /** Batches with dead letters, newest first, with how many. */
  readonly deadLetters: readonly { readonly batch: number; readonly count: number }[];
}

/** Batches with dead letters that `sluice status` lists, newest first. */
const DEAD_LETTER_BATCHES_SHOWN = 20;

/**
 * Reads what an operator asks first: how far the pipeline is, whether it is paused or halted, what
 * is waiting and what failed. One read of the pipeline item, the batch items, the failed markers
 * and each shard's segments after its cursor.
 *
 * @example
 * const status = await pipelineStatus(deployed.ctx, Date.now());
 */
export async function pipelineStatus(ctx: RuntimeContext, now: number): Promise<PipelineStatus> {
  const state = await ctx.ledger.pipeline.get();
  const base = { kind: 'sluice.status@1' as const, pipeline: ctx.pipeline.name, at: now };
  if (!state) {
    return {
      ...base,
      started: false,
      lastSealed: 0,
      schedulingDelayMs: 0,
      open: [],
      waiting: await waitingInput(ctx, {}),
      failed: [],
      deadLetters: [],
    };
  }
  const [items, failed, waiting] = await Promise.all([
    ctx.ledger.batches.all(),
    ctx.ledger.failed.list(),
    waitingInput(ctx, state.cursors),
  ]);
  const completed = items.filter((item) => item.status === 'complete');
  const last = completed[completed.length - 1];
  const nextBatchTime = state.zeroTime + (state.lastSealed + 1) * ctx.pipeline.batchIntervalMs;
  return {
    ...base,
    started: true,
    lastSealed: state.lastSealed,
    ...(last
      ? {
          lastCompleted: {
            batch: last.batch,
            time: last.time,
            ...(last.completedAt === undefined ? {} : { completedAt: last.completedAt }),
          },
        }
      : {}),
    nextBatchTime,
    schedulingDelayMs: Math.max(0, now - nextBatchTime),
    ...(state.paused ? { paused: state.paused } : {}),
    ...(state.asleep === undefined ? {} : { asleep: state.asleep }),
    ...(state.wakeAt === undefined ? {} : { wakeAt: state.wakeAt }),
    open: items
      .filter((item) => item.status === 'sealed' || item.status === 'skipping')
      .map((item) => item.batch),
    waiting,
    failed: failed.map((marker) => ({ batch: marker.batch, reason: marker.message, at: marker.at })),
    deadLetters: items
      .map((item) => ({ batch: item.batch, count: item.summary?.deadLetters ?? item.counted.deadLetters }))
      .filter((entry) => entry.count > 0)
      .reverse()
      .slice(0, DEAD_LETTER_BATCHES_SHOWN),
  };
}

/** Records and segments the next batches will take (`waitingSegments`, as the seal reads them). */
async function waitingInput(
  ctx: RuntimeContext,
  cursors: Cursors,
): Promise<{ records: number; segments: number }> {
  let records = 0;
  let segments = 0;
  for (const { shard, segments: found } of await waitingSegments(ctx, cursors)) {
    const cursor = cursors[shard];
    for (const segment of found) {
      segments++;
      // A redelivered segment may overlap what the cursor took: count only what is after it.
      records += cursor && BigInt(segment.firstSeq) <= BigInt(cursor.lastSeq) ? 0 : segment.records;
    }
  }
  return { records, segments };
}

const iso = (ms: number | undefined): string => (ms === undefined ? '-' : new Date(ms).toISOString());
const millis = (ms: number | undefined): string => (ms === undefined ? '-' : `${Math.round(ms)} ms`);

function stateLine(status: PipelineStatus): string {
  if (status.paused) return `paused since ${iso(status.paused.at)} (${status.paused.reason})`;
  if (status.failed.length > 0) return 'running, with failed batches';
  if (status.asleep !== undefined && status.wakeAt !== undefined)
    return `running; no coordinator waits: the first ingest after ${iso(status.wakeAt)} wakes one`;
  if (status.asleep !== undefined)
    return `running; the stream is idle, the coordinator asleep since ${iso(status.asleep)}`;
  return 'running';
}

/** The status as text for a person. */
export function formatStatus(status: PipelineStatus, where: string): string {
  if (!status.started) return `${status.pipeline} (${where}): not started: no batch sealed yet\n`;
  const lines = [
    `${status.pipeline} (${where})`,
    `  state:           ${stateLine(status)}`,
    `  last sealed:     batch ${status.lastSealed}`,
    `  last completed:  ${status.lastCompleted ? `batch ${status.lastCompleted.batch} (time ${iso(status.lastCompleted.time)}, completed ${iso(status.lastCompleted.completedAt)})` : '-'}`,
    `  next batch:      ${iso(status.nextBatchTime)}, scheduling delay ${millis(status.schedulingDelayMs)}`,
    `  open batches:    ${status.open.length === 0 ? 'none' : status.open.join(', ')}`,
    `  waiting input:   ${status.waiting.records} records in ${status.waiting.segments} segments`,
    `  failed batches:  ${status.failed.length === 0 ? 'none' : ''}`,
    ...status.failed.map((f) => `    batch ${f.batch} (${iso(f.at)}): ${f.reason}`),
    `  dead letters:    ${status.deadLetters.length === 0 ? 'none' : status.deadLetters.map((d) => `batch ${d.batch}: ${d.count}`).join(', ')}`,
  ];
  return `${lines.map((line) => line.trimEnd()).join('\n')}\n`;
}

/** A table of batches, newest last, for a person. */
export function formatBatches(batches: readonly UiBatch[]): string {
  const head = [
    'batch',
    'time',
    'status',
    'input',
    'output',
    'dead',
    'sched. delay',
    'processing',
    'total delay',
    'cost',
  ];
  const rows = batches.map((b) => [
    String(b.batch),
    iso(b.time),
    b.status,
    String(b.inputRecords),
    String(b.outputRecords),
    String(b.deadLetters),
    millis(b.schedulingDelayMs),
    millis(b.processingMs),
    millis(b.totalDelayMs),
    b.costUsd === undefined ? '-' : `$${b.costUsd.toPrecision(3)}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === 1 || i === 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const failures = batches.flatMap((b) => (b.failure ? [`  batch ${b.batch} failed: ${b.failure}`] : []));
  return `${[line(head), ...rows.map(line), ...failures].join('\n')}\n`;
}

/** One batch drilled into, for a person. */
export function formatBatchDetail(detail: UiBatchDetail): string {
  const { batch, progress } = detail;
  const lines = [
    `batch ${batch.batch}: ${batch.status}, time ${iso(batch.time)}`,
    `  input ${batch.inputRecords} records, output ${batch.outputRecords}, dead letters ${batch.deadLetters}`,
    `  scheduling delay ${millis(batch.schedulingDelayMs)}, processing ${millis(batch.processingMs)}, total delay ${millis(batch.totalDelayMs)}`,
  ];
  if (batch.failure) lines.push(`  failed: ${batch.failure}`);
  if (progress) {
    lines.push(
      `  seal ${millis(progress.sealMs)}; cost $${progress.costUsd.toPrecision(3)} (ingest $${progress.costByStep.ingest.toPrecision(3)}, seal $${progress.costByStep.seal.toPrecision(3)}, tasks $${progress.costByStep.tasks.toPrecision(3)})`,
      ...progress.phases.map(
        (p) =>
          `  phase ${p.phase} ${p.function}: ${p.tasks} tasks (${millis(p.taskMs.min)} / ${millis(p.taskMs.median)} / ${millis(p.taskMs.max)}), ${p.recordsIn} in, ${p.recordsOut} out, ${p.deadLetters} dead letters`,
      ),
      ...progress.state.map(
        (s) =>
          `  state ${s.stage}: ${s.keys} keys in ${s.chunks} chunks (${s.bytes} bytes); read ${s.chunksRead} chunks, wrote ${s.chunksWritten}`,
      ),
    );
    const kinds = Object.entries(progress.deadLettersByKind);
    if (kinds.length > 0)
      lines.push(`  dead letters by kind: ${kinds.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  }
  for (const letter of detail.deadLetters)
    lines.push(`  dead letter: ${letter.kind} in ${letter.stage}: ${letter.reason}`);
  return `${lines.join('\n')}\n`;
}
