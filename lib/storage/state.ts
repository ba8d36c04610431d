import {
  BatchGetCommand,
  GetCommand,
  PutCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './conditions';
import type { StageId } from '../ids';

/**
 * The head of one stateful partition: which batch its state is as of, and which of the two slots
 * of each chunk holds that state.
 */
export interface StateHead {
  /** The last batch applied; 0 before the first. */
  readonly version: number;
  readonly chunks: number;
  /** One character per chunk: the slot ('0' or '1') holding its current bytes, or '-' if empty. */
  readonly slots: string;
  /** Values an operator keeps per partition besides keys (the event-time high mark). */
  readonly meta: Readonly<Record<string, number>>;
}

const EMPTY_HEAD: StateHead = { version: 0, chunks: 1, slots: '-', meta: {} };

/**
 * Keyed state in the ledger table, in chunks: a head item per (stage, partition) and two slots per
 * chunk. A batch writes the chunks it changed into their inactive slots, each write fenced so it
 * never overwrites a newer batch's bytes, then moves the head from n-1 to n with one conditional
 * write: the commit. Until then the head still points at batch n-1's chunks, so a crash half-way
 * leaves the old state whole, and the re-run writes the same bytes again.
 */
export class StateStore {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    readonly table: string,
  ) {}

  private pk(stage: StageId, partition: number): string {
    return `state#${stage}#${partition}`;
  }

  async head(stage: StageId, partition: number): Promise<StateHead> {
    const out = await this.dynamo.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: this.pk(stage, partition), sk: 'head' },
        ConsistentRead: true,
      }),
    );
    if (!out.Item) return EMPTY_HEAD;
    return {
      version: out.Item.version as number,
      chunks: out.Item.chunks as number,
      slots: out.Item.slots as string,
      meta: (out.Item.meta ?? {}) as Record<string, number>,
    };
  }

  /** The bytes of every non-empty chunk the head points at, in chunk order. */
  async read(stage: StageId, partition: number, head: StateHead): Promise<Uint8Array[]> {
    const pk = this.pk(stage, partition);
    const wanted = [...head.slots].flatMap((slot, chunk) => (slot === '-' ? [] : [`chunk#${chunk}#${slot}`]));
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
    return wanted.map((sk) => {
      const data = found.get(sk);
      if (!data) throw new Error(`state chunk ${pk} ${sk} is missing`);
      return data;
    });
  }

  /**
   * Writes a chunk's bytes for batch `version` into a slot, unless that slot already holds a newer
   * batch's bytes (a late duplicate of an old batch must not clobber them).
   */
  async writeChunk(
    stage: StageId,
    partition: number,
    chunk: number,
    slot: string,
    version: number,
    data: Uint8Array,
  ): Promise<boolean> {
    try {
      await this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: this.pk(stage, partition), sk: `chunk#${chunk}#${slot}`, version, data },
          ConditionExpression: 'attribute_not_exists(pk) OR version <= :version',
          ExpressionAttributeValues: { ':version': version },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Moves the head from `previous.version` to `next.version`; false if another run already did. */
  async commit(stage: StageId, partition: number, previous: StateHead, next: StateHead): Promise<boolean> {
    try {
      await this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: this.pk(stage, partition), sk: 'head', ...next },
          ConditionExpression: previous.version === 0 ? 'attribute_not_exists(pk)' : 'version = :previous',
          ...(previous.version === 0 ? {} : { ExpressionAttributeValues: { ':previous': previous.version } }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }
}
