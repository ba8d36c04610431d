import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AnyPipeline } from '../../lib';
import type { BatchItem, TaskReport } from '../../lib/batch';
import { DataFormatError } from '../../lib/errors';
import { batchId, taskId } from '../../lib/ids';
import { planPipeline } from '../../lib/plan';
import { batchProgress, parseProgress } from '../../lib/runtime/batch-progress';
import { runningCount } from '../support/pipelines';

/**
 * The progress record is persisted (`progress/batch-<n>.json`) and read by later versions of the
 * page and of `sluice cost`: its bytes are pinned here, and the version before it is still read.
 */
const GOLDEN_PROGRESS = join(__dirname, '..', 'golden', 'progress@2.json');

const plan = planPipeline(runningCount as AnyPipeline);

const usage = (
  durationMs: number,
  requests: Record<string, number>,
  readUnits: number,
  writeUnits: number,
) => ({
  durationMs,
  requests,
  readUnits,
  writeUnits,
});

const item: BatchItem = {
  batch: batchId(3),
  time: 1_700_000_003_000,
  status: 'complete',
  cursors: {
    'shardId-000': { segmentStart: '00000000000000000000000000000000000000000000000001', lastSeq: '9' },
  },
  previousCursors: {},
  inputRecords: 10,
  inputBytes: 400,
  tasks: 1,
  sealedAt: 1_700_000_003_250,
  sealMs: 40,
  sealUsage: usage(40, { 'dynamodb:GetItem': 1, 'dynamodb:Query': 2 }, 1.5, 0),
  ingestUsage: { ...usage(120, { 'dynamodb:PutItem': 2, 's3:PutObject': 1 }, 0, 2), invocations: 1 },
  updatedAt: 1_700_000_004_000,
  completedAt: 1_700_000_004_000,
  summary: { inputRecords: 10, deadLetters: 1, outputRecords: 6, outputPartitions: [0, 1] },
  attempts: [],
  done: { 0: [0], 1: [0, 1] },
  withData: { 1: [0, 1] },
  expected: { 1: [0, 1] },
  counted: { deadLetters: 1, outputRecords: 6, outputPartitions: [0, 1], readUnits: 0, writeUnits: 0 },
};

const report = (phase: number, task: number, extra: Partial<TaskReport>): TaskReport => ({
  batch: batchId(3),
  phase,
  task: taskId(task),
  withData: [],
  recordsIn: 0,
  recordsOut: 0,
  deadLetters: 0,
  bytesRead: 0,
  bytesWritten: 0,
  ...extra,
});

const reports: TaskReport[][] = [
  [
    report(0, 0, {
      recordsIn: 10,
      recordsOut: 9,
      deadLetters: 1,
      deadLetterKinds: { stage: 1 },
      bytesRead: 400,
      bytesWritten: 90,
      usage: usage(200, { 's3:GetObject': 1, 's3:PutObject': 2 }, 0.5, 0),
    }),
  ],
  [0, 1].map((partition) =>
    report(1, partition, {
      recordsIn: 4 + partition,
      recordsOut: 3,
      bytesRead: 40,
      bytesWritten: 30,
      commitsState: true,
      state: {
        keys: 3,
        chunks: 1,
        bytes: 20,
        chunksRead: 1,
        bytesRead: 15,
        chunksWritten: 1,
        bytesWritten: 20,
      },
      usage: usage(
        300 + partition * 100,
        { 'dynamodb:GetItem': 1, 'dynamodb:PutItem': 2, 's3:GetObject': 1 },
        1,
        2,
      ),
    }),
  ),
];

