import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { kinesis, pipeline, reduceByKeyAndWindow, transform, updateStateByKey, utf8 } from '../../lib';
import { stageId } from '../../lib/ids';
import { loadTable } from '../../lib/runtime/state-commit';
import { StateTable } from '../../lib/state/table';
import type { SlottedHead } from '../../lib/storage/state-store';
import { LEDGER_ITEM_KEYS } from '../../lib/storage/ledger/items';
import type { FaultOptions } from '../../local/faults';
import { LocalRuntime, type BatchResult } from '../../local/runtime';
import { canonicalBatches, reduceByKeyAndWindowOracle, updateStateByKeyOracle } from '../support/oracle';

/**
 * Slotted state kept as deltas: a batch that changes a few keys of a larger state writes those
 * keys (a delta item) instead of every chunk they fall in; once the deltas outgrow the chunks a
 * batch rewrites the chunks and the delta items are deleted. Against the model, under faults.
 */

const source = kinesis({ stream: 'words', decode: utf8 });
const words = transform<string, string, number>('words', (line, emit) => {
  for (const word of line.split(' ')) if (word) emit(word, 1);
});
const totals = updateStateByKey<string, number, number>(
  'totals',
  (values, total) => (values.length === 0 ? total : values.reduce((sum, v) => sum + v, total ?? 0)),
  { partitions: 2 },
);
const counted = pipeline({ name: 'deltas', batchInterval: '1s', source, stages: [words, totals] });

const word = (i: number): string => `word${String(i).padStart(5, '0')}`;
const range = (from: number, count: number): string[] =>
  Array.from({ length: count }, (_, i) => word(from + i));
/**
 * 2,000 words, then batches of 20 (some new), one of every word (batch 8: a delta as large as the
 * chunks, so they are written again instead), then 20 again.
 */
const batches: readonly (readonly string[])[] = [
  range(0, 2000),
  ...Array.from({ length: 6 }, (_, b) => [...range(b * 7, 15), ...range(3000 + b * 5, 5)]),
  range(0, 2010),
  range(40, 20),
  range(60, 20),
];
const lines = (batch: readonly string[]): string[] => {
  const out: string[] = [];
  for (let i = 0; i < batch.length; i += 100) out.push(batch.slice(i, i + 100).join(' '));
  return out;
};

const faults: readonly { readonly name: string; readonly faults?: FaultOptions }[] = [
  { name: 'no faults' },
  { name: 'every invocation delivered twice', faults: { duplicate: true } },
  { name: 'crashes', faults: { crash: 0.2, seed: 3 } },
];

describe.each(faults)('slotted state kept as deltas, $name', ({ faults: injected }) => {
  const runs: LocalRuntime<string, [string, number]>[] = [];
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((run) => run.stop()));
  });

  it('writes a sparse batch as a delta, rewrites the chunks once the deltas outgrow them, and outputs the model', async () => {
    // Arrange
    const run = await LocalRuntime.start(counted, injected ? { faults: injected } : {});
    runs.push(run);
    const refs = [0, 1].map((partition) => ({ stage: stageId('totals'), partition, since: 1 }));
    const deltaItems = async (partition: number): Promise<string[]> => {
      const out = await run.clients.dynamo.send(
        new QueryCommand({
          TableName: run.ctx.state.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :delta)',
          ExpressionAttributeValues: {
            ':pk': LEDGER_ITEM_KEYS.statePk('totals', partition),
            ':delta': 'delta#',
          },
          ConsistentRead: true,
        }),
      );
      return (out.Items ?? []).map((item) => String(item.sk));
    };
    const model = updateStateByKeyOracle(
      batches.map((batch) => batch.map((w): [string, number] => [w, 1])),
      (values: number[], total?: number) =>
        values.length === 0 ? total : values.reduce((s, v) => s + v, total ?? 0),
    );

    // Act
    const results: BatchResult[] = [];
    const deltasAfter: number[][] = [];
    const itemsAfter: number[] = [];
    for (const batch of batches) {
      const [result] = await run.push(lines(batch)).then(() => run.advance());
      if (result) results.push(result);
      deltasAfter.push(
        await Promise.all(
          refs.map(async (ref) => {
            const head = await run.ctx.state.head(ref);
            return head.kind === 'sluice.state/head@1' ? (head.deltas?.length ?? 0) : -1;
          }),
        ),
      );
      itemsAfter.push((await deltaItems(0)).length + (await deltaItems(1)).length);
    }
    const tables = await Promise.all(refs.map((ref) => loadTable(run.ctx.state, ref)));

    // Assert: every batch's output is the model's.
    for (const result of results) expect(result.status, result.failure).toBe('complete');
    expect(canonicalBatches(results.map((r) => [...r.records]))).toEqual(canonicalBatches(model));
    // Batches 2-7 were deltas (one more each); batch 8 rewrote the chunks; 9 and 10 deltas again.
    expect(deltasAfter.map((d) => Math.max(...d))).toEqual([0, 1, 2, 3, 4, 5, 6, 0, 1, 2]);
    // The deltas of 2-7 were deleted once batch 9 committed after the rewrite.
    expect(itemsAfter[6]).toBeGreaterThanOrEqual(12);
    expect(itemsAfter[8]).toBe(deltasAfter[8]?.reduce((sum, d) => sum + d, 0));
    // A sparse batch wrote far less than the state; the state read back is the model's last.
    const third = results[2]?.progress?.state[0];
    expect(third?.bytesWritten).toBeLessThan((third?.bytes ?? 0) / 10);
    const stored = new Map(
      tables.flatMap((table) => [...table.values()].map((e): [string, unknown] => [String(e.key), e.value])),
    );
    expect(stored).toEqual(new Map(model[model.length - 1]?.map(([k, v]) => [k, v])));
  }, 120_000);
});

