import { encodeSegment, formatBlocks, type InputRecord } from '../encoding/segment';
import { InvalidInputError } from '../errors';
import { shardId, type ShardId } from '../ids';
import { segmentKey } from '../storage/keys';
import type { RuntimeContext } from './context';
import type { KinesisEvent } from './events';

/** What one ingest invocation wrote. */
export interface IngestResult {
  readonly segments: readonly { readonly shard: ShardId; readonly key: string; readonly records: number }[];
}

/** `shardId-000000000000:49590338...` is how the event-source mapping names a record's shard. */
function shardOf(eventId: string): ShardId {
  const colon = eventId.indexOf(':');
  if (colon <= 0) throw new InvalidInputError(`event id '${eventId}' does not name a shard`);
  return shardId(eventId.slice(0, colon));
}

/**
 * Writes the records of a Kinesis event ahead to S3 as one segment per shard, then registers each
 * segment in the ledger (the commit point). A redelivered event writes the same object to the same
 * key and the same ledger item: the segment is named by its first sequence number.
 *
 * @example
 * await ingest(ctx, parseKinesisEvent(event));
 */
export async function ingest(ctx: RuntimeContext, event: KinesisEvent): Promise<IngestResult> {
  const byShard = new Map<ShardId, InputRecord[]>();
  for (const record of event.Records) {
    const shard = shardOf(record.eventID);
    let records = byShard.get(shard);
    if (!records) byShard.set(shard, (records = []));
    records.push({
      seq: record.kinesis.sequenceNumber,
      // Lambda gives seconds with a fraction; segments keep whole milliseconds.
      arrivedAt: Math.round(record.kinesis.approximateArrivalTimestamp * 1000),
      data: Buffer.from(record.kinesis.data, 'base64'),
    });
  }
  const written: { shard: ShardId; key: string; records: number }[] = [];
  for (const [shard, records] of byShard) {
    // The mapping delivers in order, but sorting makes the segment a function of its records alone.
    records.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : BigInt(a.seq) > BigInt(b.seq) ? 1 : 0));
    const first = records[0] as InputRecord;
    const last = records[records.length - 1] as InputRecord;
    const { body, blocks } = encodeSegment(records);
    const key = segmentKey(shard, first.seq);
    await ctx.objects.put(key, body);
    await ctx.ledger.registerShard(shard);
    await ctx.ledger.registerSegment({
      shard,
      firstSeq: first.seq,
      lastSeq: last.seq,
      key,
      records: records.length,
      bytes: body.length,
      blocks: formatBlocks(blocks),
    });
    written.push({ shard, key, records: records.length });
  }
  ctx.log.info('ingested', { segments: written.length, records: event.Records.length });
  return { segments: written };
}
