import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { combineByKey, countByValue, groupByKey, reduceByKey } from '../../lib/dsl/reduce';
import { filter, flatMap, map, transform } from '../../lib/dsl/transform';
import type { Downstream, NarrowStage, WideStage } from '../../lib/dsl/types';
import { mapKey, partitionOf, passOf } from '../../lib/encoding/key';
import { decodeRun } from '../../lib/encoding/shuffle';
import {
  OutputCollector,
  RecordStager,
  ShuffleBuffer,
  ShuffleMerger,
  fuseStages,
  type MergePass,
} from '../../lib/runtime/buffers';
import { toJsonLines } from '../../lib/runtime/output';

/** A merger's output records with their keys, in the order it gives them (`outputTo`). */
function outputsOf(merger: ShuffleMerger): { key: unknown; record: unknown }[] {
  const out: { key: unknown; record: unknown }[] = [];
  merger.outputTo({ record: (record, _raw, key) => void out.push({ key, record }) });
  return out;
}

const wide = (stage: unknown): WideStage<unknown, unknown> => stage as WideStage<unknown, unknown>;
const narrow = (stage: unknown): NarrowStage<unknown, unknown> => stage as NarrowStage<unknown, unknown>;

const sum = wide(reduceByKey<string, number>('sum', (a, b) => a + b));
const group = wide(groupByKey<string, number>('group'));

/** Every (partition, key, value) in an encoded shuffle buffer. */
function runsOf(buffer: ShuffleBuffer, partitions: number): [unknown, unknown][][] {
  const { body, index } = buffer.encode();
  return Array.from({ length: partitions }, (_, p) => {
    const pairs: [unknown, unknown][] = [];
    decodeRun(body, index[p] ?? 0, index[p + 1] ?? 0, (k, v) => pairs.push([k, v]));
    return pairs;
  });
}

/** Records what a stage sends on. */
class Recorder implements Downstream {
  readonly calls: (['value', unknown] | ['pair', unknown, unknown])[] = [];
  value(value: unknown): void {
    this.calls.push(['value', value]);
  }
  pair(key: unknown, value: unknown): void {
    this.calls.push(['pair', key, value]);
  }
}

