import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { toMillis, type Duration } from '../../lib/duration';
import { pipeline, withSettings, RESERVED_IDS } from '../../lib/dsl/pipeline';
import {
  aggregateByKey,
  combineByKey,
  count,
  countByValue,
  groupByKey,
  reduce,
  reduceByKey,
} from '../../lib/dsl/reduce';
import { foreachBatch, print, s3Jsonl } from '../../lib/dsl/sink';
import { json, kinesis, schema, utf8 } from '../../lib/dsl/source';
import { filter, flatMap, map, transform } from '../../lib/dsl/transform';
import type { AnyStage, Downstream, WideStage } from '../../lib/dsl/types';
import { PipelineDefinitionError } from '../../lib/errors';

const source = kinesis({ stream: 'lines', decode: utf8 });
const identity = map<string, string>('same', (s) => s);
const noop = (): Promise<void> => Promise.resolve();
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function define(overrides: Record<string, unknown> = {}): unknown {
  return pipeline({
    name: 'ok',
    batchInterval: '1s',
    source,
    stages: [identity],
    ...overrides,
  } as never);
}

/** A wide stage's aggregation run over values of one key, the way ShuffleBuffer does it. */
function aggregate(stage: WideStage<never, unknown>, values: readonly unknown[]): unknown {
  const { create, mergeValue } = stage.aggregator;
  let combiner: unknown;
  values.forEach((v, i) => (combiner = i === 0 ? create(v) : mergeValue(combiner, v)));
  return combiner;
}

describe('stage factories', () => {
  it.each<[string, AnyStage, string]>([
    ['map', map('m', (x) => x), 'sluice.stage/map@1'],
    ['flatMap', flatMap('f', () => []), 'sluice.stage/flatMap@1'],
    ['filter', filter('g', () => true), 'sluice.stage/filter@1'],
    ['transform', transform('t', () => undefined), 'sluice.stage/transform@1'],
  ])('%s makes a narrow stage with its kind and id', (_name, stage, kind) => {
    expect(stage.shape).toBe('narrow');
    expect(stage.spec).toEqual({ kind, id: stage.id });
  });

  it.each<[string, AnyStage, string, boolean, number | undefined]>([
    ['reduceByKey', reduceByKey('r', (a) => a), 'sluice.stage/reduceByKey@1', true, undefined],
    ['groupByKey', groupByKey('g'), 'sluice.stage/groupByKey@1', false, undefined],
    [
      'combineByKey',
      combineByKey('c', { create: (v) => v, mergeValue: (c) => c, mergeCombiners: (a) => a }),
      'sluice.stage/combineByKey@1',
      true,
      undefined,
    ],
    [
      'combineByKey without map-side combine',
      combineByKey(
        'c',
        { create: (v) => v, mergeValue: (c) => c, mergeCombiners: (a) => a },
        { mapSideCombine: false, partitions: 3 },
      ),
      'sluice.stage/combineByKey@1',
      false,
      3,
    ],
    [
      'aggregateByKey',
      aggregateByKey(
        'a',
        0,
        (x) => x,
        (x) => x,
      ),
      'sluice.stage/aggregateByKey@1',
      true,
      undefined,
    ],
    ['countByValue', countByValue('v', { partitions: 7 }), 'sluice.stage/countByValue@1', true, 7],
    ['count', count('n'), 'sluice.stage/count@1', true, 1],
    ['reduce', reduce('m', (a) => a), 'sluice.stage/reduce@1', true, 1],
  ])(
    '%s makes a wide stage with its kind, id, mapSideCombine and partitions',
    (_n, stage, kind, combine, parts) => {
      expect(stage.shape).toBe('wide');
      expect(stage.spec).toEqual({
        kind,
        id: stage.id,
        mapSideCombine: combine,
        ...(parts === undefined ? {} : { partitions: parts }),
      });
    },
  );

  it.each([[''], ['Upper'], ['1st'], ['has space'], ['under_score'], ['a'.repeat(41)]])(
    "rejects the stage id '%s'",
    (id) => {
      expect(() => map(id, (x) => x)).toThrow(RangeError);
      expect(() => reduceByKey(id, (a) => a)).toThrow(RangeError);
    },
  );

  it('accepts a 40-character id with digits and dashes', () => {
    expect(map(`a-1${'b'.repeat(37)}`, (x) => x).id).toHaveLength(40);
  });

  it.each([[0], [-1], [1.5], [10_001], [Number.NaN]])(
    'rejects %d partitions on a keyed stage',
    (partitions) => {
      expect(() => reduceByKey('r', (a) => a, { partitions })).toThrow(PipelineDefinitionError);
    },
  );

  it('makes frozen stages and specs', () => {
    const stage = reduceByKey('r', (a) => a);

    expect(Object.isFrozen(stage)).toBe(true);
    expect(Object.isFrozen(stage.spec)).toBe(true);
  });

  it('gives count a whenEmpty of [0]', () => {
    expect(count('n').whenEmpty?.()).toEqual([0]);
  });

  it('gives no whenEmpty to reduce (an empty batch gives no record)', () => {
    expect(reduce('m', (a) => a).whenEmpty).toBeUndefined();
  });

  it('count counts records under one null key', () => {
    const stage = count<string>('n');
    const pairs: unknown[] = [];
    const sink: Downstream = { value: () => expect.unreachable(), pair: (k, v) => pairs.push([k, v]) };

    stage.toPair('anything', sink);

    expect(pairs).toEqual([[null, 1]]);
    expect(aggregate(stage, [1, 1, 1])).toBe(3);
    expect(stage.aggregator.mergeCombiners(3, 4)).toBe(7);
    expect(stage.output(null, 7)).toBe(7);
  });

  it('groupByKey concatenates combiners in order', () => {
    const stage = groupByKey<string, number>('g');

    expect(aggregate(stage, [1, 2])).toEqual([1, 2]);
    expect(stage.aggregator.mergeCombiners([1], [2, 3])).toEqual([1, 2, 3]);
  });

  it('aggregateByKey clones zero per key, so mutating one accumulator does not leak to another', () => {
    const stage = aggregateByKey<string, number, { seen: number[] }>(
      'agg',
      { seen: [] },
      (acc, v) => {
        acc.seen.push(v);
        return acc;
      },
      (a, b) => ({ seen: [...a.seen, ...b.seen] }),
    );

    const first = aggregate(stage, [1, 2]);
    const second = aggregate(stage, [3]);

    expect(first).toEqual({ seen: [1, 2] });
    expect(second).toEqual({ seen: [3] });
  });

  it('transform emits keyed pairs on the pair path', () => {
    const calls: unknown[] = [];
    const fn = transform<string, string, number>('t', (s, emit) => emit(s, s.length)).compile({
      value: () => expect.unreachable(),
      pair: (k, v) => calls.push([k, v]),
    });

    fn('abc');

    expect(calls).toEqual([['abc', 3]]);
  });
});

