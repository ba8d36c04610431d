import { DEFAULT_MEMORY_MB } from '../deployment';
import { MemoryBudgetError, type ErrorScope } from '../errors';
import type { RuntimeConfig } from './context';

/**
 * A task's memory budget: what its data (the map-side combine, a reduce partition's merged input
 * and state) may take of its function's memory. The rest is the Node runtime and the AWS SDK (about
 * 96 MiB), the encoded shuffle and output being written, and room for the garbage collector.
 */

/** MiB of a function's memory kept for the runtime, the SDK and the code: not for data. */
const RESERVED_MB = 96;
/** Of what is left, the share data may take: the other half is headroom for the collector and buffers. */
const DATA_SHARE = 0.5;
/** The least budget, whatever the memory: a 128 MiB function still combines 16 MiB of keys. */
const MIN_BUDGET_MB = 16;
const MIB = 1024 * 1024;

/**
 * How many times its encoded size data takes once decoded into maps and objects: measured at about
 * 100 bytes a key in memory against about 10 encoded for the state of word counts.
 */
export const DECODED_EXPANSION = 10;

/**
 * The memory budget of a task in a function of `memoryMb` MiB, in bytes.
 *
 * @example
 * memoryBudgetBytes(1024) / 2 ** 20; // 464
 * memoryBudgetBytes(128) / 2 ** 20; // 16
 */
export function memoryBudgetBytes(memoryMb: number): number {
  return Math.max(MIN_BUDGET_MB, Math.floor((memoryMb - RESERVED_MB) * DATA_SHARE)) * MIB;
}

/**
 * The budget of a task of phase `phase` (0: a transform task; after it, a reduce partition), in
 * bytes: from its function's memory, or the default memory of its kind.
 *
 * @example
 * const budget = taskBudget(ctx.config, event.phase);
 */
export function taskBudget(config: Pick<RuntimeConfig, 'memoryMb'>, phase: number): number {
  return memoryBudgetBytes(config.memoryMb ?? DEFAULT_MEMORY_MB[phase === 0 ? 'transform' : 'reduce']);
}

/**
 * A rough, deterministic size of a value in memory, in bytes: what the map-side combine counts
 * against its budget (the same input always spills at the same place, so replays write the same
 * bytes). Numbers and short strings cost about what V8 gives them; objects and arrays their
 * members plus a header.
 *
 * @example
 * estimateBytes('hello'); // 21
 * estimateBytes([1, 'a']); // 65
 */
export function estimateBytes(value: unknown): number {
  switch (typeof value) {
    case 'number':
      return 16;
    case 'string':
      return 16 + value.length;
    case 'bigint':
      return 24;
    case 'object': {
      if (value === null) return 8;
      if (Array.isArray(value))
        return 32 + value.reduce((sum: number, v: unknown) => sum + estimateBytes(v), 0);
      let sum = 48;
      for (const [k, v] of Object.entries(value)) sum += estimateBytes(k) + estimateBytes(v);
      return sum;
    }
    default:
      return 8;
  }
}

/**
 * How a task's budget is shared: a reduce task that shuffles into another keyed stage holds its
 * merged input (and state) and its outgoing map-side combine at once, so each gets half; any other
 * task gives its one map the whole budget.
 *
 * @example
 * const { input, shuffle } = shareBudget(taskBudget(ctx.config, 1), { reduces: true, shuffles: true });
 */
export function shareBudget(
  budget: number,
  task: { readonly reduces: boolean; readonly shuffles: boolean },
): { readonly input: number; readonly shuffle: number } {
  if (task.reduces && task.shuffles) return { input: budget / 2, shuffle: budget / 2 };
  return { input: budget, shuffle: budget };
}

/** How a reduce partition's shuffle input is merged under its budget (`mergePlan`). */
export interface MergePlan {
  /** Passes over the runs, each merging the keys `passOf` gives it: 1 when everything fits at once. */
  readonly passes: number;
  /** Whether the encoded runs are kept between passes (read once) rather than read again in each. */
  readonly holdRuns: boolean;
}

/**
 * How to merge `encodedBytes` of shuffle input within `budget` bytes: in one pass when its keys fit
 * decoded, otherwise in as many passes as it takes for each pass's share of the keys to fit (a
 * hash split, as a grace hash join splits its build side). The encoded runs are kept between
 * passes when they take at most half the budget, and the passes share what is left; past that
 * each pass reads them again. A function of the input's size and the budget alone, so a replay
 * merges in the same passes and writes the same bytes.
 *
 * @example
 * mergePlan(16 * 2 ** 20, 1 * 2 ** 20); // { passes: 1, holdRuns: false }
 * mergePlan(16 * 2 ** 20, 4 * 2 ** 20); // { passes: 4, holdRuns: true }: 40 MiB decoded over 12 MiB
 */
export function mergePlan(budget: number, encodedBytes: number): MergePlan {
  const decoded = encodedBytes * DECODED_EXPANSION;
  if (decoded <= budget) return { passes: 1, holdRuns: false };
  const holdRuns = encodedBytes <= budget / 2;
  const room = holdRuns ? budget - encodedBytes : budget;
  return { passes: Math.ceil(decoded / room), holdRuns };
}

/**
 * Refuses data that would not fit the budget once decoded: `encodedBytes` of `what` (a reduce
 * partition's shuffle input, its state), before it is decoded, so the task fails with the fix rather
 * than the function running out of memory.
 *
 * @example
 * checkFits(budget, runs.reduce((sum, r) => sum + r.end - r.start, 0), 'shuffle input', scope);
 */
export function checkFits(budget: number, encodedBytes: number, what: string, scope: ErrorScope): void {
  const decoded = encodedBytes * DECODED_EXPANSION;
  if (decoded <= budget) return;
  const where = scope.stage === undefined ? '' : ` of ${scope.stage}/${scope.partition ?? scope.task ?? '?'}`;
  throw new MemoryBudgetError(
    `the ${what}${where} is ${mib(encodedBytes)} MiB encoded, about ${mib(decoded)} MiB decoded: over the task's memory budget of ${mib(budget)} MiB`,
    scope,
  );
}

function mib(bytes: number): string {
  return (bytes / MIB).toFixed(bytes < MIB ? 2 : 0);
}
