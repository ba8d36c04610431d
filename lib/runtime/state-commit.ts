import { mapKey, partitionOf } from '../encoding/key';
import { DATA_FORMATS } from '../encoding/formats';
import { NotReadyError, PlanMismatchError, type ErrorScope } from '../errors';
import type { Manifest } from '../manifest';
import type { CompiledPhase } from '../plan';
import { sealedLayout, type StateLayout } from '../state/layout';
import type { StatefulOperator } from '../state/operator';
import { StateTable } from '../state/table';
import type { StateHead, StatePartition, StateStore } from '../storage/state-store';
import type { StateUsage } from '../batch';

/**
 * Where a stateful partition of a sealed batch keeps its state: in the layout the batch was sealed
 * with (`sealedLayout`).
 *
 * @example
 * const committed = await stateCommitted(ctx.state, stateRef(manifest, phase, task), manifest.batch);
 */
export function stateRef(manifest: Manifest, phase: CompiledPhase, partition: number): StatePartition {
  return { stage: phase.spec.function, partition, since: sealedLayout(manifest, phase.spec).since };
}

/** A stateful partition's new state, computed but not yet stored. */
export interface PendingState {
  readonly ref: StatePartition;
  readonly previous: StateHead;
  readonly next: StateHead;
  readonly writes: readonly { readonly chunk: number; readonly slot: string; readonly data: Buffer }[];
  /** What loading it read and committing it will write, and its size after the batch. */
  readonly usage: StateUsage;
}

/**
 * Thrown when the batch's state is already committed: the task's report says what it did.
 *
 * @example
 * if (error instanceof StateAlreadyCommitted) return await ctx.ledger.reports.get(batch, phase, task);
 */
export class StateAlreadyCommitted extends Error {
  override readonly name = 'StateAlreadyCommitted';
}

/** A partition's state, loaded as of batch n-1, to apply batch n to. */
export interface LoadedState {
  readonly head: StateHead;
  readonly table: StateTable;
  /** The chunks as stored, to find those batch n changes (none when the layout starts at n). */
  readonly before: readonly Buffer[];
  readonly read: ChunksRead;
}

/**
 * Loads one partition's state as of batch n-1. State is applied in batch order: if batch n-1 is not
 * applied yet this is `NotReadyError` (retried, then swept); if batch n already is, the caller
 * reports what the committing run did. On the first batch of a layout the partition starts from
 * the operator's initial state, or, when the layout rescales, from the previous layout's state
 * re-hashed (`rehashState`).
 *
 * @example
 * const { head, table, before, read } = await loadState(store, ref, layout, batch, operator, scope);
 */
export async function loadState(
  store: StateStore,
  ref: StatePartition,
  layout: StateLayout,
  batch: number,
  operator: StatefulOperator,
  scope: ErrorScope,
): Promise<LoadedState> {
  const head = await headFor(store, ref, layout, batch, scope);
  if (head.batch >= batch)
    throw new StateAlreadyCommitted(`state of ${ref.stage}/${ref.partition} is at batch ${head.batch}`);
  if (startsLayout(head, layout, batch)) {
    if (layout.previous) return rehashState(store, ref, layout, layout.previous, batch, head, scope);
    const table = new StateTable();
    for (const [key, value] of operator.initial?.() ?? []) {
      if (partitionOf(mapKey(key), layout.partitions) === ref.partition) table.set(key, value);
    }
    return { head, table, before: [], read: { chunks: 0, bytes: 0 } };
  }
  const table = new StateTable();
  const stored = await store.read(ref, head);
  for (const chunk of stored) table.load(chunk);
  // The stored bytes, chunk by chunk, to find the chunks a batch changed. The table encodes what
  // it loaded to the same bytes (entries keep their chunk and their order), so the state is
  // encoded once per batch, after it is applied, not also before.
  return { head, table, before: stored, read: chunksRead(stored) };
}

/** Whether batch n is the first its partition applies in its layout (the head is still empty). */
function startsLayout(head: StateHead, layout: StateLayout, batch: number): boolean {
  return head.batch === 0 && layout.since === batch;
}

/**
 * A rescaling batch's start: the previous layout's state, every one of its partitions as of batch
 * n-1, keeping the keys that now hash to this partition. The previous layout is only read, so
 * every new partition (and every re-run of one) reads the same state and keeps the same keys, in
 * the same order: exactly once, whatever runs twice. Its items stay where they are.
 */
async function rehashState(
  store: StateStore,
  ref: StatePartition,
  layout: StateLayout,
  previous: NonNullable<StateLayout['previous']>,
  batch: number,
  head: StateHead,
  scope: ErrorScope,
): Promise<LoadedState> {
  const table = new StateTable();
  let chunks = 0;
  let bytes = 0;
  for (let partition = 0; partition < previous.partitions; partition++) {
    const old: StatePartition = { stage: ref.stage, partition, since: previous.since };
    const oldHead = await store.head(old);
    if (oldHead.batch < batch - 1) {
      throw new NotReadyError(
        `state of ${ref.stage}/${partition} (the layout before the rescale) is at batch ${oldHead.batch}, not ${batch - 1}`,
        scope,
        { waiting: true },
      );
    }
    if (oldHead.batch > batch - 1) {
      throw new PlanMismatchError(
        `state of ${ref.stage}/${partition} of the layout since batch ${previous.since} is at batch ${oldHead.batch}, past the rescale at batch ${batch}`,
        scope,
      );
    }
    const stored = await store.read(old, oldHead);
    ({ chunks, bytes } = addRead({ chunks, bytes }, chunksRead(stored)));
    for (const chunk of stored) {
      const loaded = new StateTable();
      loaded.load(chunk);
      for (const { key, value } of loaded.values()) {
        if (partitionOf(mapKey(key), layout.partitions) === ref.partition) table.set(key, value);
      }
    }
  }
  return { head, table, before: [], read: { chunks, bytes } };
}