describe('a progress record (sluice.progress@2)', () => {
  it('is written as the golden JSON', () => {
    // Act
    const progress = batchProgress({ plan }, item, 1_700_000_004_000, reports);

    // Assert
    expect(JSON.stringify(progress)).toBe(readFileSync(GOLDEN_PROGRESS, 'utf8').trim());
  });

  it('is read back from the golden JSON as it was written', () => {
    // Arrange
    const raw = JSON.parse(readFileSync(GOLDEN_PROGRESS, 'utf8')) as unknown;

    // Act
    const progress = parseProgress(raw, batchId(3));

    // Assert
    expect(progress).toEqual(batchProgress({ plan }, item, 1_700_000_004_000, reports));
  });

  it('sums the state of the partitions, counts dead letters by kind, and prices every step', () => {
    // Act
    const progress = batchProgress({ plan }, item, 1_700_000_004_000, reports);

    // Assert
    expect(progress.state).toEqual([
      {
        stage: 'running',
        partitions: 2,
        keys: 6,
        chunks: 2,
        bytes: 40,
        chunksRead: 2,
        bytesRead: 30,
        chunksWritten: 2,
        bytesWritten: 40,
      },
    ]);
    expect(progress.deadLettersByKind).toEqual({ stage: 1 });
    expect(progress.requests).toEqual({
      'dynamodb:GetItem': 3,
      'dynamodb:PutItem': 6,
      'dynamodb:Query': 2,
      's3:GetObject': 3,
      's3:PutObject': 3,
    });
    expect(progress.functions).toEqual({
      ingest: { invocations: 1, durationMs: 120 },
      coordinator: { invocations: 0, durationMs: 40 },
      transform: { invocations: 1, durationMs: 200 },
      reduce: { invocations: 2, durationMs: 700 },
    });
    expect(progress.readUnits).toBe(4);
    expect(progress.writeUnits).toBe(6);
    // GB-seconds at each kind's default memory: ingest 512 MiB, coordinator 256, transform and reduce 1024.
    expect(progress.gbSeconds).toBeCloseTo(0.12 * 0.5 + 0.04 * 0.25 + 0.2 + 0.3 + 0.4, 9);
    const { ingest, seal, tasks } = progress.costByStep;
    expect(ingest + seal + tasks).toBeCloseTo(progress.costUsd, 15);
    expect(progress.sealMs).toBe(40);
  });
});

describe('the units tasks used after their reports', () => {
  it("are in the record's units and its tasks' cost, as their done marks counted them", () => {
    // Arrange
    const counted = { ...item, counted: { ...item.counted, readUnits: 3, writeUnits: 40 } };

    // Act
    const without = batchProgress({ plan }, item, 1_700_000_004_000, reports);
    const withLate = batchProgress({ plan }, counted, 1_700_000_004_000, reports);

    // Assert
    expect(withLate.readUnits).toBe(without.readUnits + 3);
    expect(withLate.writeUnits).toBe(without.writeUnits + 40);
    expect(withLate.costByStep.tasks - without.costByStep.tasks).toBeCloseTo(
      (3 * 0.125 + 40 * 0.625) / 1e6,
      15,
    );
    expect(withLate.functions).toEqual(without.functions);
    expect(withLate.gbSeconds).toBe(without.gbSeconds);
  });
});

describe('a progress record of version 1', () => {
  it('is read as version 2 with what version 1 did not keep left empty', () => {
    // Arrange
    const current = batchProgress({ plan }, item, 1_700_000_004_000, reports);
    const {
      kind: _kind,
      sealMs: _sealMs,
      deadLettersByKind: _kinds,
      state: _state,
      costByStep: _steps,
      functions: _functions,
      ...kept
    } = current;

    // Act
    const progress = parseProgress({ kind: 'sluice.progress@1', ...kept }, batchId(3));

    // Assert
    expect(progress).toEqual({
      ...kept,
      kind: 'sluice.progress@2',
      sealMs: 0,
      deadLettersByKind: {},
      state: [],
      costByStep: { ingest: 0, seal: 0, tasks: current.costUsd },
      functions: {},
    });
  });

  it('of another kind is refused, naming the batch', () => {
    // Act
    const attempt = () => parseProgress({ kind: 'sluice.progress@9' }, batchId(3));

    // Assert
    expect(attempt).toThrow(DataFormatError);
    expect(attempt).toThrow(/batch 3/);
  });
});
