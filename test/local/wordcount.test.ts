import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import { testPipeline, type BatchResult, type TestPipeline } from '../../local/testing';
import type { FaultOptions } from '../../local/faults';
import { countWords, generateLines, sortedEntries, toCountMap } from '../support/corpus';

interface Case {
  readonly name: string;
  readonly shards: number;
  readonly partitions: number;
  readonly tasks: number;
  readonly lines: number;
  readonly batches: number;
  readonly faults: FaultOptions;
}

const cases: Case[] = [
  {
    name: 'clean, 4 shards, 4 tasks, 4 partitions',
    shards: 4,
    partitions: 4,
    tasks: 4,
    lines: 30_000,
    batches: 4,
    faults: {},
  },
  {
    name: 'every invocation delivered twice',
    shards: 4,
    partitions: 4,
    tasks: 6,
    lines: 30_000,
    batches: 4,
    faults: { duplicate: true },
  },
  {
    name: 'random crashes before, between and after writes',
    shards: 4,
    partitions: 4,
    tasks: 4,
    lines: 12_000,
    batches: 3,
    faults: { crash: 0.25, seed: 11 },
  },
  {
    name: 'duplicates and crashes together',
    shards: 3,
    partitions: 5,
    tasks: 5,
    lines: 8_000,
    batches: 3,
    faults: { duplicate: true, crash: 0.2, seed: 5 },
  },
  {
    name: 'one shard, one partition, one task',
    shards: 1,
    partitions: 1,
    tasks: 1,
    lines: 5_000,
    batches: 2,
    faults: {},
  },
  {
    name: 'more partitions than keys in a batch',
    shards: 2,
    partitions: 64,
    tasks: 8,
    lines: 400,
    batches: 2,
    faults: {},
  },
];

describe.each(cases)('word count on the emulator: $name', (c) => {
  const lines = generateLines(c.lines, c.lines + c.shards);
  const perBatch = Math.ceil(lines.length / c.batches);
  const chunks = Array.from({ length: c.batches }, (_, i) => lines.slice(i * perBatch, (i + 1) * perBatch));
  let t: TestPipeline<string, [string, number]>;
  const results: BatchResult<[string, number]>[] = [];

  beforeAll(async () => {
    t = testPipeline(wordcount, {
      shards: c.shards,
      faults: c.faults,
      settings: { partitions: c.partitions, tasks: { max: c.tasks, targetBytes: 1 } },
    });
    for (const chunk of chunks) results.push(await t.push(chunk).advance());
    results.push(await t.advance());
  });
  afterAll(async () => {
    await t.close();
  });

  it('completes every batch', () => {
    expect(results.map((r) => r.status)).toEqual(results.map(() => 'complete'));
  });

  it('takes every record into exactly one batch', () => {
    expect(results.map((r) => r.inputRecords)).toEqual([...chunks.map((ch) => ch.length), 0]);
  });

  it('counts each batch exactly as an independent count of its lines', () => {
    chunks.forEach((chunk, i) => {
      const batch = results[i] as BatchResult<[string, number]>;
      expect(sortedEntries(toCountMap(batch.records))).toEqual(sortedEntries(countWords(chunk)));
    });
  });

  it('counts the whole input exactly', () => {
    const total = new Map<string, number>();
    for (const r of results) for (const [w, n] of r.records) total.set(w, (total.get(w) ?? 0) + n);
    expect(sortedEntries(total)).toEqual(sortedEntries(countWords(lines)));
  });

  it('splits batches into the asked number of transform tasks, at most one per input block', async () => {
    const run = await t.local();
    const first = await run.ctx.ledger.batches.get((results[0] as BatchResult<[string, number]>).batch);
    // 8 KiB blocks: a batch of a few hundred short lines has fewer blocks than tasks asked for.
    if (c.lines >= 5_000) expect(first?.tasks).toBe(c.tasks);
    else expect(first?.tasks).toBeLessThanOrEqual(c.tasks);
  });

  it('prints each batch like Spark print()', () => {
    expect(t.printed.length).toBeGreaterThanOrEqual(c.faults.crash ? 1 : results.length);
    expect(t.printed[0]).toMatch(/^-+\nTime: \d+ ms \(batch 1: \d+ records in/);
  });
});
