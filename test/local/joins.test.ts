import { describe, expect, it } from 'vitest';
import {
  branch,
  cogroup,
  fullOuterJoin,
  join,
  kinesis,
  leftOuterJoin,
  map,
  pipeline,
  rightOuterJoin,
  transform,
  utf8,
  type Branch,
  type Pair,
  type WideStage,
} from '../../lib';
import { testPipeline, type TestPipeline } from '../../local/testing';
import { closeAfterEach } from '../support/runs';

/** "k:v" tokens become keyed pairs with a numeric value (left) or a string value (right). */
const clicks = kinesis({ stream: 'clicks', decode: utf8 });
const users = kinesis({ stream: 'users', decode: utf8 });
const leftPairs = transform<string, string, number>('left-pairs', (line, emit) => {
  for (const token of line.split(' ').filter(Boolean)) {
    const [k, v] = token.split(':');
    emit(k as string, Number(v));
  }
});
const rightPairs = transform<string, string, string>('right-pairs', (line, emit) => {
  for (const token of line.split(' ').filter(Boolean)) {
    const [k, v] = token.split(':');
    emit(k as string, v as string);
  }
});
const other: Branch<Pair<string, string>> = branch({ source: users, stages: [rightPairs] });

const track = closeAfterEach();

function run(stage: WideStage<Pair<string, number>, unknown>, partitions = 2): TestPipeline<string, unknown> {
  const p = pipeline({ name: 'joins', batchInterval: '1s', source: clicks, stages: [leftPairs, stage] });
  const t = testPipeline(p, { shards: 2, settings: { partitions, tasks: { max: 2, targetBytes: 1 } } });
  track(t);
  return t;
}

function sorted(records: readonly unknown[]): string[] {
  return records.map((r) => JSON.stringify(r)).sort();
}

const left = ['a:1 a:2 b:3'];
const right = ['a:x c:y'];

describe('joins of two keyed streams within a batch, as Spark gives them', () => {
  it.each([
    {
      name: 'join',
      stage: join<string, number, string>('j', other),
      out: [
        ['a', [1, 'x']],
        ['a', [2, 'x']],
      ],
    },
    {
      name: 'leftOuterJoin',
      stage: leftOuterJoin<string, number, string>('j', other),
      out: [
        ['a', [1, 'x']],
        ['a', [2, 'x']],
        ['b', [3, null]],
      ],
    },
    {
      name: 'rightOuterJoin',
      stage: rightOuterJoin<string, number, string>('j', other),
      out: [
        ['a', [1, 'x']],
        ['a', [2, 'x']],
        ['c', [null, 'y']],
      ],
    },
    {
      name: 'fullOuterJoin',
      stage: fullOuterJoin<string, number, string>('j', other),
      out: [
        ['a', [1, 'x']],
        ['a', [2, 'x']],
        ['b', [3, null]],
        ['c', [null, 'y']],
      ],
    },
    {
      name: 'cogroup',
      stage: cogroup<string, number, string>('j', other),
      out: [
        ['a', [[1, 2], ['x']]],
        ['b', [[3], []]],
        ['c', [[], ['y']]],
      ],
    },
  ])('$name', async ({ stage, out }) => {
    const t = run(stage);

    const batch = await t.push(left).pushTo(users, right).advance();
    const next = await t.advance();

    expect(sorted(batch.records)).toEqual(sorted(out));
    expect(next.records).toEqual([]);
  });

  it('joins within a sliding window of both streams', async () => {
    const t = run(join<string, number, string>('j', other, { window: { length: '2s', slide: '1s' } }));

    const b1 = await t.push(['a:1']).advance();
    const b2 = await t.pushTo(users, ['a:x']).advance();
    const b3 = await t.push(['a:2']).advance();
    const b4 = await t.advance();

    expect(sorted(b1.records)).toEqual([]);
    expect(sorted(b2.records)).toEqual(sorted([['a', [1, 'x']]]));
    expect(sorted(b3.records)).toEqual(sorted([['a', [2, 'x']]]));
    expect(sorted(b4.records)).toEqual([]);
  });

  it('joins two branches of one stream', async () => {
    const tenfold = map<string, Pair<string, string>>('tenfold', (line) => {
      const [k, v] = line.split(':');
      return [k as string, String(Number(v) * 10)];
    });
    const sameStream = branch({ source: clicks, stages: [tenfold] });
    const p = pipeline({
      name: 'self',
      batchInterval: '1s',
      source: clicks,
      stages: [leftPairs, join<string, number, string>('self', sameStream)],
    });
    const t = testPipeline(p, { shards: 2 });
    track(t);

    const batch = await t.push(['a:1', 'b:2']).advance();

    expect(sorted(batch.records)).toEqual(
      sorted([
        ['a', [1, '10']],
        ['b', [2, '20']],
      ]),
    );
  });
});
