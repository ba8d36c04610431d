import {
  BatchGetCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import * as z from 'zod/mini';
import { conditionalWrite } from './conditions';
import { DATA_FORMATS } from '../encoding/formats';
import { DataFormatError } from '../errors';
import { LEDGER_ITEM_KEYS } from './ledger/items';
import type { StageId } from '../ids';

/**
 * The head of one stateful partition in the slotted layout (an operator that reads every key each
 * batch): which batch its state is as of, which of the two slots of each chunk holds that state,
 * and the format the chunks are encoded in.
 */
export interface SlottedHead {
  readonly kind: 'sluice.state/head@1';
  /** The last batch applied; 0 before the first. */
  readonly batch: number;
  readonly chunks: number;
  /** One character per chunk: the slot ('0' or '1') holding its current bytes, or '-' if empty. */
  readonly slots: string;
  /** How the chunks' bytes are encoded (`DATA_FORMATS.chunk` of the code that wrote them). */
  readonly format: string;
  /** Keys a batch with records touches, on average (for a stage that could keep the keyed layout). */
  readonly touched?: number;
  /** Items this batch stopped using (it left the keyed layout): the next batch deletes them. */
  readonly retired?: readonly RetiredItems[];
  /**
   * The changes of the batches since the chunks were last written, in batch order: the state is
   * the chunks with these applied. Stored in a head of kind `sluice.state/head@3` (`@2` before
   * items were deflated), so code that does not apply them refuses the head rather than read the
   * chunks alone.
   */
  readonly deltas?: readonly StateDelta[];
}

/** One batch's changes to a slotted partition's state: in `parts` items of `bytes` in all. */
export interface StateDelta {
  readonly batch: number;
  readonly parts: number;
  readonly bytes: number;
}

/** Items a head's batch left to delete once the next batch has committed. */
export type RetiredItems =
  /** A slotted layout's chunks, both slots each (the partition moved to the keyed layout). */
  | { readonly kind: 'slotted'; readonly chunks: number }
  /** The keyed chunks of a generation no longer used (split, or the layout left). */
  | { readonly kind: 'keyed'; readonly generation: number }
  /** The whole time index (the keyed layout left). */
  | { readonly kind: 'index' }
  /** Delta items whose changes are now in the chunks (or left with the slotted layout). */
  | { readonly kind: 'deltas'; readonly deltas: readonly Pick<StateDelta, 'batch' | 'parts'>[] };

/**
 * The head of one stateful partition in the keyed layout (an operator that reads only the keys a
 * batch touches): its batch, its chunk count (a key's chunk is `chunkOf(key, chunks)`), its size,
 * and the time index it has applied. Every chunk is its own item holding its bytes as of the batch
 * that last wrote it and as of the write before, so a reader at the head's batch finds them whether
 * or not a later run has written since.
 */
export interface KeyedHead {
  readonly kind: 'sluice.state/keyed@1';
  /** The last batch applied; 0 before the first. */
  readonly batch: number;
  /** The chunk count: a power of two, doubled when the chunks grow past their size. */
  readonly chunks: number;
  /**
   * The batch that wrote every chunk anew (the layout's first, or a split): chunk items are named
   * by it, so a generation never meets items of another.
   */
  readonly generation: number;
  readonly keys: number;
  /** The chunks' encoded bytes, summed. */
  readonly bytes: number;
  readonly format: string;
  /** Due entries of the time index before this time (epoch ms) have been applied. */
  readonly dueBefore: number;
  /** Sort keys of the due entries this batch applied: the next batch deletes them. */
  readonly dueApplied: readonly string[];
  /** Keys a batch with records touches, on average: what the layout is chosen by. */
  readonly touched?: number;
  /** Items this batch stopped using: the next batch deletes them. */
  readonly retired?: readonly RetiredItems[];
}

/** A stateful partition's head, in either layout (`EMPTY_HEAD` before the first batch). */
export type StateHead = SlottedHead | KeyedHead;

const EMPTY_HEAD: SlottedHead = Object.freeze({
  kind: 'sluice.state/head@1',
  batch: 0,
  chunks: 1,
  slots: '-',
  format: DATA_FORMATS.chunk,
});

const count = z.number().check(z.int(), z.nonnegative());

const retiredSchema = z.array(
  z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('slotted'), chunks: z.number().check(z.int(), z.positive()) }),
    z.object({ kind: z.literal('keyed'), generation: z.number().check(z.int(), z.positive()) }),
    z.object({ kind: z.literal('index') }),
    z.object({
      kind: z.literal('deltas'),
      deltas: z.array(z.object({ batch: z.number().check(z.int(), z.positive()), parts: count })),
    }),
  ]),
);

