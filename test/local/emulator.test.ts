import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  CreateStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordsCommand,
  waitUntilStreamExists,
} from '@aws-sdk/client-kinesis';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../lib/aws';
import { startEmulator, type Emulator } from '../../local/emulator';

/** Runs `task(0..count-1)` with at most `concurrency` in flight. */
async function forEachConcurrently(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < count; index = next++) await task(index);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function getBytes(s3: S3Client, bucket: string, key: string, range?: string): Promise<Buffer> {
  const object = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: key, ...(range ? { Range: range } : {}) }),
  );
  if (object.Body === undefined) throw new Error(`GetObject ${bucket}/${key} returned no body`);
  return Buffer.from(await object.Body.transformToByteArray());
}

/** Resolves with the connection error of a plain GET, or with the status if something answered. */
function probe(endpoint: string): Promise<NodeJS.ErrnoException | number> {
  return new Promise((resolve) => {
    const req = request(endpoint, { method: 'GET', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error));
    req.end();
  });
}

describe('startEmulator', () => {
  let emulator: Emulator;
  let clients: AwsClients;
  let startupMs: number;

  beforeAll(async () => {
    const started = performance.now();
    emulator = await startEmulator();
    startupMs = performance.now() - started;
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

  it('starts quickly on one loopback endpoint', () => {
    expect(emulator.endpoint).toBe(`http://127.0.0.1:${emulator.port}`);
    expect(emulator.port).toBeGreaterThan(0);
    expect(startupMs).toBeLessThan(5_000);
  });

  it('serves DynamoDB: conditional puts, ADD to a number set, Query', async () => {
    // Arrange
    const TableName = 'items';
    await clients.dynamo.send(
      new CreateTableCommand({
        TableName,
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    const put = new PutCommand({
      TableName,
      Item: { pk: 'job#1', sk: 'batch#0001', state: 'open' },
      ConditionExpression: 'attribute_not_exists(pk)',
    });

    // Act
    await clients.dynamo.send(put);
    const secondPutError = await clients.dynamo.send(put).then(
      () => undefined,
      (error: unknown) => error,
    );
    const updated = await clients.dynamo.send(
      new UpdateCommand({
        TableName,
        Key: { pk: 'job#1', sk: 'batch#0001' },
        UpdateExpression: 'ADD shards :shards',
        ExpressionAttributeValues: { ':shards': new Set([1, 2]) },
        ReturnValues: 'ALL_NEW',
      }),
    );
    await clients.dynamo.send(new PutCommand({ TableName, Item: { pk: 'job#1', sk: 'batch#0002' } }));
    const queried = await clients.dynamo.send(
      new QueryCommand({
        TableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': 'job#1', ':prefix': 'batch#' },
      }),
    );

    // Assert
    expect(secondPutError).toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect(updated.Attributes).toEqual({
      pk: 'job#1',
      sk: 'batch#0001',
      state: 'open',
      shards: new Set([1, 2]),
    });
    expect(queried.Items?.map((item): unknown => item.sk)).toEqual(['batch#0001', 'batch#0002']);
  });

  it('serves Kinesis: PutRecords into 2 shards, read back from TRIM_HORIZON', async () => {
    // Arrange
    const StreamName = 'events';
    const { kinesis } = clients;
    await kinesis.send(new CreateStreamCommand({ StreamName, ShardCount: 2 }));
    await waitUntilStreamExists({ client: kinesis, maxWaitTime: 10, minDelay: 1 }, { StreamName });
    const sent = Array.from({ length: 20 }, (_, i) => `record-${i}`);

    // Act
    const putResult = await kinesis.send(
      new PutRecordsCommand({
        StreamName,
        Records: sent.map((data, i) => ({ Data: Buffer.from(data), PartitionKey: `key-${i}` })),
      }),
    );
    const { Shards = [] } = await kinesis.send(new ListShardsCommand({ StreamName }));
    const received: string[] = [];
    for (const shard of Shards) {
      const { ShardIterator } = await kinesis.send(
        new GetShardIteratorCommand({
          StreamName,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      const { Records = [] } = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
      received.push(...Records.map((record) => Buffer.from(record.Data ?? []).toString('utf8')));
    }

    // Assert
    expect(putResult.FailedRecordCount).toBe(0);
    expect(Shards).toHaveLength(2);
    expect(received.sort()).toEqual([...sent].sort());
  });

  it('serves S3: objects, ranged reads, 1 MB bodies', async () => {
    // Arrange
    const Bucket = 'objects';
    const { s3 } = clients;
    const large = randomBytes(1024 * 1024);
    await s3.send(new CreateBucketCommand({ Bucket }));

    // Act
    await s3.send(new PutObjectCommand({ Bucket, Key: 'small.txt', Body: 'hello, world' }));
    await s3.send(new PutObjectCommand({ Bucket, Key: 'dir/large.bin', Body: large }));
    const small = await getBytes(s3, Bucket, 'small.txt');
    const ranged = await getBytes(s3, Bucket, 'small.txt', 'bytes=2-5');
    const largeBack = await getBytes(s3, Bucket, 'dir/large.bin');

    // Assert
    expect(small.toString('utf8')).toBe('hello, world');
    expect(ranged.toString('utf8')).toBe('llo,');
    expect(largeBack.length).toBe(large.length);
    expect(largeBack.equals(large)).toBe(true);
  });

  it('pages ListObjectsV2 past 1,000 keys with continuation tokens', async () => {
    // Arrange
    const Bucket = 'many-keys';
    const { s3 } = clients;
    const keyOf = (i: number): string => `part/${String(i).padStart(5, '0')}.json`;
    const expected = Array.from({ length: 1_050 }, (_, i) => keyOf(i));
    await s3.send(new CreateBucketCommand({ Bucket }));
    await forEachConcurrently(expected.length, 16, (i) =>
      s3.send(new PutObjectCommand({ Bucket, Key: keyOf(i), Body: `{"i":${i}}` })),
    );

    // Act
    const listed: string[] = [];
    let pages = 0;
    let ContinuationToken: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket, ContinuationToken }));
      pages += 1;
      listed.push(...(page.Contents ?? []).map((object) => object.Key ?? ''));
      ContinuationToken = page.NextContinuationToken;
    } while (ContinuationToken !== undefined);

    // Assert
    expect(pages).toBe(2);
    expect(listed).toHaveLength(1_050);
    expect(new Set(listed).size).toBe(1_050);
    expect([...listed].sort()).toEqual(expected);
  });

  it('refuses connections after stop()', async () => {
    // Arrange
    const { endpoint } = emulator;
    expect(await probe(endpoint)).toBeTypeOf('number');

    // Act
    await emulator.stop();
    const outcome = await probe(endpoint);

    // Assert
    expect(outcome).toMatchObject({ code: 'ECONNREFUSED' });
  });
});