describe('pipeline()', () => {
  it('applies defaults', () => {
    expect(define()).toMatchObject({
      name: 'ok',
      batchIntervalMs: 1000,
      onError: 'deadLetter',
      partitions: 4,
      tasks: { max: 64, targetBytes: 4 * 1024 * 1024 },
      sinks: [],
    });
  });

  it.each([[''], ['Upper'], ['1x'], ['a_b'], ['a'.repeat(41)]])("rejects the pipeline name '%s'", (name) => {
    expect(() => define({ name })).toThrow(PipelineDefinitionError);
  });

  it.each(RESERVED_IDS.map((id) => [id]))("rejects the reserved stage id '%s'", (id) => {
    expect(() => define({ stages: [map(id, (x) => x)] })).toThrow(PipelineDefinitionError);
  });

  it('rejects a stage id used twice', () => {
    expect(() => define({ stages: [map('dup', (x) => x), filter('dup', () => true)] })).toThrow(/used twice/);
  });

  it('rejects a foreachBatch sink id that a stage already uses', () => {
    expect(() => define({ sinks: [foreachBatch('same', noop)] })).toThrow(PipelineDefinitionError);
  });

  it('rejects two s3Jsonl sinks', () => {
    expect(() => define({ sinks: [s3Jsonl({ prefix: 'a' }), s3Jsonl({ prefix: 'b' })] })).toThrow(
      PipelineDefinitionError,
    );
  });

  it('accepts one s3Jsonl sink alongside print and foreachBatch', () => {
    expect(() => define({ sinks: [s3Jsonl(), print(), foreachBatch('out', noop)] })).not.toThrow();
  });

  it.each([[0], [-2], [2.5], [10_001]])('rejects %d default partitions', (partitions) => {
    expect(() => define({ partitions })).toThrow(PipelineDefinitionError);
  });

  it.each([[{ max: 0 }], [{ max: 1.5 }], [{ targetBytes: 0 }], [{ targetBytes: -1 }]])(
    'rejects task options %j',
    (tasks) => {
      expect(() => define({ tasks })).toThrow(PipelineDefinitionError);
    },
  );

  it.each([['0s'], ['-1s'], ['ten seconds'], ['1d'], [0], [1.5], ['0.5ms']])(
    'rejects the batch interval %j',
    (batchInterval) => {
      expect(() => define({ batchInterval })).toThrow(PipelineDefinitionError);
    },
  );

  it('freezes the pipeline and its lists', () => {
    const p = define() as { stages: unknown; sinks: unknown; tasks: unknown };

    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.stages)).toBe(true);
    expect(Object.isFrozen(p.sinks)).toBe(true);
  });
});

