import { afterEach, describe, expect, it } from 'vitest';
import { kinesis, pipeline, reduceByKey, transform, utf8 } from '../../lib';
import { batchId } from '../../lib/ids';
import { LocalRuntime } from '../../local/runtime';
import { spaceSeparatedCounts, toCountMap } from '../support/corpus';

/**
 * Tasks under their functions' memory budgets, on the emulator: at the smallest Lambda memory
 * (128 MiB: a 16 MiB budget) a transform task's map-side combine of 250,000 distinct words spills
 * and the counts stay exact; one reduce partition that would hold them all is refused with the fix,
 * before it is decoded, and the batch fails with the reason; four partitions hold them.
 */

const source = kinesis({ stream: 'lines', decode: utf8 });
const words = transform<string, string, number>('words', (line, emit) => {
  for (const word of line.split(' ')) if (word) emit(word, 1);
});
const counted = (partitions: number) =>
  pipeline({
    name: 'budget',
    batchInterval: '10s',
    source,
    stages: [words, reduceByKey<string, number>('count', (a, b) => a + b, { partitions })],
  });

/** 250,000 distinct words, each twice, 100 to a line. */
const DISTINCT = 250_000;
const lines: string[] = [];
for (let i = 0; i < 2 * DISTINCT; i += 100) {
  lines.push(Array.from({ length: 100 }, (_, j) => `w${(i + j) % DISTINCT}`).join(' '));
}

describe('tasks under a memory budget', () => {
  const runs: LocalRuntime<string, [string, number]>[] = [];
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((run) => run.stop()));
  });
  const start = async (partitions: number): Promise<LocalRuntime<string, [string, number]>> => {
    const run = await LocalRuntime.start(counted(partitions), { taskMemorySize: 128, shards: 1 });
    runs.push(run);
    return run;
  };

  it('spills the map-side combine past the budget and counts exactly', async () => {
    // Arrange
    const run = await start(4);
    await run.push(lines);

    // Act
    const [result] = await run.advance();
    const reports = await run.ctx.ledger.reports.list(batchId(1), 0);

    // Assert
    expect(result?.status, result?.failure).toBe('complete');
    expect(toCountMap(result?.records ?? [])).toEqual(spaceSeparatedCounts(lines));
    expect(reports.reduce((sum, report) => sum + (report.spills ?? 0), 0)).toBeGreaterThan(0);
  }, 120_000);

  it('refuses a reduce partition that would not fit, saying what to do, and fails the batch', async () => {
    // Arrange
    const run = await start(1);
    await run.push(lines);

    // Act
    const [result] = await run.advance();

    // Assert
    expect(result?.status).toBe('failed');
    expect(result?.failure).toMatch(
      /the shuffle input of count\/0 is \d+ MiB encoded, about \d+ MiB decoded: over the task's memory budget of 16 MiB/,
    );
    expect((await run.ctx.ledger.batches.get(batchId(1)))?.failure?.stage).toBe('count');
  }, 120_000);
});
