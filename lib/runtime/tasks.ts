import { decodeRun } from '../encoding/shuffle';
import { unencodable, UnencodableValueError } from '../encoding/value';
import type { KeyedState } from '../dsl/types';
import type { StateTable } from '../state/table';
import { InvalidInputError, NotReadyError, RecordFailedError, type ErrorScope } from '../errors';
import { batchId, partitionId, type BatchId, type TaskId } from '../ids';
import { parseManifest, type Manifest, type Slice } from '../manifest';
import { assertSamePlan, outputPrefix, type CompiledPhase } from '../plan';
import { deadLetterKey, manifestKey, outputKey, shuffleKey } from '../storage/keys';
import type { TaskReport } from '../storage/ledger';
import { OutputCollector, ShuffleBuffer, ShuffleMerger } from './buffers';
import { NO_KEY, PhaseRunner, runSlice, type DeadLetter } from './datapath';
import type { RuntimeContext } from './context';
import type { TaskEvent } from './events';
import { toJsonLine, toJsonLines } from './output';
import { onTaskError } from './failure';
import { advance, invokeTasks } from './progress';

export type { DeadLetter } from './datapath';
import {
  commitState,
  loadState,
  prepareState,
  skipState,
  stateCommitted,
  StateAlreadyCommitted,
  type PendingState,
} from './stateful';

