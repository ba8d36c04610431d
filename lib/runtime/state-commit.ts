import { ByteReader, ByteWriter } from '../encoding/bytes';
import { mapKey, partitionOf, type MapKey } from '../encoding/key';
import { readValue, writeValue } from '../encoding/value';
import { DATA_FORMATS } from '../encoding/formats';
import { DataFormatError, NotReadyError, PlanMismatchError, type ErrorScope } from '../errors';
import type { Manifest } from '../manifest';
import type { CompiledPhase } from '../plan';
import { sealedLayout, type StateLayout } from '../state/layout';
import { checkFits } from './memory';
import { dueClock, highBeforeDue, type StatefulBatch, type StatefulOperator } from '../state/operator';
import { chunkOf, StateTable } from '../state/table';
import type {
  KeyedChunk,
  KeyedHead,
  RetiredItems,
  SlottedHead,
  StateHead,
  StatePartition,
  StateStore,
} from '../storage/state-store';
import { QUIET_FOREVER, type Quietness, type StateUsage } from '../batch';

/**
 * The keyed layout splits its chunks (doubling their count) when their encoded bytes average more
 * than this. A chunk item holds its bytes as of two batches, so chunks of this size keep most
 * items within one write unit (1 KB) and every item within one read unit (4 KB).
 */
export const KEYED_CHUNK_SPLIT_BYTES = 384;

/** A time-index entry is written in parts of at most this many bytes of keys (items hold 400 KB). */
const DUE_PART_BYTES = 64 * 1024;

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

/** A partition's new state in the slotted layout, computed but not yet stored. */
interface SlottedPending {
  readonly kind: 'slotted';
  readonly ref: StatePartition;
  readonly previous: StateHead;
  readonly next: SlottedHead;
  readonly writes: readonly { readonly chunk: number; readonly slot: string; readonly data: Buffer }[];
  /** The batch's changes, when they are kept as a delta instead of written into the chunks. */
  readonly delta: readonly Buffer[];
  readonly usage: StateUsage;
}

/** A partition's new state in the keyed layout, computed but not yet stored. */
interface KeyedPending {
  readonly kind: 'keyed';
  readonly ref: StatePartition;
  readonly previous: StateHead;
  readonly next: KeyedHead;
  readonly writes: readonly { readonly chunk: number; readonly data: Buffer; readonly read: KeyedChunk }[];
  /** Parts of the time index's entry for keys this batch touched. */
  readonly due: readonly { readonly due: number; readonly part: number; readonly keys: Buffer }[];
  readonly usage: StateUsage;
}

/**
 * A partition's new state, computed but not yet stored: what loading it read and committing it
 * will write (`usage`), and its size after the batch.
 */
export type PendingState = SlottedPending | KeyedPending;

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
 * A partition's state opened for batch n: its head is at the batch n applies on (n-1, or before
 * quiet batches: `after`), or it starts its layout at n.
 */
export interface OpenedState {
  readonly ref: StatePartition;
  readonly layout: StateLayout;
  readonly batch: number;
  /** The batch whose state batch n applies on: n-1, unless the batches before n were quiet. */
  readonly after: number;
  /**
   * The task's memory budget, bytes: state read whole is refused (`MemoryBudgetError`) before it
   * is decoded if it would not fit. @default unbounded
   */
  readonly budget?: number;
  readonly operator: StatefulOperator;
  readonly head: StateHead;
  readonly scope: ErrorScope;
}

/** What opening a partition's state for a batch needs: all of `OpenedState` but the head it reads. */
export type PartitionToOpen = Omit<OpenedState, 'head'>;

/**
 * The stateful partition `task` of a phase, for the batch a manifest seals: its place in the
 * table, the layout and the batch it was sealed with, and the batch its state applies on.
 *
 * @example
 * const opened = await openState(ctx.state, partitionToOpen(manifest, phase, task, operator, scope));
 */
export function partitionToOpen(
  manifest: Manifest,
  phase: CompiledPhase,
  task: number,
  operator: StatefulOperator,
  scope: ErrorScope,
): PartitionToOpen {
  return {
    ref: stateRef(manifest, phase, task),
    layout: sealedLayout(manifest, phase.spec),
    batch: manifest.batch,
    after: stateFrom(manifest),
    operator,
    scope,
  };
}

/** The chunks a partition's state was loaded from. */
export interface ChunksRead {
  readonly chunks: number;
  readonly bytes: number;
}

