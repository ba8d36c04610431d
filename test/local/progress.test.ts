import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { DataFormatError } from '../../lib/errors';
import { readProgress } from '../../lib/runtime/batch-progress';
import { progressKey } from '../../lib/storage/keys';
import { priceRun } from '../../lib/cost/model';
import { US_EAST_1 } from '../../lib/cost/prices';
import { DEFAULT_MEMORY_MB } from '../../lib/deployment';
import { testPipeline } from '../../local/testing';
import wordcount from '../../examples/wordcount/pipeline';
import { countWords, generateLines } from '../support/corpus';
import { closeAfterEach } from '../support/runs';

const track = closeAfterEach();

describe.each([
  { shards: 1, partitions: 1, faults: {} },
  { shards: 2, partitions: 4, faults: {} },
  { shards: 2, partitions: 3, faults: { duplicate: true } },
])(
  'the progress of each batch ($shards shards, $partitions partitions, faults $faults)',
  ({ shards, partitions, faults }) => {
    it('says what the batch took in and gave, phase by phase, and what its tasks did and cost', async () => {
      // Arrange
      const t = track(testPipeline(wordcount, { shards, settings: { partitions }, faults }));
      const batches = [generateLines(400, 3), generateLines(250, 4), []];

      // Act
      const results = [];
      for (const lines of batches) results.push(await t.push(lines).advance());

      // Assert
      for (const [i, result] of results.entries()) {
        const lines = batches[i] ?? [];
        const progress = result.progress;
        expect(progress, `batch ${result.batch}`).toBeDefined();
        if (!progress) continue;
        const words = [...countWords(lines).values()].reduce((a, b) => a + b, 0);
        expect(progress).toMatchObject({
          kind: 'sluice.progress@1',
          batch: result.batch,
          time: result.time,
          inputRecords: lines.length,
          outputRecords: countWords(lines).size,
          deadLetters: 0,
          schedulingDelayMs: result.schedulingDelayMs,
        });
        // As written ahead to segments: the records' bytes and their framing.
        const raw = lines.reduce((sum, line) => sum + Buffer.byteLength(line), 0);
        expect(progress.inputBytes).toBeGreaterThanOrEqual(raw);
        // The manual clock stands still while a batch runs.
        expect(progress.processingMs).toBe(0);
        expect(progress.totalDelayMs).toBe(progress.schedulingDelayMs + progress.processingMs);
        expect(progress.inputRate).toBeCloseTo(lines.length / 10, 9);
        const [tokenize, count] = progress.phases;
        expect(tokenize).toMatchObject({ function: 'tokenize', recordsIn: lines.length });
        expect(count).toMatchObject({ function: 'count', recordsOut: countWords(lines).size });
        // The tokenize tasks emit pre-combined pairs: at most one per word per task, at least one per word.
        if (lines.length > 0) {
          expect(tokenize?.recordsOut).toBeGreaterThanOrEqual(countWords(lines).size);
          expect(tokenize?.recordsOut).toBeLessThanOrEqual(words);
          expect(tokenize?.taskMs.min).toBeLessThanOrEqual(tokenize?.taskMs.median ?? 0);
          expect(tokenize?.taskMs.median).toBeLessThanOrEqual(tokenize?.taskMs.max ?? 0);
          expect(progress.requests['s3:PutObject']).toBeGreaterThan(0);
          expect(progress.readUnits).toBeGreaterThan(0);
          expect(progress.costUsd).toBeGreaterThan(0);
        }
      }
    });
  },
);

describe('the progress of a run', () => {
  it("prices its batches' tasks no higher than the whole run's functions", async () => {
    // Arrange
    const t = track(testPipeline(wordcount, { shards: 2 }));

    // Act
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await t.push(generateLines(300, 10 + i)).advance());

    // Assert: the tasks are part of the run; ingest, the coordinator and the writes after each
    // report are not in the batches' records
    const batchCost = results.reduce((sum, r) => sum + (r.progress?.costUsd ?? 0), 0);
    const runCost = priceRun(await t.usage(), US_EAST_1, DEFAULT_MEMORY_MB).total;
    expect(batchCost).toBeGreaterThan(0);
    expect(batchCost).toBeLessThan(runCost);
  });
});

describe('a progress record that is not one', () => {
  it('is refused where it is read, naming the batch', async () => {
    // Arrange
    const t = track(testPipeline(wordcount));
    const first = await t.push(['a b']).advance();
    const run = await t.local();
    await run.clients.s3.send(
      new PutObjectCommand({
        Bucket: run.resources.bucket,
        Key: progressKey(first.batch),
        Body: '{"kind":"sluice.progress@9"}',
      }),
    );

    // Act
    const attempt = readProgress(run.ctx, first.batch);

    // Assert
    await expect(attempt).rejects.toThrow(DataFormatError);
    await expect(attempt).rejects.toThrow(/progress record of batch 1 is not a sluice.progress@1 record/);
  });
});
