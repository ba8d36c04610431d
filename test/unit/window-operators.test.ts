import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  countByValueAndWindow,
  countByWindow,
  groupByKeyAndWindow,
  reduceByKeyAndWindow,
  reduceByWindow,
  window,
} from '../../lib/dsl/window';
import type { Pair, WideStage } from '../../lib/dsl/types';
import type { StatefulOperator } from '../../lib/state/operator';
import { StateTable } from '../../lib/state/table';
import { paneOf, windowShape } from '../../lib/state/operators';
import {
  canonicalBatches,
  countByValueAndWindowOracle,
  countByWindowOracle,
  drive,
  groupByKeyAndWindowOracle,
  incrementalWindowOracle,
  invertibleWindowOracle,
  reduceByKeyAndWindowOracle,
  reduceByWindowOracle,
  sortGroups,
  windowOracle,
  type Batches,
  type DriveOptions,
  type Geometry,
} from '../support/oracle';

type Rec = Pair<string, number>;

const B = 1000;
const add = (a: number, b: number): number => a + b;
const sub = (a: number, b: number): number => a - b;
const xor = (a: number, b: number): number => a ^ b;
const durations = (g: Geometry): { length: number; slide: number } => ({
  length: g.length * B,
  slide: g.slide * B,
});

const record: fc.Arbitrary<Rec> = fc.tuple(
  fc.constantFrom('a', 'b', 'c', 'd'),
  fc.integer({ min: -3, max: 5 }),
);
const batchesArb: fc.Arbitrary<Rec[][]> = fc.array(fc.array(record, { maxLength: 6 }), {
  minLength: 1,
  maxLength: 20,
});
/** Windows with empty stretches, so keys leave windows entirely. */
const sparseBatchesArb: fc.Arbitrary<Rec[][]> = fc.array(
  fc.oneof(
    { weight: 1, arbitrary: fc.array(record, { minLength: 1, maxLength: 4 }) },
    {
      weight: 2,
      arbitrary: fc.constant([] as Rec[]),
    },
  ),
  { minLength: 1, maxLength: 20 },
);
const geometryArb: fc.Arbitrary<Geometry> = fc.record({
  length: fc.integer({ min: 1, max: 6 }),
  slide: fc.integer({ min: 1, max: 6 }),
});
const inputArb = fc.oneof(batchesArb, sparseBatchesArb);

const filters: Record<string, (pair: Rec) => boolean> = {
  nonZero: ([, v]) => v !== 0,
  positive: ([, v]) => v > 0,
  even: ([, v]) => v % 2 === 0,
  notB: ([k]) => k !== 'b',
};

/** A windowed operator: how to run it with the driver, and what the naive model says. */
interface WindowCase {
  readonly name: string;
  readonly run: (batches: Batches<Rec>, g: Geometry, options?: DriveOptions) => string[][];
  readonly expected: (batches: Batches<Rec>, g: Geometry) => string[][];
}

const keysOf = (batches: Batches<Rec>): string[][] => batches.map((b) => b.map(([k]) => k));
const valuesOf = (batches: Batches<Rec>): number[][] => batches.map((b) => b.map(([, v]) => v));
const nullKeyed = (batches: Batches<Rec>): Pair<null, number>[][] =>
  batches.map((b) => b.map(([, v]): Pair<null, number> => [null, v]));

const plainCases: WindowCase[] = [
  {
    name: 'reduceByKeyAndWindow(+)',
    run: (batches, g, o) => canonicalBatches(drive(reduceByKeyAndWindow('w', add, durations(g)), batches, o)),
    expected: (batches, g) => canonicalBatches(reduceByKeyAndWindowOracle(batches, g, add)),
  },
  {
    name: 'reduceByKeyAndWindow(max)',
    run: (batches, g, o) =>
      canonicalBatches(drive(reduceByKeyAndWindow<string, number>('w', Math.max, durations(g)), batches, o)),
    expected: (batches, g) => canonicalBatches(reduceByKeyAndWindowOracle(batches, g, Math.max)),
  },
  {
    name: 'groupByKeyAndWindow',
    run: (batches, g, o) =>
      canonicalBatches(sortGroups(drive(groupByKeyAndWindow<string, number>('w', durations(g)), batches, o))),
    expected: (batches, g) => canonicalBatches(sortGroups(groupByKeyAndWindowOracle(batches, g))),
  },
  {
    name: 'window (records are pairs)',
    run: (batches, g, o) => canonicalBatches(drive(window<Rec>('w', durations(g)), batches, o)),
    expected: (batches, g) => canonicalBatches(windowOracle(batches, g)),
  },
  {
    name: 'reduceByWindow(min)',
    run: (batches, g, o) =>
      canonicalBatches(drive(reduceByWindow<number>('w', Math.min, durations(g)), valuesOf(batches), o)),
    expected: (batches, g) => canonicalBatches(reduceByWindowOracle(valuesOf(batches), g, Math.min)),
  },
];