/** A partition's state, loaded as of batch n-1, to apply batch n to. */
export type LoadedState =
  | {
      readonly kind: 'slotted';
      readonly head: StateHead;
      readonly table: StateTable;
      /** The chunks as stored, to find those batch n changes (none when the layout starts at n). */
      readonly before: readonly Buffer[];
      readonly read: ChunksRead;
      /** Keys a batch with records touches, on average, this batch included (a keyed operator's). */
      readonly touched?: number;
      /** Items the batch stops using: the keyed layout's, when the state leaves it. */
      readonly retired?: readonly RetiredItems[];
    }
  | {
      readonly kind: 'keyed';
      readonly head: StateHead;
      readonly table: StateTable;
      /** The chunks read, by number: only these are written back. Undefined: all of the state. */
      readonly chunks?: ReadonlyMap<number, KeyedChunk>;
      /** Entries loaded, before the batch. */
      readonly loadedKeys: number;
      /** Each loaded key's due time before the batch: the time index is written for changes. */
      readonly dues: ReadonlyMap<MapKey, number>;
      /** The time index's entries this batch applies (deleted after the next batch commits). */
      readonly dueApplied: readonly string[];
      /** Items the batch stops using: a slotted layout's, or a split's smaller chunk count. */
      readonly retired?: readonly RetiredItems[];
      readonly read: ChunksRead;
      /** Keys a batch with records touches, on average, this batch included. */
      readonly touched: number;
    };

/**
 * What a read unit costs beside a write unit, on demand ($0.125 against $0.625 a million): the
 * weight of reads in the layouts' costs.
 */
const READ_WEIGHT = 0.2;
/** A slotted chunk's bytes, about (between half the split size and the split size). */
const SLOTTED_CHUNK_BYTES = 48 * 1024;
/** A keyed chunk's bytes, about (between half the split size and the split size). */
const KEYED_CHUNK_BYTES = 288;
/** Bytes a key takes encoded, guessed before a new layout's state is first encoded. */
const GUESSED_KEY_BYTES = 24;

/**
 * The units a batch costs in a layout, in write units (reads weighed by price), for a partition
 * of `bytes` encoded whose batches touch `touched` keys: reads (every chunk, or the touched keys'
 * chunks up to one query of all) and writes (every chunk a touched key falls in, whole).
 */
function batchUnits(layout: 'slotted' | 'keyed', bytes: number, touched: number): number {
  if (bytes <= 0) return 0;
  const chunkBytes = layout === 'slotted' ? Math.min(bytes, SLOTTED_CHUNK_BYTES) : KEYED_CHUNK_BYTES;
  const chunks = Math.max(1, bytes / chunkBytes);
  const written = chunks * (1 - Math.exp(-touched / chunks)) * Math.ceil(chunkBytes / 1024);
  const reads =
    layout === 'slotted' ? Math.ceil(bytes / 4096) : Math.min(touched, Math.ceil((2 * bytes) / 4096));
  return READ_WEIGHT * reads + written;
}

/**
 * The layout a keyed operator's partition should be in: the keyed one when batches touch few of its
 * keys, the slotted one when they touch so many that reading all and writing big chunks costs less
 * (a small state, or dense batches). From a current layout, the other one only when it costs less
 * than half as much (a change rewrites the whole state once; it should not flap).
 *
 * @example
 * preferredLayout('keyed', 150_000, 750); // 'slotted': 30,000 hot words, 3,000 touched a batch
 */
export function preferredLayout(
  current: 'slotted' | 'keyed' | undefined,
  bytes: number,
  touched: number,
): 'slotted' | 'keyed' {
  const keyed = batchUnits('keyed', bytes, touched);
  const slotted = batchUnits('slotted', bytes, touched);
  if (current === 'keyed') return slotted * 2 < keyed ? 'slotted' : 'keyed';
  if (current === 'slotted') return keyed * 2 < slotted ? 'keyed' : 'slotted';
  return keyed <= slotted ? 'keyed' : 'slotted';
}

/** The running average of keys touched by batches with records (an empty batch says nothing). */
function averageTouched(before: number | undefined, touched: number): number {
  if (touched === 0) return before ?? 0;
  return before === undefined ? touched : 0.8 * before + 0.2 * touched;
}

/**
 * Opens one partition's state for batch n: reads its head, in batch order. If the batch n applies
 * on (`after`: n-1, or the last batch before quiet ones) is not applied yet this is `NotReadyError`
 * (retried, then swept); if batch n already is, the caller reports what the committing run did
 * (`StateAlreadyCommitted`). Read before the shuffle: there is no point reading a batch's input
 * before its turn.
 *
 * @example
 * const opened = await openState(ctx.state, partitionToOpen(manifest, phase, task, operator, scope));
 */
export async function openState(store: StateStore, partition: PartitionToOpen): Promise<OpenedState> {
  const { ref, layout, batch, after, scope } = partition;
  const head = await headFor(store, ref, layout, batch, after, scope);
  if (head.batch >= batch)
    throw new StateAlreadyCommitted(`state of ${ref.stage}/${ref.partition} is at batch ${head.batch}`);
  return { ...partition, head };
}

