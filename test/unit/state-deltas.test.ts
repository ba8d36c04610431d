import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { batchId, stageId } from '../../lib/ids';
import { prepareState, type LoadedState, type OpenedState } from '../../lib/runtime/state-commit';
import { updateState } from '../../lib/state/operators';
import { StateTable } from '../../lib/state/table';
import {
  parseStateHead,
  storedHead,
  type SlottedHead,
  type StatePartition,
} from '../../lib/storage/state-store';

/**
 * The slotted layout's deltas, in memory: what a batch that changes a few keys writes (a delta,
 * pinned byte for byte), how the head lists it (stored as `sluice.state/head@3`), and when the
 * chunks are written again instead.
 */

const GOLDEN = join(__dirname, '..', 'golden', 'state-slotted@3.json');
/** A head as the code before deflated items stored it: still read. */
const GOLDEN_BEFORE = join(__dirname, '..', 'golden', 'state-slotted@2.json');
const ref: StatePartition = { stage: stageId('totals'), partition: 0, since: 1 };
const operator = updateState({
  update: (values, total) =>
    (values as number[]).reduce((sum, v) => sum + v, (total as number | undefined) ?? 0),
});

const head: SlottedHead = {
  kind: 'sluice.state/head@1',
  batch: 4,
  chunks: 1,
  slots: '0',
  format: 'sluice.chunk@1',
  deltas: [{ batch: 3, parts: 1, bytes: 10 }],
};

function opened(): OpenedState {
  return {
    ref,
    layout: { partitions: 1, since: 1 },
    batch: 5,
    after: 4,
    operator,
    head,
    scope: { batch: batchId(5) },
  };
}

/** A state of `keys` words as its chunk holds it, changes tracked from there. */
function loaded(keys: number): Extract<LoadedState, { kind: 'slotted' }> {
  const base = new StateTable();
  for (let i = 0; i < keys; i++) base.set(`word${i}`, i);
  const before = base.encode(1).bodies;
  const table = new StateTable();
  for (const chunk of before) table.load(chunk);
  table.trackChanges();
  return { kind: 'slotted', head, table, before, read: { chunks: 1, bytes: before[0]?.length ?? 0 } };
}

describe('slotted state deltas', () => {
  it('keeps a sparse batch as a delta of its changed keys (golden)', () => {
    // Arrange
    const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')) as {
      head: Record<string, unknown>;
      delta: string;
    };
    const state = loaded(40);
    state.table.set('word3', 103);
    state.table.set('word4', 4); // the value it had: no change
    state.table.delete('word5');
    state.table.set('fresh', 1);

    // Act
    const pending = prepareState(opened(), state, 1_700_000_005_000);

    // Assert
    expect(pending.kind).toBe('slotted');
    if (pending.kind !== 'slotted') return;
    expect(pending.writes).toEqual([]);
    expect(pending.delta.map((part) => part.toString('hex'))).toEqual([golden.delta]);
    expect(storedHead(pending.next)).toEqual(golden.head);
    expect(parseStateHead({ pk: 'state#totals#0', sk: 'head', ...golden.head }, 'state#totals#0')).toEqual(
      pending.next,
    );
    // Applied to the chunk, the delta gives the table the batch left.
    const replayed = new StateTable();
    for (const chunk of state.before) replayed.load(chunk);
    replayed.applyChanges(pending.delta[0] ?? Buffer.alloc(0));
    expect([...replayed.values()]).toEqual([...state.table.values()]);
  });

  it.each([
    {
      why: 'a batch that changes much of the state (its delta would be paid twice: written, then deleted)',
      head,
      change: (table: StateTable) => {
        for (let i = 0; i < 40; i++) table.set(`word${i}`, i + 1000);
      },
    },
    {
      why: 'deltas that would outgrow twice the chunks',
      head: { ...head, deltas: [{ batch: 3, parts: 1, bytes: 800 }] },
      change: (table: StateTable) => table.set('word1', 1001),
    },
    {
      why: 'a head that lists as many deltas as it may',
      head: { ...head, deltas: Array.from({ length: 32 }, (_, i) => ({ batch: i + 1, parts: 1, bytes: 1 })) },
      change: (table: StateTable) => table.set('word1', 1001),
    },
  ])('writes the chunks again for $why, and retires the deltas', ({ head: at, change }) => {
    // Arrange
    const state = { ...loaded(40), head: at };
    change(state.table);

    // Act
    const pending = prepareState({ ...opened(), head: at }, state, 1_700_000_005_000);

    // Assert
    expect(pending.kind).toBe('slotted');
    if (pending.kind !== 'slotted') return;
    expect(pending.delta).toEqual([]);
    expect(pending.writes.map((w) => w.slot)).toEqual(['1']);
    expect(pending.next).not.toHaveProperty('deltas');
    expect(pending.next.retired).toEqual([
      { kind: 'deltas', deltas: (at.deltas ?? []).map(({ batch, parts }) => ({ batch, parts })) },
    ]);
    expect(storedHead(pending.next)).toMatchObject({ kind: 'sluice.state/head@3' });
    expect(storedHead(pending.next)).not.toHaveProperty('deltas');
  });

  it('writes nothing but the head for a batch that changes nothing', () => {
    const pending = prepareState(opened(), loaded(40), 1_700_000_005_000);

    expect(pending.kind === 'slotted' && pending.writes.length + pending.delta.length).toBe(0);
    expect(pending.next).toMatchObject({ batch: 5, deltas: head.deltas });
  });

  it('reads a head@2 as the code before deflated items stored it', () => {
    const golden = JSON.parse(readFileSync(GOLDEN_BEFORE, 'utf8')) as { head: Record<string, unknown> };

    const parsed = parseStateHead({ pk: 'state#totals#0', sk: 'head', ...golden.head }, 'state#totals#0');

    expect(parsed).toEqual({
      kind: 'sluice.state/head@1',
      batch: 5,
      chunks: 1,
      slots: '0',
      format: 'sluice.chunk@1',
      deltas: [
        { batch: 3, parts: 1, bytes: 10 },
        { batch: 5, parts: 1, bytes: 26 },
      ],
    });
  });

  it('refuses a head@2 without deltas, which no code writes', () => {
    const item = { pk: 'p', sk: 'head', ...storedHead(head), deltas: [] };

    expect(() => parseStateHead(item, 'p')).toThrow(/not a sluice.state\/head@1, head@2, head@3 or keyed@1/);
  });
});
