import { describe, expect, it } from 'vitest';
import { kinesis, mapWithState, pipeline, utf8, type Pair, type WideStage } from '../../lib';
import type { BatchProgress } from '../../lib/runtime/batch-progress';
import { KEYED_CHUNK_SPLIT_BYTES } from '../../lib/runtime/state-commit';
import { stageId } from '../../lib/ids';
import { DATA_FORMATS } from '../../lib/encoding/formats';
import { StateTable } from '../../lib/state/table';
import type { KeyedHead, SlottedHead, StatePartition } from '../../lib/storage/state-store';
import type { FaultOptions } from '../../local/faults';
import { testPipeline } from '../../local/testing';
import { canonicalBatches, mapWithStateOracle } from '../support/oracle';
import { closeAfterEach } from '../support/runs';
import { spaceSeparatedWords, visits, type Visit } from '../support/pipelines';

/**
 * mapWithState in the keyed state layout: a batch loads and writes only the chunks of the keys it
 * touches and of the keys the time index says are due; a state large enough to split its chunks,
 * timeouts of thousands of keys at once, against the model, under faults.
 */

const source = kinesis({ stream: 'visits', decode: utf8 });
const words = spaceSeparatedWords;

const PARTITIONS = 2;
const KEYS = 6000;
const key = (i: number): string => `key${String(i).padStart(5, '0')}`;
const keys = (from: number, count: number): string[] =>
  Array.from({ length: count }, (_, i) => key(from + i));
/** Lines of up to 100 space-separated words. */
const lines = (words: readonly string[]): string[] => {
  const out: string[] = [];
  for (let i = 0; i < words.length; i += 100) out.push(words.slice(i, i + 100).join(' '));
  return out;
};

/** Every key starts with state (the initial state counts as touched at batch 1, as in Spark). */
const initial = (): [string, number][] => keys(0, KEYS).map((k): [string, number] => [k, 1]);

/**
 * A few keys a batch, some again, some new; empty batches between. With a 3 s timeout (1 s
 * batches) the initial keys not touched since time out together in batch 5, those of batches 2
 * and 4 in batches 6 and 8.
 */
const batches: readonly (readonly string[])[] = [
  keys(0, 10),
  keys(5, 10),
  [],
  ['fresh1', 'fresh2', ...keys(100, 10)],
  [],
  [],
  ['fresh1', ...keys(200, 4)],
  [],
];

function stageOf(): WideStage<Pair<string, number>, Visit> {
  return mapWithState<string, number, number, Visit>('visits', visits, {
    timeout: '3s',
    partitions: PARTITIONS,
    initialState: initial(),
  });
}

function modelOf(input: readonly (readonly string[])[]): string[][] {
  return canonicalBatches(
    mapWithStateOracle(
      input.map((batch) => batch.map((word): [string, number] => [word, 1])),
      visits,
      { timeout: 3, initial: initial() },
    ),
  );
}

const faults: readonly { readonly name: string; readonly faults?: FaultOptions }[] = [
  { name: 'no faults' },
  { name: 'every invocation delivered twice', faults: { duplicate: true } },
  { name: 'crashes', faults: { crash: 0.2, seed: 5 } },
];

