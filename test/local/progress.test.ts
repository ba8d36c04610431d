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
import { eventTimeWindow, json, kinesis, map, pipeline, reduceByKey, transform, type Pair } from '../../lib';
import { countWords, generateLines } from '../support/corpus';
import { runningCount } from '../support/pipelines';
import { closeAfterEach } from '../support/runs';

const track = closeAfterEach();

interface Reading {
  readonly sensor: string;
  readonly celsius: number;
  readonly at: number;
}

const reading = (at: number): Reading => ({ sensor: 'a', celsius: 1, at });

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
          kind: 'sluice.progress@2',
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

describe.each([{ partitions: 1 }, { partitions: 4 }])(
  'the state in the progress of a stateful pipeline ($partitions partitions)',
  ({ partitions }) => {
    it('counts the keys after each batch as an oracle does, and reads back what the batch before wrote', async () => {
      // Arrange
      const t = track(testPipeline(runningCount, { settings: { partitions } }));
      const batches = [['a b c', 'a d'], ['e f', 'a'], [], ['g h i j k']];
      const seen = new Set<string>();

      // Act
      const results = [];
      for (const lines of batches) results.push(await t.push(lines).advance());

      // Assert
      let bytesBefore = 0;
      for (const [i, result] of results.entries()) {
        for (const line of batches[i] ?? []) for (const word of line.split(' ')) seen.add(word);
        const [state] = result.progress?.state ?? [];
        expect(state, `batch ${result.batch}`).toMatchObject({ stage: 'running', keys: seen.size });
        if (!state) continue;
        expect(state.bytes).toBeGreaterThan(0);
        expect(state.chunks).toBeGreaterThanOrEqual(1);
        expect(state.chunksWritten).toBeLessThanOrEqual(state.chunks);
        // A partition loads the chunks the batch before committed: the same bytes.
        expect(state.bytesRead).toBe(bytesBefore);
        bytesBefore = state.bytes;
      }
      // Only chunks whose keys changed are written: none in a batch without input, whose counts
      // stay as they were.
      expect(results[2]?.progress?.state[0]?.chunksWritten).toBe(0);
      expect(results[3]?.progress?.state[0]?.chunksWritten).toBeGreaterThan(0);
    });
  },
);

describe('dead letters in the progress of a batch', () => {
  it('are counted by kind: records that do not decode, and records stage code throws on', async () => {
    // Arrange
    const words = pipeline({
      name: 'words',
      batchInterval: '10s',
      source: kinesis({ stream: 'lines', decode: json<{ text: string }>() }),
      stages: [
        transform<{ text: string }, string, number>('split', ({ text }, emit) => {
          if (text === 'boom') throw new Error('cannot take boom');
          for (const word of text.split(' ')) emit(word, 1);
        }),
        reduceByKey<string, number>('count', (a, b) => a + b),
      ],
    });
    const t = track(testPipeline(words));
    const records = [{ text: 'a b' }, { text: 'boom' }, { text: 'c' }, { text: 'boom' }];
    const raw = [...records.map((r) => JSON.stringify(r)), '{not json', 'also not json'];

    // Act
    const result = await t.pushRaw(raw.map((text) => Buffer.from(text))).advance();

    // Assert
    expect(result.progress?.deadLetters).toBe(4);
    expect(result.progress?.deadLettersByKind).toEqual({ decode: 2, stage: 2 });
  });
});

describe('event time in the progress of a batch', () => {
  it("says each batch's lowest and highest event time and the watermark it ran with", async () => {
    // Arrange
    const stage = eventTimeWindow<string, Reading, number, number>('per-minute', {
      timestamp: ([, r]) => r.at,
      length: '1m',
      lateness: '30s',
      aggregate: {
        create: (r) => r.celsius,
        add: (s, r) => s + r.celsius,
        merge: (a, b) => a + b,
        result: (s) => s,
      },
    });
    const readings = pipeline({
      name: 'readings',
      batchInterval: '10s',
      source: kinesis({ stream: 'readings', decode: json<Reading>() }),
      stages: [map<Reading, Pair<string, Reading>>('by-sensor', (r) => [r.sensor, r]), stage],
    });
    const t = track(testPipeline(readings, { settings: { partitions: 2 } }));

    // Act
    const b1 = await t.push([reading(10_000), reading(50_000)]).advance();
    const b2 = await t.push([reading(80_000), reading(40_000)]).advance();
    const b3 = await t.advance();

    // Assert: a batch's watermark is the high of the batches before it less the lateness
    expect(b1.progress).toMatchObject({ eventTimeLow: 10_000, eventTimeHigh: 50_000 });
    expect(b1.progress?.watermark).toBeUndefined();
    expect(b2.progress).toMatchObject({ eventTimeLow: 40_000, eventTimeHigh: 80_000, watermark: 20_000 });
    expect(b3.progress).toMatchObject({ watermark: 50_000 });
    expect(b3.progress?.eventTimeLow).toBeUndefined();
  });
});

describe('the steps of a batch in its progress', () => {
  it('price the ingest of its segments, its sealing pass and its tasks, which add up to its cost', async () => {
    // Arrange
    const t = track(testPipeline(wordcount, { shards: 2 }));

    // Act
    const full = await t.push(generateLines(300, 5)).advance();
    const empty = await t.advance();

    // Assert
    const steps = full.progress?.costByStep;
    expect(steps?.ingest).toBeGreaterThan(0);
    expect(steps?.seal).toBeGreaterThan(0);
    expect(steps?.tasks).toBeGreaterThan(0);
    expect((steps?.ingest ?? 0) + (steps?.seal ?? 0) + (steps?.tasks ?? 0)).toBeCloseTo(
      full.progress?.costUsd ?? 0,
      12,
    );
    // The manual clock stands still while a batch is sealed.
    expect(full.progress?.sealMs).toBe(0);
    // Ingest wrote a segment object per shard that got records, and two ledger items each.
    expect(full.progress?.requests['s3:PutObject']).toBeGreaterThanOrEqual(2);
    expect(empty.progress?.costByStep.ingest).toBe(0);
    expect(empty.progress?.costByStep.seal).toBeGreaterThan(0);
  });
});

describe('the progress of a run', () => {
  it("prices its batches' steps no higher than the whole run's functions", async () => {
    // Arrange
    const t = track(testPipeline(wordcount, { shards: 2 }));

    // Act
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await t.push(generateLines(300, 10 + i)).advance());

    // Assert: the batches' steps are part of the run; the coordinator's passes that seal nothing
    // and the writes after each step's record are not in the batches' records
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
    await expect(attempt).rejects.toThrow(
      /progress record of batch 1 is not a sluice\.progress@2 \(or @1\) record/,
    );
  });
});
