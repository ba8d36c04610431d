import { afterEach, describe, expect, it } from 'vitest';
import { kinesis, pipeline, reduceByKey, transform, updateStateByKey, utf8, type Pipeline } from '../../lib';
import { batchId } from '../../lib/ids';
import { LocalRuntime } from '../../local/runtime';
import { spaceSeparatedCounts, toCountMap } from '../support/corpus';

/**
 * Tasks under their functions' memory budgets, on the emulator: at the smallest Lambda memory
 * (128 MiB: a 16 MiB budget) a transform task's map-side combine of 250,000 distinct words spills
 * and the counts stay exact; one reduce partition that holds them all merges in passes and counts
 * exactly; a stateful partition that would hold them all is refused with the fix, before it is
 * decoded, and the batch fails with the reason.
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
const totals = pipeline({
  name: 'budget-state',
  batchInterval: '10s',
  source,
  stages: [
    words,
    updateStateByKey<string, number, number>(
      'total',
      (values, total) => (total ?? 0) + values.reduce((a, b) => a + b, 0),
      { partitions: 1 },
    ),
  ],
});

/** 250,000 distinct words, each twice, 100 to a line. */
const DISTINCT = 250_000;
const lines: string[] = [];
for (let i = 0; i < 2 * DISTINCT; i += 100) {
  lines.push(Array.from({ length: 100 }, (_, j) => `w${(i + j) % DISTINCT}`).join(' '));
}

describe('tasks under a memory budget', () => {
  const runs: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((run) => run.stop()));
  });
  const start = async <Out>(toRun: Pipeline<string, Out>): Promise<LocalRuntime<string, Out>> => {
    const run = await LocalRuntime.start(toRun, { taskMemorySize: 128, shards: 1 });
    runs.push(run);
    return run;
  };

  it('spills the map-side combine past the budget and counts exactly', async () => {
    // Arrange
    const run = await start(counted(4));
    await run.push(lines);

    // Act
    const [result] = await run.advance();
    const reports = await run.ctx.ledger.reports.list(batchId(1), 0);

    // Assert
    expect(result?.status, result?.failure).toBe('complete');
    expect(toCountMap(result?.records ?? [])).toEqual(spaceSeparatedCounts(lines));
    expect(reports.reduce((sum, report) => sum + (report.spills ?? 0), 0)).toBeGreaterThan(0);
  }, 120_000);

  it('merges a reduce partition over its budget in passes and counts exactly', async () => {
    // Arrange
    const run = await start(counted(1));
    await run.push(lines);

    // Act
    const [result] = await run.advance();
    const [reduced] = await run.ctx.ledger.reports.list(batchId(1), 1);

    // Assert
    expect(result?.status, result?.failure).toBe('complete');
    expect(toCountMap(result?.records ?? [])).toEqual(spaceSeparatedCounts(lines));
    expect(reduced?.mergePasses).toBeGreaterThan(1);
    expect(reduced?.recordsIn).toBe(reports(await run.ctx.ledger.reports.list(batchId(1), 0)));
  }, 120_000);

  it('refuses a stateful partition that would not fit, saying what to do, and fails the batch', async () => {
    // Arrange
    const run = await start(totals);
    await run.push(lines);

    // Act
    const [result] = await run.advance();

    // Assert
    expect(result?.status).toBe('failed');
    expect(result?.failure).toMatch(
      /the shuffle input of total\/0 is \d+ MiB encoded, about \d+ MiB decoded: over the task's memory budget of 16 MiB/,
    );
    expect((await run.ctx.ledger.batches.get(batchId(1)))?.failure?.stage).toBe('total');
  }, 120_000);
});

/** The pairs the transform tasks wrote to the shuffle, which the reduce side reads. */
function reports(written: readonly { readonly recordsOut: number }[]): number {
  return written.reduce((sum, report) => sum + report.recordsOut, 0);
}