const deltaSchema = z.object({
  batch: z.number().check(z.int(), z.positive()),
  parts: z.number().check(z.int(), z.positive()),
  bytes: count,
});

const slottedSchema = z.object({
  kind: z.literal('sluice.state/head@1'),
  batch: count,
  chunks: z.number().check(z.int(), z.positive()),
  slots: z.string().check(z.regex(/^[-01]+$/)),
  format: z.string(),
  touched: z.optional(z.number().check(z.nonnegative())),
  retired: z.optional(retiredSchema),
});

const keyedSchema = z.object({
  kind: z.literal('sluice.state/keyed@1'),
  batch: count,
  chunks: z.number().check(z.int(), z.positive()),
  keys: count,
  bytes: count,
  format: z.string(),
  dueBefore: count,
  dueApplied: z.array(z.string()),
  generation: z.number().check(z.int(), z.positive()),
  touched: z.optional(z.number().check(z.nonnegative())),
  retired: z.optional(retiredSchema),
});

const slottedDeltasSchema = z.extend(slottedSchema, {
  kind: z.literal('sluice.state/head@2'),
  deltas: z.array(deltaSchema).check(z.minLength(1)),
});

const slottedDeflatedSchema = z.extend(slottedSchema, {
  kind: z.literal('sluice.state/head@3'),
  deltas: z.optional(z.array(deltaSchema).check(z.minLength(1))),
});

const headSchema = z.discriminatedUnion('kind', [
  slottedSchema,
  slottedDeltasSchema,
  slottedDeflatedSchema,
  keyedSchema,
]);

/**
 * A slotted head as stored now, with or without deltas: its chunk and delta items may be deflated
 * (`STORED_CODEC`), so code that reads only raw items (head@1 and @2) refuses it.
 */
const SLOTTED_DEFLATED = 'sluice.state/head@3';

/**
 * How a slotted chunk or delta item's `data` is stored when its `codec` attribute says so: raw
 * DEFLATE (RFC 1951) of the chunk format's bytes. Without `codec`, the bytes themselves.
 */
const STORED_CODEC = 'deflate-raw';
/** Items under this are stored raw: a write unit is a KB, so deflating them saves little. */
const DEFLATE_FROM_BYTES = 1024;

/**
 * An item's `data` and `codec` for a slotted chunk's or a delta's bytes: deflated when that makes
 * them at least a tenth smaller. DynamoDB bills an item by its size (a write unit a KB, a read
 * unit 4 KB) and state entries (words, counts, times) deflate to a third to a half.
 */
function storedData(bytes: Uint8Array): { data: Uint8Array; codec?: typeof STORED_CODEC } {
  if (bytes.length < DEFLATE_FROM_BYTES) return { data: bytes };
  const deflated = deflateRawSync(bytes);
  return deflated.length <= bytes.length * 0.9 ? { data: deflated, codec: STORED_CODEC } : { data: bytes };
}

/** The bytes a slotted chunk or delta item holds, inflated if it was stored deflated. */
function storedBytes(item: Record<string, unknown>, where: string): Buffer {
  const data = bytesOf(item.data);
  const codec: unknown = item.codec;
  if (codec === undefined) return data;
  if (codec === STORED_CODEC) return inflateRawSync(data);
  throw new DataFormatError(
    `the state item ${where} is stored as ${JSON.stringify(codec)}; this code reads ${STORED_CODEC}`,
  );
}

/**
 * Parses a head item read from the table: a head of another kind, or whose chunks are in a
 * format this code does not read, is refused before any chunk is decoded.
 *
 * @example
 * const head = parseStateHead(item, 'state#count#0');
 */
