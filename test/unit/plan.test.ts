import { describe, expect, it } from 'vitest';
import { filter, flatMap, map, transform } from '../../lib/dsl/transform';
import { count, groupByKey, reduce, reduceByKey } from '../../lib/dsl/reduce';
import { reduceByKeyAndWindow } from '../../lib/dsl/window';
import { updateStateByKey } from '../../lib/dsl/state-stages';
import { pipeline, withSettings, type AnyPipeline } from '../../lib/dsl/pipeline';
import { kinesis, utf8 } from '../../lib/dsl/source';
import { print, s3Jsonl } from '../../lib/dsl/sink';
import { PlanMismatchError } from '../../lib/errors';
import { canonicalJson, fingerprint } from '../../lib/fingerprint';
import { checkSealedPlan, outputPrefix, planChanges, planPipeline } from '../../lib/plan';
import type { AnyStage, Pair } from '../../lib/dsl/types';

const source = kinesis({ stream: 'lines', decode: utf8 });
const tokenize = transform<string, string, number>('tokenize', (line, emit) => {
  for (const w of line.split(' ')) emit(w, 1);
});
const sum = reduceByKey<string, number>('count', (a, b) => a + b);

function build(stages: readonly AnyStage[], extra: { partitions?: number } = {}): AnyPipeline {
  return pipeline({
    name: 'test',
    batchInterval: '1s',
    source,
    stages: stages as never,
    ...extra,
  }) as AnyPipeline;
}

describe('planPipeline', () => {
  it('makes one phase of a narrow-only pipeline', () => {
    const plan = planPipeline(
      build([map<string, number>('len', (s) => s.length), filter('pos', () => true)]),
    );

    expect(plan.phases).toHaveLength(1);
    expect(plan.phases[0]?.spec).toMatchObject({ phase: 0, function: 'len', partitions: null });
    expect(plan.phases[0]?.narrow.map((s) => s.id)).toEqual(['len', 'pos']);
  });

  it('splits [tokenize, count] into two phases named after their first stage', () => {
    const plan = planPipeline(build([tokenize, sum]));

    expect(plan.phases.map((p) => p.spec.function)).toEqual(['tokenize', 'count']);
    expect(plan.phases[1]?.wide?.id).toBe('count');
    expect(plan.phases[1]?.narrow).toEqual([]);
  });

  it('splits [map, reduceByKey, map, reduceByKey] into three phases', () => {
    const pairs = map<string, Pair<string, number>>('pairs', (s) => [s, 1]);
    const first = reduceByKey<string, number>('first', (a, b) => a + b);
    const rekey = map<Pair<string, number>, Pair<number, number>>('rekey', ([, n]) => [n, 1]);
    const second = reduceByKey<number, number>('second', (a, b) => a + b);

    const plan = planPipeline(build([pairs, first, rekey, second]));

    expect(plan.phases.map((p) => p.spec.stages.map((s) => s.id))).toEqual([
      ['pairs'],
      ['first', 'rekey'],
      ['second'],
    ]);
    expect(plan.phases.map((p) => p.spec.function)).toEqual(['pairs', 'first', 'second']);
    expect(plan.phases.map((p) => p.spec.phase)).toEqual([0, 1, 2]);
  });

  it("names a phase 0 without stages 'read' when the pipeline starts with a keyed stage", () => {
    const plan = planPipeline(build([count('n')]));

    expect(plan.phases.map((p) => p.spec.function)).toEqual(['read', 'n']);
    expect(plan.phases[0]?.spec.stages).toEqual([]);
  });

  it("takes a keyed stage's partitions from its options", () => {
    const plan = planPipeline(build([tokenize, reduceByKey('sum', (a) => a, { partitions: 9 })]));

    expect(plan.phases[1]?.spec.partitions).toBe(9);
  });

  it("takes the pipeline's default partitions when the stage sets none", () => {
    expect(planPipeline(build([tokenize, sum], { partitions: 7 })).phases[1]?.spec.partitions).toBe(7);
    expect(planPipeline(build([tokenize, sum])).phases[1]?.spec.partitions).toBe(4);
  });

  it('gives count and reduce exactly one partition whatever the default', () => {
    const toNumber = map<string, number>('num', Number);
    const plan = planPipeline(
      build([toNumber, reduce<number>('max', Math.max), count('n')], { partitions: 8 }),
    );

    expect(plan.phases.slice(1).map((p) => p.spec.partitions)).toEqual([1, 1]);
  });

  it('follows withSettings partitions', () => {
    const base = build([tokenize, sum]);

    expect(planPipeline(withSettings(base, { partitions: 12 })).phases[1]?.spec.partitions).toBe(12);
  });

  it('serializes source, sinks and settings into the spec', () => {
    const p = pipeline({
      name: 'wc',
      batchInterval: '2s',
      source,
      stages: [flatMap<string, string>('words', (l) => l.split(' ')), groupByKey('g')] as never,
      sinks: [print({ top: 3 }), s3Jsonl({ prefix: 'out/wc' })],
      onError: 'fail',
    }) as AnyPipeline;

    const spec = planPipeline(p).spec;

    expect(spec).toMatchObject({
      kind: 'sluice.plan@1',
      pipeline: 'wc',
      batchIntervalMs: 2000,
      onError: 'fail',
      source: { kind: 'sluice.source/kinesis@1', stream: 'lines', decoder: 'utf8' },
      sinks: [
        { kind: 'sluice.sink/print@1', top: 3 },
        { kind: 'sluice.sink/s3Jsonl@1', prefix: 'out/wc' },
      ],
    });
    expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
  });
});

