import { describeError, RetryBudgetExhaustedError } from '../errors';
import { batchId, type BatchId, type ShardId, type StageId, type TaskId } from '../ids';
import { parseManifest, serializeManifest, splitIntoTasks, type Manifest, type Slice } from '../manifest';
import { nextLayouts, originalLayouts, statefulPartitions, type StateLayouts } from '../state/layout';
import { manifestKey } from '../storage/keys';
import {
  QUIET_FOREVER,
  type BatchItem,
  type Quietness,
  type Cursors,
  type IngestUsage,
  type Pause,
  type PipelineItem,
  type SegmentItem,
  type ShardCursor,
} from '../batch';
import { addUsage, NO_TASK_USAGE, usageBetween } from '../cost/usage';
import { foldBatches, type EventTimeHigh, type WatermarkFold } from '../watermark';
import { padSeq } from '../encoding/segment';
import { isEventTime } from '../dsl/spec';
import { batchLimits } from '../dsl/pipeline';
import type { RuntimeContext } from './context';
import { budgetUsedUp, failBatch, resolveFailedBatches, spent, type Halt } from './failure';
import { announceComplete, driveBatch, pendingWork } from './progress';
import { quietProgress } from './batch-progress';
import { expireSettledBatches } from './expiry';

/** What one coordinator pass did. */
export interface CoordinatorReport {
  readonly sealed: readonly BatchId[];
  /** Batches whose missing work was invoked again. */
  readonly swept: readonly BatchId[];
  /** Batches the sweep failed because a task used up its retry budget. */
  readonly failed: readonly BatchId[];
  /** The time of the next batch to seal. */
  readonly nextBatchTime: number;
  /** Set when sealing is stopped by a failed batch (`onBatchFailure: 'halt'`). */
  readonly halted?: Halt;
  /** Set when an operator has paused sealing. */
  readonly paused?: Pause;
}

/** Options of one coordinator pass. */
export interface CoordinateOptions {
  /** Seal at most this many overdue batches in one pass (catching up after downtime). @default 100 */
  readonly maxBatches?: number;
  /** Sweep batches with no progress since this time. @default now - config.sweepAfterMs */
  readonly stuckBefore?: number;
  /**
   * Whether this pass sweeps. A looping invocation sweeps on its first pass only: stuck means
   * minutes without progress (`sweepAfterMs`), so once a tick is enough. @default true
   */
  readonly sweep?: boolean;
}

/**
 * One pass of the coordinator (Spark's job generator): seals every batch whose interval has ended,
 * in order, writes its manifest and starts its tasks; then sweeps batches that stopped moving.
 * Any number of coordinators may run at once: sealing is a conditional write per batch.
 *
 * @example
 * const report = await coordinate(ctx);
 */
export async function coordinate(
  ctx: RuntimeContext,
  options: CoordinateOptions = {},
): Promise<CoordinatorReport> {
  const now = ctx.clock.now();
  const interval = ctx.pipeline.batchIntervalMs;
  const state =
    (await ctx.ledger.pipeline.get()) ??
    (await ctx.ledger.pipeline.init(Math.floor(now / interval) * interval));
  // Failed batches first: under `skip` they are skipped now; under `halt` nothing more is sealed.
  const halted = await resolveFailedBatches(ctx);
  const sealed: BatchId[] = [];
  let next = state.lastSealed + 1;
  const limit = options.maxBatches ?? 100;
  // A paused pipeline seals nothing: ingest goes on writing segments, which wait behind the
  // cursors; batches already sealed finish, and the sweep goes on re-driving them.
  const { paused } = state;
  if (paused) ctx.log.warn('pipeline paused', { since: paused.at, reason: paused.reason, nextBatch: next });
  while (!halted && !paused && state.zeroTime + next * interval <= now && sealed.length < limit) {
    await sealBatch(ctx, batchId(next), state.zeroTime + next * interval);
    sealed.push(batchId(next));
    next++;
  }
  if (halted) {
    ctx.log.warn('pipeline halted', { batch: halted.batch, reason: halted.reason, nextBatch: next });
  }
  const { swept, failed } =
    options.sweep === false
      ? { swept: [], failed: [] }
      : await sweep(ctx, options.stuckBefore ?? now - ctx.config.sweepAfterMs, next - 1, halted, state);
  return {
    sealed,
    swept,
    failed,
    nextBatchTime: state.zeroTime + next * interval,
    ...(halted ? { halted } : {}),
    ...(paused ? { paused } : {}),
  };
}