/** Reads and checks a batch's manifest. */
async function loadManifest(ctx: RuntimeContext, batch: BatchId, scope: ErrorScope): Promise<Manifest> {
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
  let report = await ctx.ledger.taskReport(event.batch, event.phase, event.task);
  if (
    report?.pendingState &&
    (await stateCommitted(ctx.state, phase.spec.function, event.task, event.batch))
  ) {
    // A run that committed the state stopped before marking its report final.
    report = { ...report, pendingState: false };
    await ctx.ledger.putTaskReport(report);
  }
  if (!report || report.pendingState) {
    if (event.skip) {
      report = await skipTask(ctx, phase, event, scope);
    } else {
      // Only a task that has work to do reads its manifest: a duplicate of a finished one just reports.
      const manifest = await loadManifest(ctx, event.batch, scope);
      report = await executeAndReport(ctx, manifest, phase, event, scope);
    }
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
  if (state) await startWaitingSuccessor(ctx, event);
  return report;
}

/** A stateful task of a skipping batch: its partition's state moves past the batch (`skipState`). */
async function skipTask(
  ctx: RuntimeContext,
  phase: CompiledPhase,
  event: TaskEvent,
  scope: ErrorScope,
): Promise<TaskReport> {
  if (!phase.wide?.stateful) {
    throw new InvalidInputError(`phase ${event.phase} keeps no state: it has nothing to skip`, scope);
  }
  await skipState(ctx.state, phase.spec.function, event.task, event.batch, scope);
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
  await ctx.ledger.putTaskReport(report);
  await startWaitingSuccessor(ctx, event);
  return report;
}

/**
 * The same partition of the next batch may have started before this one committed, found the
 * state not ready and be waiting on its retries (a minute or more on Lambda). Starting it again now
 * keeps stateful pipelines moving at the batch interval; a duplicate is harmless.
 */
async function startWaitingSuccessor(ctx: RuntimeContext, event: TaskEvent): Promise<void> {
  const next = await ctx.ledger.batch(batchId(event.batch + 1));
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

async function execute(
  ctx: RuntimeContext,
  manifest: Manifest,
  phase: CompiledPhase,
  task: TaskId,
  scope: ErrorScope,
): Promise<{ report: TaskReport; state?: PendingState }> {
  const index = phase.spec.phase;
  const next = ctx.plan.phases[index + 1];
  const dead = new DeadLetters(ctx, scope);
  const base = { batch: manifest.batch, phase: index, task };
  const runner = new PhaseRunner({
    phase,
    next,
    decoder: ctx.pipeline.source.decoder,
    stream: ctx.pipeline.source.spec.stream,
    eventTime: manifest.eventTime ?? null,
    batchTime: manifest.time,
    where: base,
    onDeadLetter: (entry, error) => dead.add(entry, error),
  });
  const terminal = runner.terminal;

  const read: { records: number; bytes: number; state?: PendingState } =
    index === 0
      ? await readSegments(ctx, manifest, task, scope, runner)
      : await reduceInput(ctx, manifest, phase, task, scope, runner);
  if (index > 0 && read.records === 0 && phase.wide?.whenEmpty) {
    for (const value of phase.wide.whenEmpty()) runner.record(value, null, NO_KEY);
  }

  // Everything is encoded before anything is written: what cannot be encoded becomes a dead
  // letter, and the dead letters are written first.
  const encoded = terminal instanceof ShuffleBuffer ? terminal.encode() : undefined;
  const lines = terminal instanceof OutputCollector ? encodeOutput(terminal.records, runner) : undefined;

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
  const withState = (report: TaskReport): { report: TaskReport; state?: PendingState } =>
    read.state ? { report, state: read.state } : { report };

  if (encoded && terminal instanceof ShuffleBuffer) {
    const key = shuffleKey(manifest.batch, index, task);
    if (encoded.withData.length > 0) {
      await ctx.objects.put(key, encoded.body);
      bytesWritten += encoded.body.length;
    }
    return withState({
      ...common,
      ...(terminal.maxEventTime === null ? {} : { maxEventTime: terminal.maxEventTime }),
      recordsOut: terminal.records,
      withData: encoded.withData,
      ...(encoded.withData.length > 0 ? { shuffle: key, index: encoded.index } : {}),
      bytesWritten,
    });
  }
  const { records, body } = lines ?? { records: [], body: Buffer.alloc(0) };
  let output: string | undefined;
  if (records.length > 0) {
    output = outputKey(outputPrefix(ctx.plan.spec), manifest.batch, partitionId(task));
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
  return withState({
    ...common,
    recordsOut: records.length,
    withData: [],
    ...(output ? { output } : {}),
    bytesWritten,
  });
}

/**
 * The output as JSON Lines, record by record: a record JSON would change (NaN, a Map, a function)
 * is dead-lettered instead of written, and sinks get exactly the records that were written.
 */
function encodeOutput(all: readonly unknown[], runner: PhaseRunner): { records: unknown[]; body: Buffer } {
  const records: unknown[] = [];
  let text = '';
  for (const record of all) {
    let line: string;
    try {
      line = toJsonLine(record);
    } catch (error) {
      runner.outputRefused(record, error);
      continue;
    }
    records.push(record);
    text += `${line}\n`;
  }
  return { records, body: Buffer.from(text, 'utf8') };
}

/** Reads a transform task's slices with one ranged GET each and feeds their records in order. */
async function readSegments(
  ctx: RuntimeContext,
  manifest: Manifest,
  task: TaskId,
  scope: ErrorScope,
  runner: PhaseRunner,
): Promise<{ records: number; bytes: number }> {
  const slices: readonly Slice[] | undefined = manifest.tasks[task];
  if (!slices) throw new InvalidInputError(`batch ${manifest.batch} has no task ${task}`, scope);
  let records = 0;
  let bytes = 0;
  for (const slice of slices) {
    const body = await ctx.objects.getRange(slice.segment, slice.start, slice.end, scope);
    bytes += body.length;
    records += runSlice(runner, body, slice);
  }
  return { records, bytes };
}

/**
 * Reads this partition's run from every previous-phase task that has one and merges per key (in
 * task order, so the merge order is fixed); then feeds the keyed stage's output records, or, for a
 * stateful stage, applies the batch to the partition's state and feeds what the operator emits.
 * Keys whose merge or state function threw, and states that cannot be kept, become dead letters.
 */
async function reduceInput(
  ctx: RuntimeContext,
  manifest: Manifest,
  phase: CompiledPhase,
  partition: TaskId,
  scope: ErrorScope,
  runner: PhaseRunner,
): Promise<{ records: number; bytes: number; state?: PendingState }> {
  const wide = phase.wide;
  if (!wide) throw new InvalidInputError(`phase ${phase.spec.phase} has no keyed stage`, scope);
  const stage = phase.spec.function;
  const partitions = phase.spec.partitions ?? 1;
  // State first: if the previous batch is not applied yet there is no point reading the shuffle.
  const loaded = wide.stateful
    ? await loadState(ctx.state, stage, partition, partitions, manifest.batch, wide.stateful, scope)
    : undefined;
  const reports = await ctx.ledger.taskReports(manifest.batch, phase.spec.phase - 1);
  const merger = new ShuffleMerger(wide);
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
  for (const failure of merger.failures()) runner.mergeFailed(failure);
  if (!wide.stateful || !loaded) {
    const expand = wide.expand;
    if (expand) {
      for (const { key, combiner } of merger.entries())
        expand(key, combiner, (record) => runner.record(record, null, key));
    } else {
      for (const { key, record } of merger.outputs()) runner.record(record, null, key);
    }
    return { records: pairs, bytes };
  }
  const { head, table, before } = loaded;
  wide.stateful.apply(
    merger.entries(),
    checkedState(table),
    {
      batch: manifest.batch,
      time: manifest.time,
      intervalMs: ctx.pipeline.batchIntervalMs,
      eventTime: manifest.eventTime ?? null,
    },
    (record) => runner.record(record, null, NO_KEY),
    (key, error, detail) => runner.stateFailed(key, error, detail),
  );
  return {
    records: pairs,
    bytes,
    state: prepareState(
      stage,
      partition,
      manifest.batch,
      head,
      table,
      before,
      head.meta,
      (key, value, error) => runner.stateFailed(key, error, { state: value }),
    ),
  };
}

/**
 * The state as operators see it: a value that cannot be encoded is refused where it is set, inside
 * the operator's per-key work, which hands the key to its dead letter (see `KeyFailure`).
 */
function checkedState(table: StateTable): KeyedState {
  return {
    get: (key) => table.get(key),
    set: (key, value) => {
      const reason = unencodable(value);
      if (reason !== undefined) throw new UnencodableValueError(reason);
      table.set(key, value);
    },
    delete: (key) => table.delete(key),
    values: () => table.values(),
  };
}
