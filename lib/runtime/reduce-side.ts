import { decodeRun } from '../encoding/shuffle';
import { unencodable, UnencodableValueError } from '../encoding/value';
import type { Quietness } from '../batch';
import type { WideStage } from '../dsl/types';
import { InvalidInputError, type ErrorScope } from '../errors';
import type { TaskId } from '../ids';
import type { Manifest } from '../manifest';
import type { CompiledPhase } from '../plan';
import { dueClock, type KeyedState, type StatefulBatch } from '../state/operator';
import type { StateTable } from '../state/table';
import { ShuffleMerger, type MergePass } from './buffers';
import type { RuntimeContext } from './context';
import { NO_KEY, type PhaseRunner } from './datapath';
import { fetchInOrder, GETS_AHEAD } from './prefetch';
import {
  loadState,
  openState,
  prepareState,
  quietAfter,
  statefulBatch,
  partitionToOpen,
  type PendingState,
} from './state-commit';
import { checkFits, DECODED_EXPANSION, mergePlan, type MergePlan } from './memory';

/**
 * The reduce side of one partition, in memory and without I/O: the partition's runs from every
 * previous-phase task are merged per key as they are added, then `finish` feeds the keyed stage's
 * output records (or, for a stateful stage, applies the batch to the partition's state and feeds
 * what the operator emits) into the runner. Reduce tasks and the data-path benchmark both use it.
 *
 * @example
 * const reduce = new PartitionReduce(phase.wide);
 * for (const run of runs) reduce.addRun(run);
 * reduce.finish(runner);
 */
export class PartitionReduce {
  private readonly merger: ShuffleMerger;
  /** Pairs read from the runs so far (in a pass of several, the pairs of other passes too). */
  pairs = 0;

  constructor(
    private readonly wide: WideStage<unknown, unknown>,
    /** The pass, when the partition is merged in several (`mergePlan`): it merges its keys only. */
    pass?: MergePass,
  ) {
    this.merger = new ShuffleMerger(wide, pass);
  }

  /** The keys merged so far, in the order first seen. */
  *keys(): Generator {
    for (const { key } of this.merger.entries()) yield key;
  }

  /** One run (the partition's byte range of one task's shuffle file); added in task order. */
  addRun(body: Buffer): void {
    this.pairs += decodeRun(body, 0, body.length, this.merger.add);
  }

  /**
   * Feeds the output into the runner. Keys whose merge threw, or whose state function threw, go
   * to the runner's dead letters. `state` is required for a stateful stage and ignored otherwise.
   */
  finish(runner: PhaseRunner, state?: { readonly table: StateTable; readonly batch: StatefulBatch }): void {
    for (const failure of this.merger.failures()) runner.mergeFailed(failure);
    const { stateful, expand } = this.wide;
    if (stateful) {
      if (!state) throw new InvalidInputError(`stage '${this.wide.id}' keeps state: its state is needed`);
      stateful.apply(
        this.merger.entries(),
        checkedState(state.table),
        state.batch,
        (record) => runner.record(record, null, NO_KEY),
        (key, error, detail) => runner.stateFailed(key, error, detail),
      );
    } else if (expand) {
      for (const { key, combiner } of this.merger.entries())
        expand(key, combiner, (record) => runner.record(record, null, key));
    } else {
      this.merger.outputTo(runner);
    }
  }
}

/** What a reduce task read, and for a stateful stage the state to commit once its outputs are written. */
export type ReduceInput = {
  readonly records: number;
  readonly bytes: number;
  readonly state?: PendingState;
  /** How many passes the merge took, when its input did not fit the budget at once. */
  readonly mergePasses?: number;
} & Partial<Quietness>;

/**
 * A reduce task's input: the partition's state head first (if the previous batch is not applied yet
 * there is no point reading the shuffle), then its run from every previous-phase task that wrote
 * one, with one ranged GET each (a few ahead of the one being merged), merged in task order so the
 * merge order is fixed, then the state the merged keys need. A stateless stage's input that would
 * not fit the task's budget decoded is merged in passes (`mergePlan`), each merging and outputting
 * its share of the keys; a stateful stage's is refused with the fix, since its operator takes the
 * batch's keys at once. Returns what was read and, for a stateful stage, the state to commit once
 * the outputs are written.
 *
 * @example
 * const read = await reduceInput(ctx, manifest, phase, partition, scope, runner, budget.input);
 */