/**
 * Whether the stream is idle: its last sealed batch took no input and no segment waits behind the
 * cursors. Also says whether the coordinator is marked asleep.
 */
async function streamIdle(
  ctx: RuntimeContext,
): Promise<{ idle: boolean; asleep: boolean; cursors: Cursors }> {
  const state = await ctx.ledger.pipeline.get();
  if (!state) return { idle: false, asleep: false, cursors: {} };
  const { cursors } = state;
  const asleep = state.asleep !== undefined;
  const last = state.lastSealed > 0 ? await ctx.ledger.batches.get(batchId(state.lastSealed)) : undefined;
  if (last && last.inputRecords > 0) return { idle: false, asleep, cursors };
  return { idle: await nothingWaiting(ctx, cursors), asleep, cursors };
}

/** Whether no segment is registered after the cursors. */
async function nothingWaiting(ctx: RuntimeContext, cursors: Cursors): Promise<boolean> {
  return (await waitingSegments(ctx, cursors)).every(({ segments }) => segments.length === 0);
}

/**
 * Between two passes of a looping coordinator: true when it should end its invocation rather than
 * wait for the next batch, because the stream is idle. It marks itself asleep first and then looks
 * for input once more; ingest registers its segment first and then looks for the mark (`wake`), so
 * one of the two always sees the other: records never wait for the next tick unseen. A looping
 * coordinator that finds the mark set on a busy stream clears it (no wake-up is needed).
 *
 * @example
 * if (await sleepWhileIdle(ctx)) return outcome();
 */
export async function sleepWhileIdle(ctx: RuntimeContext): Promise<boolean> {
  const { idle, asleep, cursors } = await streamIdle(ctx);
  if (!idle) {
    if (asleep) await ctx.ledger.pipeline.wake();
    return false;
  }
  return sleepIdle(ctx, cursors);
}

/** Marks an idle stream's coordinator asleep; true unless records came meanwhile (see `sleepWhileIdle`). */
async function sleepIdle(ctx: RuntimeContext, cursors: Cursors): Promise<boolean> {
  await ctx.ledger.pipeline.sleep(ctx.clock.now());
  // Only new segments can have changed the answer (a batch sealed meanwhile moves the cursors past
  // segments, which then count as waiting here: it stays awake, which is safe).
  if (await nothingWaiting(ctx, cursors)) {
    ctx.log.info('coordinator asleep: the stream is idle');
    return true;
  }
  // Records came while it went to sleep: it stays awake, unless an ingest has already cleared the
  // mark and started another coordinator.
  return !(await ctx.ledger.pipeline.wake());
}

/**
 * Between two passes of a coordinator that does not wait for boundaries (`coordinatorWaits:
 * false`): true when it should end its invocation. On an idle stream it sleeps as
 * `sleepWhileIdle` does; while records arrive it marks itself asleep until `due` (the next batch
 * boundary), for the first ingest at or after it to wake a coordinator, and then looks at the
 * clock once more: an ingest past `due` that looked before the mark was set has not woken anyone,
 * so a boundary already passed keeps this invocation going (unless another caller cleared the
 * mark and started one).
 *
 * @example
 * if (await sleepUntilDue(ctx, report.nextBatchTime)) return outcome();
 */
export async function sleepUntilDue(ctx: RuntimeContext, due: number): Promise<boolean> {
  const { idle, cursors } = await streamIdle(ctx);
  if (idle) return sleepIdle(ctx, cursors);
  // One write: a mark left by the pass before is overwritten with this boundary.
  await ctx.ledger.pipeline.sleep(ctx.clock.now(), due);
  if (ctx.clock.now() < due) {
    ctx.log.info('coordinator ends: ingest wakes one after the next boundary', { due });
    return true;
  }
  return !(await ctx.ledger.pipeline.wake());
}

