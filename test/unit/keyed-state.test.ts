import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataFormatError } from '../../lib/errors';
import { mapKey } from '../../lib/encoding/key';
import { batchId, stageId } from '../../lib/ids';
import {
  KEYED_CHUNK_SPLIT_BYTES,
  preferredLayout,
  prepareState,
  type LoadedState,
  type OpenedState,
} from '../../lib/runtime/state-commit';
import { mapWithState } from '../../lib/state/operators';
import { chunkOf, StateTable } from '../../lib/state/table';
import { parseStateHead, type KeyedHead, type StatePartition } from '../../lib/storage/state-store';

/**
 * The keyed state layout's persisted shapes: the head item, and what a batch writes (chunks by
 * key, the time index) from what it loaded. The head's JSON and the written bytes are pinned.
 */
const GOLDEN = join(__dirname, '..', 'golden', 'state-keyed@1.json');

const ref: StatePartition = { stage: stageId('visits'), partition: 0, since: 1 };
const operator = mapWithState({ fn: () => undefined, timeoutMs: 3000 });
const TIME = 1_700_000_005_000;

const head: KeyedHead = {
  kind: 'sluice.state/keyed@1',
  batch: 4,
  chunks: 8,
  generation: 2,
  keys: 40,
  bytes: 900,
  format: 'sluice.chunk@1',
  dueBefore: 1_700_000_004_000,
  dueApplied: ['due#001700000001000#1#0'],
};

function opened(at: KeyedHead): OpenedState {
  return {
    ref,
    layout: { partitions: 1, since: 1 },
    batch: at.batch + 1,
    after: at.batch,
    operator,
    head: at,
    scope: { batch: batchId(at.batch + 1) },
  };
}

/** The chunk of `key` in `head`, holding `key` and one other key of the same chunk. */
function loadedFor(key: string): Extract<LoadedState, { kind: 'keyed' }> {
  const chunk = chunkOf(mapKey(key), head.chunks);
  const other = Array.from({ length: 200 }, (_, i) => `other${i}`).find(
    (k) => chunkOf(mapKey(k), head.chunks) === chunk,
  ) as string;
  const stored = new StateTable();
  stored.set(other, [7, 1_700_000_003_000]);
  stored.set(key, [1, 1_700_000_002_000]);
  const data = stored.encodeChunks(head.chunks).get(chunk) as Buffer;
  const table = new StateTable();
  table.load(data);
  return {
    kind: 'keyed',
    head,
    table,
    chunks: new Map([[chunk, { data, version: 3, latest: 3 }]]),
    loadedKeys: 2,
    dues: new Map([
      [mapKey(other), 1_700_000_006_000],
      [mapKey(key), 1_700_000_005_000],
    ]),
    dueApplied: ['due#001700000004000#1#0'],
    read: { chunks: 1, bytes: data.length },
    touched: 12,
  };
}

