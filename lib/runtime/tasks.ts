import { InvalidInputError, NotReadyError, type ErrorScope } from '../errors';
import { batchId, type BatchId } from '../ids';
import { parseManifest, type Manifest } from '../manifest';
import { checkSealedPlan, type CompiledPhase } from '../plan';
import { manifestKey } from '../storage/keys';
import type { LateUnits, TaskReport } from '../batch';
import { usageBetween } from '../cost/usage';
import type { RuntimeContext } from './context';
import type { TaskEvent } from './events';
import { executeTask } from './execute';
import { onTaskError } from './failure';
import { driveBatch, invokeTasks } from './progress';
import {
  commitState,
  skipState,
  partitionToOpen,
  statefulBatch,
  stateCommitted,
  StateAlreadyCommitted,
  stateRef,
  type PendingState,
} from './state-commit';

/** Reads and checks a batch's manifest. */
async function loadManifest(ctx: RuntimeContext, batch: BatchId, scope: ErrorScope): Promise<Manifest> {
  const manifest = parseManifest(await ctx.objects.get(manifestKey(batch), scope));
  const rolledForward = checkSealedPlan(manifest.plan, ctx.plan.spec);
  if (rolledForward.length > 0) {
    ctx.log.info('running a batch sealed under an earlier plan', { batch, changes: rolledForward });
  }
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
  // Only a task that has work to do reads its manifest: a duplicate of a finished one just reports.
  const standing = await standingReport(ctx, phase, event);
  const { report, fresh } = standing
    ? { report: standing, fresh: false }
    : event.skip
      ? await skipTask(ctx, phase, event, scope)
      : await executeAndReport(ctx, await loadManifest(ctx, event.batch, scope), phase, event, scope);
  const last = event.phase === ctx.plan.phases.length - 1;
  const late = fresh ? usedSinceReport(ctx, report) : undefined;
  const item = await ctx.ledger.batches.markTaskDone(report, last, ctx.clock.now(), late);
  await driveBatch(ctx, item, { redrive: false });
  return report;
}

/**
 * The task's report, if one stands: where a duplicate or retry of a finished task stops. A report
 * that commits state is written before the commit, so it stands once the partition's head is at
 * the batch; until then the task runs again (and writes the same bytes).
 */
async function standingReport(
  ctx: RuntimeContext,
  phase: CompiledPhase,
  event: TaskEvent,
): Promise<TaskReport | undefined> {
  const stored = await ctx.ledger.reports.get(event.batch, event.phase, event.task);
  if (!stored?.commitsState) return stored;
  const manifest = await loadManifest(ctx, event.batch, { batch: event.batch, task: event.task });
  const ref = stateRef(manifest, phase, event.task);
  return (await stateCommitted(ctx.state, ref, event.batch)) ? stored : undefined;
}

/** The report with what the invocation has used so far, when it is metered. */
function withUsage(ctx: RuntimeContext, report: TaskReport): TaskReport {
  const used = ctx.meter?.current();
  return used ? { ...report, usage: usageBetween(used) } : report;
}

/**
 * The request units this invocation used after taking its report's usage: the report's own put,
 * a stateful partition's commit. The done mark adds them to the batch's counts, so the progress
 * record has them (the mark's own and the completion's units are not counted anywhere).
 */
function usedSinceReport(ctx: RuntimeContext, report: TaskReport): LateUnits | undefined {
  const used = ctx.meter?.current();
  if (!used || !report.usage) return undefined;
  const total = usageBetween(used);
  return {
    readUnits: Math.max(0, total.readUnits - report.usage.readUnits),
    writeUnits: Math.max(0, total.writeUnits - report.usage.writeUnits),
  };
}

/** A task's report, and whether this invocation made it (or found another's standing). */
interface Reported {
  readonly report: TaskReport;
  readonly fresh: boolean;
}