/**
 * The batch whose state a sealed batch's stateful partitions apply on: the one before, or the last
 * one before a run of quiet batches (which ran no partition).
 *
 * @example
 * stateFrom(manifest); // 41 for batch 42, or 37 when batches 38-41 were quiet
 */
export function stateFrom(manifest: Pick<Manifest, 'batch' | 'stateFrom'>): number {
  return manifest.stateFrom ?? manifest.batch - 1;
}

/**
 * What a stateful operator is told of the batch a manifest seals.
 *
 * @example
 * operator.apply(input, state, statefulBatch(manifest, ctx.pipeline.batchIntervalMs), emit, fail);
 */
export function statefulBatch(
  manifest: Pick<Manifest, 'batch' | 'time' | 'watermarkHigh'>,
  intervalMs: number,
): StatefulBatch {
  return {
    batch: manifest.batch,
    time: manifest.time,
    intervalMs,
    watermarkHigh: manifest.watermarkHigh ?? null,
  };
}

/**
 * Loads an opened partition's state as of batch n-1, to apply batch n (at `time`) to its `keys`.
 * An operator that reads only its keys (`reads: 'keys'`) gets the chunks of those keys and of the
 * keys the time index says are due by `time`; any other gets every key. On the first batch of a
 * layout the partition starts from the operator's initial state, or, when the layout rescales,
 * from the previous layout's state re-hashed (`rehashState`).
 *
 * @example
 * const loaded = await loadState(ctx.state, opened, merged.keys(), manifest.time);
 */
export async function loadState(
  store: StateStore,
  opened: OpenedState,
  keys: Iterable<unknown>,
  time: number,
): Promise<LoadedState> {
  const { ref, layout, batch, operator, head, scope } = opened;
  const keyed = operator.reads === 'keys';
  if (head.kind === 'sluice.state/keyed@1' && !keyed) {
    throw new DataFormatError(
      `the state of ${ref.stage}/${ref.partition} is in the keyed layout; this stage's operator reads every key`,
      scope,
    );
  }
  const batchKeys = [...keys];
  const touched = averageTouched(head.touched, batchKeys.length);
  const starts = startsLayout(head, layout, batch);
  if (head.kind === 'sluice.state/keyed@1' && !starts) {
    if (preferredLayout('keyed', head.bytes, touched) === 'keyed') {
      return loadKeyed(store, opened, head, batchKeys, time, touched);
    }
    // Batches touch so much of the state that reading it all and writing big chunks costs less:
    // it leaves the keyed layout whole, with its time index.
    const { table, read } = await readWhole(store, opened, ref, head);
    return {
      kind: 'slotted',
      head,
      table,
      before: [],
      read,
      touched,
      retired: [{ kind: 'keyed', generation: head.generation }, { kind: 'index' }],
    };
  }
  let table: StateTable;
  let before: readonly Buffer[] = [];
  let read: ChunksRead = { chunks: 0, bytes: 0 };
  if (starts) {
    if (layout.previous) ({ table, read } = await rehashState(store, opened, layout.previous));
    else {
      table = new StateTable();
      for (const [key, value] of operator.initial?.() ?? []) {
        if (partitionOf(mapKey(key), layout.partitions) === ref.partition) table.set(key, value);
      }
    }
  } else {
    // The stored bytes, chunk by chunk, to find the chunks a batch changed. The table encodes what
    // it loaded to the same bytes (entries keep their chunk and their order), so the state is
    // encoded once per batch, after it is applied, not also before.
    const slotted = await readSlotted(store, opened, ref, head as SlottedHead);
    ({ before, table, read } = slotted);
  }
  if (!keyed) return { kind: 'slotted', head, table, before, read };
  // A new layout's size is guessed: its keys so far and the batch's (most are new at the start).
  const bytes = starts ? (table.size + batchKeys.length) * GUESSED_KEY_BYTES : read.bytes;
  if (preferredLayout(starts ? undefined : 'slotted', bytes, touched) === 'slotted') {
    return { kind: 'slotted', head, table, before, read, touched };
  }
  // The state enters the keyed layout whole: from the slotted layout (a state whose batches now
  // touch little of it, or written by an earlier version of this code), the initial state, or a
  // rescale's re-hash.
  return {
    kind: 'keyed',
    head,
    table,
    loadedKeys: table.size,
    dues: new Map(),
    dueApplied: [],
    ...(head.kind === 'sluice.state/head@1' && head.batch > 0
      ? { retired: [{ kind: 'slotted' as const, chunks: head.chunks }, ...deltaItems(head)] }
      : {}),
    read,
    touched,
  };
}

/**
 * The keyed layout's load: the chunks of the batch's keys and of the keys due by `time`; or, when
 * the chunks have grown past their split size, every chunk, to write them again split.
 */
