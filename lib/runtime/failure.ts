import {
  classifyFailure,
  describeError,
  InvalidInputError,
  RetryBudgetExhaustedError,
  type ErrorScope,
} from '../errors';
import type { AnyPipeline } from '../dsl/pipeline';
import type { BatchId } from '../ids';
import { manifestKey, skippedBatchKey } from '../storage/keys';
import type { BatchFailure, BatchItem, RunningStatus, TaskAttempts } from '../batch';
import type { RuntimeContext } from './context';
import type { TaskEvent } from './events';
import { toJsonLines } from './output';
import { driveBatch } from './progress';

/**
 * The failure policy, in one place: which failed attempts are retried, when a step's retry budget
 * is used up, how a batch fails, and what happens to a failed batch (halt or skip).
 */

/** Why sealing stopped: the oldest failed batch that nobody has retried or skipped. */
export interface Halt {
  readonly batch: BatchId;
  readonly reason: string;
}

/**
 * Decides what a failed task attempt means. Ordering waits are rethrown (retried, budget untouched);
 * transient failures are counted and rethrown until the task's budget is used up; anything else,
 * or a used-up budget, fails the batch at once, and the attempt then ends without an error (retrying
 * cannot help, and the batch's status is what operators and alarms watch).
 *
 * @example
 * try { await runTask(ctx, event); } catch (error) { await onTaskError(ctx, event, error); }
 */
export async function onTaskError(ctx: RuntimeContext, event: TaskEvent, error: unknown): Promise<void> {
  const kind = classifyFailure(error);
  if (kind === 'waiting') throw error;
  const running: RunningStatus = event.skip ? 'skipping' : 'sealed';
  const stage = ctx.plan.phases[event.phase]?.spec.function ?? `phase-${event.phase}`;
  const scope: ErrorScope = { batch: event.batch, task: event.task, stage: stage as ErrorScope['stage'] };
  let cause = error;
  if (kind === 'transient') {
    const now = ctx.clock.now();
    const used = await ctx.ledger.batches.recordAttempt(
      event.batch,
      event.phase,
      event.task,
      now,
      describeError(error),
      running,
    );
    // The batch is no longer running (complete, failed or skipped): there is nothing to retry for.
    if (!used) return;
    if (!budgetUsedUp(ctx, used, now)) throw error;
    cause = new RetryBudgetExhaustedError(
      `task ${event.task} of phase ${event.phase} (${stage}) ${spent(used, now)}; last error: ${describeError(error)}`,
      scope,
      error,
    );
  }
  await failBatch(
    ctx,
    event.batch,
    { message: describeError(cause), phase: event.phase, task: event.task, stage, at: ctx.clock.now() },
    running,
  );
}

/** True when a task has used up the pipeline's retry budget (attempts, or time since the first). */
export function budgetUsedUp(ctx: RuntimeContext, used: TaskAttempts, now: number): boolean {
  return used.attempts >= ctx.pipeline.retry.attempts || now - used.since >= ctx.pipeline.retry.withinMs;
}

/** How much of its budget a task used, in words. */
export function spent(used: TaskAttempts, now: number): string {
  const minutes = ((now - used.since) / 60_000).toFixed(1);
  return `failed ${used.attempts} attempt${used.attempts === 1 ? '' : 's'} over ${minutes} min`;
}

/**
 * Fails a batch with its reason, if it is still in the status the failing work ran for, and leaves
 * the marker the coordinator acts on. The first caller to fail it logs the failure and counts the
 * failed-batch metric.
 *
 * @example
 * await failBatch(ctx, batch, { message: 'AccessDenied: ...', phase: 1, task: 3, stage: 'count' }, 'sealed');
 */
export async function failBatch(
  ctx: RuntimeContext,
  batch: BatchId,
  failure: BatchFailure,
  from: RunningStatus,
): Promise<void> {
  const now = ctx.clock.now();
  if (!(await ctx.ledger.failBatch(batch, { ...failure, at: failure.at ?? now }, now, from))) return;
  ctx.log.error('batch failed', {
    batch,
    phase: failure.phase,
    task: failure.task,
    stage: failure.stage,
    reason: failure.message,
    policy: ctx.pipeline.onBatchFailure,
  });
  ctx.metrics.batchFailed({ batch });
}

/**
 * What the coordinator does with failed batches at the start of every pass: under `skip` it skips
 * them; under `halt` (or for a batch that failed while being skipped) it reports the oldest as the
 * reason sealing stops. Markers of batches that were retried or skipped meanwhile are removed.
 *
 * @example
 * const halt = await resolveFailedBatches(ctx);
 * if (halt) return; // seal nothing
 */
