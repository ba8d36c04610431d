import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  countByValueAndWindow,
  countByWindow,
  flatMap,
  groupByKeyAndWindow,
  kinesis,
  mapWithState,
  pipeline,
  reduceByKeyAndWindow,
  reduceByWindow,
  transform,
  updateStateByKey,
  utf8,
  window,
  type KeyState,
  type NarrowStage,
  type Pair,
  type WideStage,
} from '../../lib';
import type { FaultOptions } from '../../local/faults';
import { testPipeline } from '../../local/testing';
import {
  canonicalBatches,
  countByValueAndWindowOracle,
  countByWindowOracle,
  groupByKeyAndWindowOracle,
  incrementalWindowOracle,
  mapWithStateOracle,
  reduceByKeyAndWindowOracle,
  reduceByWindowOracle,
  sortGroups,
  updateStateByKeyOracle,
  windowOracle,
  type Batches,
  type Geometry,
} from '../support/oracle';

/**
 * Windowed and stateful operators end to end on the emulator (ingest, coordinator, transform and
 * reduce tasks, state in DynamoDB chunks), against the naive model of test/support/oracle.ts, for
 * random input, windows, partitions and shards, and under duplicate delivery and crashes.
 */

type Rec = Pair<string, number>;

const source = kinesis({ stream: 'in', decode: utf8 });
/** "k1:3 k2:5" lines to keyed pairs. */
const pairs = transform<string, string, number>('pairs', (line, emit) => {
  for (const token of line.split(' ').filter(Boolean)) {
    const [key, value] = token.split(':');
    emit(key as string, Number(value));
  }
});
/**
 * The same pairs as records (values, not the keyed path): the operators that take whole records
 * (countByValueAndWindow, countByWindow, reduceByWindow, window) get them this way, since after a
 * `transform` they see keys instead (the bug the last test shows).
 */
const records = flatMap<string, Rec>('records', (line) => parse([line]));
const parse = (lines: readonly string[]): Rec[] =>
  lines.flatMap((line) =>
    line
      .split(' ')
      .filter(Boolean)
      .map((token): Rec => {
        const [key, value] = token.split(':');
        return [key as string, Number(value)];
      }),
  );

const token = fc
  .tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e'), fc.integer({ min: 0, max: 6 }))
  .map(([k, v]) => `${k}:${v}`);
const line = fc.array(token, { minLength: 1, maxLength: 3 }).map((tokens) => tokens.join(' '));
const linesArb: fc.Arbitrary<string[][]> = fc.array(
  fc.oneof(fc.array(line, { minLength: 1, maxLength: 4 }), fc.constant([] as string[])),
  { minLength: 4, maxLength: 9 },
);
const geometryArb: fc.Arbitrary<Geometry> = fc.record({
  length: fc.integer({ min: 1, max: 4 }),
  slide: fc.integer({ min: 1, max: 4 }),
});
const layoutArb = fc.record({
  partitions: fc.integer({ min: 1, max: 4 }),
  shards: fc.integer({ min: 1, max: 3 }),
});

interface Layout {
  readonly partitions: number;
  readonly shards: number;
  readonly faults?: FaultOptions;
}

/** Crashes the fault injector made in the runs so far. */
const injected = { crashes: 0 };

/** Runs `before` (`pairs` unless given) then `stage` on the emulator, one batch per element of `batches`: every batch's output. */
async function runOnEmulator<Out>(
  stage: WideStage<Rec, Out>,
  batches: readonly (readonly string[])[],
  layout: Layout,
  before: NarrowStage<string, Rec> = pairs,
): Promise<Out[][]> {
  const stages = [before, stage] as const satisfies readonly [NarrowStage<string, Rec>, WideStage<Rec, Out>];
  const t = testPipeline(pipeline({ name: 'wprop', batchInterval: '1s', source, stages }), {
    shards: layout.shards,
    settings: { partitions: layout.partitions, tasks: { max: 3, targetBytes: 1 } },
    ...(layout.faults ? { faults: layout.faults } : {}),
  });
  try {
    const outputs: Out[][] = [];
    for (const lines of batches) {
      const result = await t.push([...lines]).advance();
      expect(result.status, `batch ${result.batch}: ${result.failure ?? ''}`).toBe('complete');
      expect(result.deadLetters).toBe(0);
      outputs.push([...result.records]);
    }
    injected.crashes += (await t.local()).faults.crashes;
    return outputs;
  } finally {
    await t.close();
  }
}

const add = (a: number, b: number): number => a + b;
const sub = (a: number, b: number): number => a - b;
const minKeySum = (a: Rec, b: Rec): Rec => [a[0] < b[0] ? a[0] : b[0], a[1] + b[1]];
const seconds = (g: Geometry): { length: `${number}s`; slide: `${number}s` } => ({
  length: `${g.length}s`,
  slide: `${g.slide}s`,
});