async function loadKeyed(
  store: StateStore,
  opened: OpenedState,
  head: KeyedHead,
  keys: Iterable<unknown>,
  time: number,
  touched: number,
): Promise<LoadedState> {
  const { ref, operator } = opened;
  const due = operator.dueAt ? await store.readDue(ref, head.dueBefore, time) : [];
  const dueApplied = due.map((entry) => entry.sk);
  const split = head.bytes / head.chunks > KEYED_CHUNK_SPLIT_BYTES;
  const wanted = new Set<number>();
  if (!split) {
    for (const key of keys) wanted.add(chunkOf(mapKey(key), head.chunks));
    for (const entry of due)
      for (const key of decodeKeys(entry.keys)) wanted.add(chunkOf(mapKey(key), head.chunks));
  }
  const numbers = [...wanted].sort((a, b) => a - b);
  // Reading every chunk with one query is charged by their total size: cheaper than reading
  // many of them one by one (each at least a unit) once a batch touches most of a small state.
  const all = split || numbers.length > queryUnits(head);
  if (all && opened.budget !== undefined) checkFits(opened.budget, head.bytes, 'state', opened.scope);
  const found = all
    ? await store.readAllKeyed(ref, head.generation, head.batch)
    : await store.readKeyed(ref, head.generation, numbers, head.batch);
  const chunks = new Map<number, KeyedChunk>();
  for (const number of all ? [...found.keys()].sort((a, b) => a - b) : numbers) {
    const chunk = found.get(number);
    if (!chunk) {
      // Both of the chunk's versions are newer than the head this run read: later batches have
      // committed since, so this one has.
      throw new StateAlreadyCommitted(
        `state of ${ref.stage}/${ref.partition} is past batch ${head.batch + 1}`,
      );
    }
    chunks.set(number, chunk);
  }
  const table = tableOf([...chunks.values()].map((chunk) => chunk.data));
  const dues = new Map<MapKey, number>();
  if (operator.dueAt) {
    for (const entry of table.values()) {
      const at = operator.dueAt(entry.value, entry.key);
      if (at !== undefined) dues.set(mapKey(entry.key), at);
    }
  }
  const read = chunksRead([...chunks.values()].map((chunk) => chunk.data));
  return {
    kind: 'keyed',
    head,
    table,
    ...(split ? { retired: [{ kind: 'keyed' as const, generation: head.generation }] } : { chunks }),
    loadedKeys: table.size,
    dues,
    dueApplied,
    read,
    touched,
  };
}

/** Read units of one query over every chunk of a keyed head (items hold about twice their bytes). */
function queryUnits(head: KeyedHead): number {
  return Math.ceil((head.bytes * 2 + head.chunks * 64) / 4096);
}

/**
 * A slotted partition's state: its chunks as stored (`before`, to find those a compaction
 * changes) and the table they hold with the head's deltas applied, changes tracked from there.
 * Refused before it is decoded if it would not fit the task's budget.
 */
async function readSlotted(
  store: StateStore,
  opened: Pick<OpenedState, 'budget' | 'scope'>,
  ref: StatePartition,
  head: SlottedHead,
): Promise<{ before: Buffer[]; table: StateTable; read: ChunksRead }> {
  const before = await store.read(ref, head);
  const deltas = head.deltas ? await store.readDeltas(ref, head.deltas) : [];
  fitsDecoded(opened, [...before, ...deltas]);
  const table = tableOf(before);
  for (const part of deltas) table.applyChanges(part);
  table.trackChanges();
  return { before, table, read: chunksRead([...before, ...deltas]) };
}

/**
 * Every key's state in one partition as of its head, in either layout (a slotted head's deltas
 * applied): what an operator's next batch would see.
 *
 * @example
 * const table = await loadTable(ctx.state, ref);
 */
export async function loadTable(store: StateStore, ref: StatePartition): Promise<StateTable> {
  return (await readWhole(store, { scope: {} }, ref, await store.head(ref))).table;
}

/** A partition's whole state as of its head, in either layout, refused before it is decoded if it would not fit. */
async function readWhole(
  store: StateStore,
  opened: Pick<OpenedState, 'budget' | 'scope'>,
  ref: StatePartition,
  head: StateHead,
): Promise<{ table: StateTable; read: ChunksRead }> {
  if (head.kind === 'sluice.state/head@1') return readSlotted(store, opened, ref, head);
  const stored = await store.readAll(ref, head);
  fitsDecoded(opened, stored);
  return { table: tableOf(stored), read: chunksRead(stored) };
}

function tableOf(chunks: readonly Buffer[]): StateTable {
  const table = new StateTable();
  for (const chunk of chunks) table.load(chunk);
  return table;
}

function decodeKeys(body: Buffer): unknown[] {
  const reader = new ByteReader(body);
  const keys: unknown[] = [];
  while (!reader.done) keys.push(readValue(reader));
  return keys;
}

