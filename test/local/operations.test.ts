import { describe, expect, it } from 'vitest';
import { kinesis, pipeline, utf8 } from '../../lib';
import { batchId } from '../../lib/ids';
import { testPipeline } from '../../local/testing';
import { generateLines, spaceSeparatedCounts, toCountMap } from '../support/corpus';
import { spaceSeparatedWords, wordTotals } from '../support/pipelines';
import { closeAfterEach } from '../support/runs';

const track = closeAfterEach();

const source = kinesis({ stream: 'lines', decode: utf8 });

/** A running word count whose batches take at most 100 records: a batch interval's worth. */
const bounded = pipeline({
  name: 'bounded',
  batchInterval: '10s',
  source,
  maxRecordsPerBatch: 100,
  stages: [spaceSeparatedWords, wordTotals],
});

describe.each([
  { shards: 1, faults: {} },
  { shards: 4, faults: {} },
  { shards: 2, faults: { duplicate: true } },
])('pause and resume ($shards shards, faults $faults)', ({ shards, faults }) => {
  it('seals nothing while paused, then takes a backlog of ten batches in batches within the bound, counts exact', async () => {
    // Arrange
    const t = track(testPipeline(bounded, { shards, faults }));
    const lines = (n: number, seed: number) => generateLines(100, seed, 300).slice(0, n);
    const before = [lines(100, 1), lines(60, 2)];
    const backlog = Array.from({ length: 10 }, (_, i) => lines(100, 10 + i));
    const all = [...before, ...backlog].flat();

    // Act
    const first = [await t.push(before[0] ?? []).advance(), await t.push(before[1] ?? []).advance()];
    const paused = await t.pause('deploying a fix');
    const again = await t.pause('a second pause');
    const whilePaused = [];
    for (const chunk of backlog) whilePaused.push(...(await t.push(chunk).advanceBy(1)));
    const resumed = await t.resume();
    // The intervals of the pause come due at once; what does not fit them rolls into later batches.
    const after = [...(await t.advanceBy(1)), ...(await t.advanceBy(3))];

    // Assert
    expect(first.map((b) => b.inputRecords)).toEqual([100, 60]);
    expect(paused.changed).toBe(true);
    expect(again.changed).toBe(false);
    expect(again.message).toMatch(/already paused since .* \(deploying a fix\)/);
    expect(whilePaused).toEqual([]);
    expect(resumed.changed).toBe(true);
    // Every interval of the pause gets its batch, in order; none over the bound; nothing lost.
    expect(after.map((b) => b.batch)).toEqual(after.map((_, i) => 3 + i));
    expect(after.length).toBeGreaterThanOrEqual(10);
    expect(after.every((b) => b.status === 'complete')).toBe(true);
    expect(Math.max(...after.map((b) => b.inputRecords))).toBeLessThanOrEqual(100);
    expect(after.reduce((sum, b) => sum + b.inputRecords, 0)).toBe(1000);
    expect(toCountMap(after[after.length - 1]?.records ?? [])).toEqual(spaceSeparatedCounts(all));
  });
});

describe('a bound on batch bytes', () => {
  it('spreads a burst over the batches due, a shard at a time, each batch taking at least one segment', async () => {
    // Arrange
    const small = pipeline({
      name: 'bytes',
      batchInterval: '10s',
      source,
      maxBytesPerBatch: 2_000,
      stages: [spaceSeparatedWords, wordTotals],
    });
    const t = track(testPipeline(small, { shards: 2 }));
    const burst = generateLines(600, 7, 300);

    // Act
    await t.pause();
    await t.push(burst.slice(0, 300)).advanceBy(1);
    await t.push(burst.slice(300)).advanceBy(1);
    await t.resume();
    const results = await t.advanceBy(3);

    // Assert: ingest wrote a segment per shard per push, each over the bound: one per batch
    expect(results.map((b) => b.inputRecords).filter((n) => n > 0)).toHaveLength(4);
    expect(results.reduce((sum, b) => sum + b.inputRecords, 0)).toBe(600);
    expect(toCountMap(results[results.length - 1]?.records ?? [])).toEqual(spaceSeparatedCounts(burst));
  });
});

describe('commands that cannot be done', () => {
  it('are refused or say that nothing changed', async () => {
    // Arrange
    const t = track(testPipeline(bounded));
    await t.push(['a b']).advance();

    // Act
    const resume = await t.resume();
    const retry = t.retryBatch(batchId(1));

    // Assert
    expect(resume).toMatchObject({ changed: false, message: 'not paused: nothing to resume' });
    await expect(retry).rejects.toThrow(/batch 1 is complete, not failed/);
  });
});
