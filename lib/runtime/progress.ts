import { progressTotals, recordProgress, type BatchProgress } from './batch-progress';
import { taskId, type BatchId } from '../ids';
import { isEventTime } from '../dsl/spec';
import { highOfTasks } from '../watermark';
import type { Plan } from '../plan';
import { outputPrefix } from '../plan';
import type { BatchItem, BatchSummary } from '../batch';
import type { RuntimeContext } from './context';
import { formatBatch, readBatchOutput } from './output';

/** What a batch needs next, decided from its ledger item alone. */
export type PendingWork =
  | { readonly kind: 'run'; readonly phase: number; readonly tasks: readonly number[] }
  | { readonly kind: 'start'; readonly phase: number }
  | { readonly kind: 'complete' }
  | { readonly kind: 'none' };

/** Tasks of a phase: all transform tasks for phase 0; the started partitions after that. */
function expectedTasks(item: BatchItem, phase: number): readonly number[] | undefined {
  if (phase === 0) return Array.from({ length: item.tasks }, (_, i) => i);
  return item.expected[phase];
}

/**
 * The first phase of a batch that is not done, and what it lacks. Pure: the coordinator's sweep and
 * every finishing task use it, so progress has one definition.
 *
 * @example
 * pendingWork(item, plan); // { kind: 'run', phase: 1, tasks: [2] }
 */
export function pendingWork(item: BatchItem, plan: Plan): PendingWork {
  if (item.status === 'skipping') return pendingSkipWork(item, plan);
  if (item.status !== 'sealed') return { kind: 'none' };
  for (let phase = 0; phase < plan.phases.length; phase++) {
    const expected = expectedTasks(item, phase);
    if (expected === undefined) return { kind: 'start', phase };
    const done = new Set(item.done[phase] ?? []);
    const missing = expected.filter((t) => !done.has(t));
    if (missing.length > 0) return { kind: 'run', phase, tasks: missing };
  }
  return { kind: 'complete' };
}

/**
 * What a skipping batch still needs: every partition of every stateful phase must move its state
 * past the batch (by running the batch, or as a no-op), in order, before the next batch can use it.
 */
function pendingSkipWork(item: BatchItem, plan: Plan): PendingWork {
  for (const compiled of plan.phases) {
    if (!compiled.wide?.stateful) continue;
    const phase = compiled.spec.phase;
    const done = new Set(item.done[phase] ?? []);
    const missing = partitionsToStart(item, plan, phase).filter((p) => !done.has(p));
    if (missing.length > 0) return { kind: 'run', phase, tasks: missing };
  }
  return { kind: 'complete' };
}

/**
 * Partitions of a reduce phase that must run: those with data, partition 0 of a stage that emits on
 * empty input, and every partition of a stateful stage.
 */
export function partitionsToStart(item: BatchItem, plan: Plan, phase: number): number[] {
  const compiled = plan.phases[phase];
  // Stateful stages apply every batch to every partition, in order: windows slide and state times
  // out with no new data, and each partition's state moves exactly one batch at a time.
  // The partitions the batch was sealed with: a newer bundle's plan may have rescaled the stage.
  if (compiled?.wide?.stateful) {
    const partitions = item.layouts?.[compiled.spec.function]?.partitions ?? compiled.spec.partitions ?? 1;
    return Array.from({ length: partitions }, (_, p) => p);
  }
  const withData = new Set(item.withData[phase] ?? []);
  if (plan.phases[phase]?.wide?.whenEmpty) withData.add(0);
  return [...withData].sort((a, b) => a - b);
}

/** Invokes the given tasks of a phase; of a skipping batch, in skip mode. */
export async function invokeTasks(
  ctx: RuntimeContext,
  batch: BatchId,
  phase: number,
  tasks: readonly number[],
  skip = false,
): Promise<void> {
  const fn = ctx.plan.phases[phase]?.spec.function;
  if (!fn) throw new Error(`no phase ${phase}`);
  await Promise.all(
    tasks.map((task) =>
      ctx.invoker.invoke(fn, {
        kind: 'sluice.task@1',
        pipeline: ctx.pipeline.name,
        batch,
        phase,
        task: taskId(task),
        ...(skip ? { skip: true as const } : {}),
      }),
    ),
  );
}

