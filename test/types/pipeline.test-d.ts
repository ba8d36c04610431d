import { describe, expectTypeOf, it } from 'vitest';
import {
  count,
  countByValue,
  filter,
  groupByKey,
  kinesis,
  map,
  pipeline,
  print,
  reduceByKey,
  transform,
  utf8,
  foreachBatch,
  branch,
  join,
  leftOuterJoin,
  type Pair,
  type Pipeline,
} from '../../lib';

const tokenize = transform<string, string, number>('tokenize', (line, emit) => {
  for (const w of line.split(' ')) emit(w, 1);
});
const sum = reduceByKey<string, number>('sum', (a, b) => a + b);
const source = kinesis({ stream: 'lines', decode: utf8 });

describe('pipeline wiring', () => {
  it('infers the output type from source through the last stage', () => {
    const p = pipeline({ name: 'wc', batchInterval: '1s', source, stages: [tokenize, sum] });
    expectTypeOf(p).toEqualTypeOf<Pipeline<string, Pair<string, number>>>();
  });

  it('gives the source type when there are no stages', () => {
    const p = pipeline({ name: 'raw', batchInterval: '1s', source, stages: [] });
    expectTypeOf(p).toEqualTypeOf<Pipeline<string, string>>();
  });

  it('rejects a keyed stage after a stage that emits the wrong value type', () => {
    const tagged = transform<string, string, string>('tag', (line, emit) => emit(line, line));
    // @ts-expect-error reduceByKey<string, number> cannot take [string, string]
    pipeline({ name: 'bad', batchInterval: '1s', source, stages: [tagged, sum] });
  });

  it('rejects a first stage that does not take the source type', () => {
    const lengths = map<number, number>('double', (n) => n * 2);
    // @ts-expect-error the source gives string, the stage takes number
    pipeline({ name: 'bad', batchInterval: '1s', source, stages: [lengths] });
  });

  it('rejects a stage in the middle of a longer chain', () => {
    const lengths = map<string, number>('len', (s) => s.length);
    const upper = map<string, string>('upper', (s) => s.toUpperCase());
    // @ts-expect-error 'upper' takes string but 'len' gives number
    pipeline({ name: 'bad', batchInterval: '1s', source, stages: [lengths, upper] });
  });

  it('narrows with a type-guard filter', () => {
    const parsed = map<string, number | undefined>('parse', (s) => (s ? Number(s) : undefined));
    const defined = filter('defined', (n: number | undefined): n is number => n !== undefined);
    const p = pipeline({
      name: 'ok',
      batchInterval: '1s',
      source,
      stages: [parsed, defined, countByValue<number>('cv')],
    });
    expectTypeOf(p).toEqualTypeOf<Pipeline<string, Pair<number, number>>>();
  });

  it('types groupByKey and count outputs', () => {
    const grouped = pipeline({
      name: 'g',
      batchInterval: '1s',
      source,
      stages: [tokenize, groupByKey<string, number>('g')],
    });
    expectTypeOf(grouped).toEqualTypeOf<Pipeline<string, Pair<string, number[]>>>();
    const counted = pipeline({ name: 'c', batchInterval: '1s', source, stages: [count<string>('n')] });
    expectTypeOf(counted).toEqualTypeOf<Pipeline<string, number>>();
  });

  it('checks sinks against the output type', () => {
    const ok = foreachBatch<Pair<string, number>>('store', async () => {});
    pipeline({ name: 'ok', batchInterval: '1s', source, stages: [tokenize, sum], sinks: [ok, print()] });
    const wrong = foreachBatch<number>('store', async () => {});
    // @ts-expect-error the sink takes numbers, the pipeline gives [string, number]
    pipeline({ name: 'bad', batchInterval: '1s', source, stages: [tokenize, sum], sinks: [wrong] });
  });
});

describe('join wiring', () => {
  const users = kinesis({ stream: 'users', decode: utf8 });
  const names = transform<string, string, string>('names', (line, emit) => emit(line, line.toUpperCase()));
  const other = branch({ source: users, stages: [names] });

  it('types the joined values from both sides', () => {
    const p = pipeline({
      name: 'j',
      batchInterval: '1s',
      source,
      stages: [tokenize, join<string, number, string>('j', other)],
    });
    expectTypeOf(p).toEqualTypeOf<Pipeline<string, Pair<string, [number, string]>>>();
    const outer = pipeline({
      name: 'o',
      batchInterval: '1s',
      source,
      stages: [tokenize, leftOuterJoin<string, number, string>('o', other)],
    });
    expectTypeOf(outer).toEqualTypeOf<Pipeline<string, Pair<string, [number, string | undefined]>>>();
  });

  it('rejects a branch whose pairs do not have the join value type', () => {
    // @ts-expect-error the branch gives [string, string], the join expects [string, number]
    join<string, number, number>('j', other);
  });

  it('rejects a branch whose stages do not take its source records', () => {
    const numbers = map<number, Pair<string, number>>('n', (n) => [String(n), n]);
    // @ts-expect-error the users source gives string, the stage takes number
    branch({ source: users, stages: [numbers] });
  });
});