/** Whether batch n is the first its partition applies in its layout (the head is still empty). */
function startsLayout(head: StateHead, layout: StateLayout, batch: number): boolean {
  return head.batch === 0 && layout.since === batch;
}

/**
 * A rescaling batch's start: the previous layout's state, every one of its partitions as of the
 * batch n applies on (`after`; quiet batches after it left the state as it was), keeping the keys
 * that now hash to this partition. The previous layout is only read, so every new partition (and
 * every re-run of one) reads the same state and keeps the same keys, in the same order: exactly
 * once, whatever runs twice. Its items stay where they are.
 */
async function rehashState(
  store: StateStore,
  opened: OpenedState,
  previous: NonNullable<StateLayout['previous']>,
): Promise<{ table: StateTable; read: ChunksRead }> {
  const { ref, layout, batch, after, scope } = opened;
  const table = new StateTable();
  let read: ChunksRead = { chunks: 0, bytes: 0 };
  for (let partition = 0; partition < previous.partitions; partition++) {
    const old: StatePartition = { stage: ref.stage, partition, since: previous.since };
    const oldHead = await store.head(old);
    if (oldHead.batch < after) {
      throw new NotReadyError(
        `state of ${ref.stage}/${partition} (the layout before the rescale) is at batch ${oldHead.batch}, not ${after}`,
        scope,
        { waiting: true },
      );
    }
    if (oldHead.batch >= batch) {
      throw new PlanMismatchError(
        `state of ${ref.stage}/${partition} of the layout since batch ${previous.since} is at batch ${oldHead.batch}, past the rescale at batch ${batch}`,
        scope,
      );
    }
    // Each old partition is decoded whole, one at a time, and only this partition's keys kept.
    const whole = await readWhole(store, opened, old, oldHead);
    read = addRead(read, whole.read);
    for (const { key, value } of whole.table.values()) {
      if (partitionOf(mapKey(key), layout.partitions) === ref.partition) table.set(key, value);
    }
  }
  return { table, read };
}