/**
 * Starts a coordinator if one is asleep (the stream was idle, or a coordinator that does not wait
 * ended before the next boundary and that boundary has passed): called by ingest once its segments
 * are registered. Only the caller that clears the mark starts one.
 *
 * @example
 * await wakeCoordinator(ctx);
 */
export async function wakeCoordinator(ctx: RuntimeContext): Promise<void> {
  const state = await ctx.ledger.pipeline.get();
  if (state?.asleep === undefined) return;
  if (state.wakeAt !== undefined && ctx.clock.now() < state.wakeAt) return;
  // Only the mark it read: a coordinator may have marked a later boundary since.
  if (!(await ctx.ledger.pipeline.wake({ wakeAt: state.wakeAt }))) return;
  ctx.log.info(
    state.wakeAt === undefined
      ? 'waking the coordinator: records arrived on an idle stream'
      : 'waking the coordinator: a batch boundary has passed',
  );
  await ctx.invoker.wake({ kind: 'sluice.tick@1', pipeline: ctx.pipeline.name, sweep: false });
}

/**
 * Seals batch n: fixes its input (every shard's cursor) with a conditional create of its ledger
 * item, advances the pipeline's cursors, writes the manifest and starts phase 0. Re-running it at
 * any point after the item exists rebuilds the same manifest from the item's cursors. Only the
 * pass that moves the pipeline's `lastSealed` to n starts the batch: when two coordinators race to
 * seal it, the other one would only start every task a second time. (A pass that stops between
 * moving `lastSealed` and starting leaves the batch to the sweep.)
 */
export async function sealBatch(ctx: RuntimeContext, batch: BatchId, time: number): Promise<Manifest> {
  let item = await ctx.ledger.batches.get(batch);
  // The tasks this pass split, when it is the one that sealed: no need to read and split again.
  let sealedWith: readonly (readonly Slice[])[] | undefined;
  if (!item) {
    const startedAt = ctx.clock.now();
    const usedBefore = ctx.meter?.current();
    const state = await ctx.ledger.pipeline.get();
    // If another coordinator seals this batch between our reads, our conditional create fails and
    // its item (not these cursors) is used.
    const previousCursors = state?.cursors ?? {};
    {
      const input = await gatherInput(ctx, previousCursors);
      const tasks = splitIntoTasks(input.segments, taskOptions(ctx), (s) => afterSeqOf(s, previousCursors));
      const watermarkFold = hasEventTime(ctx)
        ? await foldWatermark(ctx, state?.watermarkFold, batch)
        : undefined;
      const layouts = await layoutsFor(ctx, state, batch);
      const quiet = await quietness(ctx, batch, time, tasks.length, layouts, watermarkFold?.high ?? null);
      const usedNow = ctx.meter?.current();
      const sealedAt = ctx.clock.now();
      const ingestUsage = ingestUsageOf(input.segments);
      const sealed = await ctx.ledger.batches.create({
        ...quiet,
        ...(quiet.quietUntil === undefined ? {} : { summary: EMPTY_SUMMARY, completedAt: sealedAt }),
        // No record, no event time: the watermark's fold goes past it (it never starts a phase).
        ...(quiet.quietUntil !== undefined && watermarkFold ? { eventTimeHigh: null } : {}),
        batch,
        time,
        ...(watermarkFold ? { watermarkFold } : {}),
        ...(layouts ? { layouts } : {}),
        cursors: input.cursors,
        previousCursors,
        inputRecords: countRecords(tasks),
        inputBytes: tasks.flat().reduce((sum, s) => sum + (s.end - s.start), 0),
        tasks: tasks.length,
        sealedAt,
        sealMs: sealedAt - startedAt,
        ...(usedNow ? { sealUsage: usageBetween(usedNow, usedBefore) } : {}),
        ...(ingestUsage ? { ingestUsage } : {}),
        updatedAt: sealedAt,
      });
      item = sealed.item;
      if (sealed.created) sealedWith = tasks;
    }
  }
  const recorded = await ctx.ledger.pipeline.recordSeal(
    batch,
    item.cursors,
    item.watermarkFold,
    item.layouts,
  );
  const manifest = await buildManifest(ctx, item, sealedWith);
  await ctx.objects.put(manifestKey(batch), serializeManifest(manifest), 'application/json');
  if (!recorded) return manifest;
  ctx.log.info('batch sealed', { batch, time, records: manifest.records, tasks: manifest.tasks.length });
  if (item.quietUntil === undefined) await startBatch(ctx, item);
  else await announceComplete(ctx, item, quietProgress(ctx, item));
  return manifest;
}