export function parseStateHead(item: Record<string, unknown>, where: string): StateHead {
  const parsed = headSchema.safeParse(item);
  if (!parsed.success) {
    throw new DataFormatError(
      `the state head of ${where} is not a sluice.state/head@1, head@2, head@3 or keyed@1: ${parsed.error.message}`,
    );
  }
  const head = parsed.data;
  if (head.format !== DATA_FORMATS.chunk) {
    throw new DataFormatError(
      `the state of ${where} is in ${head.format}; this code reads ${DATA_FORMATS.chunk}`,
    );
  }
  const common = {
    ...(head.touched === undefined ? {} : { touched: head.touched }),
    ...(head.retired ? { retired: head.retired } : {}),
  };
  if (head.kind !== 'sluice.state/keyed@1') {
    return {
      kind: 'sluice.state/head@1',
      batch: head.batch,
      chunks: head.chunks,
      slots: head.slots,
      format: head.format,
      ...common,
      ...(head.kind !== 'sluice.state/head@1' && head.deltas ? { deltas: head.deltas } : {}),
    };
  }
  return {
    kind: head.kind,
    batch: head.batch,
    chunks: head.chunks,
    generation: head.generation,
    keys: head.keys,
    bytes: head.bytes,
    format: head.format,
    dueBefore: head.dueBefore,
    dueApplied: head.dueApplied,
    ...common,
  };
}

/**
 * The sort key of a keyed chunk: its generation first, so that a split's new chunks never meet
 * the old ones and one generation can be read (or deleted) with one key range.
 */
function keyedChunkSk(generation: number, chunk: number): string {
  return `${generationSk(generation)}${chunk}`;
}

function generationSk(generation: number): string {
  return `chunks@${generation}#`;
}

/**
 * The sort key of a time-index entry: its due time (zero-padded, so keys sort by time), the batch
 * that wrote it (two batches may index keys at one time) and its part.
 */
function dueSk(due: number, batch: number, part: number): string {
  return `${dueTimeSk(due)}${batch}#${part}`;
}

/** The sort key of a part of a batch's delta: by batch, so a partition's deltas sort in order. */
function deltaSk(batch: number, part: number): string {
  return `delta#${String(batch).padStart(10, '0')}#${part}`;
}

/** The sort keys of every part of some deltas, in order. */
function deltaSks(deltas: readonly Pick<StateDelta, 'batch' | 'parts'>[]): string[] {
  return deltas.flatMap(({ batch, parts }) => Array.from({ length: parts }, (_, p) => deltaSk(batch, p)));
}

/**
 * A head's attributes as stored: a slotted head as `sluice.state/head@3` (its items may be
 * deflated; with its deltas, if any: see `SlottedHead.deltas`); a keyed one as it is.
 *
 * @example
 * storedHead({ ...head, deltas: [{ batch: 5, parts: 1, bytes: 40 }] }).kind; // 'sluice.state/head@3'
 */
export function storedHead(head: StateHead): Record<string, unknown> {
  if (head.kind === 'sluice.state/keyed@1') return head as unknown as Record<string, unknown>;
  const { deltas, ...rest } = head;
  return { ...rest, kind: SLOTTED_DEFLATED, ...(deltas && deltas.length > 0 ? { deltas } : {}) };
}

const DUE_PREFIX = 'due#';
const DUE_DIGITS = 15;

function dueTimeSk(due: number): string {
  return `${DUE_PREFIX}${String(due).padStart(DUE_DIGITS, '0')}#`;
}

/** The due time a time-index entry's sort key names. */
function dueTimeOf(sk: string): number {
  return Number(sk.slice(DUE_PREFIX.length, DUE_PREFIX.length + DUE_DIGITS));
}

/** A keyed chunk as read: its bytes as of the reader's batch, and the version they are (0: none). */
export interface KeyedChunk {
  readonly data: Buffer;
  /** The batch that wrote `data` (0: the chunk did not exist as of the reader's batch). */
  readonly version: number;
  /** The batch of the item's newest bytes: past the reader's batch when a later run wrote it. */
  readonly latest: number;
}

/** One entry of the time index: keys due at a time, as a later batch reads them. */
export interface DueEntry {
  readonly sk: string;
  readonly keys: Buffer;
}

