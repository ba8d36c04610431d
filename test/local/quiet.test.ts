import { afterEach, describe, expect, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import {
  kinesis,
  mapWithState,
  pipeline,
  reduceByKeyAndWindow,
  updateStateByKey,
  utf8,
  type Pair,
  type WideStage,
} from '../../lib';
import { batchId } from '../../lib/ids';
import { progressKey } from '../../lib/storage/keys';
import type { FaultOptions } from '../../local/faults';
import { LocalRuntime, type BatchResult } from '../../local/runtime';
import { testPipeline } from '../../local/testing';
import {
  canonicalBatches,
  invertibleWindowOracle,
  mapWithStateOracle,
  reduceByKeyAndWindowOracle,
  updateStateByKeyOracle,
} from '../support/oracle';
import { closeAfterEach } from '../support/runs';
import { spaceSeparatedWords, visits, type Visit } from '../support/pipelines';

/**
 * Quiet batches: a batch with no input and nothing due is complete when it is sealed. No task
 * runs, no state is read, no progress record is written; the next batch with input applies its
 * records to the state as the last batch that ran left it. Checked against models that run every
 * batch, with an independent rule for which batches may be quiet.
 */

const source = kinesis({ stream: 'visits', decode: utf8 });
const words = spaceSeparatedWords;

/** Keys in two partitions, empty batches between; with a 3 s timeout in 1 s batches. */
const batches: readonly (readonly string[])[] = [
  ['a', 'b', 'c'],
  [],
  [],
  [],
  [],
  [],
  ['d', 'a'],
  [],
  [],
  ['d'],
  [],
  [],
  [],
  [],
  [],
];
const TIMEOUT_BATCHES = 3;

/**
 * Which batches may be quiet, by the rule alone: no input, and no key that would time out in it
 * (idle more than the timeout: keys then time out and leave the state).
 */
function quietBatches(input: readonly (readonly string[])[], timeout: number | undefined): number[] {
  const touched = new Map<string, number>();
  const quiet: number[] = [];
  input.forEach((batch, i) => {
    const n = i + 1;
    const due = timeout !== undefined && [...touched.values()].some((at) => n - at > timeout);
    if (batch.length === 0 && !due) quiet.push(n);
    for (const word of batch) touched.set(word, n);
    if (timeout !== undefined) for (const [word, at] of touched) if (n - at > timeout) touched.delete(word);
  });
  return quiet;
}

const faults: readonly { readonly name: string; readonly faults?: FaultOptions }[] = [
  { name: 'no faults' },
  { name: 'every invocation delivered twice', faults: { duplicate: true } },
  { name: 'crashes', faults: { crash: 0.2, seed: 11 } },
];

/** A batch ran its stateful phase: its reduce partitions reported. */
const ran = (result: BatchResult): boolean => (result.progress?.phases[1]?.tasks ?? 0) > 0;

describe.each(faults)('quiet batches of a stateful pipeline, $name', ({ faults: injected }) => {
  const track = closeAfterEach();
  const options = injected ? { faults: injected } : {};

  it.each([
    { operator: 'mapWithState with a timeout', timeout: TIMEOUT_BATCHES },
    { operator: 'mapWithState without one', timeout: undefined },
  ])(
    '$operator: empty batches run nothing until a key is due, and the output is the model',
    async ({ timeout }) => {
      // Arrange
      const stage: WideStage<Pair<string, number>, Visit> = mapWithState<string, number, number, Visit>(
        'visits',
        visits,
        { partitions: 2, ...(timeout === undefined ? {} : { timeout: `${timeout}s` }) },
      );
      const t = track(
        testPipeline(
          pipeline({ name: 'quiet', batchInterval: '1s', source, stages: [words, stage] }),
          options,
        ),
      );
      const model = mapWithStateOracle(
        batches.map((batch) => batch.map((word): [string, number] => [word, 1])),
        visits,
        timeout === undefined ? {} : { timeout },
      );

      // Act
      const results: BatchResult[] = [];
      for (const batch of batches)
        results.push(await t.push(batch.length ? [batch.join(' ')] : []).advance());

      // Assert
      for (const result of results) expect(result.status, result.failure).toBe('complete');
      expect(canonicalBatches(results.map((r) => [...r.records]))).toEqual(canonicalBatches(model));
      const quiet = results.filter((r) => !ran(r)).map((r) => r.batch);
      expect(quiet).toEqual(quietBatches(batches, timeout));
      for (const result of results.filter((r) => !ran(r))) {
        expect(result.progress?.inputRecords).toBe(0);
        expect(result.progress?.state.map((s) => s.partitions)).toEqual([0]);
      }
    },
  );

  it.each([
    { form: 'plain', inverse: undefined },
    { form: 'incremental', inverse: (a: number, b: number): number => a - b },
  ])(
    'reduceByKeyAndWindow ($form): empty batches between window batches run nothing, and the output is the model',
    async ({ form, inverse }) => {
      // Arrange: a 4 s window sliding every 2 s over 1 s batches.
      const g = { length: 4, slide: 2 };
      const add = (a: number, b: number): number => a + b;
      const stage = reduceByKeyAndWindow<string, number>('windowed', add, {
        length: '4s',
        slide: '2s',
        partitions: 2,
        ...(inverse ? { inverse } : {}),
      });
      const t = track(
        testPipeline(
          pipeline({ name: 'quiet-window', batchInterval: '1s', source, stages: [words, stage] }),
          options,
        ),
      );
      const input: readonly (readonly string[])[] = [
        ['a', 'b'],
        [],
        [],
        ['c'],
        [],
        [],
        [],
        [],
        [],
        [],
        ['a'],
        [],
        [],
        [],
      ];
      const pairs = input.map((batch) => batch.map((word): [string, number] => [word, 1]));
      const model = inverse
        ? invertibleWindowOracle(pairs, g, add, 0)
        : reduceByKeyAndWindowOracle(pairs, g, add);
      // The rule: an empty batch that is not a window batch changes nothing; a window batch runs
      // while the state holds keys: the plain form's keys are those with records in the window
      // so far, the incremental form keeps every key it has seen (at 0).
      const seenBefore = (n: number, from: number): boolean =>
        input.slice(Math.max(0, from - 1), n - 1).some((batch) => batch.length > 0);
      const mayBeQuiet = input.flatMap((batch, i) => {
        const n = i + 1;
        if (batch.length > 0) return [];
        if (n % g.slide !== 0) return [n];
        return seenBefore(n, form === 'plain' ? n - g.length + 1 : 1) ? [] : [n];
      });

      // Act
      const results: BatchResult[] = [];
      for (const batch of input) results.push(await t.push(batch.length ? [batch.join(' ')] : []).advance());

      // Assert
      for (const result of results) expect(result.status, result.failure).toBe('complete');
      expect(canonicalBatches(results.map((r) => [...r.records]))).toEqual(canonicalBatches(model));
      expect(results.filter((r) => !ran(r)).map((r) => r.batch)).toEqual(mayBeQuiet);
      expect(mayBeQuiet.length).toBeGreaterThanOrEqual(5);
    },
  );

  it('updateStateByKey runs every partition every batch while it keeps state, and none once it is empty', async () => {
    // Arrange: a key's state counts the batches since it was last seen, and is dropped at 2.
    const idle = (values: number[], state?: number): number | undefined => {
      if (values.length > 0) return 0;
      const next = (state ?? 0) + 1;
      return next >= 2 ? undefined : next;
    };
    const stage = updateStateByKey<string, number, number>('idle', idle, { partitions: 2 });
    const t = track(
      testPipeline(
        pipeline({ name: 'every-key', batchInterval: '1s', source, stages: [words, stage] }),
        options,
      ),
    );
    const input: readonly (readonly string[])[] = [['a'], [], [], [], [], ['b', 'c'], [], [], []];
    const model = updateStateByKeyOracle(
      input.map((batch) => batch.map((word): [string, number] => [word, 1])),
      idle,
    );

    // Act
    const results: BatchResult[] = [];
    for (const batch of input) results.push(await t.push(batch.length ? [batch.join(' ')] : []).advance());

    // Assert: the function saw every key every batch until the state was empty (Spark's semantics).
    expect(canonicalBatches(results.map((r) => [...r.records]))).toEqual(canonicalBatches(model));
    const quiet = results.filter((r) => !ran(r)).map((r) => r.batch);
    // Batch 3 empties the state (the key idle twice); 4 and 5 have nothing to do, nor 9 after 8.
    expect(quiet).toEqual([4, 5, 9]);
  });
});

describe('quiet batches of a pipeline without state', () => {
  const runs: LocalRuntime<string, [string, number]>[] = [];
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((run) => run.stop()));
  });

  it('complete at their seal with no task and no progress record, and are still reported', async () => {
    // Arrange
    const run = await LocalRuntime.start(wordcount);
    runs.push(run);
    await run.push(['to be or not to be']);

    // Act
    const [busy, empty] = await run.advance(2);
    const item = await run.ctx.ledger.batches.get(batchId(2));
    const record = await run.ctx.objects.getIfExists(progressKey(batchId(2)));
    const busyRecord = await run.ctx.objects.getIfExists(progressKey(batchId(1)));

    // Assert
    expect(busy?.records.length).toBeGreaterThan(0);
    expect(empty?.status).toBe('complete');
    expect(empty?.records).toEqual([]);
    expect(item?.quietUntil).toBeDefined();
    expect(item?.expected).toEqual({});
    expect(record).toBeUndefined();
    expect(busyRecord).toBeDefined();
    // Its progress comes from its ledger item: the seal's requests, priced.
    expect(empty?.progress?.phases.map((p) => p.tasks)).toEqual([0, 0]);
    expect(empty?.progress?.requests).not.toEqual({});
    expect(empty?.progress?.costUsd).toBeGreaterThan(0);
  });
});
