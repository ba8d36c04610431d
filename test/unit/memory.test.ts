import { describe, expect, it } from 'vitest';
import { MemoryBudgetError } from '../../lib/errors';
import { batchId, stageId, taskId } from '../../lib/ids';
import {
  checkFits,
  DECODED_EXPANSION,
  estimateBytes,
  memoryBudgetBytes,
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
});