describe('withSettings', () => {
  const base = pipeline({ name: 'base', batchInterval: '10s', source, stages: [identity], partitions: 4 });

  it('changes the given settings and keeps the rest', () => {
    const changed = withSettings(base, { partitions: 16, batchInterval: '2s', tasks: { max: 8 } });

    expect(changed).toMatchObject({
      name: 'base',
      batchIntervalMs: 2000,
      partitions: 16,
      tasks: { max: 8, targetBytes: base.tasks.targetBytes },
    });
    expect(changed.stages).toBe(base.stages);
  });

  it('does not change the base pipeline', () => {
    withSettings(base, { partitions: 16 });

    expect(base.partitions).toBe(4);
  });

  it.each<[string, Parameters<typeof withSettings>[1]]>([
    ['zero partitions', { partitions: 0 }],
    ['too many partitions', { partitions: 10_001 }],
    ['zero max tasks', { tasks: { max: 0 } }],
    ['fractional target bytes', { tasks: { targetBytes: 0.5 } }],
    ['a bad interval', { batchInterval: '1x' as Duration }],
  ])('rejects %s', (_name, settings) => {
    expect(() => withSettings(base, settings)).toThrow(PipelineDefinitionError);
  });
});

describe('sinks and source', () => {
  it('s3Jsonl trims slashes and defaults to output', () => {
    expect(s3Jsonl({ prefix: '/a/b/' }).spec.prefix).toBe('a/b');
    expect(s3Jsonl().spec.prefix).toBe('output');
  });

  it.each([['a b'], ['a?b'], ['/'], ['ü'], ['out*'], ['*']])("s3Jsonl rejects the prefix '%s'", (prefix) => {
    expect(() => s3Jsonl({ prefix })).toThrow(PipelineDefinitionError);
  });

  it.each([[0], [-1], [1.5]])('print rejects top %d', (top) => {
    expect(() => print({ top })).toThrow(PipelineDefinitionError);
  });

  it('print defaults to the top 10', () => {
    expect(print().spec.top).toBe(10);
  });

  it.each([[''], ['has space'], ['a/b'], ['x'.repeat(129)]])(
    "kinesis rejects the stream name '%s'",
    (stream) => {
      expect(() => kinesis({ stream, decode: utf8 })).toThrow(PipelineDefinitionError);
    },
  );

  it("records the decoder's name in the source spec", () => {
    expect(kinesis({ stream: 's', decode: json() }).spec).toEqual({
      kind: 'sluice.source/kinesis@1',
      stream: 's',
      decoder: 'json',
    });
  });
});

describe('decoders', () => {
  it('utf8 decodes text', () => {
    expect(utf8.decode(bytes('héllo 😀'))).toBe('héllo 😀');
  });

  it.each([
    ['a lone continuation byte', [0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['an overlong encoding', [0xc0, 0xaf]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
  ])('utf8 rejects %s', (_name, raw) => {
    expect(() => utf8.decode(new Uint8Array(raw))).toThrow(TypeError);
  });

  it('utf8 encodes what it decodes', () => {
    expect(utf8.decode(utf8.encode('día'))).toBe('día');
  });

  it('json parses a document', () => {
    expect(json<{ a: number[] }>().decode(bytes('{"a":[1,2]}'))).toEqual({ a: [1, 2] });
  });

  it('json rejects text that is not JSON', () => {
    expect(() => json().decode(bytes('{a:1}'))).toThrow(SyntaxError);
  });

  it('json round-trips through encode', () => {
    const decoder = json<{ x: string }>();

    expect(decoder.decode(decoder.encode({ x: 'y' }))).toEqual({ x: 'y' });
  });

  const Reading = z.object({ sensor: z.string(), values: z.array(z.object({ celsius: z.number() })) });

  it('schema accepts a matching record', () => {
    const record = { sensor: 's1', values: [{ celsius: 20.5 }] };

    expect(schema(Reading).decode(bytes(JSON.stringify(record)))).toEqual(record);
  });

  it('schema rejects a mismatching record with a message naming the path', () => {
    const record = { sensor: 's1', values: [{ celsius: 'warm' }] };

    expect(() => schema(Reading).decode(bytes(JSON.stringify(record)))).toThrow(/at values\.0\.celsius/);
  });

  it('schema applies transforms of the zod schema', () => {
    const Trimmed = z.object({ name: z.string().transform((s) => s.trim()) });

    expect(schema(Trimmed).decode(bytes('{"name":"  x "}'))).toEqual({ name: 'x' });
  });

  it("schema is named 'zod'", () => {
    expect(schema(Reading).name).toBe('zod');
  });
});

describe('toMillis', () => {
  it.each<[Duration, number]>([
    [250, 250],
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5s', 1500],
    ['1m', 60_000],
    ['2h', 7_200_000],
    ['0.25m', 15_000],
  ])('converts %j to %d ms', (duration, ms) => {
    expect(toMillis(duration)).toBe(ms);
  });

  it.each([
    ['0s'],
    ['0ms'],
    [0],
    [-5],
    [1.5],
    ['1.0005s'],
    ['s'],
    ['1 s'],
    ['1S'],
    ['1e3ms'],
    ['+1s'],
    ['1d'],
  ])('rejects %j', (duration) => {
    expect(() => toMillis(duration as Duration)).toThrow(PipelineDefinitionError);
  });

  it('rejects infinities and NaN', () => {
    expect(() => toMillis(Number.POSITIVE_INFINITY)).toThrow(PipelineDefinitionError);
    expect(() => toMillis(Number.NaN)).toThrow(PipelineDefinitionError);
  });
});