export async function reduceInput(
  ctx: RuntimeContext,
  manifest: Manifest,
  phase: CompiledPhase,
  partition: TaskId,
  scope: ErrorScope,
  runner: PhaseRunner,
  /** What the merged input (and the state) may take, bytes (`shareBudget`). */
  budget: number,
): Promise<ReduceInput> {
  const wide = phase.wide;
  if (!wide) throw new InvalidInputError(`phase ${phase.spec.phase} has no keyed stage`, scope);
  const opened = wide.stateful
    ? await openState(ctx.state, partitionToOpen(manifest, phase, partition, wide.stateful, scope))
    : undefined;
  const reports = await ctx.ledger.reports.list(manifest.batch, phase.spec.phase - 1);
  const runs = reports.flatMap((report) => {
    if (!report.shuffle || !report.index || !report.withData.includes(partition)) return [];
    const start = report.index[partition] ?? 0;
    return [{ key: report.shuffle, start, end: report.index[partition + 1] ?? start }];
  });
  const encoded = runs.reduce((sum, run) => sum + run.end - run.start, 0);
  const fetchRun = (run: (typeof runs)[number]): Promise<Buffer> =>
    ctx.objects.getRange(run.key, run.start, run.end, scope);
  if (!opened) {
    const plan = mergePlan(budget, encoded);
    const merged = await mergeInPasses(wide, plan, runs, fetchRun, runner);
    return { ...merged, ...(plan.passes > 1 ? { mergePasses: plan.passes } : {}) };
  }
  // A stateful operator takes the batch's keys at once: refused before it is read if they cannot
  // fit, and state read whole gets what they leave.
  checkFits(budget, encoded, 'shuffle input', scope);
  const stateToLoad = { ...opened, budget: budget - encoded * DECODED_EXPANSION };
  const reduce = new PartitionReduce(wide);
  const bytes = await readRuns(runs, fetchRun, (body) => reduce.addRun(body));
  const batch = statefulBatch(manifest, ctx.pipeline.batchIntervalMs);
  // Due times (the time index) are kept and read by the operator's clock.
  const clock = dueClock(stateToLoad.operator, batch);
  const loaded = await loadState(ctx.state, stateToLoad, reduce.keys(), clock);
  reduce.finish(runner, { table: loaded.table, batch });
  const state = prepareState(stateToLoad, loaded, clock, (key, value, error) =>
    runner.stateFailed(key, error, { state: value }),
  );
  const quiet = await quietAfter(ctx.state, stateToLoad, state, loaded.table, batch);
  return { records: reduce.pairs, bytes, state, ...quiet };
}

/**
 * Merges a stateless keyed stage's runs and feeds its output into the runner, in the passes `plan`
 * says: each pass merges the keys `passOf` gives it and outputs them before the next begins, so
 * what is held decoded is one pass's share of the keys. Runs are read in order, a few ahead; read
 * again in each pass unless the plan holds them. Returns the pairs read and the bytes fetched.
 *
 * @example
 * const { records, bytes } = await mergeInPasses(wide, mergePlan(budget, encoded), runs, fetchRun, runner);
 */
export async function mergeInPasses<Run>(
  wide: WideStage<unknown, unknown>,
  plan: MergePlan,
  runs: readonly Run[],
  fetch: (run: Run) => Promise<Buffer>,
  runner: PhaseRunner,
): Promise<{ records: number; bytes: number }> {
  const held: Buffer[] = [];
  let bytes = 0;
  let records = 0;
  for (let index = 0; index < plan.passes; index++) {
    const reduce = new PartitionReduce(wide, plan.passes > 1 ? { index, of: plan.passes } : undefined);
    if (index > 0 && plan.holdRuns) {
      for (const body of held) reduce.addRun(body);
    } else {
      bytes += await readRuns(runs, fetch, (body) => {
        if (plan.holdRuns) held.push(body);
        reduce.addRun(body);
      });
    }
    reduce.finish(runner);
    // Every pass reads every pair; each merges its own.
    records = reduce.pairs;
  }
  return { records, bytes };
}

/**
 * Reads runs in order, a few ahead of the one being taken (`fetchInOrder`), handing each body to
 * `take`; returns the bytes read.
 */
async function readRuns<Run>(
  runs: readonly Run[],
  fetch: (run: Run) => Promise<Buffer>,
  take: (body: Buffer) => void,
): Promise<number> {
  let bytes = 0;
  await fetchInOrder(runs, GETS_AHEAD, fetch, (_run, body) => {
    bytes += body.length;
    take(body);
  });
  return bytes;
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
