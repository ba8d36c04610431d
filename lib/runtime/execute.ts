import { RecordFailedError, type ErrorScope } from '../errors';
import type { TaskId } from '../ids';
import type { Manifest } from '../manifest';
import { sealedPhase, type CompiledPhase } from '../plan';
import { deadLetterKey, shuffleKey } from '../storage/keys';
import type { DeadLetterKind, TaskReport } from '../batch';
import type { RuntimeContext } from './context';
import { NO_KEY, PhaseRunner, type DeadLetter } from './datapath';
import { readSegments } from './map-side';
import { toJsonLines } from './output';
import { reduceInput, type ReduceInput } from './reduce-side';
import { takesRecords, writeOutput } from './sinks';
import type { PendingState } from './state-commit';
import { shareBudget, taskBudget } from './memory';

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

  byKind(): Partial<Record<DeadLetterKind, number>> {
    const counts: Partial<Record<DeadLetterKind, number>> = {};
    for (const { kind } of this.entries) counts[kind] = (counts[kind] ?? 0) + 1;
    return counts;
  }
}

/**
 * Does one task's work: reads its input (segment slices in phase 0, shuffle runs after), runs the
 * phase's stages, and writes what it made: dead letters first, then its one shuffle file (or its
 * output). Everything is encoded before anything is written, so what cannot be encoded becomes a
 * dead letter. Returns the report to store and, for a stateful stage, the state to commit after it.
 *
 * @example
 * const { report, state } = await executeTask(ctx, manifest, phase, task, scope);
 */
export async function executeTask(
  ctx: RuntimeContext,
  manifest: Manifest,
  phase: CompiledPhase,
  task: TaskId,
  scope: ErrorScope,
): Promise<{ report: TaskReport; state?: PendingState }> {
  const index = phase.spec.phase;
  const dead = new DeadLetters(ctx, scope);
  const base = { batch: manifest.batch, phase: index, task };
  // Keys go to the partitions the batch was sealed with, which a newer bundle may have changed.
  const next = sealedPhase(ctx.plan.phases[index + 1], manifest);
  const budget = shareBudget(taskBudget(ctx.config, index), {
    reduces: index > 0,
    shuffles: next?.wide !== undefined,
  });
  const runner = new PhaseRunner({
    phase,
    next,
    decoder: ctx.pipeline.source.decoder,
    stream: ctx.pipeline.source.spec.stream,
    watermarkHigh: manifest.watermarkHigh ?? null,
    batchTime: manifest.time,
    where: base,
    onDeadLetter: (entry, error) => dead.add(entry, error),
    memoryBudget: budget.shuffle,
    keepOutput: takesRecords(ctx.pipeline.sinks),
  });

  const read: ReduceInput =
    index === 0
      ? await readSegments(ctx, manifest, task, scope, runner)
      : await reduceInput(ctx, manifest, phase, task, scope, runner, budget.input);
  if (index > 0 && read.records === 0 && phase.wide?.whenEmpty) {
    for (const value of phase.wide.whenEmpty()) runner.record(value, null, NO_KEY);
  }

  const terminal = runner.terminal;
  const made =
    terminal.kind === 'shuffle'
      ? { kind: terminal.kind, buffer: terminal.shuffle, shuffle: terminal.shuffle.encode() }
      : { kind: terminal.kind, output: terminal.output };

  let bytesWritten = 0;
  let deadLetters: string | undefined;
  if (dead.entries.length > 0) {
    const body = toJsonLines(dead.entries);
    deadLetters = deadLetterKey(manifest.batch, index, task);
    await ctx.objects.put(deadLetters, body, 'application/x-ndjson');
    bytesWritten += body.length;
  }
  const common = {
    ...base,
    recordsIn: read.records,
    deadLetters: dead.entries.length,
    ...(dead.entries.length > 0 ? { deadLetterKinds: dead.byKind() } : {}),
    bytesRead: read.bytes,
    ...(deadLetters ? { deadLetterKey: deadLetters } : {}),
    ...(read.state ? { state: read.state.usage } : {}),
    ...(read.quietUntil === undefined ? {} : { quietUntil: read.quietUntil }),
    ...(read.quietHigh === undefined ? {} : { quietHigh: read.quietHigh }),
    ...(read.mergePasses === undefined ? {} : { mergePasses: read.mergePasses }),
  };
  const withState = (report: TaskReport): { report: TaskReport; state?: PendingState } =>
    read.state ? { report, state: read.state } : { report };

  switch (made.kind) {
    case 'shuffle': {
      const { body, index: runs, withData } = made.shuffle;
      const key = shuffleKey(manifest.batch, index, task);
      if (withData.length > 0) {
        await ctx.objects.put(key, body);
        bytesWritten += body.length;
      }
      const { eventTimeHigh: high, eventTimeLow: low } = made.buffer;
      return withState({
        ...common,
        ...(high === null ? {} : { eventTimeHigh: high }),
        ...(low === null ? {} : { eventTimeLow: low }),
        recordsOut: made.buffer.records,
        withData,
        ...(withData.length > 0 ? { shuffle: key, index: runs } : {}),
        bytesWritten,
        ...(made.buffer.spilled > 0 ? { spills: made.buffer.spilled } : {}),
      });
    }
    case 'output': {
      const written = await writeOutput(ctx, manifest.batch, manifest.time, task, made.output);
      return withState({
        ...common,
        recordsOut: made.output.count,
        withData: [],
        ...(written ? { output: written.key } : {}),
        bytesWritten: bytesWritten + (written?.bytes ?? 0),
      });
    }
  }
}