describe.each(faults)('mapWithState in the keyed layout, $name', ({ faults: injected }) => {
  const track = closeAfterEach();

  it('outputs what the model outputs, loading only the chunks a batch touches', async () => {
    // Arrange
    const t = track(
      testPipeline(pipeline({ name: 'keyed', batchInterval: '1s', source, stages: [words, stageOf()] }), {
        ...(injected ? { faults: injected } : {}),
      }),
    );
    const expected = modelOf(batches);

    // Act
    const outputs: unknown[][] = [];
    const progress: BatchProgress[] = [];
    for (const batch of batches) {
      const result = await t.push(lines(batch)).advance();
      expect(result.status, `batch ${result.batch}: ${result.failure ?? ''}`).toBe('complete');
      outputs.push([...result.records]);
      if (result.progress) progress.push(result.progress);
    }

    // Assert: the model's output, batch by batch.
    expect(canonicalBatches(outputs)).toEqual(expected);
    // The state split into many chunks; a batch of 10 keys read and wrote at most their 10.
    const [, second] = progress.map((p) => p.state[0]);
    expect(second?.keys).toBe(KEYS);
    expect(second?.chunks).toBeGreaterThan(100);
    expect(second?.chunksRead).toBeLessThanOrEqual(10);
    expect(second?.chunksWritten).toBeLessThanOrEqual(10);
    // The progress record counts the state's writes (made after the report): chunks and heads.
    expect(progress[1]?.writeUnits).toBeGreaterThanOrEqual((second?.chunksWritten ?? 0) + PARTITIONS);
    // An empty batch with nothing due reads and writes no chunk.
    expect(progress[2]?.state[0]).toMatchObject({ chunksRead: 0, chunksWritten: 0 });
    // Every partition's head is keyed, its chunks under the split size, nothing due left behind
    // but what the last batches indexed, and no chunk of a smaller count (split) left over.
    const ctx = (await t.local()).context('visits');
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const ref: StatePartition = { stage: stageId('visits'), partition, since: 1 };
      const head = (await ctx.state.head(ref)) as KeyedHead;
      expect(head.kind).toBe('sluice.state/keyed@1');
      expect(head.bytes / head.chunks).toBeLessThanOrEqual(KEYED_CHUNK_SPLIT_BYTES);
      const due = await ctx.state.readDue(ref, 0, Number.MAX_SAFE_INTEGER);
      expect(due.length).toBeLessThanOrEqual(3);
      for (let generation = 1; generation < head.generation; generation++) {
        expect(await ctx.state.retiredItems(ref, { kind: 'keyed', generation })).toEqual([]);
      }
    }
  }, 240_000);
});

describe('mapWithState state kept in the slotted layout (by an earlier version of sluice)', () => {
  const track = closeAfterEach();

  it('moves to the keyed layout at the next batch, whole, and the slotted chunks go after it', async () => {
    // Arrange: batches 1-2 run; then each partition's state is put back as the slotted layout
    // kept it (every key in one chunk, the head pointing at its slot), as of batch 2.
    const t = track(
      testPipeline(pipeline({ name: 'slotted', batchInterval: '1s', source, stages: [words, stageOf()] })),
    );
    const outputs: unknown[][] = [];
    for (const batch of batches.slice(0, 2))
      outputs.push([...(await t.push(lines(batch)).advance()).records]);
    const ctx = (await t.local()).context('visits');
    const slotted: SlottedHead[] = [];
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const ref: StatePartition = { stage: stageId('visits'), partition, since: 1 };
      const keyed = await ctx.state.head(ref);
      const table = new StateTable();
      for (const chunk of await ctx.state.readAll(ref, keyed)) table.load(chunk);
      const { chunks, bodies } = table.encode(1);
      for (const [chunk, body] of bodies.entries()) await ctx.state.writeChunk(ref, chunk, '0', 2, body);
      const head: SlottedHead = {
        kind: 'sluice.state/head@1',
        batch: 2,
        chunks,
        slots: '0'.repeat(chunks),
        format: DATA_FORMATS.chunk,
      };
      expect(await ctx.state.commit(ref, keyed, head)).toBe(true);
      slotted.push(head);
    }

    // Act
    for (const batch of batches.slice(2)) {
      const result = await t.push(lines(batch)).advance();
      expect(result.status, `batch ${result.batch}: ${result.failure ?? ''}`).toBe('complete');
      outputs.push([...result.records]);
    }

    // Assert: the model's output throughout; keyed heads; the slotted chunks deleted.
    expect(canonicalBatches(outputs)).toEqual(modelOf(batches));
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const ref: StatePartition = { stage: stageId('visits'), partition, since: 1 };
      expect((await ctx.state.head(ref)).kind).toBe('sluice.state/keyed@1');
      await expect(ctx.state.read(ref, slotted[partition] as SlottedHead)).rejects.toThrow(/missing/);
    }
  }, 240_000);
});

