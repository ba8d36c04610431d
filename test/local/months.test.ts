import { describe, expect, it } from 'vitest';
import { filter, kinesis, pipeline, s3Jsonl, updateStateByKey, utf8, type AnyPipeline } from '../../lib';
import { batchId } from '../../lib/ids';
import { parseManifest } from '../../lib/manifest';
import { manifestKey } from '../../lib/storage/keys';
import { LocalRuntime, type BatchResult } from '../../local/runtime';
import { replay } from '../../local/testing';
import { generateLines, spaceSeparatedCounts, toCountMap } from '../support/corpus';
import { expectSameObjects, originals, replayed } from '../support/objects';
import { spaceSeparatedWords } from '../support/pipelines';
import { emulatorForFile, sealWithoutRunning } from '../support/runs';

/*
 * A stateful word count operated as it would be for months: paused under a backlog, rescaled,
 * upgraded, replayed. Every batch's output is checked against an oracle that knows nothing of
 * sluice: the running count of every word over all lines so far.
 */

const source = kinesis({ stream: 'lines', decode: utf8 });
const totals = (partitions: number) =>
  updateStateByKey<string, number, number>(
    'totals',
    (values, total) => values.reduce((sum, v) => sum + v, total ?? 0),
    { partitions },
  );
const BOUND = 100;
const version = (partitions: number, extra: readonly AnyPipeline['stages'][number][] = []) =>
  pipeline({
    name: 'months',
    batchInterval: '10s',
    source,
    maxRecordsPerBatch: BOUND,
    stages: [...extra, spaceSeparatedWords, totals(partitions)] as never,
    sinks: [s3Jsonl({ prefix: 'months/totals' })],
  }) as AnyPipeline;

/** The pipeline as first deployed; then on 8 partitions; then with a stateless stage added. */
const v1 = version(4);
const v2 = version(8);
const v3 = version(8, [filter<string>('non-empty', (line) => line.trim().length > 0)]);

describe('a stateful word count operated for months', () => {
  const endpoint = emulatorForFile();

  it('is paused under a backlog, resumes within the bound, rescales 4 -> 8, upgrades, and replays byte for byte', async () => {
    const lines = (seed: number) => generateLines(BOUND, seed, 400);
    const sent: string[] = [];
    const results: BatchResult[] = [];
    const options = { endpoint: endpoint(), run: 'months', shards: 2 } as const;

    // Act 1: two batches, a pause, a backlog ten times a batch, a resume
    const first = (await LocalRuntime.start(v1, options)) as LocalRuntime<string>;
    for (const seed of [1, 2]) {
      sent.push(...lines(seed));
      await first.push(lines(seed));
      results.push(...(await first.advance()));
    }
    await first.pause('a backlog is coming');
    const whilePaused: BatchResult[] = [];
    for (let seed = 10; seed < 20; seed++) {
      sent.push(...lines(seed));
      await first.push(lines(seed));
      whilePaused.push(...(await first.advance()));
    }
    await first.resume();
    // Whole segments go into a batch while they fit: the backlog takes a few more batches than ten.
    const caughtUp: BatchResult[] = [];
    const taken = () => caughtUp.reduce((sum, b) => sum + b.inputRecords, 0);
    for (let round = 0; round < 5 && taken() < 10 * BOUND; round++) caughtUp.push(...(await first.advance()));
    results.push(...caughtUp);
    const afterBacklog = sent.length;

    // Assert 1: nothing sealed while paused; the backlog in batches within the bound, counts exact
    expect(whilePaused).toEqual([]);
    expect(caughtUp.every((b) => b.status === 'complete' && b.inputRecords <= BOUND)).toBe(true);
    expect(taken()).toBe(10 * BOUND);
    expect(caughtUp.filter((b) => b.inputRecords > 0).length).toBeGreaterThanOrEqual(10);
    const lastOfBacklog = [...results].reverse().find((b) => b.inputRecords > 0);
    expect(toCountMap(lastOfBacklog?.records ?? [])).toEqual(
      spaceSeparatedCounts(sent.slice(0, afterBacklog)),
    );

    // Act 2: the same pipeline on 8 partitions, deployed while a batch sealed on 4 is in flight
    sent.push(...lines(30));
    await first.push(lines(30));
    const inFlight = await sealWithoutRunning(first, v1);
    await first.stop();
    const second = (await LocalRuntime.start(v2, options)) as LocalRuntime<string>;
    await second.settle();
    results.push(await second.result(inFlight));
    sent.push(...lines(31));
    await second.push(lines(31));
    const [rescaled] = await second.advance();
    if (rescaled) results.push(rescaled);

    // Assert 2: the in-flight batch ran on its 4 partitions, the next re-hashed into 8, state exact
    const inFlightManifest = parseManifest(await second.ctx.objects.get(manifestKey(inFlight)));
    const rescaledManifest = parseManifest(await second.ctx.objects.get(manifestKey(batchId(inFlight + 1))));
    expect(inFlightManifest.layouts).toEqual({ totals: { partitions: 4, since: 1 } });
    expect(rescaledManifest.layouts).toEqual({
      totals: { partitions: 8, since: inFlight + 1, previous: { partitions: 4, since: 1 } },
    });
    expect(rescaled?.status).toBe('complete');
    expect(toCountMap(rescaled?.records ?? [])).toEqual(spaceSeparatedCounts(sent));

    // Act 3: a changed stateless stage deployed while a batch is in flight
    sent.push(...lines(40));
    await second.push(lines(40));
    const upgradedInFlight = await sealWithoutRunning(second, v2);
    await second.stop();
    const third = (await LocalRuntime.start(v3, options)) as LocalRuntime<string>;
    await third.settle();
    results.push(await third.result(upgradedInFlight));
    sent.push(...lines(41));
    await third.push(lines(41));
    const [upgraded] = await third.advance();
    if (upgraded) results.push(upgraded);
    const ledger = await third.ctx.ledger.batches.from(1);

    // Assert 3: no batch failed, from the first to the last; the last counts every line
    expect(ledger.map((b) => b.status).filter((s) => s !== 'complete')).toEqual([]);
    expect(results.every((b) => b.status === 'complete')).toBe(true);
    expect(toCountMap(upgraded?.records ?? [])).toEqual(spaceSeparatedCounts(sent));

    // Act 4: a replay of the first batches, from the stored input, into another prefix
    const report = await replay(v1, {
      run: 'months',
      endpoint: endpoint(),
      from: 1,
      to: 4,
      outputPrefix: 'replays/first',
    });
    const expected = await originals(third.clients, third.resources.bucket, 'months/totals/', 1, 4);
    const actual = await replayed(third.clients, third.resources.bucket, 'replays/first');
    await third.stop();

    // Assert 4: the same objects, byte for byte
    expect(report.batches).toBe(4);
    expect(expected.size).toBeGreaterThan(0);
    expectSameObjects(actual, expected);
  }, 300_000);
});
