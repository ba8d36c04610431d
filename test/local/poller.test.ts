import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../lib/aws';
import type { KinesisEvent } from '../../lib/runtime/events';
import { startEmulator, type Emulator } from '../../local/emulator';
import { FaultInjector } from '../../local/faults';
import { LocalPoller } from '../../local/poller';

/**
 * The local stand-in for the event-source mapping: in order, and a batch that could not be
 * delivered is delivered again whole (the very same records), however long it takes, so ingest
 * never sees one shard's records cut two ways.
 */
describe('the local poller', () => {
  let emulator: Emulator;
  let clients: AwsClients;

  beforeAll(async () => {
    emulator = await startEmulator();
    clients = createAwsClients({
      endpoint: emulator.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
  });
  afterAll(async () => {
    destroyAwsClients(clients);
    await emulator.stop();
  });

  async function stream(name: string): Promise<void> {
    await clients.kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }));
    for (;;) {
      const out = await clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
      if (out.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async function put(name: string, records: readonly string[]): Promise<void> {
    await clients.kinesis.send(
      new PutRecordsCommand({
        StreamName: name,
        Records: records.map((r) => ({ Data: Buffer.from(r), PartitionKey: r })),
      }),
    );
  }

  const sequences = (event: KinesisEvent): string[] => event.Records.map((r) => r.kinesis.sequenceNumber);

  it('after giving up on a batch, delivers the same batch again, not one cut anew', async () => {
    // Arrange: ingest fails three deliveries in a row; the poller gives up after two attempts.
    await stream('redelivery');
    const attempts: KinesisEvent[] = [];
    let failures = 3;
    const poller = new LocalPoller(
      clients.kinesis,
      'redelivery',
      (event) => {
        attempts.push(event);
        return failures-- > 0 ? Promise.reject(new Error('ingest is down')) : Promise.resolve();
      },
      new FaultInjector(),
      { maxAttempts: 2 },
    );
    await put('redelivery', ['a', 'b']);

    // Act: the first poll gives up; more records arrive before the next.
    const first = poller.pollOnce();
    await expect(first).rejects.toThrow('ingest is down');
    await put('redelivery', ['c']);
    const delivered = await poller.drain();

    // Assert: every attempt of the first batch held exactly a and b; c came after, on its own.
    const [firstSeqs] = attempts.map(sequences);
    expect(attempts.slice(0, 4).map(sequences)).toEqual([firstSeqs, firstSeqs, firstSeqs, firstSeqs]);
    expect(attempts.slice(0, 4).map((e) => e.Records.length)).toEqual([2, 2, 2, 2]);
    expect(attempts.slice(4).flatMap(sequences)).toHaveLength(1);
    expect(delivered).toBe(3);
  });

  it('starts after a given sequence number (a continued run reads on from what was ingested)', async () => {
    // Arrange
    await stream('continued');
    await put('continued', ['a', 'b', 'c']);
    const all: KinesisEvent[] = [];
    const reader = new LocalPoller(
      clients.kinesis,
      'continued',
      (e) => {
        all.push(e);
        return Promise.resolve();
      },
      new FaultInjector(),
    );
    await reader.drain();
    const afterB = all.flatMap(sequences)[1];
    const seen: KinesisEvent[] = [];
    const continued = new LocalPoller(
      clients.kinesis,
      'continued',
      (event) => {
        seen.push(event);
        return Promise.resolve();
      },
      new FaultInjector(),
      { startAfter: () => Promise.resolve(afterB) },
    );

    // Act
    await continued.drain();

    // Assert
    expect(
      seen.flatMap((e) => e.Records.map((r) => Buffer.from(r.kinesis.data, 'base64').toString())),
    ).toEqual(['c']);
  });
});