/**
 * A chunk item's bytes as of batch `asOf`: its newest if that batch wrote them by then, else the
 * ones before. A reader that finds both newer than its batch has been overtaken by two later
 * batches: it is a late duplicate, told by `undefined`.
 */
function chunkAsOf(item: Record<string, unknown> | undefined, asOf: number): KeyedChunk | undefined {
  if (!item) return { data: Buffer.alloc(0), version: 0, latest: 0 };
  const latest = item.version as number;
  if (latest <= asOf) return { data: bytesOf(item.data), version: latest, latest };
  const prior = item.prior as number | undefined;
  if (prior === undefined) return { data: Buffer.alloc(0), version: 0, latest };
  if (prior > asOf) return undefined;
  return { data: bytesOf(item.priorData), version: prior, latest };
}

function bytesOf(value: unknown): Buffer {
  if (value === undefined) return Buffer.alloc(0);
  const data = value as Uint8Array;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * One stateful partition's place in the table: its stage, its partition and the first batch of
 * the state layout it belongs to (a rescale starts a new layout, whose items are apart from the
 * old one's, so the old state stays whole while every new partition re-hashes it).
 */
export interface StatePartition {
  readonly stage: StageId;
  readonly partition: number;
  /** The first batch of the partition's layout: 1 for the stage's first layout. */
  readonly since: number;
}

/**
 * Keyed state in the ledger table, in chunks, under a head item per (stage, partition), in one of
 * two layouts. Slotted (operators that read every key each batch): two slots per chunk; a batch
 * writes the chunks it changed into their inactive slots, each write fenced so it never overwrites
 * a newer batch's bytes. Keyed (operators that read only the keys a batch touches): one small item
 * per chunk holding its bytes as of two batches, read by the chunks a batch needs, and a time
 * index of due keys. Either way the batch then moves the head from n-1 to n with one conditional
 * write: the commit. Until then the head still says batch n-1, so a crash half-way leaves the old
 * state whole, and the re-run writes the same bytes again.
 *
 * @example
 * const head = await new StateStore(dynamo, table).head({ stage: stageId('count'), partition: 0, since: 1 });
 */
export class StateStore {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    readonly table: string,
  ) {}

  private pk(ref: StatePartition): string {
    return LEDGER_ITEM_KEYS.statePk(ref.stage, ref.partition, ref.since);
  }

  async head(ref: StatePartition): Promise<StateHead> {
    const out = await this.dynamo.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: this.pk(ref), sk: 'head' },
        ConsistentRead: true,
      }),
    );
    if (!out.Item) return EMPTY_HEAD;
    return parseStateHead(out.Item, this.pk(ref));
  }

  /** The bytes of every chunk the head points at, by chunk number (empty for an empty chunk). */
  async read(ref: StatePartition, head: SlottedHead): Promise<Buffer[]> {
    const stored = await this.requiredData(
      ref,
      Array.from(head.slots).flatMap((slot, chunk) => (slot === '-' ? [] : [`chunk#${chunk}#${slot}`])),
      'chunk',
    );
    let next = 0;
    return Array.from(head.slots).map((slot) =>
      slot === '-' ? Buffer.alloc(0) : (stored[next++] as Buffer),
    );
  }

  /** The `data` of items that must exist, in the order of their sort keys. */
  private async requiredData(ref: StatePartition, sks: readonly string[], what: string): Promise<Buffer[]> {
    const found = await this.getItems(ref, sks);
    return sks.map((sk) => {
      const item = found.get(sk);
      if (!item) throw new Error(`state ${what} ${this.pk(ref)} ${sk} is missing`);
      return storedBytes(item, `${this.pk(ref)} ${sk}`);
    });
  }

  /**
   * Items of a partition by sort key (consistent reads, 100 a request), those that exist. BatchGetItem
   * may return part of a request as unprocessed: that part is asked for again.
   */
  private async getItems(
    ref: StatePartition,
    sks: readonly string[],
  ): Promise<Map<string, Record<string, unknown>>> {
    const pk = this.pk(ref);
    const found = new Map<string, Record<string, unknown>>();
    for (let i = 0; i < sks.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = sks.slice(i, i + 100).map((sk) => ({ pk, sk }));
      for (let attempt = 0; keys && keys.length > 0; attempt++) {
        if (attempt > 8) throw new Error(`state items of ${pk} could not be read`);
        const out: BatchGetCommandOutput = await this.dynamo.send(
          new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } }),
        );
        for (const item of out.Responses?.[this.table] ?? []) found.set(item.sk as string, item);
        keys = out.UnprocessedKeys?.[this.table]?.Keys;
      }
    }
    return found;
  }

  /**
   * Writes a chunk's bytes for batch `version` into a slot, unless that slot already holds a newer
   * batch's bytes (a late duplicate of an old batch must not clobber them).
   */
  async writeChunk(
    ref: StatePartition,
    chunk: number,
    slot: string,
    version: number,
    data: Uint8Array,
  ): Promise<boolean> {
    return conditionalWrite(() =>
      this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: this.pk(ref), sk: `chunk#${chunk}#${slot}`, version, ...storedData(data) },
          ConditionExpression: 'attribute_not_exists(pk) OR version <= :version',
          ExpressionAttributeValues: { ':version': version },
        }),
      ),
    );
  }

  /**
   * Writes one part of a batch's changes (`SlottedHead.deltas`). Every run of the batch writes the
   * same bytes; the first write stands.
   */
  async writeDelta(ref: StatePartition, batch: number, part: number, data: Uint8Array): Promise<void> {
    await conditionalWrite(() =>
      this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: this.pk(ref), sk: deltaSk(batch, part), version: batch, ...storedData(data) },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
  }

  /** The parts of the deltas a slotted head lists, in batch and part order. */
  async readDeltas(ref: StatePartition, deltas: readonly StateDelta[]): Promise<Buffer[]> {
    return this.requiredData(ref, deltaSks(deltas), 'delta');
  }

  /**
   * The bytes of every chunk of a partition's state as of its head, in either layout, in chunk
   * order (a slotted head's deltas are not applied: `readDeltas`). A keyed chunk past the head on
   * both its versions (later batches have committed since the head was read) is an error: read the
   * head again.
   */
  async readAll(ref: StatePartition, head: StateHead): Promise<Buffer[]> {
    if (head.kind === 'sluice.state/head@1') return this.read(ref, head);
    const found = await this.readAllKeyed(ref, head.generation, head.batch);
    return [...found.entries()]
      .sort(([a], [b]) => a - b)
      .map(([number, chunk]) => {
        if (!chunk) throw new Error(`state chunk ${number} of ${this.pk(ref)} is past batch ${head.batch}`);
        return chunk.data;
      });
  }

  /**
   * The keyed chunks `wanted` of a partition as of batch `asOf` (strongly consistent: the head's
   * batch committed after its chunks were written). Undefined for a chunk when the reader has been
   * overtaken (see `chunkAsOf`).
   */
  async readKeyed(
    ref: StatePartition,
    generation: number,
    wanted: readonly number[],
    asOf: number,
  ): Promise<Map<number, KeyedChunk | undefined>> {
    const items = await this.getItems(
      ref,
      wanted.map((chunk) => keyedChunkSk(generation, chunk)),
    );
    return new Map(
      wanted.map((chunk) => [chunk, chunkAsOf(items.get(keyedChunkSk(generation, chunk)), asOf)]),
    );
  }

  /** Every keyed chunk of a generation, as of batch `asOf`, by chunk number (one key range). */
  async readAllKeyed(
    ref: StatePartition,
    generation: number,
    asOf: number,
  ): Promise<Map<number, KeyedChunk | undefined>> {
    const found = new Map<number, KeyedChunk | undefined>();
    const prefix = generationSk(generation);
    for (const item of await this.queryRange(ref, prefix, `${prefix}~`)) {
      found.set(Number((item.sk as string).slice(prefix.length)), chunkAsOf(item, asOf));
    }
    return found;
  }

  /**
   * Writes a keyed chunk's bytes for batch `version`, keeping the bytes it replaces (read as
   * `read`) beside them for readers still at the batch before. Fenced on the version read: if
   * another run has written the chunk since, its bytes stand (a run of the same batch wrote the same
   * bytes; a later batch's must not be clobbered).
   */
  async writeKeyed(
    ref: StatePartition,
    generation: number,
    chunk: number,
    version: number,
    data: Uint8Array,
    read: KeyedChunk,
  ): Promise<boolean> {
    const item = {
      pk: this.pk(ref),
      sk: keyedChunkSk(generation, chunk),
      version,
      data,
      ...(read.version > 0 ? { prior: read.version, priorData: read.data } : {}),
    };
    return conditionalWrite(() =>
      this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: item,
          ...(read.latest === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: 'version = :read',
                ExpressionAttributeValues: { ':read': read.latest },
              }),
        }),
      ),
    );
  }

  /** The time index's entries due in [from, before), in due order. */
  async readDue(ref: StatePartition, from: number, before: number): Promise<DueEntry[]> {
    if (before <= from) return [];
    const items = await this.queryRange(ref, dueTimeSk(from), `${dueTimeSk(before - 1)}~`);
    return items.map((item) => ({ sk: item.sk as string, keys: bytesOf(item.keys) }));
  }

  /**
   * The due time of the time index's first entry at or after `from`, or nothing if there is none:
   * one item read (the projection keeps the entry's key bytes out of it).
   */
  async firstDue(ref: StatePartition, from: number): Promise<number | undefined> {
    const out = await this.dynamo.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: {
          ':pk': this.pk(ref),
          ':from': dueTimeSk(from),
          ':to': `${dueTimeSk(Number.MAX_SAFE_INTEGER)}~`,
        },
        ProjectionExpression: 'sk',
        ConsistentRead: true,
        Limit: 1,
      }),
    );
    const sk: unknown = out.Items?.[0]?.sk;
    return typeof sk === 'string' ? dueTimeOf(sk) : undefined;
  }

  /**
   * Writes one part of the time index's entry for a due time. Each is written by the one batch
   * that touched its keys, with the same bytes by every run of it.
   */
  async writeDue(
    ref: StatePartition,
    due: number,
    batch: number,
    part: number,
    keys: Uint8Array,
  ): Promise<void> {
    const item = { pk: this.pk(ref), sk: dueSk(due, batch, part), keys };
    await this.dynamo.send(new PutCommand({ TableName: this.table, Item: item }));
  }

  /** Deletes an item of a partition by sort key: an applied due entry, a retired chunk. */
  async deleteItem(ref: StatePartition, sk: string): Promise<void> {
    await this.dynamo.send(new DeleteCommand({ TableName: this.table, Key: { pk: this.pk(ref), sk } }));
  }

  /** The sort keys of the items `retired` names (that exist, where a query finds them). */
  async retiredItems(ref: StatePartition, retired: RetiredItems): Promise<string[]> {
    if (retired.kind === 'index') {
      const items = await this.queryRange(ref, dueTimeSk(0), `${dueTimeSk(Number.MAX_SAFE_INTEGER)}~`);
      return items.map((item) => item.sk as string);
    }
    if (retired.kind === 'deltas') return deltaSks(retired.deltas);
    if (retired.kind === 'slotted') {
      return Array.from({ length: retired.chunks }, (_, chunk) => [
        `chunk#${chunk}#0`,
        `chunk#${chunk}#1`,
      ]).flat();
    }
    const prefix = generationSk(retired.generation);
    return (await this.queryRange(ref, prefix, `${prefix}~`)).map((item) => item.sk as string);
  }

  private async queryRange(
    ref: StatePartition,
    from: string,
    to: string,
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out: QueryCommandOutput = await this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': this.pk(ref), ':from': from, ':to': to },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Moves the head from `previous.batch` to `next.batch`; false if another run already did. */
  async commit(ref: StatePartition, previous: StateHead, next: StateHead): Promise<boolean> {
    return conditionalWrite(() =>
      this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: this.pk(ref), sk: 'head', ...storedHead(next) },
          // `batch` is a reserved word in DynamoDB expressions.
          ...(previous.batch === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: '#batch = :previous',
                ExpressionAttributeNames: { '#batch': 'batch' },
                ExpressionAttributeValues: { ':previous': previous.batch },
              }),
        }),
      ),
    );
  }
}