/** A windowed operator on the emulator, and the model's output for it. */
interface WindowCase {
  readonly name: string;
  readonly run: (lines: Batches<string>, g: Geometry, layout: Layout) => Promise<string[][]>;
  readonly expected: (batches: Batches<Rec>, g: Geometry) => string[][];
}

const windowCases: WindowCase[] = [
  {
    name: 'reduceByKeyAndWindow(+)',
    run: async (lines, g, layout) =>
      canonicalBatches(await runOnEmulator(reduceByKeyAndWindow('w', add, seconds(g)), lines, layout)),
    expected: (batches, g) => canonicalBatches(reduceByKeyAndWindowOracle(batches, g, add)),
  },
  {
    name: 'reduceByKeyAndWindow(+, inverse -, filter > 0)',
    run: async (lines, g, layout) =>
      canonicalBatches(
        await runOnEmulator(
          reduceByKeyAndWindow<string, number>('w', add, {
            ...seconds(g),
            inverse: sub,
            filter: ([, v]) => v > 0,
          }),
          lines,
          layout,
        ),
      ),
    expected: (batches, g) =>
      canonicalBatches(incrementalWindowOracle(batches, g, add, sub, ([, v]) => v > 0)),
  },
  {
    name: 'groupByKeyAndWindow',
    run: async (lines, g, layout) =>
      canonicalBatches(
        sortGroups(await runOnEmulator(groupByKeyAndWindow<string, number>('w', seconds(g)), lines, layout)),
      ),
    expected: (batches, g) => canonicalBatches(sortGroups(groupByKeyAndWindowOracle(batches, g))),
  },
  {
    name: 'countByValueAndWindow (of pairs)',
    run: async (lines, g, layout) =>
      canonicalBatches(
        await runOnEmulator(countByValueAndWindow<Rec>('w', seconds(g)), lines, layout, records),
      ),
    expected: (batches, g) => canonicalBatches(countByValueAndWindowOracle(batches, g)),
  },
  {
    name: 'countByWindow',
    run: async (lines, g, layout) =>
      canonicalBatches(await runOnEmulator(countByWindow<Rec>('w', seconds(g)), lines, layout, records)),
    expected: (batches, g) => canonicalBatches(countByWindowOracle(batches, g)),
  },
  {
    name: 'reduceByWindow([min key, sum])',
    run: async (lines, g, layout) =>
      canonicalBatches(
        await runOnEmulator(reduceByWindow<Rec>('w', minKeySum, seconds(g)), lines, layout, records),
      ),
    expected: (batches, g) => canonicalBatches(reduceByWindowOracle(batches, g, minKeySum)),
  },
  {
    name: 'window',
    run: async (lines, g, layout) =>
      canonicalBatches(await runOnEmulator(window<Rec>('w', seconds(g)), lines, layout, records)),
    expected: (batches, g) => canonicalBatches(windowOracle(batches, g)),
  },
];
for (const c of windowCases) Object.assign(c, { [fc.toStringMethod]: () => c.name });

/** updateStateByKey: a running sum, removed once over 12 (the order of values does not matter). */
const runningSum = (values: number[], state: number | undefined): number | undefined => {
  const next = (state ?? 0) + values.reduce(add, 0);
  return next > 12 ? undefined : next;
};

type Visit = [string, string | number, ...number[]];

/**
 * mapWithState: counts and sums a key's values; 0 only reads (a record that touches the state
 * without updating it). What it outputs does not depend on the order of a key's records in a
 * batch, which the shuffle does not keep across tasks.
 */
function visits(
  key: string,
  value: number | undefined,
  state: KeyState<[number, number]>,
): Visit | undefined {
  if (state.isTimingOut()) return [key, 'timeout', ...state.get()];
  if (value === 0) return [key, 'peek'];
  const [count, sum] = state.exists() ? state.get() : [0, 0];
  state.update([count + 1, sum + (value as number)]);
  return [key, count + 1];
}

const oneRun = { numRuns: 1, endOnFailure: true } as const;

describe('windowed operators on the emulator match the model', () => {
  // One random run per operator (input, window, partitions 1-4, shards 1-3); a new seed every run.
  it.each(windowCases)('$name', async (c) => {
    await fc.assert(
      fc.asyncProperty(linesArb, geometryArb, layoutArb, async (lines, g, layout) => {
        const out = await c.run(lines, g, layout);

        expect(out).toEqual(c.expected(lines.map(parse), g));
      }),
      oneRun,
    );
  });
});