const EMPTY_SUMMARY = { inputRecords: 0, deadLetters: 0, outputRecords: 0, outputPartitions: [] };

/**
 * What batch n (at `time`, with `tasks` transform tasks, sealed with the event-time `high`) needs
 * to know of the quiet batches before it: the batch its stateful partitions' state is at, when n-1
 * was quiet (`stateFrom`), and whether n is quiet itself (`quietUntil`, and `quietHigh` for
 * event-time state). It is when it has no input, no stage emits on empty input, no state layout
 * starts with it, and every stateful partition said after its last run that a batch without input
 * up to this time (and, on the watermark's clock, up to this high) would change neither its state
 * nor its output. A pipeline without state needs only the first three; one with state reads batch
 * n-1's item (and, the first time, its stateful phases' reports).
 */
async function quietness(
  ctx: RuntimeContext,
  batch: BatchId,
  time: number,
  tasks: number,
  layouts: StateLayouts | undefined,
  high: EventTimeHigh,
): Promise<{ stateFrom?: number } & Partial<Quietness>> {
  const stateful = ctx.plan.phases.filter((phase) => phase.wide?.stateful);
  const empty = tasks === 0 && !ctx.plan.phases.some((phase) => phase.wide?.whenEmpty);
  if (stateful.length === 0) return empty ? { quietUntil: QUIET_FOREVER } : {};
  const previous = batch > 1 ? await ctx.ledger.batches.get(batchId(batch - 1)) : undefined;
  const from =
    previous?.quietUntil === undefined ? {} : { stateFrom: previous.stateFrom ?? previous.batch - 1 };
  if (!empty || !previous) return from;
  if (Object.values(layouts ?? {}).some((layout) => layout.since === batch)) return from;
  let until = previous.quietUntil;
  let highest = previous.quietHigh;
  if (until === undefined) {
    if (previous.status !== 'complete') return from;
    const reports = (
      await Promise.all(stateful.map((phase) => ctx.ledger.reports.list(previous.batch, phase.spec.phase)))
    ).flat();
    until = reports.length === 0 ? 0 : Math.min(...reports.map((report) => report.quietUntil ?? 0));
    const bounds = reports.flatMap((report) => (report.quietHigh === undefined ? [] : [report.quietHigh]));
    highest = bounds.length === 0 ? undefined : Math.min(...bounds);
  }
  // A key is due in the first batch whose time is past its due time: one at it is still quiet.
  if (until < time) return from;
  if (highest === undefined) return { ...from, quietUntil: until };
  return high === null || high <= highest ? { ...from, quietUntil: until, quietHigh: highest } : from;
}

async function startBatch(ctx: RuntimeContext, item: BatchItem): Promise<void> {
  // Starting is the same as re-driving a batch that has done nothing yet.
  await driveBatch(ctx, item, { redrive: true });
}

function taskOptions(ctx: RuntimeContext): { maxTasks: number; targetBytes: number } {
  return { maxTasks: ctx.pipeline.tasks.max, targetBytes: ctx.pipeline.tasks.targetBytes };
}

function afterSeqOf(segment: SegmentItem, previous: Cursors): string | undefined {
  const cursor = previous[segment.shard];
  // A segment that starts at or below the last sequence already taken overlaps an earlier batch
  // (a re-batched redelivery): its records up to that point are skipped.
  if (cursor && BigInt(segment.firstSeq) <= BigInt(cursor.lastSeq)) return cursor.lastSeq;
  return undefined;
}

