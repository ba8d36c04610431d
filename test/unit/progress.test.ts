import { describe, expect, it } from 'vitest';
import { pipeline, type AnyPipeline } from '../../lib/dsl/pipeline';
import { count, reduceByKey } from '../../lib/dsl/reduce';
import { kinesis, utf8 } from '../../lib/dsl/source';
import { map, transform } from '../../lib/dsl/transform';
import { batchId } from '../../lib/ids';
import { planPipeline } from '../../lib/plan';
import { partitionsToStart, pendingWork, type PendingWork } from '../../lib/runtime/progress';
import type { BatchItem } from '../../lib/batch';

const source = kinesis({ stream: 'lines', decode: utf8 });
const tokenize = transform<string, string, number>('tokenize', (line, emit) => emit(line, 1));
const sum = reduceByKey<string, number>('sum', (a, b) => a + b);

/** tokenize | sum: two phases. */
const wordcount = planPipeline(
  pipeline({ name: 'wc', batchInterval: '1s', source, stages: [tokenize, sum] }) as unknown as AnyPipeline,
);
/** tokenize | sum | map | count: phase 2 is a count, which emits on empty input. */
const counted = planPipeline(
  pipeline({
    name: 'wc',
    batchInterval: '1s',
    source,
    stages: [tokenize, sum, map<[string, number], number>('one', () => 1), count<number>('n')],
  }) as unknown as AnyPipeline,
);
/** A single narrow phase. */
const narrowOnly = planPipeline(
  pipeline({
    name: 'n',
    batchInterval: '1s',
    source,
    stages: [map<string, number>('len', (s) => s.length)],
  }) as unknown as AnyPipeline,
);

function item(overrides: Partial<BatchItem> = {}): BatchItem {
  return {
    batch: batchId(1),
    time: 1000,
    status: 'sealed',
    cursors: {},
    previousCursors: {},
    inputRecords: 10,
    inputBytes: 100,
    tasks: 3,
    sealedAt: 1000,
    updatedAt: 1000,
    done: {},
    withData: {},
    expected: {},
    attempts: [],
    counted: { deadLetters: 0, outputRecords: 0, outputPartitions: [], readUnits: 0, writeUnits: 0 },
    ...overrides,
  };
}

describe('pendingWork', () => {
  it.each<[string, Partial<BatchItem>, PendingWork]>([
    ['a fresh batch runs every phase 0 task', {}, { kind: 'run', phase: 0, tasks: [0, 1, 2] }],
    ['phase 0 runs its missing tasks', { done: { 0: [0, 2] } }, { kind: 'run', phase: 0, tasks: [1] }],
    [
      'phase 0 done and phase 1 not started: start it',
      { done: { 0: [0, 1, 2] } },
      { kind: 'start', phase: 1 },
    ],
    [
      'phase 1 partly done runs the rest of its expected partitions',
      { done: { 0: [0, 1, 2], 1: [3] }, expected: { 1: [0, 3] } },
      { kind: 'run', phase: 1, tasks: [0] },
    ],
    [
      'phase 1 started and none done runs all expected partitions',
      { done: { 0: [0, 1, 2] }, expected: { 1: [1, 2] } },
      { kind: 'run', phase: 1, tasks: [1, 2] },
    ],
    [
      'all done: complete',
      { done: { 0: [0, 1, 2], 1: [0, 3] }, expected: { 1: [0, 3] } },
      { kind: 'complete' },
    ],
    [
      'a phase started with no partitions is done at once',
      { done: { 0: [0, 1, 2] }, expected: { 1: [] } },
      { kind: 'complete' },
    ],
    ['an empty batch (0 tasks) goes straight to starting phase 1', { tasks: 0 }, { kind: 'start', phase: 1 }],
    [
      'reports of tasks that were not expected do not count',
      { done: { 0: [0, 1, 2], 1: [5, 6] }, expected: { 1: [0] } },
      { kind: 'run', phase: 1, tasks: [0] },
    ],
    ['a complete batch needs nothing', { status: 'complete' }, { kind: 'none' }],
    ['a failed batch needs nothing', { status: 'failed', done: { 0: [0] } }, { kind: 'none' }],
  ])('%s', (_name, overrides, expected) => {
    expect(pendingWork(item(overrides), wordcount)).toEqual(expected);
  });

  it('starts phase 2 once phase 1 is done in a three-phase plan', () => {
    const batch = item({ done: { 0: [0, 1, 2], 1: [0] }, expected: { 1: [0] } });

    expect(pendingWork(batch, counted)).toEqual({ kind: 'start', phase: 2 });
  });

  it('completes a one-phase plan when phase 0 is done', () => {
    expect(pendingWork(item({ done: { 0: [0, 1, 2] } }), narrowOnly)).toEqual({ kind: 'complete' });
  });

  it('ignores expected lists of phase 0 (its tasks come from the item)', () => {
    expect(pendingWork(item({ expected: { 0: [] } }), narrowOnly)).toEqual({
      kind: 'run',
      phase: 0,
      tasks: [0, 1, 2],
    });
  });
});

describe('partitionsToStart', () => {
  it('starts the partitions that got data, sorted', () => {
    expect(partitionsToStart(item({ withData: { 1: [3, 0, 2] } }), wordcount, 1)).toEqual([0, 2, 3]);
  });

  it('starts nothing when no partition got data', () => {
    expect(partitionsToStart(item(), wordcount, 1)).toEqual([]);
  });

  it('ignores data noted for other phases', () => {
    expect(partitionsToStart(item({ withData: { 2: [0] } }), wordcount, 1)).toEqual([]);
  });

  it('starts partition 0 of a count stage even without data', () => {
    expect(partitionsToStart(item(), counted, 2)).toEqual([0]);
  });

  it('starts partition 0 of a count stage once when it also has data', () => {
    expect(partitionsToStart(item({ withData: { 2: [0] } }), counted, 2)).toEqual([0]);
  });

  it('does not add partition 0 for a keyed stage without whenEmpty', () => {
    expect(partitionsToStart(item({ withData: { 1: [2] } }), counted, 1)).toEqual([2]);
  });
});