function chunksRead(stored: readonly Buffer[]): ChunksRead {
  return {
    chunks: stored.filter((chunk) => chunk.length > 0).length,
    bytes: stored.reduce((sum, chunk) => sum + chunk.length, 0),
  };
}

function addRead(a: ChunksRead, b: ChunksRead): ChunksRead {
  return { chunks: a.chunks + b.chunks, bytes: a.bytes + b.bytes };
}

/** The chunks a partition's state was loaded from. */
export interface ChunksRead {
  readonly chunks: number;
  readonly bytes: number;
}

/**
 * A partition's head, as batch n may use it: at n-1 (its turn), empty on its layout's first batch,
 * or at n or later (a run of n has committed). Before n-1 is an ordering wait: `NotReadyError`,
 * retried without using up the budget.
 */
async function headFor(
  store: StateStore,
  ref: StatePartition,
  layout: StateLayout,
  batch: number,
  scope: ErrorScope,
): Promise<StateHead> {
  const head = await store.head(ref);
  if (head.batch < batch - 1 && !startsLayout(head, layout, batch)) {
    throw new NotReadyError(
      `state of ${ref.stage}/${ref.partition} is at batch ${head.batch}, not ${batch - 1}`,
      scope,
      { waiting: true },
    );
  }
  return head;
}

/**
 * A partition's part in skipping batch n: its head moves from n-1 to n with the chunks unchanged, in
 * order like any batch, so that batch n+1 finds it where it expects it. On a layout's first batch
 * the state it starts from (initial, or re-hashed) is committed as batch n's. A run of the batch
 * that committed first stands; either way the partition's state is whole.
 *
 * @example
 * await skipState(ctx.state, ref, layout, batch, operator, scope);
 */
export async function skipState(
  store: StateStore,
  ref: StatePartition,
  layout: StateLayout,
  batch: number,
  operator: StatefulOperator,
  scope: ErrorScope,
): Promise<void> {
  const head = await headFor(store, ref, layout, batch, scope);
  if (head.batch >= batch) return;
  if (startsLayout(head, layout, batch)) {
    const { table, before, read } = await loadState(store, ref, layout, batch, operator, scope);
    await commitState(store, prepareState(ref, batch, head, table, before, read));
    return;
  }
  await store.commit(ref, head, { ...head, batch });
}

/**
 * The writes that take a partition's state from `head` to batch n: only the chunks that changed.
 *
 * @example
 * const pending = prepareState(ref, batch, head, table, before, read, onRefused);
 */
export function prepareState(
  ref: StatePartition,
  batch: number,
  head: StateHead,
  table: StateTable,
  before: readonly Buffer[],
  read: ChunksRead,
  onRefused?: (key: unknown, value: unknown, error: Error) => void,
): PendingState {
  const encoded = table.encode(head.chunks, onRefused);
  const resized = encoded.chunks !== head.chunks;
  const slots: string[] = [];
  const writes: { chunk: number; slot: string; data: Buffer }[] = [];
  encoded.bodies.forEach((data, chunk) => {
    const current = resized ? '-' : (head.slots[chunk] ?? '-');
    const unchanged = !resized && before[chunk] !== undefined && before[chunk].equals(data);
    if (data.length === 0) slots.push('-');
    else if (unchanged && current !== '-') slots.push(current);
    else {
      // The inactive slot: the head keeps pointing at the active one until the commit.
      const previousSlot = head.slots[chunk] ?? '-';
      const slot = previousSlot === '0' ? '1' : '0';
      slots.push(slot);
      writes.push({ chunk, slot, data });
    }
  });
  return {
    ref,
    previous: head,
    next: {
      kind: head.kind,
      batch,
      chunks: encoded.chunks,
      slots: slots.join(''),
      format: DATA_FORMATS.chunk,
    },
    writes,
    usage: {
      keys: table.size,
      chunks: encoded.bodies.filter((body) => body.length > 0).length,
      bytes: encoded.bodies.reduce((sum, body) => sum + body.length, 0),
      chunksRead: read.chunks,
      bytesRead: read.bytes,
      chunksWritten: writes.length,
      bytesWritten: writes.reduce((sum, write) => sum + write.data.length, 0),
    },
  };
}

/**
 * Writes the changed chunks (fenced by batch), then commits the head.
 *
 * @example
 * await commitState(ctx.state, pending);
 */
export async function commitState(store: StateStore, pending: PendingState): Promise<void> {
  const queue = [...pending.writes];
  const workers = Array.from({ length: Math.min(8, queue.length) }, async () => {
    for (let write = queue.shift(); write; write = queue.shift()) {
      await store.writeChunk(pending.ref, write.chunk, write.slot, pending.next.batch, write.data);
    }
  });
  await Promise.all(workers);
  // False means a duplicate committed the same batch first: its state is this state.
  await store.commit(pending.ref, pending.previous, pending.next);
}

/**
 * Whether a partition's state has been committed for a batch.
 *
 * @example
 * if (await stateCommitted(ctx.state, ref, batch)) return report;
 */
export async function stateCommitted(
  store: StateStore,
  ref: StatePartition,
  batch: number,
): Promise<boolean> {
  return (await store.head(ref)).batch >= batch;
}
