import { describe, expect, it } from 'vitest';
import {
  kinesis,
  pipeline,
  reduceByKey,
  s3Jsonl,
  transform,
  updateStateByKey,
  utf8,
  type AnyPipeline,
} from '../../lib';
import { batchId } from '../../lib/ids';
import type { Manifest } from '../../lib/manifest';
import { planPipeline } from '../../lib/plan';
import {
  keepsState,
  replayOutputPrefix,
  ReplayError,
  sealedBatchOf,
  segmentsOf,
} from '../../lib/runtime/replay';
import { batchRange, inBatchRange, parseBatchOrTime } from '../../local/batch-range';

const words = transform<string, string, number>('words', (line, emit) => {
  for (const word of line.split(' ')) if (word) emit(word, 1);
});
const counts = planPipeline(
  pipeline({
    name: 'counts',
    batchInterval: '10s',
    source: kinesis({ stream: 'lines', decode: utf8 }),
    stages: [words, reduceByKey<string, number>('count', (a, b) => a + b)],
    sinks: [s3Jsonl({ prefix: 'counts/by-batch' })],
  }) as AnyPipeline,
).spec;
const totals = planPipeline(
  pipeline({
    name: 'totals',
    batchInterval: '10s',
    source: kinesis({ stream: 'lines', decode: utf8 }),
    stages: [
      words,
      updateStateByKey<string, number, number>('totals', (values, s) => (s ?? 0) + values.length),
    ],
  }) as AnyPipeline,
).spec;

const manifest: Manifest = {
  kind: 'sluice.manifest@1',
  pipeline: 'totals',
  batch: batchId(7),
  time: 1_700_000_070_000,
  plan: totals,
  previousCursors: { 'shard-0': { segmentStart: '1', lastSeq: '4' } },
  cursors: { 'shard-0': { segmentStart: '5', lastSeq: '9' } },
  records: 9,
  bytes: 300,
  tasks: [
    [
      {
        segment: 'segments/lines/shard-0/1.seg',
        shard: 'shard-0',
        start: 0,
        end: 100,
        records: 3,
        afterSeq: '4',
      },
      { segment: 'segments/lines/shard-0/5.seg', shard: 'shard-0', start: 0, end: 100, records: 3 },
    ],
    [{ segment: 'segments/lines/shard-0/5.seg', shard: 'shard-0', start: 100, end: 200, records: 3 }],
  ],
  watermarkHigh: 1_700_000_065_000,
  layouts: { totals: { partitions: 4, since: 1 } },
};

describe('a replay output prefix', () => {
  it.each([
    ['replays/2026-12-01', 'replays/2026-12-01'],
    ['/replays/r1/', 'replays/r1'],
    ['counts/by-batch-again', 'counts/by-batch-again'],
    ['counts/other', 'counts/other'],
  ])('%s is taken, as %s', (prefix, taken) => {
    // Act
    const result = replayOutputPrefix(prefix, [counts]);

    // Assert
    expect(result).toBe(taken);
  });

  it.each([
    ['counts', /overlaps the pipeline's own counts\/by-batch\//],
    ['counts/by-batch', /overlaps the pipeline's own counts\/by-batch\//],
    ['counts/by-batch/replays', /overlaps the pipeline's own counts\/by-batch\//],
    ['segments', /overlaps the pipeline's own segments\//],
    ['manifests/x', /overlaps the pipeline's own manifests\//],
    ['shuffle', /overlaps the pipeline's own shuffle\//],
    ['dead-letter/replays', /overlaps the pipeline's own dead-letter\//],
    ['progress', /overlaps the pipeline's own progress\//],
    ['output', /overlaps the pipeline's own output\//],
    ['', /not a usable S3 prefix/],
    ['a//b', /not a usable S3 prefix/],
    ['replays/*', /not a usable S3 prefix/],
  ])('%s is refused', (prefix, why) => {
    // Act
    const refused = (): string => replayOutputPrefix(prefix, [counts, totals]);

    // Assert
    expect(refused).toThrow(ReplayError);
    expect(refused).toThrow(why);
  });
});

describe('a sealed manifest, replayed', () => {
  it('gives the batch item the seal wrote: time, cursors, input, tasks, watermark and layouts', () => {
    // Act
    const item = sealedBatchOf(manifest, 42);

    // Assert
    expect(item).toEqual({
      batch: 7,
      time: 1_700_000_070_000,
      cursors: manifest.cursors,
      previousCursors: manifest.previousCursors,
      inputRecords: 9,
      inputBytes: 300,
      tasks: 2,
      sealedAt: 42,
      updatedAt: 42,
      watermarkFold: { high: 1_700_000_065_000, through: 6 },
      layouts: { totals: { partitions: 4, since: 1 } },
    });
  });

  it('names the segments to copy once each, in manifest order', () => {
    // Act
    const segments = segmentsOf(manifest);

    // Assert
    expect(segments).toEqual(['segments/lines/shard-0/1.seg', 'segments/lines/shard-0/5.seg']);
  });

  it('warms up a plan that keeps state, and not one that keeps none', () => {
    // Act, Assert
    expect(keepsState(totals)).toBe(true);
    expect(keepsState(counts)).toBe(false);
  });
});

describe('one end of a range of batches', () => {
  it.each([
    ['42', { batch: 42 }],
    ['2026-12-01T00:00Z', { time: Date.parse('2026-12-01T00:00Z') }],
    ['1796083200000', { time: 1_796_083_200_000 }],
  ])('%s is read as %o', (value, bound) => {
    // Act
    const read = parseBatchOrTime(value);

    // Assert
    expect(read).toEqual(bound);
  });

  it('is refused when it is neither', () => {
    // Act
    const refused = (): unknown => parseBatchOrTime('yesterday-ish');

    // Assert
    expect(refused).toThrow(/neither a batch number nor a time/);
  });

  it('holds a batch by number or by its time, both ends included', () => {
    // Arrange
    const item = { batch: 4, time: 40_000 };

    // Act, Assert
    expect(inBatchRange(item, { batch: 4 }, { batch: 4 })).toBe(true);
    expect(inBatchRange(item, { time: 40_000 }, { time: 40_000 })).toBe(true);
    expect(inBatchRange(item, { batch: 5 }, undefined)).toBe(false);
    expect(inBatchRange(item, undefined, { time: 39_999 })).toBe(false);
  });

  it('finds the batches of a range by their times, counting expired manifests as before any time', async () => {
    // Arrange: batch n ends at n x 10 s; the manifests of batches 1-3 have expired
    const probed: number[] = [];
    const timeOf = (batch: number): Promise<number> => {
      probed.push(batch);
      return Promise.resolve(batch <= 3 ? Number.NEGATIVE_INFINITY : batch * 10_000);
    };

    // Act
    const byTime = await batchRange(100, timeOf, { time: 45_000 }, { time: 80_000 });
    const byNumber = await batchRange(100, timeOf, { batch: 7 }, undefined);
    const unbounded = await batchRange(100, timeOf, undefined, undefined);

    // Assert
    expect(byTime).toEqual({ from: 5, to: 8 });
    expect(byNumber).toEqual({ from: 7, to: 100 });
    expect(unbounded).toEqual({ from: 1, to: 100 });
    expect(probed.length).toBeLessThan(20);
  });
});
