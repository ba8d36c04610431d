import { PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { SegmentItem } from '../../batch';
import { DATA_FORMATS } from '../../encoding/formats';
import { DataFormatError, InvalidInputError } from '../../errors';
import type { ShardId } from '../../ids';
import { isConditionFailure } from '../conditions';
import { LEDGER_ITEM_KEYS, LEDGER_KINDS, parseSegmentItem, parseShardsItem, segmentItem } from './items';
import type { LedgerTable } from './table';

/**
 * The shards ingest has seen, and the input segments it registered for each.
 *
 * @example
 * const segments = await ledger.segments.between(shard, cursor?.segmentStart);
 */
export class SegmentItems {
  /**
   * Shards this process has registered. A shard is never unregistered, so once its write has
   * succeeded the next ingest of the same shard (a warm function is given the same shard call
   * after call) has nothing to write: the shard costs one write per process, not one per call.
   */
  private readonly registered = new Set<ShardId>();

  constructor(private readonly table: LedgerTable) {}

  /** Registers a shard so the coordinator looks at it: a set ADD, once per shard and process. */
  async registerShard(shard: ShardId): Promise<void> {
    if (this.registered.has(shard)) return;
    await this.table.dynamo.send(
      new UpdateCommand({
        TableName: this.table.name,
        Key: LEDGER_ITEM_KEYS.shards,
        UpdateExpression: 'ADD ids :s SET kind = :kind',
        ExpressionAttributeValues: { ':s': new Set([shard]), ':kind': LEDGER_KINDS.shards },
      }),
    );
    this.registered.add(shard);
  }

  /** Every shard registered so far, sorted. */
  async shards(): Promise<ShardId[]> {
    const raw = await this.table.get(LEDGER_ITEM_KEYS.shards);
    return raw ? parseShardsItem(raw) : [];
  }

  /**
   * Registers a segment: the commit point of ingest. A replay writes the same item; a different
   * segment starting at the same sequence number (input re-batched differently, which the
   * event-source mapping never does) is refused loudly rather than silently replacing the first.
   */
  async register(segment: SegmentItem): Promise<void> {
    try {
      await this.table.dynamo.send(
        new PutCommand({
          TableName: this.table.name,
          Item: segmentItem(segment),
          ConditionExpression: 'attribute_not_exists(pk) OR (lastSeq = :last AND #records = :records)',
          ExpressionAttributeNames: { '#records': 'records' },
          ExpressionAttributeValues: { ':last': segment.lastSeq, ':records': segment.records },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      throw new InvalidInputError(
        `shard ${segment.shard}: a segment starting at ${segment.firstSeq} is already registered with other records`,
        {},
        error,
      );
    }
  }

  /**
   * Segments of a shard with sort keys in `(after, upTo]`, in sequence order. A segment in a
   * format this code does not read is refused before anything is sealed with it.
   */
  async between(shard: ShardId, after: string | undefined, upTo?: string): Promise<SegmentItem[]> {
    const items: SegmentItem[] = [];
    let start: Record<string, unknown> | undefined;
    // Padded sequence numbers sort after '0'; DynamoDB rejects empty strings in key conditions.
    const low = after ?? '0';
    do {
      const out = await this.table.dynamo.send(
        new QueryCommand({
          TableName: this.table.name,
          KeyConditionExpression: upTo ? 'pk = :pk AND sk BETWEEN :low AND :high' : 'pk = :pk AND sk > :low',
          ExpressionAttributeValues: {
            ':pk': LEDGER_ITEM_KEYS.segmentPk(shard),
            ':low': low,
            ...(upTo ? { ':high': upTo } : {}),
          },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const raw of out.Items ?? []) {
        if (raw.sk === low) continue;
        const segment = parseSegmentItem(raw);
        if (segment.format !== DATA_FORMATS.segment) {
          throw new DataFormatError(
            `segment ${segment.key} is in ${segment.format}; this code reads ${DATA_FORMATS.segment}`,
          );
        }
        items.push(segment);
      }
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Deletes a segment's item (an expired batch's; the segment object has its own retention). */
  async delete(segment: SegmentItem): Promise<void> {
    await this.table.delete(LEDGER_ITEM_KEYS.segment(segment.shard, segment.firstSeq));
  }

  /** The last sequence number of a shard's newest registered segment, if it has any. */
  async lastSeq(shard: ShardId): Promise<string | undefined> {
    const out = await this.table.dynamo.send(
      new QueryCommand({
        TableName: this.table.name,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': LEDGER_ITEM_KEYS.segmentPk(shard) },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const raw = out.Items?.[0];
    return raw ? parseSegmentItem(raw).lastSeq : undefined;
  }
}
