import { describe, expect, it } from 'vitest';
import type { BatchItem, TaskReport } from '../../lib/batch';
import { DATA_FORMATS } from '../../lib/encoding/formats';
import { DataFormatError } from '../../lib/errors';
import { batchId, shardId, taskId } from '../../lib/ids';
import {
  batchItem,
  failedItem,
  parseBatchItem,
  parseFailedItem,
  parsePipelineItem,
  parseSegmentItem,
  parseTaskReport,
  pipelineItem,
  segmentItem,
  taskReportItem,
} from '../../lib/storage/ledger/items';
import { parseStateHead } from '../../lib/storage/state-store';

/**
 * The ledger's items as stored, pinned: keys, kinds and attributes. A deployment reads what the
 * previous one wrote, so a change here is a format change (new kind version, old one still read).
 */
describe('ledger items', () => {
  const sealed = {
    batch: batchId(12),
    time: 1_700_000_120_000,
    cursors: { 'lines/shardId-000000000000': { segmentStart: '00042', lastSeq: '99' } },
    previousCursors: {},
    inputRecords: 5,
    inputBytes: 300,
    tasks: 1,
    sealedAt: 1_700_000_120_010,
    updatedAt: 1_700_000_120_010,
  };

  it('stores a sealed batch with its key and kind', () => {
    // Act
    const item = batchItem(sealed);

    // Assert
    expect(item).toEqual({
      pk: 'batch',
      sk: '0000000012',
      kind: 'sluice.ledger/batch@1',
      ...sealed,
      status: 'sealed',
    });
  });

  it('reads a batch item with its per-phase sets and retry budgets', () => {
    // Arrange
    const raw = {
      ...batchItem(sealed),
      done_0: new Set([0]),
      withData_1: new Set([2, 0]),
      expected_1: [0, 2],
      attempts_1_2: 3,
      since_1_2: 1_700_000_121_000,
      eventTimeHigh: null,
      countedDeadLetters: 2,
      countedOutputRecords: 9,
      countedOutputPartitions: new Set([2, 1]),
      countedWriteUnits: 14.5,
    };

    // Act
    const item: BatchItem = parseBatchItem(raw);

    // Assert
    expect(item).toEqual({
      ...sealed,
      status: 'sealed',
      done: { 0: [0] },
      withData: { 1: [0, 2] },
      expected: { 1: [0, 2] },
      attempts: [{ phase: 1, task: 2, attempts: 3, since: 1_700_000_121_000 }],
      eventTimeHigh: null,
      counted: { deadLetters: 2, outputRecords: 9, outputPartitions: [1, 2], readUnits: 0, writeUnits: 14.5 },
    });
  });

  it('round-trips a task report', () => {
    // Arrange
    const report: TaskReport = {
      batch: batchId(12),
      phase: 0,
      task: taskId(3),
      shuffle: 'shuffle/phase-0/0000000012/3',
      index: [0, 10, 10],
      withData: [0],
      recordsIn: 4,
      recordsOut: 7,
      deadLetters: 0,
      bytesRead: 100,
      bytesWritten: 10,
      eventTimeHigh: 1_700_000_000_000,
    };

    // Act
    const item = taskReportItem(report);

    // Assert
    expect(item).toMatchObject({ pk: 'task#0000000012#0', sk: '000003', kind: 'sluice.ledger/task@1' });
    expect(parseTaskReport({ ...item, withData: new Set([0]) })).toEqual(report);
  });

  it('round-trips the pipeline item, a segment and a failed marker', () => {
    // Arrange
    const pipeline = {
      zeroTime: 1_700_000_000_000,
      lastSealed: 3,
      cursors: {},
      watermarkFold: { high: 5, through: 2 },
    };
    const segment = {
      shard: shardId('lines/shardId-000000000000'),
      firstSeq: '42',
      lastSeq: '99',
      key: 'segments/lines/shardId-000000000000/42.seg',
      records: 5,
      bytes: 300,
      blocks: '0:5',
      format: DATA_FORMATS.segment,
    };
    const marker = { batch: batchId(7), message: 'boom', at: 1 };

    // Act
    const items = [pipelineItem(pipeline), segmentItem(segment), failedItem(marker)];

    // Assert
    expect(items.map((i) => [i.pk, i.sk, i.kind])).toEqual([
      ['pipeline', 'pipeline', 'sluice.ledger/pipeline@1'],
      ['segment#lines/shardId-000000000000', '0'.repeat(62) + '42', 'sluice.ledger/segment@1'],
      ['failed', '0000000007', 'sluice.ledger/failed@1'],
    ]);
    expect(parsePipelineItem(items[0] ?? {})).toEqual(pipeline);
    expect(parseSegmentItem(items[1] ?? {})).toEqual(segment);
    expect(parseFailedItem(items[2] ?? {})).toEqual(marker);
  });

  it.each([
    ['without a kind', { ...batchItem(sealed), kind: undefined }],
    ['of another version', { ...batchItem(sealed), kind: 'sluice.ledger/batch@2' }],
    ['with a malformed attribute', { ...batchItem(sealed), inputRecords: 'five' }],
    ['with a malformed per-phase set', { ...batchItem(sealed), done_0: 'all' }],
  ])('refuses a batch item %s with a DataFormatError', (_name, raw) => {
    // Act
    const read = (): unknown => parseBatchItem(raw);

    // Assert
    expect(read).toThrow(DataFormatError);
  });

  it('refuses a state head whose chunks are in another format', () => {
    // Arrange
    const head = { kind: 'sluice.state/head@1', batch: 3, chunks: 1, slots: '0', format: 'sluice.chunk@2' };

    // Act
    const read = (): unknown => parseStateHead(head, 'state#count#0');

    // Assert
    expect(read).toThrow(/sluice\.chunk@2; this code reads sluice\.chunk@1/);
  });
});
