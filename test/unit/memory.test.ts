import { describe, expect, it } from 'vitest';
import { MemoryBudgetError } from '../../lib/errors';
import { batchId, stageId, taskId } from '../../lib/ids';
import {
  checkFits,
  DECODED_EXPANSION,
  estimateBytes,
  memoryBudgetBytes,
  mergePlan,
  shareBudget,
  taskBudget,
} from '../../lib/runtime/memory';

const MIB = 2 ** 20;

describe('memory budgets', () => {
  it.each([
    { memoryMb: 128, budgetMb: 16 },
    { memoryMb: 1024, budgetMb: 464 },
    { memoryMb: 10240, budgetMb: 5072 },
  ])('gives a $memoryMb MiB function $budgetMb MiB for data', ({ memoryMb, budgetMb }) => {
    expect(memoryBudgetBytes(memoryMb)).toBe(budgetMb * MIB);
  });

  it("takes a task's budget from its function's memory, or its kind's default", () => {
    expect(taskBudget({ memoryMb: 128 }, 1)).toBe(16 * MIB);
    expect(taskBudget({}, 0)).toBe(memoryBudgetBytes(1024));
  });

  it('halves the budget between the merge and the outgoing shuffle of a reduce task that shuffles', () => {
    expect(shareBudget(16 * MIB, { reduces: true, shuffles: true })).toEqual({
      input: 8 * MIB,
      shuffle: 8 * MIB,
    });
    expect(shareBudget(16 * MIB, { reduces: true, shuffles: false })).toEqual({
      input: 16 * MIB,
      shuffle: 16 * MIB,
    });
    expect(shareBudget(16 * MIB, { reduces: false, shuffles: true })).toEqual({
      input: 16 * MIB,
      shuffle: 16 * MIB,
    });
  });

  it('estimates sizes from the values alone', () => {
    expect(estimateBytes(7)).toBe(16);
    expect(estimateBytes('hello')).toBe(21);
    expect(estimateBytes([1, 'a'])).toBe(65);
    expect(estimateBytes({ a: 1 })).toBe(48 + 17 + 16);
    expect(estimateBytes(null)).toBe(8);
  });

  it('refuses what would not fit decoded, naming the stage, the partition and the fix', () => {
    const scope = { batch: batchId(3), stage: stageId('count'), task: taskId(2) };
    const budget = 16 * MIB;

    expect(() => checkFits(budget, budget / DECODED_EXPANSION, 'state', scope)).not.toThrow();
    let error: unknown;
    try {
      checkFits(budget, 3 * MIB, 'shuffle input', scope);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MemoryBudgetError);
    const refused = error as MemoryBudgetError;
    expect(refused.message).toBe(
      "the shuffle input of count/2 is 3 MiB encoded, about 30 MiB decoded: over the task's memory budget of 16 MiB",
    );
    expect(refused.retryable).toBe(false);
    expect(refused.hint).toMatch(/more partitions/);
    expect(refused.scope).toEqual(scope);
  });

  it.each([
    { encodedMb: 1, passes: 1, holdRuns: false },
    { encodedMb: 1.6, passes: 1, holdRuns: false },
    // 40 MiB decoded into the 12 MiB the held runs leave: 4 passes.
    { encodedMb: 4, passes: 4, holdRuns: true },
    { encodedMb: 8, passes: 10, holdRuns: true },
    // Past half the budget the runs are read again in each pass, and each pass has it all.
    { encodedMb: 10, passes: 7, holdRuns: false },
    { encodedMb: 100, passes: 63, holdRuns: false },
  ])(
    'merges $encodedMb MiB of shuffle input under 16 MiB in $passes passes (runs held: $holdRuns)',
    ({ encodedMb, passes, holdRuns }) => {
      const plan = mergePlan(16 * MIB, encodedMb * MIB);

      expect(plan).toEqual({ passes, holdRuns });
      // Each pass's share of the keys, decoded, fits beside what is held.
      const held = plan.holdRuns ? encodedMb * MIB : 0;
      expect((encodedMb * MIB * DECODED_EXPANSION) / plan.passes + held).toBeLessThanOrEqual(16 * MIB);
    },
  );
});
