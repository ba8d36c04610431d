import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mapWithState, updateStateByKey, type KeyState } from '../../lib/dsl/state-stages';
import type { Pair } from '../../lib/dsl/types';
import {
  canonicalBatches,
  drive,
  mapWithStateOracle,
  updateStateByKeyOracle,
  type Batches,
  type DriveOptions,
  type KV,
} from '../support/oracle';

type Rec = Pair<string, number>;

const record: fc.Arbitrary<Rec> = fc.tuple(
  fc.constantFrom('a', 'b', 'c', 'd'),
  fc.integer({ min: 0, max: 6 }),
);
/** Batches with idle stretches, so that keys time out. */
const batchesArb: fc.Arbitrary<Rec[][]> = fc.array(
  fc.oneof(fc.array(record, { minLength: 1, maxLength: 6 }), fc.constant([] as Rec[])),
  { minLength: 1, maxLength: 20 },
);
const initialArb: fc.Arbitrary<[string, number][]> = fc.uniqueArray(
  fc.tuple(fc.constantFrom('a', 'c', 'e'), fc.integer({ min: 1, max: 9 })),
  { selector: ([k]) => k, maxLength: 3 },
);
const layout = fc.record({
  partitions: fc.integer({ min: 1, max: 5 }),
  tasks: fc.integer({ min: 1, max: 3 }),
});

const total = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

/** An updateStateByKey function, and how it would hold an initial number as state. */
interface UpdateCase {
  readonly name: string;
  readonly fn: (values: number[], state: unknown) => unknown;
  readonly init: (n: number) => unknown;
}

/** updateStateByKey functions: running sums, removals, idle keys, order-dependent history. */
const updates: UpdateCase[] = [
  {
    name: 'running sum',
    fn: (values, state) => ((state as number | undefined) ?? 0) + total(values),
    init: (n) => n,
  },
  {
    name: 'sum, removed once over 8',
    fn: (values, state) => {
      const next = ((state as number | undefined) ?? 0) + total(values);
      return next > 8 ? undefined : next;
    },
    init: (n) => n,
  },
  {
    name: 'active keys only',
    fn: (values) => (values.length === 0 ? undefined : total(values)),
    init: (n) => n,
  },
  {
    name: 'last four values, in order',
    fn: (values, state) => [...((state as number[] | undefined) ?? []), ...values].slice(-4),
    init: (n) => [n],
  },
  {
    name: 'removed after two idle batches',
    fn: (values, state) => {
      const s = (state as { sum: number; idle: number } | undefined) ?? { sum: 0, idle: 0 };
      if (values.length > 0) return { sum: s.sum + total(values), idle: 0 };
      return s.idle >= 1 ? undefined : { sum: s.sum, idle: s.idle + 1 };
    },
    init: (n) => ({ sum: n, idle: 0 }),
  },
];
for (const c of updates) Object.assign(c, { [fc.toStringMethod]: () => c.name });

type Mapped = [string, string, number | null];

/**
 * A session-like mapWithState function: sums values into the state; 0 removes the state, 1 only
 * reads it (a record that touches without updating), 2 updates without output; timing out reports.
 */
function sessions(key: string, value: number | undefined, state: KeyState<number>): Mapped | undefined {
  if (state.isTimingOut()) return [key, 'timeout', state.get()];
  if (value === 0) {
    const had = state.exists() ? state.get() : null;
    state.remove();
    return [key, 'removed', had];
  }
  if (value === 1) return [key, 'peek', state.exists() ? state.get() : null];
  const next = (state.exists() ? state.get() : 0) + (value as number);
  state.update(next);
  return value === 2 ? undefined : [key, 'sum', next];
}

/** A mapWithState configuration: timeout in batches, snapshots, initial state. */
interface MapConfig {
  readonly timeout?: number;
  readonly snapshots: boolean;
  readonly initial: [string, number][];
}

const mapConfigArb: fc.Arbitrary<MapConfig> = fc.record(
  {
    timeout: fc.integer({ min: 1, max: 4 }),
    snapshots: fc.boolean(),
    initial: initialArb,
  },
  { requiredKeys: ['snapshots', 'initial'] },
);

