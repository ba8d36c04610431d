import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type KinesisClient,
  type Shard,
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
  /** Read to its end after a split or a merge: it has no iterator any more. */
  closed?: boolean;
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
  /** The shards being read (or read to their end), by id. */
  private readonly shards = new Map<string, ShardState>();
  /** Set when the shards must be listed again: at the start, and when one was read to its end. */
  private relist = true;
  private passes: Promise<number> = Promise.resolve(0);
  delivered = 0;

  constructor(
    private readonly kinesis: KinesisClient,
    private readonly stream: string,
    private readonly ingest: (event: KinesisEvent) => Promise<void>,
    private readonly faults: FaultInjector,
    private readonly options: PollerOptions = {},
  ) {}

  /**
   * The shards to read. After a split or a merge, a child shard is read only once its parents have
   * been read to their end, as the event-source mapping orders them, so every record of a key
   * reaches ingest after the records of that key in the parent. A parent that is no longer listed
   * has expired: there is nothing of it left to wait for.
   */
  private async shardStates(): Promise<ShardState[]> {
    if (this.relist) {
      this.relist = false;
      const listed: Shard[] = [];
      let token: string | undefined;
      do {
        const out = await this.kinesis.send(
          new ListShardsCommand(token ? { NextToken: token } : { StreamName: this.stream }),
        );
        listed.push(...(out.Shards ?? []));
        token = out.NextToken;
      } while (token);
      const ids = new Set(listed.map((shard) => shard.ShardId));
      for (const shard of listed) {
        const id = shard.ShardId as string;
        if (this.shards.has(id)) continue;
        const parents = [shard.ParentShardId, shard.AdjacentParentShardId].filter(
          (parent): parent is string => parent !== undefined && ids.has(parent),
        );
        if (parents.some((parent) => this.shards.get(parent)?.closed !== true)) {
          // Listed again once a parent is read to its end.
          continue;
        }
        this.shards.set(id, { shardId: id, iterator: await this.iteratorOf(id) });
      }
    }
    return [...this.shards.values()].filter((shard) => shard.closed !== true);
  }

  private async iteratorOf(shardId: string): Promise<string | undefined> {
    const after = await this.options.startAfter?.(shardId);
    const it = await this.kinesis.send(
      new GetShardIteratorCommand({
        StreamName: this.stream,
        ShardId: shardId,
        ...(after
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after }
          : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    );
    return it.ShardIterator;
  }

  /** No next iterator: the shard is closed (split or merged) and read to its end. */
  private advance(shard: ShardState, next: string | undefined): void {
    shard.iterator = next;
    if (next === undefined) {
      shard.closed = true;
      this.relist = true;
    }
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
      // A shard read to its end may have children to read.
      if (n === 0 && !this.relist) return total;
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
        this.advance(shard, out.NextShardIterator);
        return 0;
      }
      shard.pending = { event: this.toEvent(shard.shardId, records), next: out.NextShardIterator };
    }
    const { event, next } = shard.pending;
    await this.deliver(event);
    // The iterator only moves once the batch is delivered.
    shard.pending = undefined;
    this.advance(shard, next);
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