/**
 * Moves a batch on from what its ledger item says: starts the next phase, re-invokes missing tasks
 * (when `redrive`), or completes it. Safe to call any number of times from anywhere.
 *
 * @example
 * await driveBatch(ctx, await ctx.ledger.batches.markTaskDone(report, last, now), { redrive: false });
 */
export async function driveBatch(
  ctx: RuntimeContext,
  item: BatchItem,
  options: { redrive: boolean },
): Promise<void> {
  let current = item;
  for (;;) {
    const work = pendingWork(current, ctx.plan);
    switch (work.kind) {
      case 'none':
        return;
      case 'run':
        if (options.redrive) {
          await invokeTasks(ctx, current.batch, work.phase, work.tasks, current.status === 'skipping');
        }
        return;
      case 'complete':
        await completeBatch(ctx, current);
        return;
      case 'start': {
        const tasks = partitionsToStart(current, ctx.plan, work.phase);
        // Starting the event-time stage: the batch's high is its tasks' highs, folded once here.
        const high = isEventTime(ctx.plan.phases[work.phase]?.wide?.spec)
          ? highOfTasks(await ctx.ledger.reports.list(current.batch, work.phase - 1))
          : undefined;
        await ctx.ledger.batches.setExpected(current.batch, work.phase, tasks, ctx.clock.now(), high);
        current = { ...current, expected: { ...current.expected, [work.phase]: tasks } };
        if (tasks.length > 0) {
          await invokeTasks(ctx, current.batch, work.phase, tasks);
          return;
        }
        // A phase with no work is done at once; go on to the next.
      }
    }
  }
}

async function completeBatch(ctx: RuntimeContext, item: BatchItem): Promise<void> {
  if (item.status === 'skipping') {
    // Its output does not count: its whole input is in the batch dead letter.
    const summary = {
      inputRecords: item.inputRecords,
      deadLetters: item.inputRecords,
      outputRecords: 0,
      outputPartitions: [],
    };
    if (await ctx.ledger.batches.completeSkip(item.batch, summary, ctx.clock.now())) {
      ctx.log.warn('batch skipped', { batch: item.batch, inputRecords: item.inputRecords });
    }
    return;
  }
  // Every task was counted when it was marked done: the reports need not be read again.
  const summary: BatchSummary = { inputRecords: item.inputRecords, ...item.counted };
  const now = ctx.clock.now();
  // What the conditional update below writes: no need to read the item back.
  const done: BatchItem = { ...item, status: 'complete', summary, completedAt: now, updatedAt: now };
  // The progress record goes first: a completer that stops after it is replaced by the next, whose
  // record overwrites it; one that completed the batch has always written one.
  const progress = await recordProgress(ctx, done, now);
  if (!(await ctx.ledger.batches.complete(item.batch, summary, now))) return;
  await announceComplete(ctx, done, progress);
}

/**
 * What the caller that completed a batch does once: logs it, emits its metrics, and prints its
 * output for a `print` sink.
 *
 * @example
 * await announceComplete(ctx, done, progress);
 */
export async function announceComplete(
  ctx: RuntimeContext,
  done: BatchItem,
  progress: BatchProgress,
): Promise<void> {
  const summary = done.summary ?? { inputRecords: done.inputRecords, ...done.counted };
  const now = done.completedAt ?? done.sealedAt;
  const header = {
    batch: done.batch,
    time: done.time,
    inputRecords: summary.inputRecords,
    outputRecords: summary.outputRecords,
    deadLetters: summary.deadLetters,
    processingMs: now - done.sealedAt,
  };
  const schedulingDelayMs = done.sealedAt - done.time;
  ctx.log.info('batch complete', { ...header, schedulingDelayMs, costUsd: progress.costUsd });
  ctx.metrics.batchComplete({
    batch: done.batch,
    inputRecords: summary.inputRecords,
    outputRecords: summary.outputRecords,
    deadLetters: summary.deadLetters,
    processingMs: header.processingMs,
    schedulingDelayMs,
    inputBytes: progress.inputBytes,
    totalDelayMs: progress.totalDelayMs,
    sealMs: progress.sealMs,
    gbSeconds: progress.gbSeconds,
    costUsd: progress.costUsd,
    ...progressTotals(progress),
  });
  for (const sink of ctx.plan.spec.sinks) {
    if (sink.kind !== 'sluice.sink/print@1') continue;
    const output = await readBatchOutput(ctx.objects, outputPrefix(ctx.plan.spec), done, sink.top);
    ctx.print(formatBatch(header, output, sink.top));
  }
}