describe('checkSealedPlan', () => {
  it('accepts the plan of an identical definition', () => {
    const a = planPipeline(build([tokenize, sum])).spec;
    const b = planPipeline(build([tokenize, sum])).spec;

    expect(checkSealedPlan(a, b)).toEqual([]);
  });

  it('accepts a plan that went through JSON (as sealed in a manifest)', () => {
    const spec = planPipeline(build([tokenize, sum])).spec;

    expect(checkSealedPlan(JSON.parse(JSON.stringify(spec)) as typeof spec, spec)).toEqual([]);
  });

  it.each([
    [
      'a renamed stage',
      build([tokenize, reduceByKey('total', (a) => a)]),
      /keyed stages changed \(count to total\)/,
    ],
    ['a different keyed kind', build([tokenize, groupByKey('count')]), /keyed stage 'count' changed \(kind/],
  ])('throws PlanMismatchError for %s, saying what changed', (_name, other, says) => {
    const sealed = planPipeline(build([tokenize, sum])).spec;

    expect(() => checkSealedPlan(sealed, planPipeline(other).spec)).toThrow(PlanMismatchError);
    expect(() => checkSealedPlan(sealed, planPipeline(other).spec)).toThrow(says);
  });

  it('rolls forward what in-flight batches survive: a record-level stage added, other sinks', () => {
    // Arrange
    const sealed = planPipeline(build([tokenize, sum])).spec;
    const bundled = planPipeline(build([tokenize, sum, map('x', (v) => v)])).spec;

    // Act
    const rolled = checkSealedPlan(sealed, bundled);

    // Assert
    expect(rolled).toEqual(['record-level stages changed']);
  });
});

describe('planChanges', () => {
  const stateful = (length: `${number}s`, interval: `${number}s` = '10s') =>
    planPipeline(
      pipeline({
        name: 'p',
        batchInterval: interval,
        source,
        stages: [
          tokenize,
          reduceByKeyAndWindow<string, number>('count', (a, b) => a + b, { length, slide: '10s' }),
        ],
      }) as AnyPipeline,
    ).spec;

  it("breaks on a keyed stage's window, and on the batch interval of a pipeline that keeps state", () => {
    // Act
    const window = planChanges(stateful('30s'), stateful('60s'));
    const interval = planChanges(stateful('30s'), stateful('30s', '5s'));

    // Assert
    expect(window.breaking).toEqual(["keyed stage 'count' changed (window)"]);
    expect(interval.breaking).toContain('the batch interval changed (10000 ms to 5000 ms)');
  });

  it('rolls the batch interval of a pipeline without state forward', () => {
    // Act
    const changes = planChanges(
      planPipeline(build([tokenize, sum])).spec,
      planPipeline(
        pipeline({ name: 'test', batchInterval: '5s', source, stages: [tokenize, sum] }) as AnyPipeline,
      ).spec,
    );

    // Assert
    expect(changes).toEqual({
      breaking: [],
      rescaled: [],
      compatible: ['the batch interval changed (1000 ms to 5000 ms)'],
    });
  });

  it("rescales a stateful stage's new partition count and rolls a stateless one's forward", () => {
    // Arrange
    const totals = (partitions: number) =>
      build([
        tokenize,
        updateStateByKey<string, number, number>('totals', (values, state) => (state ?? 0) + values.length, {
          partitions,
        }),
      ]);

    // Act
    const stateful = planChanges(planPipeline(totals(4)).spec, planPipeline(totals(8)).spec);
    const stateless = planChanges(
      planPipeline(build([tokenize, sum])).spec,
      planPipeline(build([tokenize, sum], { partitions: 8 })).spec,
    );

    // Assert
    expect(stateful).toEqual({
      breaking: [],
      rescaled: ["keyed stage 'totals' goes from 4 to 8 partitions"],
      compatible: [],
    });
    expect(stateless).toEqual({
      breaking: [],
      rescaled: [],
      compatible: ["keyed stage 'count' goes from 4 to 8 partitions"],
    });
  });
});

describe('the plan fingerprint', () => {
  it('does not depend on the order keys were set in, at any depth', () => {
    // Arrange
    const reversed = (value: unknown): unknown =>
      value === null || typeof value !== 'object'
        ? value
        : Array.isArray(value)
          ? value.map(reversed)
          : Object.fromEntries(
              Object.entries(value)
                .reverse()
                .map(([k, v]) => [k, reversed(v)]),
            );
    const spec = planPipeline(build([tokenize, sum])).spec;
    const { fingerprint: _sealed, ...content } = spec;

    // Act
    const a = fingerprint(content);
    const b = fingerprint(reversed(content));

    // Assert
    expect(canonicalJson(reversed(content))).toBe(canonicalJson(content));
    expect(JSON.stringify(reversed(content))).not.toBe(JSON.stringify(content));
    expect(a).toBe(b);
    expect(a).toBe(spec.fingerprint);
  });

  it('names the stage that changed and leaves the others out', () => {
    // Arrange
    const sealed = planPipeline(build([tokenize, sum])).spec;
    const bundled = planPipeline(build([tokenize, sum], { partitions: 5 })).spec;

    // Act
    const rolled = checkSealedPlan(sealed, bundled);

    // Assert
    expect(rolled).toEqual(["keyed stage 'count' goes from 4 to 5 partitions"]);
    expect(sealed.stages['tokenize']).toBe(bundled.stages['tokenize']);
    expect(sealed.stages['count']).not.toBe(bundled.stages['count']);
  });

  it('gives each stage its own fingerprint', () => {
    // Act
    const { stages, fingerprint } = planPipeline(build([tokenize, sum])).spec;

    // Assert
    expect(Object.keys(stages)).toEqual(['tokenize', 'count']);
    expect(Object.values(stages).every((f) => /^[0-9a-f]{16}$/.test(f))).toBe(true);
    expect(fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('outputPrefix', () => {
  it("is the s3Jsonl sink's prefix", () => {
    const p = pipeline({
      name: 'x',
      batchInterval: '1s',
      source,
      stages: [],
      sinks: [s3Jsonl({ prefix: '/a/b/' })],
    });

    expect(outputPrefix(planPipeline(p as AnyPipeline).spec)).toBe('a/b');
  });

  it("is 'output' without an s3Jsonl sink", () => {
    const p = pipeline({ name: 'x', batchInterval: '1s', source, stages: [], sinks: [print()] });

    expect(outputPrefix(planPipeline(p as AnyPipeline).spec)).toBe('output');
  });
});
