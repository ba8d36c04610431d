import { describe, expect, it } from 'vitest';
import {
  kinesis,
  mapWithState,
  pipeline,
  reduceByKeyAndWindow,
  transform,
  updateStateByKey,
  utf8,
  type AnyPipeline,
  type KeyState,
} from '../../lib';
import { mapKey, partitionOf } from '../../lib/encoding/key';
import { batchId, stageId } from '../../lib/ids';
import { parseManifest } from '../../lib/manifest';
import type { RuntimeContext } from '../../lib/runtime/context';
import { loadTable } from '../../lib/runtime/state-commit';
import { manifestKey } from '../../lib/storage/keys';
import type { FaultOptions } from '../../local/faults';
import { LocalRuntime } from '../../local/runtime';
import { generateLines, spaceSeparatedCounts, toCountMap } from '../support/corpus';
import { emulatorForFile, sealWithoutRunning } from '../support/runs';

const source = kinesis({ stream: 'lines', decode: utf8 });
/** Words, one each; a line that is only 'poison' throws (to fail a batch under `onError: 'fail'`). */
const words = transform<string, string, number>('words', (line, emit) => {
  if (line === 'poison') throw new Error('poisoned line');
  for (const word of line.split(' ')) if (word) emit(word, 1);
});

/** A mapWithState function keeping each word's running total and outputting nothing. */
function addToTotal(_word: string, one: number | undefined, total: KeyState<number>): undefined {
  total.update((total.exists() ? total.get() : 0) + (one ?? 0));
  return undefined;
}

/** Two stateful operators whose state a rescale must carry: running totals and a sliding window. */
const operators = [
  {
    name: 'updateStateByKey (running totals)',
    run: 'totals',
    stage: (partitions: number) =>
      updateStateByKey<string, number, number>(
        'count',
        (values, total) => values.reduce((sum, v) => sum + v, total ?? 0),
        { partitions },
      ),
    /** Every word's total over batches 1..n. */
    oracle: (batches: readonly (readonly string[])[], n: number) => wordCounts(batches.slice(0, n)),
  },
  {
    name: 'mapWithState (state snapshots of running totals)',
    run: 'mapped',
    stage: (partitions: number) =>
      mapWithState<string, number, number, never>('count', addToTotal, { partitions, snapshots: true }),
    /** Every word's total over batches 1..n. */
    oracle: (batches: readonly (readonly string[])[], n: number) => wordCounts(batches.slice(0, n)),
  },
  {
    name: 'mapWithState (running totals, no output: the keyed layout, checked by its stored state)',
    run: 'keyed',
    stage: (partitions: number) =>
      mapWithState<string, number, number, never>('count', addToTotal, { partitions }),
    oracle: () => new Map<string, number>(),
  },
  {
    name: 'reduceByKeyAndWindow (30 s window, 10 s slide)',
    run: 'window',
    stage: (partitions: number) =>
      reduceByKeyAndWindow<string, number>('count', (a, b) => a + b, {
        length: '30s',
        slide: '10s',
        partitions,
      }),
    /** Each word's count over the window of batches n-2..n. */
    oracle: (batches: readonly (readonly string[])[], n: number) =>
      wordCounts(batches.slice(Math.max(0, n - 3), n)),
  },
] as const;

/** Every word's count over the lines of the batches given; a poisoned line counts nothing. */
function wordCounts(batches: readonly (readonly string[])[]): Map<string, number> {
  return spaceSeparatedCounts(batches.flat().filter((line) => line !== 'poison'));
}

const version = (
  operator: (typeof operators)[number],
  partitions: number,
  onError: 'deadLetter' | 'fail' = 'deadLetter',
): AnyPipeline =>
  pipeline({
    name: 'rescaled',
    batchInterval: '10s',
    source,
    onError,
    stages: [words, operator.stage(partitions)],
  }) as AnyPipeline;

