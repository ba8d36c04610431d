import type { BatchItem, PipelineItem, ShardCursor } from '../batch';
import { batchId, type ShardId } from '../ids';
import { DEFAULT_LEDGER_RETENTION_MS, type RuntimeContext } from './context';

/**
 * Most batches one sweep expires: more than a minute's worth at a one-second interval, so expiry
 * keeps up with sealing, and few enough that one pass stays short.
 */
const MAX_EXPIRED_PER_PASS = 100;

/**
 * Deletes the ledger items of settled batches (complete or skipped, but the last sealed) whose
 * batch time is older than the retention: each one's task reports and segment items, then its batch
 * item, oldest first, then moves the pipeline's `expiredThrough`. The emulator has no TTL, and
 * DynamoDB's would not know which batches are settled; a pass that stops half-way leaves the rest
 * to the next one (deleting what is gone is no error). Returns the batches it expired.
 *
 * @example
 * const expired = await expireSettledBatches(ctx, state, settledThrough);
 */
export async function expireSettledBatches(
  ctx: RuntimeContext,
  state: PipelineItem,
  settledThrough: number,
): Promise<number[]> {
  const retention = ctx.config.ledgerRetentionMs ?? DEFAULT_LEDGER_RETENTION_MS;
  const cutoff = ctx.clock.now() - retention;
  const interval = ctx.pipeline.batchIntervalMs;
  const first = (state.expiredThrough ?? 0) + 1;
  // Batch n's time is zeroTime + n x interval: nothing to read when the first is not old enough.
  // An event-time pipeline's watermark folds batch items in order: none it has not folded goes.
  // The last sealed batch stays, however old (a pipeline paused for longer than the retention):
  // sealing the next one reads it (the state its stateful partitions are at, after quiet batches).
  const last = Math.min(
    settledThrough,
    state.lastSealed - 1,
    first + MAX_EXPIRED_PER_PASS - 1,
    Math.floor((cutoff - state.zeroTime) / interval),
    state.watermarkFold?.through ?? Number.POSITIVE_INFINITY,
  );
  if (last < first) return [];
  const expired: number[] = [];
  for (const item of await ctx.ledger.batches.from(first, last - first + 1)) {
    if (item.batch > last || (item.status !== 'complete' && item.status !== 'skipped')) break;
    await expireBatch(ctx, item);
    expired.push(item.batch);
  }
  // Batch items come in batch order: the last one expired is the highest.
  const through = expired.at(-1);
  if (through !== undefined) {
    await ctx.ledger.pipeline.recordExpired(through);
    ctx.log.info('expired settled batches', { from: first, through });
  }
  return expired;
}

/** One batch's items: its reports of every phase, the segment items it took, then its own. */
async function expireBatch(ctx: RuntimeContext, item: BatchItem): Promise<void> {
  for (let phase = 0; phase < ctx.plan.phases.length; phase++) {
    await ctx.ledger.reports.deletePhase(item.batch, phase);
  }
  for (const [shard, cursor] of Object.entries(item.cursors) as [ShardId, ShardCursor][]) {
    const previous = item.previousCursors[shard];
    if (previous?.segmentStart === cursor.segmentStart) continue;
    for (const segment of await ctx.ledger.segments.between(
      shard,
      previous?.segmentStart,
      cursor.segmentStart,
    )) {
      await ctx.ledger.segments.delete(segment);
    }
  }
  await ctx.ledger.batches.delete(batchId(item.batch));
}