/**
 * What the ingest invocations of the segments used, summed, or nothing if none was metered. An
 * invocation writes one segment per shard it was given, and the event-source mapping gives one.
 */
function ingestUsageOf(segments: readonly SegmentItem[]): IngestUsage | undefined {
  const metered = segments.flatMap((s) => (s.usage ? [s.usage] : []));
  if (metered.length === 0) return undefined;
  return { ...metered.reduce(addUsage, NO_TASK_USAGE), invocations: metered.length };
}

function countRecords(tasks: readonly (readonly Slice[])[]): number {
  return tasks.flat().reduce((sum, s) => sum + s.records, 0);
}

/** Every registered segment after each shard's cursor, and the cursors after them. */
async function gatherInput(
  ctx: RuntimeContext,
  previous: Cursors,
): Promise<{ segments: SegmentItem[]; cursors: Cursors }> {
  const cursors: Record<string, ShardCursor> = { ...previous };
  const waiting = await waitingSegments(ctx, previous);
  const taken = takeWithinLimits(
    waiting.map((w) => w.segments),
    batchLimits(ctx.pipeline),
  );
  const segments: SegmentItem[] = [];
  waiting.forEach(({ shard }, index) => {
    const mine = taken[index] ?? [];
    const last = mine[mine.length - 1];
    if (!last) return;
    // In shard order, each shard's in sequence order: the order a re-run rebuilds the manifest in.
    segments.push(...mine);
    cursors[shard] = {
      segmentStart: padSeq(last.firstSeq),
      lastSeq: maxSeq(mine, previous[shard]?.lastSeq),
    };
  });
  return { segments, cursors };
}

/**
 * Every segment registered after each shard's cursor, shard by shard in id order and each shard's
 * in sequence order: the input the next batches will take.
 *
 * @example
 * const waiting = await waitingSegments(ctx, (await ctx.ledger.pipeline.get())?.cursors ?? {});
 */
export async function waitingSegments(
  ctx: Pick<RuntimeContext, 'ledger'>,
  cursors: Cursors,
): Promise<{ shard: ShardId; segments: SegmentItem[] }[]> {
  const waiting: { shard: ShardId; segments: SegmentItem[] }[] = [];
  for (const shard of await ctx.ledger.segments.shards()) {
    waiting.push({ shard, segments: await ctx.ledger.segments.between(shard, cursors[shard]?.segmentStart) });
  }
  return waiting;
}

/**
 * Backpressure: which waiting segments a batch takes. Shard by shard in id order, each shard's
 * segments in sequence order, while the batch stays within its limits; at the first segment that
 * does not fit, the batch takes nothing more, from that shard or any after it. Kinesis gives the
 * children of a split or a merge higher ids than their parents, so no child's records go into a
 * batch before the rest of its parent's (a round over the shards would let a child's small segment
 * in ahead of its parent's next one). The first segment is always taken, so every batch makes
 * progress. Under a backlog the lower shards catch up first; none is skipped.
 */
function takeWithinLimits(
  perShard: readonly (readonly SegmentItem[])[],
  limits: { readonly maxRecords: number; readonly maxBytes: number },
): SegmentItem[][] {
  const taken = perShard.map((): SegmentItem[] => []);
  let records = 0;
  let bytes = 0;
  let first = true;
  for (const [index, segments] of perShard.entries()) {
    for (const next of segments) {
      if (!first && (records + next.records > limits.maxRecords || bytes + next.bytes > limits.maxBytes)) {
        return taken;
      }
      taken[index]?.push(next);
      records += next.records;
      bytes += next.bytes;
      first = false;
    }
  }
  return taken;
}

function maxSeq(segments: readonly SegmentItem[], floor: string | undefined): string {
  let max = floor === undefined ? -1n : BigInt(floor);
  for (const s of segments) if (BigInt(s.lastSeq) > max) max = BigInt(s.lastSeq);
  return max.toString();
}