export async function resolveFailedBatches(ctx: RuntimeContext): Promise<Halt | undefined> {
  let halt: Halt | undefined;
  for (const marker of await ctx.ledger.failed.list()) {
    const item = await ctx.ledger.batches.get(marker.batch);
    if (!item || item.status !== 'failed') {
      await ctx.ledger.failed.delete(marker.batch);
      continue;
    }
    if (!haltsSealing(ctx.pipeline, item)) {
      await skipFailedBatch(ctx, item, 'onBatchFailure: skip');
      continue;
    }
    halt ??= { batch: item.batch, reason: item.failure?.message ?? marker.message };
  }
  return halt;
}

/**
 * Whether a failed batch stops sealing until an operator acts: under `onBatchFailure: 'halt'`, or
 * when it failed while being skipped (skipping it again by itself could fail the same way).
 *
 * @example
 * if (item.status === 'failed' && haltsSealing(ctx.pipeline, item)) return { batch: item.batch, reason };
 */
export function haltsSealing(pipeline: Pick<AnyPipeline, 'onBatchFailure'>, item: BatchItem): boolean {
  return pipeline.onBatchFailure === 'halt' || item.failure?.duringSkip === true;
}

/**
 * Gives up a failed batch: its input goes to the dead-letter prefix as one `batch` dead letter (by
 * reference to its sealed manifest and segments) with the reason; then every stateful partition moves
 * its state past it unchanged, and the batch ends `skipped`.
 *
 * @example
 * await skipBatch(ctx, batchId(42), 'operator: bad input from a producer bug');
 */
export async function skipBatch(ctx: RuntimeContext, batch: BatchId, why: string): Promise<void> {
  const item = await ctx.ledger.batches.get(batch);
  if (!item) throw new InvalidInputError(`batch ${batch} is not sealed`, { batch });
  if (item.status === 'skipping') {
    await driveBatch(ctx, item, { redrive: true });
    return;
  }
  if (item.status !== 'failed') {
    throw new InvalidInputError(
      `batch ${batch} is ${item.status}, not failed: only a failed batch is skipped`,
      {
        batch,
      },
    );
  }
  await skipFailedBatch(ctx, item, why);
}

async function skipFailedBatch(ctx: RuntimeContext, item: BatchItem, why: string): Promise<void> {
  const letter = {
    batch: item.batch,
    kind: 'batch',
    reason: item.failure?.message ?? 'failed',
    skippedBecause: why,
    time: item.time,
    records: item.inputRecords,
    bytes: item.inputBytes,
    manifest: manifestKey(item.batch),
    previousCursors: item.previousCursors,
    cursors: item.cursors,
  };
  // Written before the status moves: a crash in between leaves a failed batch to skip again, and
  // the same bytes to write again.
  await ctx.objects.put(skippedBatchKey(item.batch), toJsonLines([letter]), 'application/x-ndjson');
  const now = ctx.clock.now();
  await ctx.ledger.batches.startSkip(item.batch, now);
  await ctx.ledger.failed.delete(item.batch);
  ctx.log.warn('skipping batch', { batch: item.batch, reason: letter.reason, because: why });
  await driveBatch(ctx, { ...item, status: 'skipping', updatedAt: now }, { redrive: true });
}

/**
 * Runs a failed batch again (after a fix was deployed, or once what it needed is back): its failure
 * and retry budgets are cleared, and its missing tasks start. Tasks that reported stand.
 *
 * @example
 * await retryBatch(ctx, batchId(42));
 */
export async function retryBatch(ctx: RuntimeContext, batch: BatchId): Promise<void> {
  const item = await ctx.ledger.batches.get(batch);
  if (!item) throw new InvalidInputError(`batch ${batch} is not sealed`, { batch });
  if (item.status !== 'failed') {
    throw new InvalidInputError(
      `batch ${batch} is ${item.status}, not failed: only a failed batch is retried`,
      {
        batch,
      },
    );
  }
  const now = ctx.clock.now();
  if (!(await ctx.ledger.batches.reopen(item, now))) return;
  await ctx.ledger.failed.delete(batch);
  ctx.log.info('retrying batch', { batch });
  const { failure: _failure, lastError: _lastError, ...rest } = item;
  await driveBatch(ctx, { ...rest, status: 'sealed', attempts: [], updatedAt: now }, { redrive: true });
}
