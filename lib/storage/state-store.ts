import {
  BatchGetCommand,
  GetCommand,
  PutCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import { conditionalWrite } from './conditions';
import { DATA_FORMATS } from '../encoding/formats';
import { DataFormatError } from '../errors';
import { LEDGER_ITEM_KEYS } from './ledger/items';
import type { StageId } from '../ids';

/**
 * The head of one stateful partition: which batch its state is as of, which of the two slots of
 * each chunk holds that state, and the format the chunks are encoded in.
 */
export interface StateHead {
  readonly kind: 'sluice.state/head@1';
  /** The last batch applied; 0 before the first. */
  readonly batch: number;
  readonly chunks: number;
  /** One character per chunk: the slot ('0' or '1') holding its current bytes, or '-' if empty. */
  readonly slots: string;
  /** How the chunks' bytes are encoded (`DATA_FORMATS.chunk` of the code that wrote them). */
  readonly format: string;
}

const EMPTY_HEAD: StateHead = Object.freeze({
  kind: 'sluice.state/head@1',
  batch: 0,
  chunks: 1,
  slots: '-',
  format: DATA_FORMATS.chunk,
});

const headSchema = z.object({
  kind: z.literal('sluice.state/head@1'),
  batch: z.number().check(z.int(), z.nonnegative()),
  chunks: z.number().check(z.int(), z.positive()),
  slots: z.string().check(z.regex(/^[-01]+$/)),
  format: z.string(),
});

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
      `the state head of ${where} is not a sluice.state/head@1: ${parsed.error.message}`,
    );
  }
  if (parsed.data.format !== DATA_FORMATS.chunk) {
    throw new DataFormatError(
      `the state of ${where} is in ${parsed.data.format}; this code reads ${DATA_FORMATS.chunk}`,
    );
  }
  return {
    kind: parsed.data.kind,
    batch: parsed.data.batch,
    chunks: parsed.data.chunks,
    slots: parsed.data.slots,
    format: parsed.data.format,
  };
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
 * Keyed state in the ledger table, in chunks: a head item per (stage, partition) and two slots per
 * chunk. A batch writes the chunks it changed into their inactive slots, each write fenced so it
 * never overwrites a newer batch's bytes, then moves the head from n-1 to n with one conditional
 * write: the commit. Until then the head still points at batch n-1's chunks, so a crash half-way
 * leaves the old state whole, and the re-run writes the same bytes again.
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
  async read(ref: StatePartition, head: StateHead): Promise<Buffer[]> {
    const pk = this.pk(ref);
    const wanted = Array.from(head.slots).flatMap((slot, chunk) =>
      slot === '-' ? [] : [`chunk#${chunk}#${slot}`],
    );
    const found = new Map<string, Uint8Array>();
    for (let i = 0; i < wanted.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = wanted.slice(i, i + 100).map((sk) => ({ pk, sk }));
      // BatchGetItem may return part of the request as unprocessed; ask again for that part.
      for (let attempt = 0; keys && keys.length > 0; attempt++) {
        if (attempt > 8) throw new Error(`state chunks of ${pk} could not be read`);
        const out: BatchGetCommandOutput = await this.dynamo.send(
          new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } }),
        );
        for (const item of out.Responses?.[this.table] ?? [])
          found.set(item.sk as string, item.data as Uint8Array);
        keys = out.UnprocessedKeys?.[this.table]?.Keys;
      }
    }
    return Array.from(head.slots).map((slot, chunk) => {
      if (slot === '-') return Buffer.alloc(0);
      const sk = `chunk#${chunk}#${slot}`;
      const data = found.get(sk);
      if (!data) throw new Error(`state chunk ${pk} ${sk} is missing`);
      return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    });
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
          Item: { pk: this.pk(ref), sk: `chunk#${chunk}#${slot}`, version, data },
          ConditionExpression: 'attribute_not_exists(pk) OR version <= :version',
          ExpressionAttributeValues: { ':version': version },
        }),
      ),
    );
  }

  /** Moves the head from `previous.batch` to `next.batch`; false if another run already did. */
  async commit(ref: StatePartition, previous: StateHead, next: StateHead): Promise<boolean> {
    return conditionalWrite(() =>
      this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: this.pk(ref), sk: 'head', ...next },
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
