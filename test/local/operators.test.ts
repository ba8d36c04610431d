import { describe, expect, it } from 'vitest';
import {
  aggregateByKey,
  combineByKey,
  count,
  countByValue,
  filter,
  flatMap,
  foreachBatch,
  groupByKey,
  json,
  kinesis,
  map,
  pipeline,
  reduce,
  reduceByKey,
  transform,
  utf8,
  type Pair,
} from '../../lib';
import { testPipeline } from '../../local/testing';
import { closeAfterEach } from '../support/runs';
import { sortedEntries } from '../support/corpus';

const lines = kinesis({ stream: 'lines', decode: utf8 });
const words = flatMap<string, string>('words', (line) => line.split(' ').filter(Boolean));
const pairs = map<string, Pair<string, number>>('pairs', (w) => [
  w.replace(/\d+$/, ''),
  Number(/\d+$/.exec(w)?.[0] ?? 1),
]);

const track = closeAfterEach();

function byKey<V>(records: readonly Pair<string, V>[]): [string, V][] {
  return sortedEntries(new Map(records));
}

describe('keyed operators on the emulator', () => {
  it('groupByKey collects every value of a key, across tasks and partitions', async () => {
    const p = pipeline({
      name: 'group',
      batchInterval: '1s',
      source: lines,
      stages: [words, pairs, groupByKey<string, number>('group')],
    });
    const t = track(
      testPipeline(p, { shards: 3, settings: { partitions: 3, tasks: { max: 3, targetBytes: 1 } } }),
    );

    const batch = await t.push(['a1 b2 a3', 'c4 a5', 'b6']).advance();

    const grouped = byKey(batch.records).map(([k, vs]) => [k, [...vs].sort((x, y) => x - y)]);
    expect(grouped).toEqual([
      ['a', [1, 3, 5]],
      ['b', [2, 6]],
      ['c', [4]],
    ]);
  });

  it('combineByKey computes a per-key average with map-side combining', async () => {
    const avg = combineByKey<string, number, { sum: number; n: number }>('avg', {
      create: (v) => ({ sum: v, n: 1 }),
      mergeValue: (c, v) => ({ sum: c.sum + v, n: c.n + 1 }),
      mergeCombiners: (a, b) => ({ sum: a.sum + b.sum, n: a.n + b.n }),
    });
    const p = pipeline({ name: 'avg', batchInterval: '1s', source: lines, stages: [words, pairs, avg] });
    const t = track(testPipeline(p));

    const batch = await t.push(['x2 x4 y10', 'x6']).advance();

    expect(byKey(batch.records)).toEqual([
      ['x', { sum: 12, n: 3 }],
      ['y', { sum: 10, n: 1 }],
    ]);
  });

  it('aggregateByKey starts every key from its own copy of zero', async () => {
    const agg = aggregateByKey<string, number, number[]>(
      'collect',
      [],
      (acc, v) => {
        acc.push(v);
        return acc;
      },
      (a, b) => a.concat(b),
    );
    const p = pipeline({ name: 'agg', batchInterval: '1s', source: lines, stages: [words, pairs, agg] });
    const t = track(testPipeline(p));

    const batch = await t.push(['p1 q2 p3']).advance();

    expect(byKey(batch.records).map(([k, v]) => [k, [...v].sort()])).toEqual([
      ['p', [1, 3]],
      ['q', [2]],
    ]);
  });

  it('countByValue counts each distinct record', async () => {
    const p = pipeline({
      name: 'cbv',
      batchInterval: '1s',
      source: lines,
      stages: [words, countByValue<string>('cbv')],
    });
    const t = track(testPipeline(p));

    const batch = await t.push(['a b a', 'a']).advance();

    expect(byKey(batch.records)).toEqual([
      ['a', 3],
      ['b', 1],
    ]);
  });

  it('count gives one number per batch, 0 for an empty batch, as Spark does', async () => {
    const p = pipeline({
      name: 'count',
      batchInterval: '1s',
      source: lines,
      stages: [words, count<string>('n')],
    });
    const t = track(testPipeline(p, { shards: 2, settings: { tasks: { max: 2, targetBytes: 1 } } }));

    const first = await t.push(['a b c', 'd e']).advance();
    const empty = await t.advance();

    expect(first.records).toEqual([5]);
    expect(empty.records).toEqual([0]);
  });

  it('reduce folds a batch to one record, and an empty batch to none', async () => {
    const lengths = map<string, number>('len', (w) => w.length);
    const p = pipeline({
      name: 'longest',
      batchInterval: '1s',
      source: lines,
      stages: [words, lengths, reduce<number>('max', Math.max)],
    });
    const t = track(testPipeline(p));

    const first = await t.push(['aa bbbb c']).advance();
    const empty = await t.advance();

    expect(first.records).toEqual([4]);
    expect(empty.records).toEqual([]);
  });

  it('chains two shuffles: counts per word, then how many words have each count', async () => {
    const tokenize = transform<string, string, number>('tok', (line, emit) =>
      line.split(' ').forEach((w) => emit(w, 1)),
    );
    const perWord = reduceByKey<string, number>('per-word', (a, b) => a + b);
    const byCount = map<Pair<string, number>, Pair<number, number>>('by-count', ([, n]) => [n, 1]);
    const histogram = reduceByKey<number, number>('histogram', (a, b) => a + b, { partitions: 2 });
    const p = pipeline({
      name: 'hist',
      batchInterval: '1s',
      source: lines,
      stages: [tokenize, perWord, byCount, histogram],
    });
    const t = track(testPipeline(p, { shards: 2, settings: { partitions: 3 } }));

    const batch = await t.push(['a b c a', 'b a d']).advance();

    expect(new Map(batch.records)).toEqual(
      new Map([
        [3, 1],
        [2, 1],
        [1, 2],
      ]),
    );
  });

  it('runs a pipeline of narrow stages only, writing output from the transform tasks', async () => {
    const numbers = kinesis({ stream: 'numbers', decode: json<number>() });
    const even = filter<number>('even', (n) => n % 2 === 0);
    const half = map<number, number>('half', (n) => n / 2);
    const p = pipeline({ name: 'narrow', batchInterval: '1s', source: numbers, stages: [even, half] });
    const t = track(testPipeline(p, { shards: 2 }));

    const batch = await t.push([1, 2, 3, 4, 5, 6]).advance();

    expect([...batch.records].sort()).toEqual([1, 2, 3]);
  });

  it('hands each partition of output to a foreachBatch sink with its batch context', async () => {
    const seen: { batch: number; partition: number; records: readonly Pair<string, number>[] }[] = [];
    const sink = foreachBatch<Pair<string, number>>('collect', (records, ctx) => {
      seen.push({ batch: ctx.batch, partition: ctx.partition, records });
      return Promise.resolve();
    });
    const p = pipeline({
      name: 'sink',
      batchInterval: '1s',
      source: lines,
      stages: [words, countByValue<string>('cbv')],
      sinks: [sink],
    });
    const t = track(testPipeline(p, { settings: { partitions: 2 } }));

    const batch = await t.push(['a b c d e f']).advance();

    expect(seen.every((s) => s.batch === batch.batch)).toBe(true);
    expect(new Set(seen.map((s) => s.partition)).size).toBe(seen.length);
    expect(seen.flatMap((s) => s.records).sort()).toEqual([...batch.records].sort());
  });
});
