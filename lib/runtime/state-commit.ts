import { mapKey, partitionOf } from '../encoding/key';
import { DATA_FORMATS } from '../encoding/formats';
import { NotReadyError, type ErrorScope } from '../errors';
import type { StageId } from '../ids';
import type { StatefulOperator } from '../state/operator';
import { StateTable } from '../state/table';
import type { StateHead, StateStore } from '../storage/state-store';
import type { StateUsage } from '../batch';

/** A stateful partition's new state, computed but not yet stored. */
export interface PendingState {
  readonly stage: StageId;
  readonly partition: number;
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

/**
 * Loads one partition's state as of batch n-1. State is applied in batch order: if batch n-1 is not
 * applied yet this is `NotReadyError` (retried, then swept); if batch n already is, the caller
 * reports what the committing run did.
 *
 * @example
 * const { head, table, before, read } = await loadState(store, stage, partition, partitions, batch, operator, scope);
 */
export async function loadState(
  store: StateStore,
  stage: StageId,
  partition: number,
  partitions: number,
  batch: number,
  operator: StatefulOperator,
  scope: ErrorScope,
): Promise<{ head: StateHead; table: StateTable; before: Buffer[]; read: ChunksRead }> {
  const head = await headFor(store, stage, partition, batch, scope);
  if (head.batch >= batch)
    throw new StateAlreadyCommitted(`state of ${stage}/${partition} is at batch ${head.batch}`);
  const table = new StateTable();
  const stored = await store.read(stage, partition, head);
  for (const chunk of stored) table.load(chunk);
  if (head.batch === 0 && operator.initial) {
    for (const [key, value] of operator.initial()) {
      if (partitionOf(mapKey(key), partitions) === partition) table.set(key, value);
    }
  }
  // The stored bytes, chunk by chunk, to find the chunks a batch changed. The table encodes what
  // it loaded to the same bytes (entries keep their chunk and their order), so the state is
  // encoded once per batch, after it is applied, not also before.
  const before = head.batch === 0 ? [] : stored;
  const read = {
    chunks: stored.filter((chunk) => chunk.length > 0).length,
    bytes: stored.reduce((sum, chunk) => sum + chunk.length, 0),
  };
  return { head, table, before, read };
}

/** The chunks a partition's state was loaded from. */
export interface ChunksRead {
  readonly chunks: number;
  readonly bytes: number;
}

/**
 * A partition's head, as batch n may use it: at n-1 (its turn) or at n or later (a run of n has
 * committed). Before n-1 is an ordering wait: `NotReadyError`, retried without using up the budget.
 */
async function headFor(
  store: StateStore,
  stage: StageId,
  partition: number,
  batch: number,
  scope: ErrorScope,
): Promise<StateHead> {
  const head = await store.head(stage, partition);
  if (head.batch < batch - 1) {
    throw new NotReadyError(
      `state of ${stage}/${partition} is at batch ${head.batch}, not ${batch - 1}`,
      scope,
      { waiting: true },
    );
  }
  return head;
}

/**
 * A partition's part in skipping batch n: its head moves from n-1 to n with the chunks unchanged, in
 * order like any batch, so that batch n+1 finds it where it expects it. A run of the batch that
 * committed first stands; either way the partition's state is whole.
 *
 * @example
 * await skipState(ctx.state, stage, partition, batch, scope);
 */
export async function skipState(
  store: StateStore,
  stage: StageId,
  partition: number,
  batch: number,
  scope: ErrorScope,
): Promise<void> {
  const head = await headFor(store, stage, partition, batch, scope);
  if (head.batch === batch - 1) await store.commit(stage, partition, head, { ...head, batch });
}

/**
 * The writes that take a partition's state from `head` to batch n: only the chunks that changed.
 *
 * @example
 * const pending = prepareState(stage, partition, batch, head, table, before, read, onRefused);
 */
export function prepareState(
  stage: StageId,
  partition: number,
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
    stage,
    partition,
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
      await store.writeChunk(
        pending.stage,
        pending.partition,
        write.chunk,
        write.slot,
        pending.next.batch,
        write.data,
      );
    }
  });
  await Promise.all(workers);
  // False means a duplicate committed the same batch first: its state is this state.
  await store.commit(pending.stage, pending.partition, pending.previous, pending.next);
}

/**
 * Whether a partition's state has been committed for a batch.
 *
 * @example
 * if (await stateCommitted(ctx.state, stage, partition, batch)) return report;
 */
export async function stateCommitted(
  store: StateStore,
  stage: StageId,
  partition: number,
  batch: number,
): Promise<boolean> {
  return (await store.head(stage, partition)).batch >= batch;
}