describe('ShuffleBuffer', () => {
  describe.each([
    { name: 'combined map-side (reduceByKey)', stage: sum, merge: (a: number, b: number) => a + b },
    { name: 'raw values (groupByKey)', stage: group, merge: undefined },
  ])('under a memory budget, $name', ({ stage, merge }) => {
    const pairs = (seed: number): [string, number][] =>
      Array.from({ length: 3000 }, (_, i): [string, number] => [`k${(i * 7919 + seed) % 1100}`, i % 13]);
    /** Per partition, every key's values merged as the reduce side merges them, in key order. */
    const merged = (runs: [unknown, unknown][][]): [unknown, unknown][][] =>
      runs.map((run) => {
        const byKey = new Map<unknown, unknown[]>();
        for (const [k, v] of run) byKey.set(k, [...(byKey.get(k) ?? []), v]);
        return [...byKey]
          .map(([k, vs]): [unknown, unknown] => [k, merge ? (vs as number[]).reduce(merge) : vs.flat()])
          .sort(([a], [b]) => String(a).localeCompare(String(b)));
      });

    it('spills past the budget and carries the same values per key, in each partition', () => {
      // Arrange
      const bounded = new ShuffleBuffer(stage, 4, null, 0, undefined, 20_000);
      const unbounded = new ShuffleBuffer(stage, 4);

      // Act
      for (const [k, v] of pairs(1)) {
        bounded.pair(k, v);
        unbounded.pair(k, v);
      }

      // Assert
      expect(bounded.spilled).toBeGreaterThan(1);
      expect(unbounded.spilled).toBe(0);
      expect(merged(runsOf(bounded, 4))).toEqual(merged(runsOf(unbounded, 4)));
      expect(bounded.records).toBe(unbounded.records);
    });

    it('writes the same bytes for the same input, spilling at the same records', () => {
      const encode = (): Buffer => {
        const buffer = new ShuffleBuffer(stage, 4, null, 0, undefined, 20_000);
        for (const [k, v] of pairs(2)) buffer.pair(k, v);
        return buffer.encode().body;
      };

      expect(encode().equals(encode())).toBe(true);
    });
  });

  it('combines map-side to one pair per key with the summed value', () => {
    const buffer = new ShuffleBuffer(sum, 4);
    for (const [k, v] of [
      ['a', 1],
      ['b', 2],
      ['a', 3],
      ['c', 4],
      ['b', 5],
      ['a', 6],
    ] as const)
      buffer.pair(k, v);

    const pairs = runsOf(buffer, 4).flat();

    expect(new Map(pairs)).toEqual(
      new Map([
        ['a', 10],
        ['b', 7],
        ['c', 4],
      ]),
    );
    expect(pairs).toHaveLength(3);
  });

  it('puts each key in its partitionOf partition and lists the partitions with data', () => {
    const buffer = new ShuffleBuffer(sum, 8);
    const keys = ['spark', 'flink', 'beam', 'storm', 'samza', 'kafka'];
    for (const k of keys) buffer.pair(k, 1);

    const runs = runsOf(buffer, 8);

    runs.forEach((run, p) => {
      for (const [k] of run) expect(partitionOf(mapKey(k), 8)).toBe(p);
    });
    expect(buffer.encode().withData).toEqual(runs.flatMap((run, p) => (run.length > 0 ? [p] : [])));
  });

  it('counts every pair it was given, combined or not', () => {
    const buffer = new ShuffleBuffer(sum, 2);
    for (let i = 0; i < 5; i++) buffer.pair('same', 1);

    expect(buffer.records).toBe(5);
  });

  it('merges structurally equal composite keys into one entry', () => {
    const buffer = new ShuffleBuffer(wide(reduceByKey<unknown, number>('sum', (a, b) => a + b)), 3);
    buffer.pair(['a', { x: 1, y: 2 }], 1);
    buffer.pair(['a', { y: 2, x: 1 }], 2);

    expect(runsOf(buffer, 3).flat()).toEqual([[['a', { x: 1, y: 2 }], 3]]);
  });

  it('keeps every value, in order, without map-side combine', () => {
    const buffer = new ShuffleBuffer(group, 1);
    for (const [k, v] of [
      ['a', 1],
      ['b', 2],
      ['a', 3],
    ] as const)
      buffer.pair(k, v);

    expect(runsOf(buffer, 1)).toEqual([
      [
        ['a', 1],
        ['b', 2],
        ['a', 3],
      ],
    ]);
  });

  it("routes value() through the stage's toPair", () => {
    const buffer = new ShuffleBuffer(wide(countByValue<string>('cbv')), 1);
    for (const word of ['x', 'y', 'x']) buffer.value(word);

    expect(runsOf(buffer, 1)).toEqual([
      [
        ['x', 2],
        ['y', 1],
      ],
    ]);
  });

  it('gives an empty shuffle and no partitions with data when it got nothing', () => {
    const encoded = new ShuffleBuffer(sum, 4).encode();

    expect(encoded.body.length).toBe(0);
    expect(encoded.withData).toEqual([]);
    expect(encoded.index).toEqual([0, 0, 0, 0, 0]);
  });

  it('gives byte-identical output for identical input (property)', () => {
    const pairs = fc.array(
      fc.tuple(fc.oneof(fc.string(), fc.integer(), fc.tuple(fc.string(), fc.nat())), fc.integer()),
    );
    fc.assert(
      fc.property(pairs, fc.integer({ min: 1, max: 8 }), fc.boolean(), (input, partitions, combine) => {
        const make = (): ShuffleBuffer => {
          const stage = combine ? wide(reduceByKey<unknown, number>('s', (a, b) => a + b)) : group;
          const buffer = new ShuffleBuffer(stage, partitions);
          for (const [k, v] of input) buffer.pair(k, v);
          return buffer;
        };
        const [a, b] = [make().encode(), make().encode()];
        expect(a.body.equals(b.body)).toBe(true);
        expect(a.index).toEqual(b.index);
      }),
    );
  });

  it('says which outputs of a record did not go in when the keyed stage merge throws part-way', () => {
    const strict = wide(
      reduceByKey<string, number>('strict', (a, b) => {
        if (b < 0) throw new Error('negative');
        return a + b;
      }),
    );
    const buffer = new ShuffleBuffer(strict, 1);
    buffer.pair('a', 1);
    buffer.pair('b', 1);
    const stager = new RecordStager();
    stager.pair('a', 10);
    stager.pair('b', -1);
    stager.pair('c', 5);

    expect(() => stager.commit(buffer)).toThrow('negative');
    const partial = stager.unapplied();
    stager.discard();

    expect(partial).toEqual({
      applied: 1,
      rest: [
        ['b', -1],
        ['c', 5],
      ],
    });
    expect(runsOf(buffer, 1)).toEqual([
      [
        ['a', 11],
        ['b', 1],
      ],
    ]);
    expect(buffer.records).toBe(3);
  });
});