async function executeAndReport(
  ctx: RuntimeContext,
  manifest: Manifest,
  phase: CompiledPhase,
  event: TaskEvent,
  scope: ErrorScope,
): Promise<Reported> {
  let result: { report: TaskReport; state?: PendingState };
  try {
    result = await executeTask(ctx, manifest, phase, event.task, scope);
  } catch (error) {
    if (!(error instanceof StateAlreadyCommitted)) throw error;
    // A duplicate committed this batch's state; its report (written before its commit) stands.
    const theirs = await ctx.ledger.reports.get(event.batch, event.phase, event.task);
    if (!theirs)
      throw new NotReadyError(`state of batch ${event.batch} committed but its report not found`, scope);
    return { report: theirs, fresh: false };
  }
  const report = withUsage(ctx, result.report);
  const { state } = result;
  if (!state) {
    await ctx.ledger.reports.put(report);
    return { report, fresh: true };
  }
  // Outputs are written; the report is stored (once) before the state is committed, so a run that
  // stops after the commit is finished by any replay without computing again.
  const committing: TaskReport = { ...report, commitsState: true };
  await ctx.ledger.reports.put(committing);
  await commitState(ctx.state, state);
  await startWaitingSuccessor(ctx, event);
  return { report: committing, fresh: true };
}

/** A stateful task of a skipping batch: its partition's state moves past the batch (`skipState`). */
async function skipTask(
  ctx: RuntimeContext,
  phase: CompiledPhase,
  event: TaskEvent,
  scope: ErrorScope,
): Promise<Reported> {
  const operator = phase.wide?.stateful;
  if (!operator) {
    throw new InvalidInputError(`phase ${event.phase} keeps no state: it has nothing to skip`, scope);
  }
  const manifest = await loadManifest(ctx, event.batch, scope);
  await skipState(
    ctx.state,
    partitionToOpen(manifest, phase, event.task, operator, scope),
    statefulBatch(manifest, ctx.pipeline.batchIntervalMs),
  );
  const report: TaskReport = {
    batch: event.batch,
    phase: event.phase,
    task: event.task,
    withData: [],
    recordsIn: 0,
    recordsOut: 0,
    deadLetters: 0,
    bytesRead: 0,
    bytesWritten: 0,
    skipped: true,
  };
  const stored = withUsage(ctx, report);
  await ctx.ledger.reports.put(stored);
  await startWaitingSuccessor(ctx, event);
  return { report: stored, fresh: true };
}

/**
 * The same partition of the next batch may have started before this one committed, found the
 * state not ready and be waiting on its retries (a minute or more on Lambda). Starting it again now
 * keeps stateful pipelines moving at the batch interval; a duplicate is harmless.
 */
async function startWaitingSuccessor(ctx: RuntimeContext, event: TaskEvent): Promise<void> {
  const next = await ctx.ledger.batches.get(batchId(event.batch + 1));
  if (!next || (next.status !== 'sealed' && next.status !== 'skipping')) return;
  const skipping = next.status === 'skipping';
  // A skipping batch starts its stateful partitions without recording them as expected.
  const started = skipping || (next.expected[event.phase]?.includes(event.task) ?? false);
  const done = next.done[event.phase]?.includes(event.task) ?? false;
  if (started && !done) await invokeTasks(ctx, next.batch, event.phase, [event.task], skipping);
}

/**
 * Runs a task as a function invocation does, on Lambda and locally alike. A failure goes through the
 * failure policy (`onTaskError`): a permanent one, or a transient one past the retry budget, fails
 * the batch and the attempt ends without an error (retrying cannot help, and the batch's `failed`
 * status is what operators and alarms look at); a transient one within budget, or an ordering wait,
 * is rethrown so that asynchronous retries (Lambda's, or the local invoker's) re-drive the task.
 *
 * @example
 * await handleTask(ctx, parseTaskEvent(event));
 */
export async function handleTask(ctx: RuntimeContext, event: TaskEvent): Promise<void> {
  try {
    await runTask(ctx, event);
  } catch (error) {
    await onTaskError(ctx, event, error);
  }
}