/** Every key's state in a stateful stage's layout, read from the table, with its partition. */
async function storedState(
  ctx: RuntimeContext,
  partitions: number,
  since: number,
): Promise<{ keys: Map<string, unknown>; misplaced: string[]; heads: number[] }> {
  const keys = new Map<string, unknown>();
  const misplaced: string[] = [];
  const heads: number[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    const ref = { stage: stageId('count'), partition, since };
    const head = await ctx.state.head(ref);
    heads.push(head.batch);
    const table = await loadTable(ctx.state, ref);
    for (const { key, value } of table.values()) {
      keys.set(String(key), value);
      if (partitionOf(mapKey(key), partitions) !== partition) misplaced.push(String(key));
    }
  }
  return { keys, misplaced, heads };
}

describe('rescaling a stateful stage from 4 to 8 partitions', () => {
  const endpoint = emulatorForFile();

  const faults: readonly { readonly name: string; readonly run: string; readonly faults: FaultOptions }[] = [
    { name: 'no faults', run: 'clean', faults: {} },
    { name: 'duplicate deliveries', run: 'duplicate', faults: { duplicate: true } },
    { name: 'crashes', run: 'crash', faults: { crash: 0.3, seed: 7 } },
  ];

  describe.each(operators)('$name', (operator) => {
    it.each(faults)(
      're-hashes the state at the first batch sealed with 8, exactly once ($name)',
      async ({ run: fault, faults: injected }) => {
        // Arrange: batches 1-2 complete on 4 partitions; batch 3 is sealed by the old version and
        // in flight when the new one (8 partitions) is deployed; batches 4-6 are sealed by it.
        const run = `${operator.run}-${fault}`;
        const batches = Array.from({ length: 6 }, (_, i) => generateLines(40, 100 + i, 150));
        const v1 = version(operator, 4);
        const v2 = version(operator, 8);
        const first = await LocalRuntime.start(v1, { endpoint: endpoint(), run, faults: injected });
        const outputs = new Map<number, Map<string, number>>();
        for (const n of [1, 2]) {
          const [result] = await first.push(batches[n - 1] ?? []).then(() => first.advance());
          outputs.set(n, toCountMap(result?.records ?? []));
        }
        await first.push(batches[2] ?? []);
        await sealWithoutRunning(first as LocalRuntime<string>, v1);
        await first.stop();

        // Act
        const second = await LocalRuntime.start(v2, { endpoint: endpoint(), run, faults: injected });
        await second.settle();
        const inFlight = await second.result(batchId(3));
        outputs.set(3, toCountMap(inFlight.records));
        for (const n of [4, 5, 6]) {
          const [result] = await second.push(batches[n - 1] ?? []).then(() => second.advance());
          expect(result?.status).toBe('complete');
          outputs.set(n, toCountMap(result?.records ?? []));
        }
        const third = parseManifest(await second.ctx.objects.get(manifestKey(batchId(3))));
        const fourth = parseManifest(await second.ctx.objects.get(manifestKey(batchId(4))));
        const items = await second.ctx.ledger.batches.all();
        const before = await storedState(second.ctx, 4, 1);
        const after = await storedState(second.ctx, 8, 4);
        await second.stop();

        // Assert: every batch's output is the oracle's, across the change
        expect(inFlight.status).toBe('complete');
        for (const n of [1, 2, 3, 4, 5, 6]) {
          expect(outputs.get(n), `batch ${n}`).toEqual(operator.oracle(batches, n));
        }
        // Batch 3 ran on the 4 partitions it was sealed with; batch 4 began the 8-partition layout.
        expect(third.layouts).toEqual({ count: { partitions: 4, since: 1 } });
        expect(fourth.layouts).toEqual({
          count: { partitions: 8, since: 4, previous: { partitions: 4, since: 1 } },
        });
        expect(items.find((b) => b.batch === 3)?.expected[1]).toEqual([0, 1, 2, 3]);
        expect(items.find((b) => b.batch === 4)?.expected[1]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
        // The old layout stopped at batch 3; the new one holds every key once, in its partition.
        expect(before.heads).toEqual([3, 3, 3, 3]);
        expect(after.heads).toEqual([6, 6, 6, 6, 6, 6, 6, 6]);
        expect(after.misplaced).toEqual([]);
        if (operator.run !== 'window') {
          // mapWithState keeps [state, last seen] per key; updateStateByKey the state itself.
          const totals = new Map(
            [...after.keys].map(([word, kept]) => [word, Array.isArray(kept) ? kept[0] : kept]),
          );
          expect(totals).toEqual(wordCounts(batches));
        }
      },
      120_000,
    );
  });

  it('skipping the rescaling batch still carries the state into the new layout', async () => {
    // Arrange: the first batch sealed with 8 partitions fails (a poisoned line under onError 'fail')
    const operator = operators[0];
    const batches = [
      generateLines(30, 1, 100),
      generateLines(30, 2, 100),
      ['poison'],
      generateLines(30, 4, 100),
    ];
    const first = await LocalRuntime.start(version(operator, 4, 'fail'), {
      endpoint: endpoint(),
      run: 'rescale-skip',
    });
    for (const lines of batches.slice(0, 2)) await first.push(lines).then(() => first.advance());
    await first.stop();
    const second = await LocalRuntime.start(version(operator, 8, 'fail'), {
      endpoint: endpoint(),
      run: 'rescale-skip',
    });

    // Act
    const [failed] = await second.push(batches[2] ?? []).then(() => second.advance());
    const skipped = await second.skipBatch(batchId(3));
    const [next] = await second.push(batches[3] ?? []).then(() => second.advance());
    const after = await storedState(second.ctx, 8, 3);
    await second.stop();

    // Assert
    expect(failed?.status).toBe('failed');
    expect(skipped.status).toBe('skipped');
    expect(next?.status).toBe('complete');
    const expected = wordCounts([batches[0] ?? [], batches[1] ?? [], batches[3] ?? []]);
    expect(toCountMap(next?.records ?? [])).toEqual(expected);
    expect(after.keys).toEqual(expected);
    expect(after.heads).toEqual([4, 4, 4, 4, 4, 4, 4, 4]);
  }, 120_000);

  it.each([
    { name: 'no faults', run: 'quiet-clean', faults: {} },
    { name: 'duplicate deliveries', run: 'quiet-duplicate', faults: { duplicate: true } },
  ])(
    'after quiet batches, re-hashes the state the last batch that ran left ($name)',
    async ({ run, faults: injected }) => {
      // Arrange: batch 1 has words; 2 and 3 are empty, quiet (running totals without a timeout
      // leave nothing due), so the old layout's heads stay at batch 1.
      const operator = operators[2];
      const batches = [generateLines(30, 21, 100), [], [], generateLines(30, 24, 100)];
      const first = await LocalRuntime.start(version(operator, 4), {
        endpoint: endpoint(),
        run,
        faults: injected,
      });
      const quiet: (number | undefined)[] = [];
      for (const lines of batches.slice(0, 3)) {
        const [result] = await first.push(lines).then(() => first.advance());
        quiet.push(result?.progress?.phases[1]?.tasks);
      }
      await first.stop();
      const second = await LocalRuntime.start(version(operator, 8), {
        endpoint: endpoint(),
        run,
        faults: injected,
      });

      // Act
      const [rescaling] = await second.push(batches[3] ?? []).then(() => second.advance());
      const manifest = parseManifest(await second.ctx.objects.get(manifestKey(batchId(4))));
      const before = await storedState(second.ctx, 4, 1);
      const after = await storedState(second.ctx, 8, 4);
      await second.stop();

      // Assert
      expect(quiet).toEqual([4, 0, 0]);
      expect(rescaling?.status).toBe('complete');
      expect(manifest.stateFrom).toBe(1);
      expect(before.heads).toEqual([1, 1, 1, 1]);
      expect(after.heads).toEqual([4, 4, 4, 4, 4, 4, 4, 4]);
      expect(after.misplaced).toEqual([]);
      const totals = new Map([...after.keys].map(([word, kept]) => [word, (kept as [number, number])[0]]));
      expect(totals).toEqual(wordCounts(batches));
    },
    120_000,
  );
});
