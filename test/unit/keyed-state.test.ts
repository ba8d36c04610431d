import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataFormatError } from '../../lib/errors';
import { mapKey } from '../../lib/encoding/key';
import { batchId, stageId } from '../../lib/ids';
import {
  KEYED_CHUNK_SPLIT_BYTES,
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
    ['without a generation', { generation: undefined }],
    ['with a retired item of an unknown kind', { retired: { kind: 'other', chunks: 2 } }],
    ['with a negative key count', { keys: -1 }],
  ])('refuses a keyed head %s', (_name, change) => {
    // Act
    const read = (): unknown => parseStateHead({ ...head, ...change }, 'state#visits#0');

    // Assert
    expect(read).toThrow(DataFormatError);
  });
});