/**
 * The manifest of a sealed batch, from its ledger item. The pass that sealed it gives the tasks it
 * split; any other pass reads the segments between the item's previous and its own cursors and
 * splits them again (both walk the shards in the same order, so the bytes are the same).
 */
async function buildManifest(
  ctx: RuntimeContext,
  item: BatchItem,
  split?: readonly (readonly Slice[])[],
): Promise<Manifest> {
  const tasks =
    split ??
    splitIntoTasks(await sealedSegments(ctx, item), taskOptions(ctx), (s) =>
      afterSeqOf(s, item.previousCursors),
    );
  return {
    kind: 'sluice.manifest@1',
    pipeline: ctx.pipeline.name,
    batch: item.batch,
    time: item.time,
    plan: ctx.plan.spec,
    previousCursors: item.previousCursors,
    cursors: item.cursors,
    records: countRecords(tasks),
    bytes: tasks.flat().reduce((sum, s) => sum + (s.end - s.start), 0),
    tasks,
    ...(item.watermarkFold ? { watermarkHigh: item.watermarkFold.high } : {}),
    ...(item.layouts ? { layouts: item.layouts } : {}),
    ...(item.stateFrom === undefined ? {} : { stateFrom: item.stateFrom }),
  };
}

/**
 * Moves the pipeline's `settledThrough` past the batches read that are complete or skipped, in an
 * unbroken run from the first one read: a failed batch stops it (it may be retried), as does an
 * open one. One conditional write when it moves, none when it does not. Returns where it is.
 */
async function recordSettled(
  ctx: RuntimeContext,
  state: PipelineItem,
  from: number,
  items: readonly BatchItem[],
): Promise<number> {
  let settled = from - 1;
  for (const item of items) {
    if (item.batch !== settled + 1 || (item.status !== 'complete' && item.status !== 'skipped')) break;
    settled = item.batch;
  }
  if (settled > (state.settledThrough ?? 0)) await ctx.ledger.pipeline.recordSettled(settled);
  return Math.max(settled, state.settledThrough ?? 0);
}

/**
 * The state layouts batch n is sealed with (`nextLayouts`), or none for a pipeline without state.
 * The layouts so far are the pipeline item's; a pipeline sealed before they were kept there
 * started with its last manifest's partitions, and has not rescaled since.
 */
async function layoutsFor(
  ctx: RuntimeContext,
  state: PipelineItem | undefined,
  batch: BatchId,
): Promise<StateLayouts | undefined> {
  const partitions = statefulPartitions(ctx.plan.spec);
  if (Object.keys(partitions).length === 0) return undefined;
  let before = state?.layouts;
  if (!before && batch > 1) {
    const previous = await ctx.objects.getIfExists(manifestKey(batchId(batch - 1)));
    const manifest = previous ? parseManifest(previous) : undefined;
    before = manifest?.layouts ?? originalLayouts(manifest?.plan ?? ctx.plan.spec);
  }
  return nextLayouts(partitions, before ?? {}, batch);
}

/** The segments a sealed batch took: those between its previous and its own cursors, per shard. */
async function sealedSegments(ctx: RuntimeContext, item: BatchItem): Promise<SegmentItem[]> {
  const segments: SegmentItem[] = [];
  for (const shard of Object.keys(item.cursors).sort() as ShardId[]) {
    const cursor = item.cursors[shard] as ShardCursor;
    const previous = item.previousCursors[shard];
    if (previous && previous.segmentStart === cursor.segmentStart) continue;
    segments.push(...(await ctx.ledger.segments.between(shard, previous?.segmentStart, cursor.segmentStart)));
  }
  return segments;
}

function hasEventTime(ctx: RuntimeContext): boolean {
  return ctx.plan.phases.some((p) => isEventTime(p.wide?.spec));
}

/** The watermark fold for sealing a batch, over the batches after the last fold (`foldBatches`). */
async function foldWatermark(
  ctx: RuntimeContext,
  previous: WatermarkFold | undefined,
  batch: BatchId,
): Promise<WatermarkFold> {
  return foldBatches(previous, await ctx.ledger.batches.from((previous?.through ?? 0) + 1), batch);
}

