import { afterAll, describe, expect, it } from 'vitest';
import {
  countByValueAndWindow,
  countByWindow,
  flatMap,
  groupByKeyAndWindow,
  kinesis,
  map,
  mapWithState,
  pipeline,
  reduceByKeyAndWindow,
  reduceByWindow,
  transform,
  updateStateByKey,
  utf8,
  window,
  type AnyStage,
  type NarrowStage,
  type WideStage,
  type Pipeline,
} from '../../lib';
import { testPipeline, type TestPipeline } from '../../local/testing';

/**
 * Spark Streaming conformance: input batches to output batches, as Spark's DStreams give them
 * (batch interval 1 s; a window of length L and slide S outputs at batches that are multiples of
 * S / 1 s, covering the last L / 1 s batches). Each line of a batch is one record; "k:3" lines
 * are keyed pairs, other lines are split into words. Outputs are compared as sorted lists.
 */
interface Case {
  readonly name: string;
  readonly stage: AnyStage;
  readonly input: readonly (readonly string[])[];
  /** Expected output per batch (batch 1 first). */
  readonly output: readonly (readonly unknown[])[];
  readonly partitions?: number;
}

const source = kinesis({ stream: 'in', decode: utf8 });
const pairs = transform<string, string, number>('pairs', (line, emit) => {
  for (const token of line.split(' ').filter(Boolean)) {
    const [key, value] = token.split(':');
    emit(key as string, value === undefined ? 1 : Number(value));
  }
});
const words = flatMap<string, string>('words', (line) => line.split(' ').filter(Boolean));
const numbers = map<string, number>('numbers', Number);
const sum = (a: number, b: number): number => a + b;
const minus = (a: number, b: number): number => a - b;
const seconds = (length: number, slide: number): { length: `${number}s`; slide: `${number}s` } => ({
  length: `${length}s`,
  slide: `${slide}s`,
});

const keyed: Case[] = [
  {
    name: 'reduceByKeyAndWindow, window 3s slide 2s',
    stage: reduceByKeyAndWindow<string, number>('win', sum, seconds(3, 2)),
    input: [['a b'], ['a'], ['c'], [], [], [], ['a'], []],
    output: [
      [],
      [
        ['a', 2],
        ['b', 1],
      ],
      [],
      [
        ['a', 1],
        ['c', 1],
      ],
      [],
      [],
      [],
      [['a', 1]],
    ],
  },
  {
    name: 'reduceByKeyAndWindow with inverse: keys stay at 0',
    stage: reduceByKeyAndWindow<string, number>('win', sum, { ...seconds(3, 2), inverse: minus }),
    input: [['a b'], ['a'], ['c'], [], [], [], ['a'], []],
    output: [
      [],
      [
        ['a', 2],
        ['b', 1],
      ],
      [],
      [
        ['a', 1],
        ['b', 0],
        ['c', 1],
      ],
      [],
      [
        ['a', 0],
        ['b', 0],
        ['c', 0],
      ],
      [],
      [
        ['a', 1],
        ['b', 0],
        ['c', 0],
      ],
    ],
  },
  {
    name: 'reduceByKeyAndWindow with inverse and a filter that drops zeros',
    stage: reduceByKeyAndWindow<string, number>('win', sum, {
      ...seconds(3, 2),
      inverse: minus,
      filter: ([, n]) => n > 0,
    }),
    input: [['a b'], ['a'], ['c'], [], [], [], ['a'], []],
    output: [
      [],
      [
        ['a', 2],
        ['b', 1],
      ],
      [],
      [
        ['a', 1],
        ['c', 1],
      ],
      [],
      [],
      [],
      [['a', 1]],
    ],
  },
  {
    name: 'reduceByKeyAndWindow tumbling (slide = length) over values',
    stage: reduceByKeyAndWindow<string, number>('win', sum, seconds(2, 2)),
    input: [['x:3 y:1'], ['x:4'], ['y:5'], ['y:1 x:1']],
    output: [
      [],
      [
        ['x', 7],
        ['y', 1],
      ],
      [],
      [
        ['x', 1],
        ['y', 6],
      ],
    ],
  },
  {
    name: 'groupByKeyAndWindow, window 2s slide 1s',
    stage: groupByKeyAndWindow<string, number>('group', seconds(2, 1)),
    input: [['k:1'], ['k:2 j:5'], [], ['k:3']],
    output: [
      [['k', [1]]],
      [
        ['j', [5]],
        ['k', [1, 2]],
      ],
      [
        ['j', [5]],
        ['k', [2]],
      ],
      [['k', [3]]],
    ],
  },
  {
    name: 'updateStateByKey keeps a running count',
    stage: updateStateByKey<string, number, number>(
      'running',
      (values, total) => (total ?? 0) + values.reduce(sum, 0),
    ),
    input: [['a b'], ['a'], [], ['b:2']],
    output: [
      [
        ['a', 1],
        ['b', 1],
      ],
      [
        ['a', 2],
        ['b', 1],
      ],
      [
        ['a', 2],
        ['b', 1],
      ],
      [
        ['a', 2],
        ['b', 3],
      ],
    ],
  },
  {
    name: 'updateStateByKey with an initial state',
    stage: updateStateByKey<string, number, number>(
      'running',
      (values, total) => (total ?? 0) + values.reduce(sum, 0),
      {
        initialState: [
          ['a', 10],
          ['z', 100],
        ],
      },
    ),
    input: [['a b'], []],
    output: [
      [
        ['a', 11],
        ['b', 1],
        ['z', 100],
      ],
      [
        ['a', 11],
        ['b', 1],
        ['z', 100],
      ],
    ],
  },
  {
    name: 'updateStateByKey removes a key when the function returns undefined',
    stage: updateStateByKey<string, number, number>('recent', (values, total) =>
      values.length > 0 ? (total ?? 0) + values.reduce(sum, 0) : undefined,
    ),
    input: [['a b'], ['a'], [], ['b']],
    output: [
      [
        ['a', 1],
        ['b', 1],
      ],
      [['a', 2]],
      [],
      [['b', 1]],
    ],
  },
  {
    name: 'mapWithState maps each record with its state and times out idle keys',
    stage: mapWithState<string, number, number, unknown[]>(
      'sessions',
      (key, value, state) => {
        if (state.isTimingOut()) return [key, 'timed out', state.get()];
        const total = (state.exists() ? state.get() : 0) + (value ?? 0);
        state.update(total);
        return [key, total];
      },
      { timeout: '2s' },
    ),
    input: [['a'], ['a a'], [], [], ['b'], []],
    output: [
      [['a', 1]],
      [
        ['a', 2],
        ['a', 3],
      ],
      [],
      [],
      [
        ['a', 'timed out', 3],
        ['b', 1],
      ],
      [],
    ],
  },
  {
    name: 'mapWithState can remove state and output snapshots of all state',
    stage: mapWithState<string, number, number, never>(
      'snap',
      (_key, value, state) => {
        if (value === 0) state.remove();
        else state.update((state.exists() ? state.get() : 0) + (value ?? 0));
        return undefined;
      },
      { snapshots: true },
    ),
    input: [['a:2 b:1'], ['a:0 b:4'], []],
    output: [
      [
        ['a', 2],
        ['b', 1],
      ],
      [['b', 5]],
      [['b', 5]],
    ],
  },
];