const incrementalCases: WindowCase[] = [
  {
    name: 'reduceByKeyAndWindow(+, inverse -)',
    run: (batches, g, o) =>
      canonicalBatches(drive(reduceByKeyAndWindow('w', add, { ...durations(g), inverse: sub }), batches, o)),
    expected: (batches, g) => canonicalBatches(incrementalWindowOracle(batches, g, add, sub)),
  },
  ...Object.entries(filters).map(([name, filter]): WindowCase => ({
    name: `reduceByKeyAndWindow(+, inverse -, filter ${name})`,
    run: (batches, g, o) =>
      canonicalBatches(
        drive(reduceByKeyAndWindow('w', add, { ...durations(g), inverse: sub, filter }), batches, o),
      ),
    expected: (batches, g) => canonicalBatches(incrementalWindowOracle(batches, g, add, sub, filter)),
  })),
  {
    name: 'reduceByKeyAndWindow(xor, inverse xor, filter nonZero)',
    run: (batches, g, o) =>
      canonicalBatches(
        drive(
          reduceByKeyAndWindow('w', xor, { ...durations(g), inverse: xor, filter: filters.nonZero }),
          batches,
          o,
        ),
      ),
    expected: (batches, g) =>
      canonicalBatches(incrementalWindowOracle(batches, g, xor, xor, filters.nonZero)),
  },
  {
    name: 'countByValueAndWindow',
    run: (batches, g, o) =>
      canonicalBatches(drive(countByValueAndWindow<string>('w', durations(g)), keysOf(batches), o)),
    expected: (batches, g) => canonicalBatches(countByValueAndWindowOracle(keysOf(batches), g)),
  },
  {
    name: 'countByWindow',
    run: (batches, g, o) => canonicalBatches(drive(countByWindow<Rec>('w', durations(g)), batches, o)),
    expected: (batches, g) => canonicalBatches(countByWindowOracle(batches, g)),
  },
  {
    name: 'reduceByWindow(+, inverse -)',
    run: (batches, g, o) =>
      canonicalBatches(
        drive(reduceByWindow<number>('w', add, { ...durations(g), inverse: sub }), valuesOf(batches), o),
      ),
    expected: (batches, g) =>
      canonicalBatches(incrementalWindowOracle(nullKeyed(batches), g, add, sub)).map((b) =>
        b.map((r) => JSON.stringify((JSON.parse(r) as [null, number])[1])),
      ),
  },
];

const allCases = [...plainCases, ...incrementalCases];
// Counterexamples name the operator rather than print its functions.
for (const c of allCases) Object.assign(c, { [fc.toStringMethod]: () => c.name });

describe('window geometry', () => {
  it.each([
    { lengthMs: 3000, slideMs: 2000, shape: { length: 3, slide: 2, pane: 1 } },
    { lengthMs: 6000, slideMs: 4000, shape: { length: 6, slide: 4, pane: 2 } },
    { lengthMs: 2000, slideMs: 6000, shape: { length: 2, slide: 6, pane: 2 } },
    { lengthMs: 5000, slideMs: 5000, shape: { length: 5, slide: 5, pane: 5 } },
  ])('windowShape($lengthMs, $slideMs) in 1 s batches is $shape', ({ lengthMs, slideMs, shape }) => {
    expect(windowShape(lengthMs, slideMs, B)).toEqual(shape);
  });

  it('puts batch 1 in pane 0 and g consecutive batches in each pane', () => {
    const shape = windowShape(6000, 4000, B);

    const panes = [1, 2, 3, 4, 5, 6, 7].map((n) => paneOf(n, shape));

    expect(panes).toEqual([0, 0, 1, 1, 2, 2, 3]);
  });
});