describe('mapWithState whose batches come to touch much of its state', () => {
  const track = closeAfterEach();

  it('moves to the slotted layout, whole, and the keyed chunks and time index go after it', async () => {
    // Arrange: a sparse first batch (keyed), then every key at once, then sparse again.
    const t = track(
      testPipeline(pipeline({ name: 'dense', batchInterval: '1s', source, stages: [words, stageOf()] })),
    );
    const input = [keys(0, 10), keys(0, KEYS), keys(0, 10), [], [], [], []];
    const ctx = (await t.local()).context('visits');
    const heads = async (): Promise<string[]> =>
      Promise.all(
        Array.from({ length: PARTITIONS }, async (_, partition) => {
          const head = await ctx.state.head({ stage: stageId('visits'), partition, since: 1 });
          return head.kind;
        }),
      );

    // Act
    const outputs: unknown[][] = [];
    const kinds: string[][] = [];
    for (const batch of input) {
      const result = await t.push(lines(batch)).advance();
      expect(result.status, `batch ${result.batch}: ${result.failure ?? ''}`).toBe('complete');
      outputs.push([...result.records]);
      kinds.push(await heads());
    }

    // Assert
    expect(canonicalBatches(outputs)).toEqual(modelOf(input));
    expect(kinds[0]).toEqual(['sluice.state/keyed@1', 'sluice.state/keyed@1']);
    expect(kinds[1]).toEqual(['sluice.state/head@1', 'sluice.state/head@1']);
    expect(kinds[6]).toEqual(['sluice.state/head@1', 'sluice.state/head@1']);
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const ref: StatePartition = { stage: stageId('visits'), partition, since: 1 };
      expect(await ctx.state.retiredItems(ref, { kind: 'keyed', generation: 1 })).toEqual([]);
      expect(await ctx.state.readDue(ref, 0, Number.MAX_SAFE_INTEGER)).toEqual([]);
    }
  }, 240_000);

  it('starts slotted when the first batch brings every key (a state built at once)', async () => {
    // Arrange
    const stage = mapWithState<string, number, number, Visit>('visits', visits, {
      timeout: '3s',
      partitions: PARTITIONS,
    });
    const t = track(
      testPipeline(pipeline({ name: 'built', batchInterval: '1s', source, stages: [words, stage] })),
    );

    // Act
    const result = await t.push(lines(keys(0, KEYS))).advance();
    const ctx = (await t.local()).context('visits');
    const head = await ctx.state.head({ stage: stageId('visits'), partition: 0, since: 1 });

    // Assert
    expect(result.status).toBe('complete');
    expect(head.kind).toBe('sluice.state/head@1');
    expect(head.touched).toBeGreaterThan(KEYS / PARTITIONS / 2);
  }, 120_000);
});

describe.each(faults)('keyed chunks grown past their split size, $name', ({ faults: injected }) => {
  const track = closeAfterEach();

  it('are read whole and written as a new generation, exactly once, and the old one goes after', async () => {
    // Arrange: batch 1 keyed; then each head says its chunks are over the split size (as many
    // batches of new keys would make them), so that batch 2 splits.
    const t = track(
      testPipeline(pipeline({ name: 'split', batchInterval: '1s', source, stages: [words, stageOf()] }), {
        ...(injected ? { faults: injected } : {}),
      }),
    );
    const input = batches.slice(0, 5);
    const outputs: unknown[][] = [[...(await t.push(lines(input[0] ?? [])).advance()).records]];
    const ctx = (await t.local()).context('visits');
    const refs = Array.from({ length: PARTITIONS }, (_, partition): StatePartition => ({
      stage: stageId('visits'),
      partition,
      since: 1,
    }));
    for (const ref of refs) {
      const head = (await ctx.state.head(ref)) as KeyedHead;
      const grown = { ...head, bytes: head.chunks * (KEYED_CHUNK_SPLIT_BYTES + 1) };
      expect(await ctx.state.commit(ref, head, grown)).toBe(true);
    }

    // Act
    for (const batch of input.slice(1)) {
      const result = await t.push(lines(batch)).advance();
      expect(result.status, `batch ${result.batch}: ${result.failure ?? ''}`).toBe('complete');
      outputs.push([...result.records]);
    }

    // Assert: the model's output; each head in generation 2 (batch 2's), its size true again; no
    // item of generation 1 left.
    expect(canonicalBatches(outputs)).toEqual(modelOf(input));
    for (const ref of refs) {
      const head = (await ctx.state.head(ref)) as KeyedHead;
      expect(head).toMatchObject({ kind: 'sluice.state/keyed@1', generation: 2 });
      expect(head.bytes / head.chunks).toBeLessThanOrEqual(KEYED_CHUNK_SPLIT_BYTES / 2);
      expect(await ctx.state.retiredItems(ref, { kind: 'keyed', generation: 1 })).toEqual([]);
    }
  }, 240_000);
});