describe('the keyed state layout', () => {
  it('writes the golden head, chunk and time-index entry for a batch touching one key', () => {
    // Arrange
    const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')) as {
      head: KeyedHead;
      chunk: { chunk: number; data: string; prior: number; priorData: string };
      due: { due: number; keys: string };
    };
    const loaded = loadedFor('alpha');
    loaded.table.set('alpha', [2, TIME]);

    // Act
    const pending = prepareState(opened(head), loaded, TIME);

    // Assert
    expect(pending.kind).toBe('keyed');
    if (pending.kind !== 'keyed') return;
    expect(pending.next).toEqual(golden.head);
    expect(parseStateHead({ pk: 'state#visits#0', sk: 'head', ...golden.head }, 'state#visits#0')).toEqual(
      golden.head,
    );
    expect(pending.writes.map((w) => ({ chunk: w.chunk, data: w.data.toString('hex') }))).toEqual([
      { chunk: golden.chunk.chunk, data: golden.chunk.data },
    ]);
    expect(pending.writes[0]?.read).toMatchObject({ version: golden.chunk.prior });
    expect(pending.writes[0]?.read.data.toString('hex')).toBe(golden.chunk.priorData);
    expect(pending.due.map((d) => ({ due: d.due, keys: d.keys.toString('hex') }))).toEqual([golden.due]);
  });

  it('writes nothing but the head for a batch that changes nothing', () => {
    // Arrange
    const loaded = loadedFor('alpha');

    // Act
    const pending = prepareState(opened(head), loaded, TIME);

    // Assert
    expect(pending.kind === 'keyed' && pending.writes).toEqual([]);
    expect(pending.kind === 'keyed' && pending.due).toEqual([]);
    expect(pending.next).toMatchObject({ batch: 5, keys: 40, bytes: 900, generation: 2 });
  });

  it('writes the whole state in a new generation, chunks under half the split size, when it loaded it whole', () => {
    // Arrange: a layout's first batch with 2,000 keys.
    const table = new StateTable();
    for (let i = 0; i < 2000; i++) table.set(`key${i}`, [i, TIME]);
    const empty = {
      kind: 'sluice.state/head@1',
      batch: 0,
      chunks: 1,
      slots: '-',
      format: 'sluice.chunk@1',
    } as const;

    // Act
    const pending = prepareState(
      { ...opened(head), head: empty, batch: 1 },
      {
        kind: 'keyed',
        head: empty,
        table,
        loadedKeys: 2000,
        dues: new Map(),
        dueApplied: [],
        touched: 1,
        read: { chunks: 0, bytes: 0 },
      },
      TIME,
    );

    // Assert
    expect(pending.kind).toBe('keyed');
    if (pending.kind !== 'keyed') return;
    expect(pending.next).toMatchObject({ batch: 1, generation: 1, keys: 2000 });
    expect(pending.next.bytes / pending.next.chunks).toBeLessThanOrEqual(KEYED_CHUNK_SPLIT_BYTES / 2);
    expect(pending.next.bytes / (pending.next.chunks / 2)).toBeGreaterThan(KEYED_CHUNK_SPLIT_BYTES / 2);
    expect(pending.writes.reduce((sum, w) => sum + w.data.length, 0)).toBe(pending.next.bytes);
    // Every key is indexed once, at its due time.
    expect(pending.due.map((d) => d.due)).toEqual([TIME + 3000]);
  });

  it.each([
    // 30,000 hot words over 4 partitions, 3,000 touched a batch: reading all and big chunks win.
    ['a small state whose batches touch a tenth of it', 'keyed', 150_000, 750, 'slotted'],
    ['the same, already slotted', 'slotted', 150_000, 750, 'slotted'],
    // 1M keys over 4 partitions, 100 touched a batch: the keyed layout, by far.
    ['a large state whose batches touch a few keys', 'slotted', 5_000_000, 25, 'keyed'],
    // 100,000 of 1M touched: keyed costs more, but not twice as much: no change.
    ['a large state, a tenth touched, keyed', 'keyed', 5_000_000, 12_500, 'keyed'],
    ['a large state, half touched, keyed', 'keyed', 5_000_000, 125_000, 'slotted'],
    ['a new layout of a few keys, a few touched', undefined, 50_000, 10, 'keyed'],
  ] as const)('keeps %s in the cheaper layout', (_name, current, bytes, touched, expected) => {
    // Act
    const layout = preferredLayout(current, bytes, touched);

    // Assert
    expect(layout).toBe(expected);
  });

  it.each([
    ['without a generation', { generation: undefined }],
    ['with a retired item of an unknown kind', { retired: [{ kind: 'other', chunks: 2 }] }],
    ['with retired items not in a list', { retired: { kind: 'keyed', generation: 1 } }],
    ['with a negative key count', { keys: -1 }],
  ])('refuses a keyed head %s', (_name, change) => {
    // Act
    const read = (): unknown => parseStateHead({ ...head, ...change }, 'state#visits#0');

    // Assert
    expect(read).toThrow(DataFormatError);
  });
});