describe('windowed operators match a naive Spark model, one partition', () => {
  it.each(plainCases)('$name, any length and slide', (c) => {
    fc.assert(
      fc.property(inputArb, geometryArb, (batches, g) => {
        expect(c.run(batches, g)).toEqual(c.expected(batches, g));
      }),
      { numRuns: 400 },
    );
  });

  it.each(incrementalCases)('$name, any length and slide', (c) => {
    fc.assert(
      fc.property(inputArb, geometryArb, (batches, g) => {
        expect(c.run(batches, g)).toEqual(c.expected(batches, g));
      }),
      { numRuns: 300 },
    );
  });

  it('the incremental form with + and - keeps every key seen, at the plain window sum (0 when empty)', () => {
    fc.assert(
      fc.property(inputArb, geometryArb, (batches, g) => {
        const stage = reduceByKeyAndWindow('w', add, { ...durations(g), inverse: sub });

        const out = drive(stage, batches);

        expect(canonicalBatches(out)).toEqual(canonicalBatches(invertibleWindowOracle(batches, g, add, 0)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('incremental windows whose slide is longer than their length (batches between windows)', () => {
  // Regression: with length < slide, the batches between two windows are in neither; they must
  // not be added to a key that had no previous value, nor taken off (and added back) for one that
  // had. The plain (non-incremental) forms are checked with these geometries above.
  it('every incremental operator with length < slide gives the model output', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...incrementalCases),
        inputArb,
        geometryArb.filter((g) => g.length < g.slide),
        (c, batches, g) => {
          expect(c.run(batches, g)).toEqual(c.expected(batches, g));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('countByValueAndWindow with length 1 s, slide 2 s does not count a batch-3 record in the window of batch 4', () => {
    const stage = countByValueAndWindow<string>('w', { length: '1s', slide: '2s' });

    const out = drive(stage, [[], [], ['x'], []]);

    // The window of batch 4 is batch 4 alone, which is empty.
    expect(out).toEqual([[], [], [], []]);
  });
});

describe('partitions, map-side tasks and persisted state do not change any output', () => {
  const layout = fc.record({
    partitions: fc.integer({ min: 1, max: 5 }),
    tasks: fc.integer({ min: 1, max: 3 }),
  });

  it('every operator, split over 1-5 partitions and 1-3 tasks, gives the model output', () => {
    fc.assert(
      fc.property(fc.constantFrom(...allCases), inputArb, geometryArb, layout, (c, batches, g, o) => {
        const out = c.run(batches, g, o);

        expect(out).toEqual(c.expected(batches, g));
      }),
      { numRuns: 600 },
    );
  });

  it('encoding the state tables to chunks and loading fresh tables between batches changes nothing', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...allCases),
        inputArb,
        geometryArb,
        layout,
        fc.integer({ min: 1, max: 4 }),
        (c, batches, g, o, persistChunks) => {
          const kept = c.run(batches, g, o);

          const persisted = c.run(batches, g, { ...o, persistChunks });

          expect(persisted).toEqual(kept);
          expect(persisted).toEqual(c.expected(batches, g));
        },
      ),
      { numRuns: 600 },
    );
  });

  it('carrying only the keys each batch set or deleted to the next (deltas) changes nothing', () => {
    fc.assert(
      fc.property(fc.constantFrom(...allCases), inputArb, geometryArb, layout, (c, batches, g, o) => {
        const out = c.run(batches, g, { ...o, persistDeltas: true });

        expect(out).toEqual(c.expected(batches, g));
      }),
      { numRuns: 600 },
    );
  });
});

describe('a window batch changes the keys entering and leaving the window, not every key', () => {
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
  /** Changes per batch: every key once in batch 1, then `touched` keys a batch. */
  function changesPerBatch(stage: WideStage<Rec, unknown>, touched: number, batches: number): number[] {
    const operator = stage.stateful as StatefulOperator;
    const table = new StateTable();
    const changes: number[] = [];
    for (let n = 1; n <= batches; n++) {
      const records = n === 1 ? keys : keys.slice(((n - 2) * touched) % 1000).slice(0, touched);
      table.trackChanges();
      operator.apply(
        records.map((key) => ({ key, combiner: 1 })),
        table,
        { batch: n, time: n * B, intervalMs: B },
        () => undefined,
        (_key, error) => {
          throw error;
        },
      );
      changes.push(table.changes);
    }
    return changes;
  }

  it.each([
    ['plain', reduceByKeyAndWindow<string, number>('w', add, { length: '3s', slide: '1s' })],
    [
      'with an inverse',
      reduceByKeyAndWindow<string, number>('w', add, { length: '3s', slide: '1s', inverse: sub }),
    ],
  ])(
    '%s: 1,000 keys, 10 touched a batch: each window batch sets or deletes at most the 10 entering and the keys leaving',
    (_name, stage) => {
      const changes = changesPerBatch(stage, 10, 8);

      // Batch 1 sets every key; the plain form deletes them as their only pane leaves (batch 3's
      // window is the last to hold batch 1), the inverse form keeps them at 0 (set once as their
      // value changes).
      expect(changes[0]).toBe(1000);
      for (const [i, count] of changes.slice(1).entries()) {
        const n = i + 2;
        const leaving = n === 3 || n === 4 ? 1000 : 10;
        expect(count, `batch ${n}`).toBeLessThanOrEqual(10 + leaving);
      }
      expect(changes.slice(4).every((count) => count <= 20)).toBe(true);
    },
  );
});

describe('hand-computed Spark examples (B = 1 s, window 3 s, slide 2 s)', () => {
  // Batches 1..8: "a b", "a", "c", -, -, -, "a", -.
  const words: string[][] = [['a', 'b'], ['a'], ['c'], [], [], [], ['a'], []];
  const ones: Rec[][] = words.map((b) => b.map((w): Rec => [w, 1]));
  const options = { length: '3s', slide: '2s' } as const;
  const sorted = (batches: readonly (readonly unknown[])[]): string[][] => canonicalBatches(batches);

  it.each([
    {
      name: 'reduceByKeyAndWindow with inverse: keys stay at 0',
      out: () => drive(reduceByKeyAndWindow<string, number>('w', add, { ...options, inverse: sub }), ones),
      expected: [
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
      name: 'reduceByKeyAndWindow with inverse and filter > 0',
      out: () =>
        drive(
          reduceByKeyAndWindow<string, number>('w', add, {
            ...options,
            inverse: sub,
            filter: ([, n]) => n > 0,
          }),
          ones,
        ),
      expected: [
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
      name: 'reduceByKeyAndWindow without inverse',
      out: () => drive(reduceByKeyAndWindow<string, number>('w', add, options), ones),
      expected: [
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
      name: 'countByValueAndWindow',
      out: () => drive(countByValueAndWindow<string>('w', options), words),
      expected: [
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
      name: 'countByWindow',
      out: () => drive(countByWindow<string>('w', options), words),
      expected: [[], [3], [], [2], [], [0], [], [1]],
    },
    {
      name: 'groupByKeyAndWindow',
      out: () => drive(groupByKeyAndWindow<string, number>('w', options), ones),
      expected: [
        [],
        [
          ['a', [1, 1]],
          ['b', [1]],
        ],
        [],
        [
          ['a', [1]],
          ['c', [1]],
        ],
        [],
        [],
        [],
        [['a', [1]]],
      ],
    },
    {
      name: 'window',
      out: () => drive(window<string>('w', options), words),
      expected: [[], ['a', 'a', 'b'], [], ['a', 'c'], [], [], [], ['a']],
    },
    {
      name: 'reduceByWindow without inverse',
      out: () => drive(reduceByWindow<number>('w', add, options), valuesOf(ones)),
      expected: [[], [3], [], [2], [], [], [], [1]],
    },
  ])('$name', ({ out, expected }) => {
    const actual = out();

    expect(sorted(actual)).toEqual(sorted(expected));
  });

  it('the incremental window starting with a partial first window (length 4 s, slide 2 s)', () => {
    const stage = reduceByKeyAndWindow<string, number>('w', add, { length: '4s', slide: '2s', inverse: sub });
    const input: Rec[][] = [[['a', 5]], [['a', 1]], [['b', 2]], [], [['a', 3]], []];

    const out = drive(stage, input);

    // 2: batches 1-2; 4: 1-4; 6: 3-6.
    expect(sorted(out)).toEqual(
      sorted([
        [],
        [['a', 6]],
        [],
        [
          ['a', 6],
          ['b', 2],
        ],
        [],
        [
          ['a', 3],
          ['b', 2],
        ],
      ]),
    );
  });
});