describe('ShuffleMerger', () => {
  const words = fc.array(
    fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'spark', ''), fc.nat()),
    {
      maxLength: 200,
    },
  );

  /** Runs tasks' pairs through ShuffleBuffer -> encode -> decodeRun -> ShuffleMerger, per partition. */
  function shuffle(
    stage: WideStage<unknown, unknown>,
    input: readonly [string, number][],
    tasks: number,
    partitions: number,
  ): Map<unknown, unknown>[] {
    const buffers = Array.from({ length: tasks }, () => new ShuffleBuffer(stage, partitions));
    for (const [word, t] of input) buffers[t % tasks]?.pair(word, 1);
    const files = buffers.map((b) => b.encode());
    return Array.from({ length: partitions }, (_, p) => {
      const merger = new ShuffleMerger(stage);
      for (const { body, index } of files) decodeRun(body, index[p] ?? 0, index[p + 1] ?? 0, merger.add);
      return new Map(outputsOf(merger).map(({ key, record }) => [key, record]));
    });
  }

  function oracle(input: readonly [string, number][]): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [word] of input) counts.set(word, (counts.get(word) ?? 0) + 1);
    return counts;
  }

  it.each([
    ['reduceByKey (map-side combine)', sum, (record: unknown) => (record as [string, number])[1]],
    ['groupByKey (raw values)', group, (record: unknown) => (record as [string, number[]])[1].length],
    [
      'combineByKey without map-side combine',
      wide(
        combineByKey<string, number, number>(
          'cbk',
          { create: (v) => v, mergeValue: (c, v) => c + v, mergeCombiners: (a, b) => a + b },
          { mapSideCombine: false },
        ),
      ),
      (record: unknown) => (record as [string, number])[1],
    ],
  ])(
    'counts like a plain Map across 1-6 tasks and 1-8 partitions with %s (property)',
    (_name, stage, countOf) => {
      fc.assert(
        fc.property(
          words,
          fc.integer({ min: 1, max: 6 }),
          fc.integer({ min: 1, max: 8 }),
          (input, tasks, partitions) => {
            const merged = shuffle(stage, input, tasks, partitions);
            const all = new Map<unknown, number>();
            merged.forEach((partition, p) => {
              for (const [key, record] of partition) {
                expect(partitionOf(mapKey(key), partitions)).toBe(p);
                expect(all.has(key)).toBe(false);
                all.set(key, countOf(record));
              }
            });
            expect(all).toEqual(oracle(input));
          },
        ),
        { numRuns: 150 },
      );
    },
  );

  it('merges in passes the same keys and values as in one, each key in the pass passOf gives it (property)', () => {
    fc.assert(
      fc.property(
        words,
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 5 }),
        (input, tasks, passes) => {
          // Arrange
          const buffers = Array.from({ length: tasks }, () => new ShuffleBuffer(group, 1));
          input.forEach(([word, value], i) => buffers[i % tasks]?.pair(word, value));
          const files = buffers.map((buffer) => buffer.encode());
          const mergeOf = (pass?: MergePass): Map<unknown, unknown> => {
            const merger = new ShuffleMerger(group, pass);
            for (const { body, index } of files) decodeRun(body, index[0] ?? 0, index[1] ?? 0, merger.add);
            return new Map(outputsOf(merger).map(({ key, record }) => [key, record]));
          };

          // Act
          const whole = mergeOf();
          const inPasses = Array.from({ length: passes }, (_, index) => mergeOf({ index, of: passes }));

          // Assert: every key once, in its own pass, with the values (in order) of the one-pass merge.
          const union = new Map<unknown, unknown>();
          inPasses.forEach((merged, index) => {
            for (const [key, record] of merged) {
              expect(passOf(mapKey(key), passes)).toBe(index);
              expect(union.has(key)).toBe(false);
              union.set(key, record);
            }
          });
          expect(union).toEqual(whole);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('merges combiners with mergeCombiners when the map side combined', () => {
    const merger = new ShuffleMerger(sum);
    merger.add('a', 2);
    merger.add('b', 5);
    merger.add('a', 3);

    expect(outputsOf(merger).map((o) => o.record)).toEqual([
      ['a', 5],
      ['b', 5],
    ]);
  });

  it('builds combiners with create and mergeValue from raw values', () => {
    const merger = new ShuffleMerger(group);
    for (const [k, v] of [
      ['a', 1],
      ['b', 2],
      ['a', 3],
    ] as const)
      merger.add(k, v);

    expect(outputsOf(merger).map((o) => o.record)).toEqual([
      ['a', [1, 3]],
      ['b', [2]],
    ]);
  });

  it('gives outputs in the order keys were first seen', () => {
    const merger = new ShuffleMerger(sum);
    for (const k of ['z', 'a', 'm', 'a', 'z']) merger.add(k, 1);

    expect(outputsOf(merger).map((o) => o.key)).toEqual(['z', 'a', 'm']);
  });

  it('merges equal composite keys decoded as separate objects', () => {
    const merger = new ShuffleMerger(sum);
    merger.add(['k', 1], 1);
    merger.add(['k', 1], 2);

    expect(outputsOf(merger).map((o) => o.record)).toEqual([[['k', 1], 3]]);
  });

  it('takes out a key whose merge throws, keeps every value it got, and keeps the other keys', () => {
    // Arrange
    const fussy = wide(
      reduceByKey<string, number>('fussy', (a, b) => {
        if (b < 0) throw new Error('negative');
        return a + b;
      }),
    );
    const merger = new ShuffleMerger(fussy);

    // Act
    merger.add('ok', 1);
    merger.add('bad', 1);
    merger.add('bad', -1);
    merger.add('bad', 5);
    merger.add('bad', -2);
    merger.add('ok', 2);

    // Assert
    expect(outputsOf(merger).map((o) => o.record)).toEqual([['ok', 3]]);
    const failures = [...merger.failures()];
    expect(failures).toHaveLength(1);
    expect(failures[0]?.key).toBe('bad');
    expect(failures[0]?.error).toBeInstanceOf(Error);
    // What it had (1), the value that failed (-1) and every later value: nothing lost.
    expect(failures[0]?.values).toEqual([1, -1, 5, -2]);
  });

  it('drops a key whose create throws on its first value', () => {
    const picky = wide(
      combineByKey<string, number, number>(
        'picky',
        {
          create: (v) => {
            if (v === 0) throw new Error('zero');
            return v;
          },
          mergeValue: (c, v) => c + v,
          mergeCombiners: (a, b) => a + b,
        },
        { mapSideCombine: false },
      ),
    );
    const merger = new ShuffleMerger(picky);

    merger.add('z', 0);
    merger.add('z', 4);
    merger.add('y', 1);

    expect([...merger.failures()].map((f) => [f.key, f.values])).toEqual([['z', [0, 4]]]);
    expect(outputsOf(merger).map((o) => o.key)).toEqual(['y']);
  });

  it('maps key and combiner through the stage output', () => {
    const merger = new ShuffleMerger(wide(countByValue<string>('cbv')));
    merger.add('w', 2);
    merger.add('w', 3);

    expect(outputsOf(merger)).toEqual([{ key: 'w', record: ['w', 5] }]);
  });
});

describe('RecordStager', () => {
  it('forwards nothing before commit', () => {
    const stager = new RecordStager();
    const downstream = new Recorder();
    stager.value(1);
    stager.pair('k', 2);

    expect(downstream.calls).toEqual([]);
  });

  it('forwards staged values and pairs in order on commit and returns their number', () => {
    const stager = new RecordStager();
    const downstream = new Recorder();
    stager.value('v');
    stager.pair('k', 2);
    stager.value(undefined);

    const n = stager.commit(downstream);

    expect(n).toBe(3);
    expect(downstream.calls).toEqual([
      ['value', 'v'],
      ['pair', 'k', 2],
      ['value', undefined],
    ]);
  });

  it('keeps a pair with an undefined or null key a pair', () => {
    const stager = new RecordStager();
    const downstream = new Recorder();
    stager.pair(undefined, 1);
    stager.pair(null, 2);

    stager.commit(downstream);

    expect(downstream.calls).toEqual([
      ['pair', undefined, 1],
      ['pair', null, 2],
    ]);
  });

  it('is empty after commit', () => {
    const stager = new RecordStager();
    stager.value(1);
    stager.commit(new Recorder());
    const downstream = new Recorder();

    expect(stager.commit(downstream)).toBe(0);
    expect(downstream.calls).toEqual([]);
  });

  it('drops staged output on discard', () => {
    const stager = new RecordStager();
    stager.value(1);
    stager.pair('k', 2);
    stager.discard();
    stager.value(3);
    const downstream = new Recorder();

    expect(stager.commit(downstream)).toBe(1);
    expect(downstream.calls).toEqual([['value', 3]]);
  });
});

describe('OutputCollector', () => {
  it('encodes values and pairs as JSON Lines as they come, in order, keeping records only when asked', () => {
    const kept = new OutputCollector({ keepRecords: true });
    const plain = new OutputCollector();
    for (const out of [kept, plain]) {
      out.value('a');
      out.pair('k', 1n);
      out.value(2);
    }

    expect(kept.records).toEqual(['a', ['k', 1n], 2]);
    expect(plain.records).toBeUndefined();
    for (const out of [kept, plain]) {
      expect(out.count).toBe(3);
      expect(out.body().toString('utf8')).toBe('"a"\n["k","1"]\n2\n');
    }
  });

  it('hands a record JSON would change to onRefused and leaves it out', () => {
    const refused: unknown[] = [];
    const out = new OutputCollector({ keepRecords: true, onRefused: (record) => refused.push(record) });

    out.pair('avg', NaN);
    out.pair('ok', 1);

    expect(refused).toEqual([['avg', NaN]]);
    expect(out.records).toEqual([['ok', 1]]);
    expect(out.count).toBe(1);
    expect(out.body().toString('utf8')).toBe('["ok",1]\n');
    expect(() => new OutputCollector().value(new Map())).toThrow(/cannot write a Map as JSON/);
  });

  it('gives the same bytes for an output of many parts as JSON Lines written at once', () => {
    // Arrange: over a megabyte of lines, several of the collector's parts, with multi-byte text.
    const out = new OutputCollector();
    const records = Array.from({ length: 30_000 }, (_, i) => [`wörd-${i}-${'x'.repeat(i % 50)}`, i]);

    // Act
    for (const [key, value] of records) out.pair(key, value);

    // Assert
    expect(out.body().equals(toJsonLines(records))).toBe(true);
    expect(new OutputCollector().body()).toHaveLength(0);
  });
});

describe('fuseStages', () => {
  it('sends each record straight to the terminal when there are no stages', () => {
    const terminal = new Recorder();

    fuseStages([], terminal, { stage: 'x' })(5);

    expect(terminal.calls).toEqual([['value', 5]]);
  });

  it('composes map, flatMap and filter in order', () => {
    const terminal = new Recorder();
    const run = fuseStages(
      [
        narrow(map<string, string>('lower', (s) => s.toLowerCase())),
        narrow(flatMap<string, string>('words', (s) => s.split(' '))),
        narrow(filter<string>('long', (w) => w.length > 2)),
        narrow(map<string, number>('len', (w) => w.length)),
      ],
      terminal,
      { stage: 'phase' },
    );

    run('The quick Fox is');

    expect(terminal.calls).toEqual([
      ['value', 3],
      ['value', 5],
      ['value', 3],
    ]);
  });

  it("sends a final transform's output to the terminal as pairs", () => {
    const terminal = new Recorder();
    const run = fuseStages(
      [
        narrow(
          transform<string, string, number>('tok', (s, emit) => s.split(' ').forEach((w) => emit(w, 1))),
        ),
      ],
      terminal,
      { stage: 'phase' },
    );

    run('a b');

    expect(terminal.calls).toEqual([
      ['pair', 'a', 1],
      ['pair', 'b', 1],
    ]);
  });

  it('hands a transform pair to a following stage as a [key, value] tuple', () => {
    const terminal = new Recorder();
    const run = fuseStages(
      [
        narrow(transform<string, string, number>('tok', (s, emit) => emit(s, s.length))),
        narrow(map<[string, number], string>('show', ([k, v]) => `${k}=${v}`)),
      ],
      terminal,
      { stage: 'phase' },
    );

    run('abc');

    expect(terminal.calls).toEqual([['value', 'abc=3']]);
  });

  it.each([
    ['first', 'a'],
    ['middle', 'b'],
    ['last', 'c'],
  ])('names the %s stage in current.stage when it throws', (_where, thrower) => {
    const stage = (id: string): NarrowStage<unknown, unknown> =>
      narrow(
        map<number, number>(id, (n) => {
          if (id === thrower) throw new Error(`boom in ${id}`);
          return n + 1;
        }),
      );
    const current = { stage: 'phase' };
    const run = fuseStages([stage('a'), stage('b'), stage('c')], new Recorder(), current);

    expect(() => run(0)).toThrow(`boom in ${thrower}`);
    expect(current.stage).toBe(thrower);
  });

  it('names the stage that threw after an earlier stage emitted several records', () => {
    const current = { stage: 'phase' };
    const run = fuseStages(
      [
        narrow(flatMap<number, number>('fan', (n) => [n, n + 1, n + 2])),
        narrow(
          filter<number>('picky', (n) => {
            if (n === 2) throw new Error('two');
            return true;
          }),
        ),
      ],
      new Recorder(),
      current,
    );

    expect(() => run(0)).toThrow('two');
    expect(current.stage).toBe('picky');
  });

  it('restores current.stage after a record that does not throw', () => {
    const current = { stage: 'phase' };
    const run = fuseStages(
      [narrow(map<number, number>('a', (n) => n)), narrow(map<number, number>('b', (n) => n))],
      new Recorder(),
      current,
    );

    run(1);

    expect(current.stage).toBe('phase');
  });
});