function runMap(batches: Batches<Rec>, config: MapConfig, options: DriveOptions = {}): string[][] {
  const intervalMs = options.intervalMs ?? 1000;
  const common = {
    ...(config.timeout === undefined ? {} : { timeout: config.timeout * intervalMs }),
    ...(config.initial.length > 0 ? { initialState: config.initial } : {}),
  };
  const out = config.snapshots
    ? drive(
        mapWithState<string, number, number, Mapped>('m', sessions, { ...common, snapshots: true }),
        batches,
        {
          ...options,
          intervalMs,
        },
      )
    : drive(mapWithState<string, number, number, Mapped>('m', sessions, common), batches, {
        ...options,
        intervalMs,
      });
  return canonicalBatches(out);
}

function expectedMap(batches: Batches<Rec>, config: MapConfig): string[][] {
  return canonicalBatches(
    mapWithStateOracle(batches, sessions, {
      ...(config.timeout === undefined ? {} : { timeout: config.timeout }),
      initial: config.initial,
      snapshots: config.snapshots,
    }),
  );
}

function runUpdate(
  batches: Batches<Rec>,
  fn: (values: number[], state: unknown) => unknown,
  initial: KV<string, unknown>[],
  options?: DriveOptions,
): string[][] {
  const stage = updateStateByKey<string, number, unknown>(
    'u',
    fn,
    initial.length > 0 ? { initialState: initial } : {},
  );
  return canonicalBatches(drive(stage, batches, options));
}

describe('updateStateByKey matches a naive Spark model', () => {
  it.each(updates)('$name, one partition', ({ fn }) => {
    fc.assert(
      fc.property(batchesArb, (batches) => {
        expect(runUpdate(batches, fn, [])).toEqual(canonicalBatches(updateStateByKeyOracle(batches, fn)));
      }),
      { numRuns: 300 },
    );
  });

  it('starts from the initial state, split over partitions and tasks, with state persisted or kept', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...updates),
        batchesArb,
        initialArb,
        layout,
        fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        ({ fn, init }, batches, numbers, o, persistChunks) => {
          const initial = numbers.map(([k, n]): KV<string, unknown> => [k, init(n)]);

          const out = runUpdate(batches, fn, initial, { ...o, ...(persistChunks ? { persistChunks } : {}) });

          expect(out).toEqual(canonicalBatches(updateStateByKeyOracle(batches, fn, initial)));
        },
      ),
      { numRuns: 800 },
    );
  });
});