const unkeyed: Case[] = [
  {
    name: 'countByValueAndWindow drops records whose count falls to 0',
    stage: countByValueAndWindow<string>('cbv', seconds(2, 1)),
    input: [['a a b'], ['a'], [], ['b']],
    output: [
      [
        ['a', 2],
        ['b', 1],
      ],
      [
        ['a', 3],
        ['b', 1],
      ],
      [['a', 1]],
      [['b', 1]],
    ],
  },
  {
    name: 'countByWindow: nothing before the first record, then 0 when the window empties',
    stage: countByWindow<string>('cbw', seconds(2, 1)),
    input: [[], ['x y'], ['z'], [], [], ['w']],
    output: [[], [2], [3], [1], [0], [1]],
  },
  {
    name: 'window gives every record of the covered batches',
    stage: window<string>('win', seconds(2, 1)),
    input: [['a'], ['b b'], ['c'], []],
    output: [['a'], ['a', 'b', 'b'], ['b', 'b', 'c'], ['c']],
  },
];

const reduceByWindowCase: Case = {
  name: 'reduceByWindow: one value per window, nothing for an empty window',
  stage: reduceByWindow<number>('max', Math.max, seconds(2, 2)),
  input: [['3', '1'], ['4'], [], [], ['2'], []],
  output: [[], [4], [], [], [], [2]],
};

function sorted(records: readonly unknown[]): unknown[] {
  return records
    .map((r) => JSON.stringify(r))
    .sort()
    .map((r) => JSON.parse(r) as unknown);
}

function build(c: Case, before: AnyStage): Pipeline<string, unknown> {
  // The table mixes stage types, so it states the shape each row has: a stage that takes the
  // source's lines, then the operator under test.
  const stages = [before, c.stage] as unknown as readonly [
    NarrowStage<string, unknown>,
    WideStage<unknown, unknown>,
  ];
  return pipeline({ name: 'conformance', batchInterval: '1s', source, stages });
}

describe.each([
  ...keyed.map((c) => ({ ...c, before: pairs })),
  ...unkeyed.map((c) => ({ ...c, before: words })),
  { ...reduceByWindowCase, before: numbers },
])('Spark conformance: $name', (c) => {
  const runs: TestPipeline<string, unknown>[] = [];
  afterAll(async () => {
    await Promise.all(runs.map((r) => r.close()));
  });

  it.each([
    { partitions: 1, shards: 1, faults: {} },
    { partitions: 3, shards: 2, faults: { duplicate: true } },
  ])(
    'gives Spark’s output batches ($partitions partitions, $shards shards, faults $faults)',
    async (setup) => {
      const t = testPipeline(build(c, c.before), {
        shards: setup.shards,
        faults: setup.faults,
        settings: { partitions: setup.partitions, tasks: { max: 2, targetBytes: 1 } },
      });
      runs.push(t);
      const outputs: unknown[][] = [];

      for (const batch of c.input) outputs.push(sorted((await t.push([...batch]).advance()).records));

      expect(outputs).toEqual(c.output.map(sorted));
    },
  );
});

describe('window definitions', () => {
  it('rejects a window that is not a multiple of the batch interval, when the pipeline is defined', () => {
    const stage = reduceByKeyAndWindow<string, number>('win', sum, { length: '2500ms', slide: '1s' });

    expect(() => pipeline({ name: 'bad', batchInterval: '1s', source, stages: [pairs, stage] })).toThrow(
      /window length 2500 ms is not a multiple of the batch interval 1000 ms/,
    );
  });
});
