import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type KinesisClient,
  type _Record,
} from '@aws-sdk/client-kinesis';
import type { KinesisEvent, KinesisEventRecord } from '../lib/runtime/events';
import type { FaultInjector } from './faults';

/** Options of the local poller. */
export interface PollerOptions {
  /** Records per ingest invocation, like the event-source mapping's batch size. @default 500 */
  readonly batchSize?: number;
  /**
   * Attempts per delivery before a poll gives up on it for now (the mapping would retry until the
   * records expire). The same batch is delivered again on the next poll. @default 20
   */
  readonly maxAttempts?: number;
  readonly region?: string;
  /** Where a shard's reading starts: after this sequence number, or at the trim horizon. */
  readonly startAfter?: (shardId: string) => Promise<string | undefined>;
}

interface ShardState {
  readonly shardId: string;
  iterator: string | undefined;
  /**
   * A batch read but not yet delivered, and the iterator after it. It is delivered again, the very
   * same records, until it succeeds: a batch cut differently would start a segment at the same
   * sequence number with other records, which the ledger refuses.
   */
  pending?: { readonly event: KinesisEvent; readonly next: string | undefined };
}

/**
 * Stands in for Lambda's Kinesis event-source mapping: reads each shard in order from the trim
 * horizon, and delivers batches to the ingest handler synchronously, one at a time per shard,
 * retrying a failed batch until it succeeds (the mapping's at-least-once, in-order delivery).
 *
 * @example
 * const poller = new LocalPoller(kinesis, 'lines', (event) => runtime.ingest(event), faults);
 * await poller.drain();
 */
export class LocalPoller {
  private shards: ShardState[] | undefined;
  private passes: Promise<number> = Promise.resolve(0);
  delivered = 0;

  constructor(
    private readonly kinesis: KinesisClient,
    private readonly stream: string,
    private readonly ingest: (event: KinesisEvent) => Promise<void>,
    private readonly faults: FaultInjector,
    private readonly options: PollerOptions = {},
  ) {}

  private async shardStates(): Promise<ShardState[]> {
    if (this.shards) return this.shards;
    const out = await this.kinesis.send(new ListShardsCommand({ StreamName: this.stream }));
    this.shards = await Promise.all(
      (out.Shards ?? []).map(async (shard) => {
        const after = await this.options.startAfter?.(shard.ShardId as string);
        const it = await this.kinesis.send(
          new GetShardIteratorCommand({
            StreamName: this.stream,
            ShardId: shard.ShardId,
            ...(after
              ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after }
              : { ShardIteratorType: 'TRIM_HORIZON' }),
          }),
        );
        return { shardId: shard.ShardId as string, iterator: it.ShardIterator };
      }),
    );
    return this.shards;
  }

  /**
   * One GetRecords per shard, each batch delivered; returns how many records were delivered.
   * Passes never overlap: two readers of one shard iterator would deliver overlapping batches cut
   * differently, which the event-source mapping never does (one batch per shard at a time).
   */
  pollOnce(): Promise<number> {
    const pass = this.passes.then(async () => {
      const shards = await this.shardStates();
      const counts = await Promise.all(shards.map((shard) => this.pollShard(shard)));
      return counts.reduce((a, b) => a + b, 0);
    });
    this.passes = pass.catch(() => 0);
    return pass;
  }

  /** Polls until a round finds nothing new on any shard. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.pollOnce();
      if (n === 0) return total;
      total += n;
    }
  }

  private async pollShard(shard: ShardState): Promise<number> {
    if (!shard.pending) {
      if (!shard.iterator) return 0;
      const out = await this.kinesis.send(
        new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: this.options.batchSize ?? 500 }),
      );
      const records = out.Records ?? [];
      if (records.length === 0) {
        shard.iterator = out.NextShardIterator;
        return 0;
      }
      shard.pending = { event: this.toEvent(shard.shardId, records), next: out.NextShardIterator };
    }
    const { event, next } = shard.pending;
    await this.deliver(event);
    // The iterator only moves once the batch is delivered.
    shard.pending = undefined;
    shard.iterator = next;
    this.delivered += event.Records.length;
    return event.Records.length;
  }

  private toEvent(shardId: string, records: readonly _Record[]): KinesisEvent {
    const region = this.options.region ?? 'us-east-1';
    const Records: KinesisEventRecord[] = records.map((r) => ({
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventName: 'aws:kinesis:record',
      awsRegion: region,
      eventID: `${shardId}:${r.SequenceNumber as string}`,
      eventSourceARN: `arn:aws:kinesis:${region}:000000000000:stream/${this.stream}`,
      kinesis: {
        kinesisSchemaVersion: '1.0',
        sequenceNumber: r.SequenceNumber as string,
        partitionKey: r.PartitionKey as string,
        data: Buffer.from(r.Data ?? new Uint8Array()).toString('base64'),
        approximateArrivalTimestamp: (r.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000,
      },
    }));
    return { Records };
  }

  private async deliver(event: KinesisEvent): Promise<void> {
    const payload = JSON.stringify(event);
    const maxAttempts = this.options.maxAttempts ?? 20;
    for (let attempt = 1; ; attempt++) {
      try {
        const copies = this.faults.duplicate ? 2 : 1;
        await Promise.all(
          Array.from({ length: copies }, () =>
            this.faults.run(() => this.ingest(JSON.parse(payload) as KinesisEvent)),
          ),
        );
        return;
      } catch (error) {
        if (attempt >= maxAttempts) throw error;
      }
    }
  }
}