describe('keyed state on the emulator matches the model', () => {
  it('updateStateByKey, random input, partitions and shards', async () => {
    await fc.assert(
      fc.asyncProperty(linesArb, layoutArb, async (lines, layout) => {
        const stage = updateStateByKey<string, number, number>('u', runningSum);

        const out = await runOnEmulator(stage, lines, layout);

        expect(canonicalBatches(out)).toEqual(
          canonicalBatches(updateStateByKeyOracle(lines.map(parse), runningSum)),
        );
      }),
      { numRuns: 3, endOnFailure: true },
    );
  });

  it('mapWithState with a timeout of 1-3 batches, random input, partitions and shards', async () => {
    await fc.assert(
      fc.asyncProperty(
        linesArb,
        layoutArb,
        fc.integer({ min: 1, max: 3 }),
        async (lines, layout, timeout) => {
          const stage = mapWithState<string, number, [number, number], Visit>('m', visits, {
            timeout: `${timeout}s`,
          });

          const out = await runOnEmulator(stage, lines, layout);

          expect(canonicalBatches(out)).toEqual(
            canonicalBatches(mapWithStateOracle(lines.map(parse), visits, { timeout })),
          );
        },
      ),
      { numRuns: 3, endOnFailure: true },
    );
  });
});

describe('exactly once: duplicate deliveries and crashes change no output', () => {
  /** One operator of each stateful family, on the emulator and in the model. */
  const families: {
    readonly name: string;
    readonly run: (lines: Batches<string>, layout: Layout) => Promise<string[][]>;
    readonly expected: (batches: Batches<Rec>) => string[][];
  }[] = [
    {
      name: 'reduceByKeyAndWindow with inverse (3 s, 2 s)',
      run: async (lines, layout) =>
        canonicalBatches(
          await runOnEmulator(
            reduceByKeyAndWindow<string, number>('w', add, { length: '3s', slide: '2s', inverse: sub }),
            lines,
            layout,
          ),
        ),
      expected: (batches) =>
        canonicalBatches(incrementalWindowOracle(batches, { length: 3, slide: 2 }, add, sub)),
    },
    {
      name: 'updateStateByKey',
      run: async (lines, layout) =>
        canonicalBatches(await runOnEmulator(updateStateByKey('u', runningSum), lines, layout)),
      expected: (batches) => canonicalBatches(updateStateByKeyOracle(batches, runningSum)),
    },
    {
      name: 'mapWithState with a 2 s timeout',
      run: async (lines, layout) =>
        canonicalBatches(
          await runOnEmulator(
            mapWithState<string, number, [number, number], Visit>('m', visits, { timeout: '2s' }),
            lines,
            layout,
          ),
        ),
      expected: (batches) => canonicalBatches(mapWithStateOracle(batches, visits, { timeout: 2 })),
    },
  ];
  const faults: { readonly faults: FaultOptions; readonly seed: number }[] = [
    { faults: { duplicate: true }, seed: 11 },
    { faults: { crash: 0.2, seed: 7 }, seed: 12 },
  ];

  it.each(families.flatMap((family) => faults.map((f) => ({ ...f, family, name: family.name }))))(
    '$name, faults $faults',
    async ({ family, faults: f, seed }) => {
      const crashesBefore = injected.crashes;
      await fc.assert(
        fc.asyncProperty(linesArb, async (lines) => {
          const out = await family.run(lines, { partitions: 3, shards: 2, faults: f });

          expect(out).toEqual(family.expected(lines.map(parse)));
        }),
        { ...oneRun, seed },
      );
      // With crashes on, some invocation did crash: the outputs held under faults, not for want of them.
      if (f.crash) expect(injected.crashes).toBeGreaterThan(crashesBefore);
    },
  );
});

describe('record operators after a transform', () => {
  // Known bug (see the report): a `transform` emits on the keyed path (Downstream.pair), and the
  // shuffle buffer takes such a pair as (key, value) without calling the next stage's toPair, so a
  // stage that keys whole records (window, countByWindow, countByValueAndWindow, reduceByWindow,
  // and countByValue, count, reduce) sees the pair's key instead of the pair.
  it('window<Pair> after a transform outputs the pairs, not their keys', async () => {
    const stage = window<Rec>('w', { length: '2s', slide: '1s' });

    const out = await runOnEmulator(stage, [['a:1 b:2'], ['a:3']], { partitions: 1, shards: 1 }, pairs);

    expect(canonicalBatches(out)).toEqual(
      canonicalBatches([
        [
          ['a', 1],
          ['b', 2],
        ],
        [
          ['a', 1],
          ['b', 2],
          ['a', 3],
        ],
      ]),
    );
  });
});
