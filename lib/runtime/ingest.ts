import { DATA_FORMATS } from '../encoding/formats';
import { encodeSegment, formatBlocks, type InputRecord } from '../encoding/segment';
import { InvalidInputError } from '../errors';
import { shardId, type ShardId } from '../ids';
import { sourcesOf } from '../plan';
import { segmentKey } from '../storage/keys';
import { usageBetween } from '../cost/usage';
import type { RuntimeContext } from './context';
import type { KinesisEvent } from './events';
import { wakeCoordinator } from './coordinator';

/** What one ingest invocation wrote. */
export interface IngestResult {
  readonly segments: readonly { readonly shard: ShardId; readonly key: string; readonly records: number }[];
}

/**
 * The shard a record came from, qualified by the pipeline's name for its stream:
 * `<source stream>/shardId-000000000000`. The event-source mapping names the shard in the event id
 * (`shardId-...:<sequence number>`) and the stream in the source ARN.
 */
function shardOf(ctx: RuntimeContext, record: KinesisEvent['Records'][number]): ShardId {
  const colon = record.eventID.indexOf(':');
  if (colon <= 0) throw new InvalidInputError(`event id '${record.eventID}' does not name a shard`);
  const stream = record.eventSourceARN.slice(record.eventSourceARN.lastIndexOf('/') + 1);
  return shardId(`${sourceOfStream(ctx, stream)}/${record.eventID.slice(0, colon)}`);
}

/**
 * The source a deployed stream feeds: as configured (deployments may name streams freely), else the
 * source with that stream name, else the pipeline's only source.
 */
function sourceOfStream(ctx: RuntimeContext, stream: string): string {
  const configured = ctx.config.streams?.[stream];
  if (configured) return configured;
  const sources = sourcesOf(ctx.pipeline, ctx.plan).map((s) => s.spec.stream);
  if (sources.includes(stream)) return stream;
  if (sources.length === 1) return sources[0] as string;
  throw new InvalidInputError(
    `stream '${stream}' is not one of this pipeline's sources (${sources.join(', ')})`,
  );
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
    const shard = shardOf(ctx, record);
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
  // Each segment carries what writing it used: the invocation's use since the previous segment.
  let used = ctx.meter?.current();
  for (const [shard, records] of byShard) {
    // The mapping delivers in order, but sorting makes the segment a function of its records alone.
    records.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : BigInt(a.seq) > BigInt(b.seq) ? 1 : 0));
    const first = records[0] as InputRecord;
    const last = records[records.length - 1] as InputRecord;
    const { body, blocks } = encodeSegment(records);
    const key = segmentKey(shard, first.seq);
    await ctx.objects.put(key, body);
    await ctx.ledger.segments.registerShard(shard);
    const usedNow = ctx.meter?.current();
    await ctx.ledger.segments.register({
      shard,
      firstSeq: first.seq,
      lastSeq: last.seq,
      key,
      records: records.length,
      bytes: body.length,
      blocks: formatBlocks(blocks),
      format: DATA_FORMATS.segment,
      ...(usedNow ? { usage: usageBetween(usedNow, used) } : {}),
    });
    used = usedNow;
    written.push({ shard, key, records: records.length });
  }
  ctx.log.info('ingested', { segments: written.length, records: event.Records.length });
  if (written.length > 0) await wakeCoordinator(ctx);
  return { segments: written };
}