describe('mapWithState matches a naive Spark model', () => {
  it('without a timeout, one partition', () => {
    fc.assert(
      fc.property(batchesArb, fc.boolean(), (batches, snapshots) => {
        const config: MapConfig = { snapshots, initial: [] };

        expect(runMap(batches, config)).toEqual(expectedMap(batches, config));
      }),
      { numRuns: 400 },
    );
  });

  it('with a timeout of 1-4 batches, snapshots or not, initial state or not, one partition', () => {
    fc.assert(
      fc.property(batchesArb, mapConfigArb, (batches, config) => {
        expect(runMap(batches, config)).toEqual(expectedMap(batches, config));
      }),
      { numRuns: 800 },
    );
  });

  it('times out by batch time, whatever the interval and the zero time', () => {
    fc.assert(
      fc.property(
        batchesArb,
        mapConfigArb,
        fc.constantFrom(200, 500, 60_000),
        fc.integer({ min: 0, max: 2 ** 40 }),
        (batches, config, intervalMs, zeroTime) => {
          expect(runMap(batches, config, { intervalMs, zeroTime })).toEqual(expectedMap(batches, config));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('split over 1-5 partitions and 1-3 tasks, with state persisted or kept', () => {
    fc.assert(
      fc.property(
        batchesArb,
        mapConfigArb,
        layout,
        fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        (batches, config, o, persistChunks) => {
          const out = runMap(batches, config, { ...o, ...(persistChunks ? { persistChunks } : {}) });

          expect(out).toEqual(expectedMap(batches, config));
        },
      ),
      { numRuns: 800 },
    );
  });
});

describe('hand-computed examples (B = 1 s)', () => {
  it('updateStateByKey keeps a running count and outputs every key every batch', () => {
    const stage = updateStateByKey<string, number, number>('u', (vs, s) => (s ?? 0) + total(vs));

    const out = drive(stage, [
      [
        ['a', 1],
        ['b', 1],
      ],
      [['a', 1]],
      [],
    ]);

    expect(canonicalBatches(out)).toEqual(
      canonicalBatches([
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
      ]),
    );
  });

  it('updateStateByKey removes a key whose function returns undefined, and calls it for keys without values', () => {
    const calls: [number[], number | undefined][] = [];
    const stage = updateStateByKey<string, number, number>('u', (vs, s) => {
      calls.push([vs, s]);
      return vs.length === 0 ? undefined : total(vs);
    });

    const out = drive(stage, [[['a', 3]], [], []]);

    expect(out).toEqual([[['a', 3]], [], []]);
    expect(calls).toEqual([
      [[3], undefined],
      [[], 3],
    ]);
  });

  it.each([
    {
      name: 'a key idle for longer than the timeout (2 s) times out at batch 4, not 3',
      input: [[['a', 5]], [], [], [], []] as Rec[][],
      timeout: '2s' as const,
      initial: [] as [string, number][],
      expected: [[['a', 'sum', 5]], [], [], [['a', 'timeout', 5]], []],
    },
    {
      name: 'a record that only reads the state still refreshes it',
      input: [[['a', 5]], [['a', 1]], [], [], [], []] as Rec[][],
      timeout: '2s' as const,
      initial: [],
      expected: [[['a', 'sum', 5]], [['a', 'peek', 5]], [], [], [['a', 'timeout', 5]], []],
    },
    {
      name: 'a removed key does not time out',
      input: [[['a', 5]], [['a', 0]], [], [], [], []] as Rec[][],
      timeout: '1s' as const,
      initial: [],
      expected: [[['a', 'sum', 5]], [['a', 'removed', 5]], [], [], [], []],
    },
    {
      name: 'initial state counts as touched at batch 1',
      input: [[], [], [], [], []] as Rec[][],
      timeout: '2s' as const,
      initial: [['a', 7]] as [string, number][],
      expected: [[], [], [], [['a', 'timeout', 7]], []],
    },
    {
      name: 'without a timeout, idle state stays',
      input: [[['a', 3]], [], [], [['a', 4]]] as Rec[][],
      timeout: undefined,
      initial: [],
      expected: [[['a', 'sum', 3]], [], [], [['a', 'sum', 7]]],
    },
  ])('mapWithState: $name', ({ input, timeout, initial, expected }) => {
    const stage = mapWithState<string, number, number, Mapped>('m', sessions, {
      ...(timeout ? { timeout } : {}),
      ...(initial.length > 0 ? { initialState: initial } : {}),
    });

    const out = drive(stage, input);

    expect(out).toEqual(expected);
  });

  it('mapWithState hands records of a key to the function in order, within a batch', () => {
    const stage = mapWithState<string, number, number[], number[]>('m', (_k, v, state) => {
      const seen = [...(state.exists() ? state.get() : []), v as number];
      state.update(seen);
      return seen;
    });

    const out = drive(stage, [
      [
        ['a', 3],
        ['b', 9],
        ['a', 1],
        ['a', 2],
      ],
    ]);

    expect(canonicalBatches(out)).toEqual(canonicalBatches([[[3], [9], [3, 1], [3, 1, 2]]]));
  });
});

describe("mapWithState's State API", () => {
  it.each([
    {
      name: 'get() without state throws',
      fn: (_k: string, _v: number | undefined, s: KeyState<number>) => s.get(),
      message: /no state/,
    },
    {
      name: 'update(undefined) throws',
      fn: (_k: string, _v: number | undefined, s: KeyState<number>) =>
        s.update(undefined as unknown as number),
      message: /undefined/,
    },
  ])('$name', ({ fn, message }) => {
    const stage = mapWithState<string, number, number, unknown>('m', fn);

    expect(() => drive(stage, [[['a', 1]]])).toThrow(message);
  });

  it('update() while timing out throws', () => {
    const stage = mapWithState<string, number, number, unknown>(
      'm',
      (_k, v, s) => {
        s.update(v ?? 0);
        return undefined;
      },
      { timeout: '1s' },
    );

    expect(() => drive(stage, [[['a', 1]], [], []])).toThrow(/timing out/);
  });
});