/**
 * Re-drives open batches that have not moved since `stuckBefore`. The oldest open batch's re-drives
 * count against its tasks' retry budgets (a task that crashes, times out or loses its event never
 * reports an error of its own), and a task whose budget is used up fails the batch. Later batches
 * may only be waiting for it (stateful partitions apply batches in order), so they are re-driven
 * without counting; behind a halting failed batch they are left alone until it is retried or
 * skipped.
 */
async function sweep(
  ctx: RuntimeContext,
  stuckBefore: number,
  lastSealed: number,
  halted: Halt | undefined,
  state: PipelineItem,
): Promise<{ swept: BatchId[]; failed: BatchId[] }> {
  const swept: BatchId[] = [];
  const failed: BatchId[] = [];
  if (lastSealed < 1) return { swept, failed };
  // Only batches after the settled ones can be open: usually the one or two in flight. Before a
  // sweep has settled any, open batches are few and recent: scan back from the newest sealed one.
  const from = Math.max(1, (state.settledThrough ?? lastSealed - 100) + 1);
  const items = await ctx.ledger.batches.from(from);
  const settled = await recordSettled(ctx, state, from, items);
  await expireSettledBatches(ctx, state, settled);
  let oldestOpen = true;
  for (const item of items) {
    if (item.status === 'failed') {
      // A failed batch whose marker was lost (a crash between the two writes) gets it back.
      await ctx.ledger.failed.put({
        batch: item.batch,
        message: item.failure?.message ?? 'failed',
        at: item.failure?.at ?? item.updatedAt,
      });
      continue;
    }
    if (item.status !== 'sealed' && item.status !== 'skipping') continue;
    const counted = oldestOpen && (!halted || item.batch < halted.batch);
    oldestOpen = false;
    if (halted && item.batch > halted.batch) continue;
    if (item.updatedAt >= stuckBefore) continue;
    const work = pendingWork(item, ctx.plan);
    if (work.kind === 'none') continue;
    if (counted && work.kind === 'run' && (await budgetFailure(ctx, item, work.phase, work.tasks))) {
      failed.push(item.batch);
      continue;
    }
    ctx.log.warn('sweeping stuck batch', { batch: item.batch, updatedAt: item.updatedAt });
    // The manifest may be what is missing (a coordinator that died after sealing).
    if (!(await ctx.objects.getIfExists(manifestKey(item.batch)))) {
      await ctx.objects.put(
        manifestKey(item.batch),
        serializeManifest(await buildManifest(ctx, item)),
        'application/json',
      );
    }
    if (counted && work.kind === 'run') {
      await ctx.ledger.batches.recordRedrive(
        item.batch,
        work.tasks.map((task) => ({ phase: work.phase, task })),
        ctx.clock.now(),
      );
    }
    await driveBatch(ctx, item, { redrive: true });
    swept.push(item.batch);
  }
  return { swept, failed };
}

/** Fails a batch whose missing task has used up its retry budget; true if it did. */
async function budgetFailure(
  ctx: RuntimeContext,
  item: BatchItem,
  phase: number,
  tasks: readonly number[],
): Promise<boolean> {
  const now = ctx.clock.now();
  const used = item.attempts.find(
    (a) => a.phase === phase && tasks.includes(a.task) && budgetUsedUp(ctx, a, now),
  );
  if (!used) return false;
  const stage = ctx.plan.phases[phase]?.spec.function ?? `phase-${phase}`;
  const error = new RetryBudgetExhaustedError(
    `task ${used.task} of phase ${phase} (${stage}) did not finish: ${spent(used, now)}` +
      (item.lastError
        ? `; last error: ${item.lastError}`
        : ' without reporting an error (crashes or timeouts)'),
    { batch: item.batch, task: used.task as TaskId, stage: stage as StageId },
  );
  await failBatch(
    ctx,
    item.batch,
    { message: describeError(error), phase, task: used.task, stage, at: now },
    item.status === 'skipping' ? 'skipping' : 'sealed',
  );
  return true;
}