describe('a sliding window kept as deltas', () => {
  const runs: LocalRuntime<string, [string, number]>[] = [];
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((run) => run.stop()));
  });

  it('writes the keys a window batch changes, not every key it holds, and outputs the model', async () => {
    // Arrange: a 10 s window sliding every 1 s batch; 2,000 words, then 10 a batch.
    const add = (a: number, b: number): number => a + b;
    const windowed = pipeline({
      name: 'window-deltas',
      batchInterval: '1s',
      source,
      stages: [
        words,
        reduceByKeyAndWindow<string, number>('counts', add, { length: '10s', slide: '1s', partitions: 2 }),
      ],
    });
    const input = [range(0, 2000), range(0, 10), range(10, 10), range(20, 10)];
    const model = reduceByKeyAndWindowOracle(
      input.map((batch) => batch.map((w): [string, number] => [w, 1])),
      { length: 10, slide: 1 },
      add,
    );
    const run = await LocalRuntime.start(windowed);
    runs.push(run);

    // Act
    const results: BatchResult[] = [];
    for (const batch of input) {
      const [result] = await run.push(lines(batch)).then(() => run.advance());
      if (result) results.push(result);
    }

    // Assert: every window holds 2,000 keys; batches 2-4 wrote a delta of their 10 per partition.
    expect(canonicalBatches(results.map((r) => [...r.records]))).toEqual(canonicalBatches(model));
    for (const result of results.slice(1)) {
      const state = result.progress?.state[0];
      expect(state?.keys).toBeGreaterThanOrEqual(2000);
      expect(state?.chunksWritten).toBeLessThanOrEqual(2);
      expect(state?.bytesWritten).toBeLessThan((state?.bytes ?? 0) / 20);
    }
  }, 120_000);
});

describe('slotted chunk and delta items are stored deflated', () => {
  const runs: LocalRuntime<string, [string, number]>[] = [];
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((run) => run.stop()));
  });
  const ref = { stage: stageId('totals'), partition: 0, since: 1 };
  const head = (slots: string): SlottedHead => ({
    kind: 'sluice.state/head@1',
    batch: 1,
    chunks: slots.length,
    slots,
    format: 'sluice.chunk@1',
  });
  const rawItem = async (run: LocalRuntime<string, [string, number]>, sk: string) =>
    (
      await run.clients.dynamo.send(
        new GetCommand({
          TableName: run.ctx.state.table,
          Key: { pk: LEDGER_ITEM_KEYS.statePk('totals', 0), sk },
          ConsistentRead: true,
        }),
      )
    ).Item ?? {};

  it('deflates an item of a KB or more, keeps a small one raw, and reads both back as written', async () => {
    // Arrange
    const run = await LocalRuntime.start(counted);
    runs.push(run);
    const table = new StateTable();
    for (let i = 0; i < 2000; i++) table.set(word(i), i);
    const large = table.encode(1).bodies[0] ?? Buffer.alloc(0);
    const small = Buffer.from(large.subarray(0, 200));

    // Act
    await run.ctx.state.writeChunk(ref, 0, '0', 1, large);
    await run.ctx.state.writeChunk(ref, 1, '0', 1, small);
    await run.ctx.state.writeDelta(ref, 2, 0, large);
    const largeItem = await rawItem(run, 'chunk#0#0');
    const smallItem = await rawItem(run, 'chunk#1#0');
    const deltaItem = await rawItem(run, 'delta#0000000002#0');
    const read = await run.ctx.state.read(ref, head('00'));
    const deltas = await run.ctx.state.readDeltas(ref, [{ batch: 2, parts: 1, bytes: large.length }]);

    // Assert: the large chunk and the delta are stored in less than half their bytes.
    expect(largeItem.codec).toBe('deflate-raw');
    expect((largeItem.data as Uint8Array).length).toBeLessThan(large.length / 2);
    expect(deltaItem.codec).toBe('deflate-raw');
    expect(smallItem).not.toHaveProperty('codec');
    expect(read.map((bytes) => bytes.toString('hex'))).toEqual([
      large.toString('hex'),
      small.toString('hex'),
    ]);
    expect(deltas.map((bytes) => bytes.toString('hex'))).toEqual([large.toString('hex')]);
  });

  it('reads an item deflated as this format stores it (golden), and refuses a codec it does not know', async () => {
    // Arrange
    const golden = JSON.parse(
      readFileSync(join(__dirname, '..', 'golden', 'state-deflated@1.json'), 'utf8'),
    ) as { raw: string; deflated: string };
    const run = await LocalRuntime.start(counted);
    runs.push(run);
    const put = (sk: string, codec: string) =>
      run.clients.dynamo.send(
        new PutCommand({
          TableName: run.ctx.state.table,
          Item: {
            pk: LEDGER_ITEM_KEYS.statePk('totals', 0),
            sk,
            version: 1,
            data: Buffer.from(golden.deflated, 'hex'),
            codec,
          },
        }),
      );
    await put('chunk#0#0', 'deflate-raw');
    await put('chunk#0#1', 'zstd');

    // Act
    const [bytes] = await run.ctx.state.read(ref, head('0'));
    const refused = run.ctx.state.read(ref, head('1'));

    // Assert
    expect(bytes?.toString('hex')).toBe(golden.raw);
    await expect(refused).rejects.toThrow(/stored as "zstd"; this code reads deflate-raw/);
  });
});
