import {
  DescribeStreamSummaryCommand,
  ListShardsCommand,
  MergeShardsCommand,
  SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { kinesis, pipeline, utf8 } from '../../lib';
import type { BatchItem } from '../../lib/batch';
import { testPipeline, type TestPipeline } from '../../local/testing';
import { generateLines, spaceSeparatedCounts, toCountMap } from '../support/corpus';
import { spaceSeparatedWords, wordTotals } from '../support/pipelines';
import { closeAfterEach } from '../support/runs';

const track = closeAfterEach();

const source = kinesis({ stream: 'lines', decode: utf8 });

/** Splits or merges the run's stream, and waits until it is active again. */
async function reshard<Out>(t: TestPipeline<string, Out>, change: 'split' | 'merge'): Promise<void> {
  const run = await t.local();
  const { kinesis: client } = run.clients;
  const stream = run.resources.stream;
  const open = ((await client.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? []).filter(
    (shard) => shard.SequenceNumberRange?.EndingSequenceNumber === undefined,
  );
  if (change === 'split') {
    const [shard] = open;
    const start = BigInt(shard?.HashKeyRange?.StartingHashKey ?? '0');
    const end = BigInt(shard?.HashKeyRange?.EndingHashKey ?? '0');
    await client.send(
      new SplitShardCommand({
        StreamName: stream,
        ShardToSplit: shard?.ShardId,
        NewStartingHashKey: ((start + end) / 2n).toString(),
      }),
    );
  } else {
    const [a, b] = open;
    await client.send(
      new MergeShardsCommand({
        StreamName: stream,
        ShardToMerge: a?.ShardId,
        AdjacentShardToMerge: b?.ShardId,
      }),
    );
  }
  for (let i = 0; i < 200; i++) {
    const out = await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    if (out.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the stream did not become active again');
}

/** Per shard, the batches that took segments of it (the shard's cursor moved). */
function batchesByShard(items: readonly BatchItem[]): Map<string, number[]> {
  const taken = new Map<string, number[]>();
  for (const item of items) {
    for (const [shard, cursor] of Object.entries(item.cursors)) {
      if (item.previousCursors[shard]?.segmentStart === cursor.segmentStart) continue;
      taken.set(shard, [...(taken.get(shard) ?? []), item.batch]);
    }
  }
  return taken;
}

describe.each([{ maxRecordsPerBatch: undefined }, { maxRecordsPerBatch: 60 }])(
  'resharding the stream (maxRecordsPerBatch $maxRecordsPerBatch)',
  ({ maxRecordsPerBatch }) => {
    it('keeps every record in exactly one batch across a split and a merge, parents before children', async () => {
      // Arrange
      const p = pipeline({
        name: 'reshard',
        batchInterval: '10s',
        source,
        stages: [spaceSeparatedWords, wordTotals],
        ...(maxRecordsPerBatch === undefined ? {} : { maxRecordsPerBatch }),
      });
      const t = track(testPipeline(p, { shards: 1 }));
      const lines = (n: number, seed: number) => generateLines(n, seed, 200);
      // Each push becomes one segment per shard: none is over the bound, which a batch then keeps to.
      // While paused, the parent gets two segments (30 and 40 records): with a bound of 60, the
      // first batch after the pause takes the first and must leave the children's (about 20 each,
      // which would fit) until the parent's second is taken.
      const input = [lines(50, 1), lines(30, 2), lines(40, 3), lines(40, 4), lines(40, 5)];

      // Act: records before the split, between the split and the merge (in the children), and after
      // it, waiting behind a pause to be sealed together.
      const results = [...(await t.push(input[0] ?? []).advanceBy(1))];
      await t.pause();
      await t.push(input[1] ?? []).advanceBy(1);
      await t.push(input[2] ?? []).advanceBy(1);
      await reshard(t, 'split');
      await t.push(input[3] ?? []).advanceBy(1);
      await reshard(t, 'merge');
      await t.push(input[4] ?? []).advanceBy(1);
      await t.resume();
      results.push(...(await t.advanceBy(1)));
      const items = await (await t.local()).ctx.ledger.batches.all();

      // Assert
      const all = input.flat();
      expect(results.every((b) => b.status === 'complete')).toBe(true);
      expect(results.reduce((sum, b) => sum + b.inputRecords, 0)).toBe(all.length);
      expect(toCountMap(results[results.length - 1]?.records ?? [])).toEqual(spaceSeparatedCounts(all));
      if (maxRecordsPerBatch !== undefined) {
        expect(Math.max(...results.map((b) => b.inputRecords))).toBeLessThanOrEqual(maxRecordsPerBatch);
      }
      // Shard 0 split into 1 and 2, which merged into 3: no batch takes a child's records while its
      // parent still has some waiting.
      const taken = batchesByShard(items);
      const last = (shard: string) => Math.max(...(taken.get(`lines/shardId-00000000000${shard}`) ?? [0]));
      const first = (shard: string) =>
        Math.min(...(taken.get(`lines/shardId-00000000000${shard}`) ?? [Number.MAX_SAFE_INTEGER]));
      expect([...taken.keys()].sort()).toEqual(
        ['0', '1', '2', '3'].map((n) => `lines/shardId-00000000000${n}`),
      );
      expect(last('0')).toBeLessThanOrEqual(Math.min(first('1'), first('2')));
      expect(Math.max(last('1'), last('2'))).toBeLessThanOrEqual(first('3'));
    });
  },
);
