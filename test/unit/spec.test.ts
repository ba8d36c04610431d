import { describe, expect, it } from 'vitest';
import {
  aggregateByKey,
  branch,
  cogroup,
  combineByKey,
  count,
  countByValue,
  countByValueAndWindow,
  countByWindow,
  eventTimeWindow,
  groupByKey,
  groupByKeyAndWindow,
  join,
  kinesis,
  json,
  map,
  mapWithState,
  reduce,
  reduceByKey,
  reduceByKeyAndWindow,
  reduceByWindow,
  updateStateByKey,
  window,
  type Pair,
  type WideStage,
} from '../../lib';
import { fromPair, wide } from '../../lib/dsl/reduce';
import { isEventTime, processingWindow, takesPairs } from '../../lib/dsl/spec';
import { PipelineDefinitionError } from '../../lib/errors';

const add = (a: number, b: number): number => a + b;
const slide = { length: '20s', slide: '10s' } as const;
const users = branch({
  source: kinesis({ stream: 'users', decode: json<Pair<string, string>>() }),
  stages: [map<Pair<string, string>, Pair<string, string>>('users-keyed', (p) => p)],
});

/** One stage of every keyed kind, so that each switch on kind is checked against the DSL. */
const stages: [string, WideStage<never, unknown>][] = [
  ['reduceByKey', reduceByKey<string, number>('a', add)],
  ['groupByKey', groupByKey<string, number>('a')],
  [
    'combineByKey',
    combineByKey<string, number, number>('a', { create: (v) => v, mergeValue: add, mergeCombiners: add }),
  ],
  ['aggregateByKey', aggregateByKey<string, number, number>('a', 0, add, add)],
  ['countByValue', countByValue<string>('a')],
  ['count', count<string>('a')],
  ['reduce', reduce<number>('a', add)],
  ['reduceByKeyAndWindow', reduceByKeyAndWindow<string, number>('a', add, slide)],
  ['groupByKeyAndWindow', groupByKeyAndWindow<string, number>('a', slide)],
  ['countByValueAndWindow', countByValueAndWindow<string>('a', slide)],
  ['countByWindow', countByWindow<string>('a', slide)],
  ['reduceByWindow', reduceByWindow<number>('a', add, slide)],
  ['window', window<number>('a', slide)],
  ['updateStateByKey', updateStateByKey<string, number, number>('a', (vs, s) => (s ?? 0) + vs.length)],
  ['mapWithState', mapWithState<string, number, number, number>('a', (_k, v) => v, { timeout: '1m' })],
  [
    'eventTimeWindow',
    eventTimeWindow<string, number, number, number>('a', {
      timestamp: () => 0,
      length: '1m',
      aggregate: { create: (v) => v, add, merge: add, result: (a) => a },
    }),
  ],
  ['join', join<string, string, string>('a', users)],
  ['windowed cogroup', cogroup<string, string, string>('a', users, { window: slide })],
];

describe.each(stages)('the spec of %s', (_name, stage) => {
  it('says whether the stage takes pairs as they come, as its code does', () => {
    // Arrange
    const byCode = stage.toPair === fromPair;

    // Act
    const bySpec = takesPairs(stage.spec);

    // Assert
    expect(bySpec).toBe(byCode);
  });

  it('says it keeps state exactly when the stage has a stateful operator', () => {
    // Act
    const stateful = 'stateful' in stage.spec && stage.spec.stateful === true;

    // Assert
    expect(stateful).toBe(stage.stateful !== undefined);
  });

  it('has a processing-time window exactly when it is a window or a windowed join', () => {
    // Act
    const found = processingWindow(stage.spec);

    // Assert
    expect(found !== undefined).toBe('window' in stage.spec);
    expect(isEventTime(stage.spec)).toBe(stage.spec.kind === 'sluice.stage/eventTimeWindow@1');
  });
});

describe('a keyed stage built from its parts', () => {
  it('is refused when its spec and its operator disagree on keeping state', () => {
    // Arrange
    const parts = {
      mapSideCombine: true,
      toPair: fromPair,
      aggregator: { create: (v: unknown) => v, mergeValue: add, mergeCombiners: add },
      output: (k: unknown, c: unknown) => [k, c],
    } as Parameters<typeof wide>[2];

    // Act
    const build = (): unknown =>
      wide({ kind: 'sluice.stage/updateStateByKey@1', stateful: true }, 'a', parts);

    // Assert
    expect(build).toThrow(PipelineDefinitionError);
  });

  it('serializes kind and id first, then its own fields', () => {
    // Act
    const keys = Object.keys(reduceByKeyAndWindow<string, number>('w', add, slide).spec);

    // Assert
    expect(keys).toEqual(['kind', 'id', 'mapSideCombine', 'window', 'stateful']);
  });
});