/** Refuses state read whole that would not fit the task's budget decoded, before it is. */
function fitsDecoded(opened: Pick<OpenedState, 'budget' | 'scope'>, stored: readonly Buffer[]): void {
  if (opened.budget === undefined) return;
  checkFits(opened.budget, chunksRead(stored).bytes, 'state', opened.scope);
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

/**
 * A partition's head, as batch n may use it: at the batch n applies on (`after`: its turn), empty
 * on its layout's first batch, or at n or later (a run of n has committed). Before `after` is an
 * ordering wait: `NotReadyError`, retried without using up the budget. (Between `after` and n is a
 * replay that ran the quiet batches between: the same state.)
 */
async function headFor(
  store: StateStore,
  ref: StatePartition,
  layout: StateLayout,
  batch: number,
  after: number,
  scope: ErrorScope,
): Promise<StateHead> {
  const head = await store.head(ref);
  if (head.batch < after && !startsLayout(head, layout, batch)) {
    throw new NotReadyError(
      `state of ${ref.stage}/${ref.partition} is at batch ${head.batch}, not ${after}`,
      scope,
      { waiting: true },
    );
  }
  return head;
}

/**
 * A partition's part in skipping batch n (at `time`): its head moves from the batch n applies on
 * (`after`: n-1, or the last before quiet batches) to n with the state
 * unchanged, in order like any batch, so that batch n+1 finds it where it expects it (keys due in
 * the time index stay due, for the next batch). On a layout's first batch the state it starts from
 * (initial, or re-hashed) is committed as batch n's. A run of the batch that committed first
 * stands; either way the partition's state is whole.
 *
 * @example
 * await skipState(ctx.state, partitionToOpen(manifest, phase, task, operator, scope), statefulBatch(manifest, interval));
 */
export async function skipState(
  store: StateStore,
  partition: PartitionToOpen,
  skipped: StatefulBatch,
): Promise<void> {
  const { ref, layout, batch, after, scope } = partition;
  const time = dueClock(partition.operator, skipped);
  const head = await headFor(store, ref, layout, batch, after, scope);
  if (head.batch >= batch) return;
  if (startsLayout(head, layout, batch)) {
    const opened: OpenedState = { ...partition, head };
    const loaded = await loadState(store, opened, [], time);
    await commitState(store, prepareState(opened, loaded, time));
    return;
  }
  // What the batch before left to delete is deleted after this commit, as after any batch's.
  const { retired: _deleted, ...rest } = head;
  await store.commit(
    ref,
    head,
    rest.kind === 'sluice.state/keyed@1' ? { ...rest, batch, dueApplied: [] } : { ...rest, batch },
  );
  await cleanUp(store, ref, head);
}

/**
 * The writes that take a partition's state from its head to batch n (at `time`): only the chunks
 * that changed, and for a keyed operator with a time index, the index entry of the keys it touched.
 *
 * @example
 * const pending = prepareState(opened, loaded, manifest.time, onRefused);
 */
export function prepareState(
  opened: OpenedState,
  loaded: LoadedState,
  time: number,
  onRefused?: (key: unknown, value: unknown, error: Error) => void,
): PendingState {
  if (loaded.kind === 'keyed') return prepareKeyed(opened, loaded, time, onRefused);
  const { ref, batch } = opened;
  const { head, table, before, read } = loaded;
  // A slotted state read as stored (not started, not leaving the keyed layout) may keep the
  // batch's changes as a delta instead of rewriting the chunks they fall in.
  if (head.kind === 'sluice.state/head@1' && head.batch > 0 && !loaded.retired) {
    const pending = deltaPending(ref, batch, head, loaded, onRefused);
    if (pending) return pending;
  }
  const chunks = head.kind === 'sluice.state/head@1' ? head.chunks : 1;
  const headSlots = head.kind === 'sluice.state/head@1' ? head.slots : '';
  const encoded = table.encode(chunks, onRefused);
  const resized = encoded.chunks !== chunks;
  // The chunks now hold every delta's changes: the delta items go once the next batch commits.
  const retired: RetiredItems[] = [
    ...(loaded.retired ?? []),
    ...(head.kind === 'sluice.state/head@1' ? deltaItems(head) : []),
  ];
  const slots: string[] = [];
  const writes: { chunk: number; slot: string; data: Buffer }[] = [];
  encoded.bodies.forEach((data, chunk) => {
    const current = resized ? '-' : (headSlots[chunk] ?? '-');
    const unchanged = !resized && before[chunk] !== undefined && before[chunk].equals(data);
    if (data.length === 0) slots.push('-');
    else if (unchanged && current !== '-') slots.push(current);
    else {
      // The inactive slot: the head keeps pointing at the active one until the commit.
      const previousSlot = headSlots[chunk] ?? '-';
      const slot = previousSlot === '0' ? '1' : '0';
      slots.push(slot);
      writes.push({ chunk, slot, data });
    }
  });
  return {
    kind: 'slotted',
    ref,
    previous: head,
    next: {
      kind: 'sluice.state/head@1',
      batch,
      chunks: encoded.chunks,
      slots: slots.join(''),
      format: DATA_FORMATS.chunk,
      ...(loaded.touched === undefined ? {} : { touched: loaded.touched }),
      ...(retired.length > 0 ? { retired } : {}),
    },
    writes,
    delta: [],
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

/** A slotted head's delta items, to retire once the chunks hold them (or the layout is left). */
function deltaItems(head: SlottedHead): RetiredItems[] {
  const deltas = head.deltas ?? [];
  if (deltas.length === 0) return [];
  return [{ kind: 'deltas', deltas: deltas.map(({ batch, parts }) => ({ batch, parts })) }];
}

/** A delta is written in parts of about this size (an item holds up to 400 KB). */
const DELTA_PART_BYTES = 64 * 1024;
/** Deltas a head lists at most: each is read by every batch until the chunks are rewritten. */
const MAX_DELTAS = 32;
/**
 * The deltas may grow to this many times the chunks' bytes before the chunks are written again. A
 * write unit is a KB and a strongly consistent read unit 4 KB at a fifth of the price: a byte
 * written costs what twenty read do, so reading deltas a while longer costs less than writing the
 * chunks more often (about the square root of 2 x 20 x chunks / delta batches per rewrite is the
 * cheapest; twice the chunks gives 4-9 of the batches the benches run).
 */
const DELTAS_PER_CHUNK_BYTES = 2;

/**
 * Batch n's changes kept as a delta: while they are under half the chunks' bytes and the deltas
 * since the chunks were written stay under `DELTAS_PER_CHUNK_BYTES` times the chunks, a batch
 * writes its changed keys (about a unit per KB of them) instead of every chunk they fall in (a unit
 * per KB of each), and every batch reads the chunks and the deltas. Past that (or past
 * `MAX_DELTAS`) the batch rewrites the chunks instead: nothing here. The changes are encoded only
 * up to that bound, so a dense batch does not encode them as well as the chunks.
 */
function deltaPending(
  ref: StatePartition,
  batch: number,
  head: SlottedHead,
  loaded: Extract<LoadedState, { kind: 'slotted' }>,
  onRefused?: (key: unknown, value: unknown, error: Error) => void,
): SlottedPending | undefined {
  const base = loaded.before.reduce((sum, chunk) => sum + chunk.length, 0);
  const kept = head.deltas ?? [];
  const keptBytes = kept.reduce((sum, d) => sum + d.bytes, 0);
  // A delta is paid twice, written and (once the chunks hold it) deleted, as DynamoDB bills a
  // delete by the item's size: worth it only while that is less than rewriting the chunks.
  const bound = kept.length >= MAX_DELTAS ? 0 : Math.min(base / 2, DELTAS_PER_CHUNK_BYTES * base - keptBytes);
  const delta = loaded.table.encodeChanges(DELTA_PART_BYTES, bound, onRefused);
  if (!delta) return undefined;
  const bytes = delta.reduce((sum, part) => sum + part.length, 0);
  const deltas = bytes > 0 ? [...kept, { batch, parts: delta.length, bytes }] : kept;
  const { retired: _deleted, deltas: _kept, ...rest } = head;
  return {
    kind: 'slotted',
    ref,
    previous: head,
    next: {
      ...rest,
      batch,
      ...(loaded.touched === undefined ? {} : { touched: loaded.touched }),
      ...(deltas.length > 0 ? { deltas } : {}),
    },
    writes: [],
    delta,
    usage: {
      keys: loaded.table.size,
      chunks:
        loaded.before.filter((chunk) => chunk.length > 0).length +
        deltas.reduce((sum, d) => sum + d.parts, 0),
      bytes: base + keptBytes + bytes,
      chunksRead: loaded.read.chunks,
      bytesRead: loaded.read.bytes,
      chunksWritten: delta.length,
      bytesWritten: bytes,
    },
  };
}

const NO_CHUNK: KeyedChunk = Object.freeze({ data: Buffer.alloc(0), version: 0, latest: 0 });

function prepareKeyed(
  opened: OpenedState,
  loaded: Extract<LoadedState, { kind: 'keyed' }>,
  time: number,
  onRefused?: (key: unknown, value: unknown, error: Error) => void,
): KeyedPending {
  const { ref, batch, operator } = opened;
  const { head, table, chunks: read } = loaded;
  const writes: { chunk: number; data: Buffer; read: KeyedChunk }[] = [];
  let chunkCount: number;
  let generation: number;
  let bytes: number;
  if (read && head.kind === 'sluice.state/keyed@1') {
    // Only the chunks read can have changed: the batch's keys and the due keys are all in them.
    chunkCount = head.chunks;
    generation = head.generation;
    bytes = head.bytes;
    const encoded = table.encodeChunks(chunkCount, new Set(read.keys()), onRefused);
    for (const [chunk, data] of encoded) {
      const before = read.get(chunk) ?? NO_CHUNK;
      bytes += data.length - before.data.length;
      // A chunk a later batch has written means this run is late: its commit will find the head
      // moved, and the later bytes stand.
      if (!data.equals(before.data) && before.latest <= batch) writes.push({ chunk, data, read: before });
    }
  } else {
    // The whole state, in a chunk count that keeps the chunks under their split size: every
    // chunk is new, in a generation of its own (a new layout, or a new chunk count).
    generation = batch;
    const encoded = table.encodeChunks(1, undefined, onRefused);
    bytes = [...encoded.values()].reduce((sum, body) => sum + body.length, 0);
    chunkCount = head.kind === 'sluice.state/keyed@1' ? head.chunks : 1;
    while (bytes / chunkCount > KEYED_CHUNK_SPLIT_BYTES / 2) chunkCount *= 2;
    for (const [chunk, data] of table.encodeChunks(chunkCount)) {
      if (data.length > 0) writes.push({ chunk, data, read: NO_CHUNK });
    }
  }
  const next: KeyedHead = {
    kind: 'sluice.state/keyed@1',
    batch,
    chunks: chunkCount,
    generation,
    keys: (head.kind === 'sluice.state/keyed@1' && read ? head.keys - loaded.loadedKeys : 0) + table.size,
    bytes,
    format: DATA_FORMATS.chunk,
    dueBefore: operator.dueAt ? time : 0,
    dueApplied: loaded.dueApplied,
    touched: loaded.touched,
    ...(loaded.retired ? { retired: loaded.retired } : {}),
  };
  return {
    kind: 'keyed',
    ref,
    previous: head,
    next,
    writes,
    due: operator.dueAt ? dueParts(table, loaded.dues, operator.dueAt, time) : [],
    usage: {
      keys: next.keys,
      chunks: next.chunks,
      bytes: next.bytes,
      chunksRead: loaded.read.chunks,
      bytesRead: loaded.read.bytes,
      chunksWritten: writes.length,
      bytesWritten: writes.reduce((sum, write) => sum + write.data.length, 0),
    },
  };
}

/**
 * The time index's new entries: every key whose due time the batch changed (set, touched, or
 * loaded whole), grouped by due time, in parts. A due time not after the batch's is indexed at
 * the batch's, so the next batch applies it.
 */
function dueParts(
  table: StateTable,
  before: ReadonlyMap<MapKey, number>,
  dueAt: (value: unknown, key: unknown) => number | undefined,
  time: number,
): { due: number; part: number; keys: Buffer }[] {
  const byDue = new Map<number, ByteWriter[]>();
  for (const entry of table.values()) {
    const at = dueAt(entry.value, entry.key);
    if (at === undefined || before.get(mapKey(entry.key)) === at) continue;
    const due = Math.max(at, time);
    const parts = byDue.get(due) ?? [new ByteWriter(256)];
    byDue.set(due, parts);
    let writer = parts[parts.length - 1] as ByteWriter;
    if (writer.length > DUE_PART_BYTES) {
      writer = new ByteWriter(256);
      parts.push(writer);
    }
    writeValue(writer, entry.key);
  }
  return [...byDue].flatMap(([due, parts]) =>
    parts.map((writer, part) => ({ due, part, keys: writer.toBuffer() })),
  );
}

/**
 * What a partition says of the batches after it: until when a batch without input would leave it as
 * `batch` leaves it, with no output and no change of state. Forever for an empty state, and for an
 * operator that reads only its keys without timeouts; with timeouts, until the first key is due
 * (from the whole state, or the time index and the entries this batch writes to it). An operator on
 * the watermark's clock (event-time windows) is quiet whatever the time while the sealed high stays
 * at or below `quietHigh`: without input the watermark moves only as earlier batches' highs are
 * folded in. An operator that reads every key says what its `idleUntil` says (a processing-time
 * window: until its next window batch), or nothing (`updateStateByKey`, snapshots): it acts on
 * every batch while it holds state.
 *
 * @example
 * const quiet = await quietAfter(ctx.state, opened, pending, loaded.table, batch);
 */
export async function quietAfter(
  store: StateStore,
  opened: OpenedState,
  pending: PendingState,
  table: StateTable,
  batch: StatefulBatch,
): Promise<Quietness | undefined> {
  const { operator, ref } = opened;
  if (pending.usage.keys === 0) return { quietUntil: QUIET_FOREVER };
  if (operator.reads !== 'keys') {
    return operator.idleUntil ? { quietUntil: operator.idleUntil(batch) } : undefined;
  }
  const time = dueClock(operator, batch);
  const { dueAt, clock } = operator;
  if (!dueAt) return { quietUntil: QUIET_FOREVER };
  let first = QUIET_FOREVER;
  if (pending.kind === 'slotted') {
    for (const { key, value } of table.values()) first = Math.min(first, dueAt(value, key) ?? QUIET_FOREVER);
  } else {
    for (const { due } of pending.due) first = Math.min(first, due);
    first = Math.min(first, (await store.firstDue(ref, time)) ?? QUIET_FOREVER);
  }
  if (!clock) return { quietUntil: first };
  return {
    quietUntil: QUIET_FOREVER,
    ...(first === QUIET_FOREVER ? {} : { quietHigh: highBeforeDue(clock, first) }),
  };
}

/**
 * Writes the changed chunks (fenced by batch) and the time index, then commits the head, then
 * deletes what the batch before left to delete (due entries it applied, items it retired): a run
 * of that batch still reading them has been overtaken by two commits.
 *
 * @example
 * await commitState(ctx.state, pending);
 */
export async function commitState(store: StateStore, pending: PendingState): Promise<void> {
  const { ref, next } = pending;
  if (pending.kind === 'slotted') {
    await inParallel(pending.writes, (write) =>
      store.writeChunk(ref, write.chunk, write.slot, next.batch, write.data),
    );
    await inParallel([...pending.delta.entries()], ([part, data]) =>
      store.writeDelta(ref, next.batch, part, data),
    );
  } else {
    const { generation } = pending.next;
    await inParallel(pending.writes, (write) =>
      store.writeKeyed(ref, generation, write.chunk, next.batch, write.data, write.read),
    );
    await inParallel(pending.due, (part) => store.writeDue(ref, part.due, next.batch, part.part, part.keys));
  }
  // False means a duplicate committed the same batch first: its state is this state.
  await store.commit(ref, pending.previous, next);
  await cleanUp(store, ref, pending.previous);
}

/** Deletes what a head's batch left to delete, once a later batch has committed. */
async function cleanUp(store: StateStore, ref: StatePartition, head: StateHead): Promise<void> {
  const retired: string[] = [];
  for (const items of head.retired ?? []) retired.push(...(await store.retiredItems(ref, items)));
  const applied = head.kind === 'sluice.state/keyed@1' ? head.dueApplied : [];
  await inParallel([...applied, ...retired], (sk) => store.deleteItem(ref, sk));
}

async function inParallel<T>(items: readonly T[], write: (item: T) => Promise<unknown>): Promise<void> {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(8, queue.length) }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await write(item);
  });
  await Promise.all(workers);
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
