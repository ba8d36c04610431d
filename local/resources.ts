import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AwsClients } from '../lib/aws';
import { ConfigError } from '../lib/errors';
import type { RunNames } from './run-names';

/**
 * Checks of a new stream's status before the run gives up on it: with the pause below, a stream
 * has about five seconds to become active, while a short pause keeps an emulator's instant
 * streams from slowing every start.
 */
const STREAM_ACTIVE_CHECKS = 200;

/** The pause between two checks of a new stream's status. */
const STREAM_ACTIVE_CHECK_PAUSE_MS = 25;

/**
 * The resources a local run created (or, for a named run, found).
 *
 * @example
 * const { bucket, table, stream }: LocalResources = run.resources;
 * console.log(`input goes to ${stream}, output to s3://${bucket}, the ledger is ${table}`);
 */
export interface LocalResources {
  readonly endpoint: string;
  readonly bucket: string;
  readonly table: string;
  /** The stream of the pipeline's source. */
  readonly stream: string;
  /** Every source's stream: source stream name to the stream the run created for it. */
  readonly streams: Readonly<Record<string, string>>;
  /** True when the run started its own emulator (and stops it at the end). */
  readonly embedded: boolean;
  /** The deployed name of every function, by function id. */
  readonly functions: Readonly<Record<string, string>>;
  /** True when a named run found its resources and continued from them. */
  readonly resumed: boolean;
}

/**
 * How to provision a run's resources.
 *
 * @example
 * const options: ProvisionOptions = { endpoint, shards: 2, resume: true };
 */
export interface ProvisionOptions {
  /** Where the resources are, named in errors. */
  readonly endpoint: string;
  /** Shards of each stream created. */
  readonly shards: number;
  /** A named run: continue with its resources if they all exist. */
  readonly resume: boolean;
  /** Only an existing run will do: create nothing (a reader of a run another process drives). */
  readonly existingOnly?: boolean;
}

/**
 * Creates what the CDK construct creates on AWS: the bucket, the ledger table and the streams,
 * waiting until the streams are active. A run that may resume and finds all of them continues
 * with them (true); finding only some is an error, as the ledger would not match the data.
 *
 * @example
 * const resumed = await provisionResources(clients, names, { endpoint, shards: 2, resume: false });
 */
export async function provisionResources(
  clients: AwsClients,
  names: RunNames,
  options: ProvisionOptions,
): Promise<boolean> {
  if (options.resume) {
    const found = await existingResources(clients, names);
    const all = found.bucket && found.table && found.streams.every(Boolean);
    if (all) return true;
    if (found.bucket || found.table || found.streams.some(Boolean)) {
      throw new ConfigError(
        `run resources are incomplete on ${options.endpoint} (bucket ${found.bucket}, table ${found.table}, ` +
          `streams ${found.streams.join(',')}): delete them or use another run name`,
      );
    }
  }
  if (options.existingOnly) {
    throw new ConfigError(
      `no run with bucket ${names.bucket} on ${options.endpoint}: start it with sluice local run --run <name>`,
    );
  }
  await clients.s3.send(new CreateBucketCommand({ Bucket: names.bucket }));
  await clients.dynamo.send(
    new CreateTableCommand({
      TableName: names.table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
  const streams = Object.values(names.streams);
  for (const stream of streams) {
    await clients.kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: options.shards }));
  }
  for (const stream of streams) {
    let active = false;
    for (let i = 0; i < STREAM_ACTIVE_CHECKS && !active; i++) {
      const out = await clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
      active = out.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
      if (!active) await sleep(STREAM_ACTIVE_CHECK_PAUSE_MS);
    }
    if (!active) throw new Error(`stream ${stream} did not become active`);
  }
  return false;
}

/** Which of a run's resources exist already. */
async function existingResources(
  clients: AwsClients,
  names: RunNames,
): Promise<{ bucket: boolean; table: boolean; streams: boolean[] }> {
  const exists = (request: Promise<unknown>): Promise<boolean> =>
    request.then(
      () => true,
      (error: unknown) => {
        const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (
          e.name === 'ResourceNotFoundException' ||
          e.name === 'NotFound' ||
          e.$metadata?.httpStatusCode === 404
        )
          return false;
        throw error;
      },
    );
  const [bucket, table, ...streams] = await Promise.all([
    exists(clients.s3.send(new HeadBucketCommand({ Bucket: names.bucket }))),
    exists(clients.dynamo.send(new DescribeTableCommand({ TableName: names.table }))),
    ...Object.values(names.streams).map((stream) =>
      exists(clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }))),
    ),
  ]);
  return { bucket, table, streams };
}
