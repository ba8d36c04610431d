import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { S3_PREFIXES } from '../lib/storage/keys';
import { acknowledgeKeyedStream, acknowledgeTerminalQueue, acknowledgeUnloggedBucket } from './nag';

/**
 * How the data in every store the construct creates is kept: retained or removed with the stack
 * (the resolved removal policy), and encrypted with the customer-managed key if the construct was
 * given one.
 *
 * @example
 * const atRest: DataAtRest = { removalPolicy: RemovalPolicy.RETAIN, encryptionKey: key };
 */
export interface DataAtRest {
  readonly removalPolicy: RemovalPolicy;
  readonly encryptionKey?: kms.IKey;
}

/**
 * The construct props the created bucket is made from.
 * Part of `SluicePipelineProps`, which extends it; each prop says its default.
 *
 * @example
 * const bucket = createBucket(this, 'fixture-words', props, atRest);
 */
export interface BucketProps {
  /**
   * Where the created bucket writes S3 server access logs.
   * @default - no server access logs (see docs/deploy.md for why, and CloudTrail data events)
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * Key prefix of the server access logs in `accessLogsBucket`.
   * @default `sluice/<pipeline name>/`
   */
  readonly accessLogsPrefix?: string;
  /**
   * How long input segments (the write-ahead copy of the stream) are kept. Batches can be
   * replayed from S3 for this long.
   * @default Duration.days(30)
   */
  readonly segmentRetention?: Duration;
  /**
   * How long shuffle files are kept. They are only read while their batch runs.
   * @default Duration.days(7)
   */
  readonly shuffleRetention?: Duration;
  /**
   * How long sealed batch manifests are kept.
   * @default Duration.days(90)
   */
  readonly manifestRetention?: Duration;
  /**
   * How long dead letters are kept.
   * @default Duration.days(90)
   */
  readonly deadLetterRetention?: Duration;
  /**
   * How long batch progress records (what each batch did and cost) are kept.
   * @default Duration.days(90)
   */
  readonly progressRetention?: Duration;
  /**
   * How long the batch outputs (the `s3Jsonl` sink's objects, under its prefix) are kept. They are
   * the pipeline's results, so by default nothing expires them; set it when something downstream
   * copies them out, or when only recent batches matter.
   * @default - kept until deleted
   */
  readonly outputRetention?: Duration;
}

/**
 * The construct props the streams are made from or taken from.
 * Part of `SluicePipelineProps`, which extends it; each prop says its default.
 *
 * @example
 * const streams = createStreams(this, deployment.streams, { shardCount: 2 }, atRest);
 */
export interface StreamProps {
  /**
   * An existing Kinesis stream to read instead of creating one named after the pipeline's source.
   * @default - a new stream named `pipeline.source.spec.stream`, encrypted with the `aws/kinesis` key
   */
  readonly stream?: kinesis.IStream;
  /**
   * Existing streams for a join's other source, by that source's stream name.
   * @default - new streams named after the sources
   */
  readonly streams?: Readonly<Record<string, kinesis.IStream>>;
  /**
   * Shards of the created stream.
   * @default 1
   */
  readonly shardCount?: number;
  /**
   * Retention of the created stream.
   * @default Duration.hours(24)
   */
  readonly streamRetention?: Duration;
}

/**
 * The pipeline bucket: segments, manifests, shuffle files, dead letters and output. Private,
 * TLS-only, encrypted, and each runtime prefix expires after its retention.
 *
 * @example
 * const bucket = props.bucket ?? createBucket(this, pipeline.name, props, atRest, outputPrefix(plan.spec));
 */
export function createBucket(
  scope: Construct,
  pipelineName: string,
  props: BucketProps,
  atRest: DataAtRest,
  outputs: string,
): s3.Bucket {
  const keep = (duration: Duration | undefined, fallback: number): Duration =>
    duration ?? Duration.days(fallback);
  const key = atRest.encryptionKey;
  const bucket = new s3.Bucket(scope, 'Bucket', {
    // A Bucket Key: S3 asks KMS for a data key per bucket and time window, not per object (the
    // pipeline writes hundreds of objects per batch).
    ...(key
      ? { encryption: s3.BucketEncryption.KMS, encryptionKey: key, bucketKeyEnabled: true }
      : { encryption: s3.BucketEncryption.S3_MANAGED }),
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    removalPolicy: atRest.removalPolicy,
    ...(props.accessLogsBucket
      ? {
          serverAccessLogsBucket: props.accessLogsBucket,
          serverAccessLogsPrefix: props.accessLogsPrefix ?? `sluice/${pipelineName}/`,
        }
      : {}),
    lifecycleRules: [
      { id: 'segments', prefix: S3_PREFIXES.segments, expiration: keep(props.segmentRetention, 30) },
      { id: 'shuffle', prefix: S3_PREFIXES.shuffle, expiration: keep(props.shuffleRetention, 7) },
      {
        id: 'manifests',
        prefix: S3_PREFIXES.manifests,
        expiration: keep(props.manifestRetention, 90),
      },
      {
        id: 'dead-letter',
        prefix: S3_PREFIXES.deadLetter,
        expiration: keep(props.deadLetterRetention, 90),
      },
      { id: 'progress', prefix: S3_PREFIXES.progress, expiration: keep(props.progressRetention, 90) },
      ...(props.outputRetention
        ? [{ id: 'output', prefix: `${outputs}/`, expiration: props.outputRetention }]
        : []),
      { id: 'incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
    ],
  });
  if (!props.accessLogsBucket) acknowledgeUnloggedBucket(bucket);
  return bucket;
}

/**
 * The ledger table: segments, batches and task reports (`pk`/`sk` strings), on demand, with
 * point-in-time recovery.
 *
 * @example
 * const table = createLedger(this, atRest);
 */
export function createLedger(scope: Construct, atRest: DataAtRest): dynamodb.Table {
  const key = atRest.encryptionKey;
  return new dynamodb.Table(scope, 'Ledger', {
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    removalPolicy: atRest.removalPolicy,
    // Without a key: DynamoDB's default, an AWS owned key.
    ...(key ? { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: key } : {}),
  });
}

/**
 * One stream per source, by the source's stream name: the pipeline's own first (`props.stream`),
 * then a join's other source if it reads another stream (`props.streams`); a new stream for each one
 * not given.
 *
 * @example
 * const streams = createStreams(this, deployment.streams, props, atRest);
 */
export function createStreams(
  scope: Construct,
  names: readonly string[],
  props: StreamProps,
  atRest: DataAtRest,
): Readonly<Record<string, kinesis.IStream>> {
  const streams: Record<string, kinesis.IStream> = {};
  names.forEach((name, i) => {
    const given = i === 0 ? props.stream : props.streams?.[name];
    streams[name] = given ?? createStream(scope, name, i === 0 ? 'Stream' : `Stream${i}`, props, atRest);
  });
  return streams;
}

/**
 * The stream of one source, by its stream name.
 *
 * @example
 * const input = streamOf(streams, pipeline.source.spec.stream);
 */
export function streamOf(
  streams: Readonly<Record<string, kinesis.IStream>>,
  source: string,
): kinesis.IStream {
  const stream = streams[source];
  if (!stream) throw new Error(`no stream for source '${source}'`);
  return stream;
}

/**
 * Where invocations that exhausted their retries are recorded: failed asynchronous invocations,
 * event-source mapping batches and schedule deliveries.
 *
 * @example
 * const failureQueue = createFailureQueue(this, atRest);
 */
export function createFailureQueue(scope: Construct, atRest: DataAtRest): sqs.Queue {
  const key = atRest.encryptionKey;
  const queue = new sqs.Queue(scope, 'Failures', {
    ...(key
      ? { encryption: sqs.QueueEncryption.KMS, encryptionMasterKey: key }
      : { encryption: sqs.QueueEncryption.SQS_MANAGED }),
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
    // Its messages are the only record of invocations that gave up: kept like the data.
    removalPolicy: atRest.removalPolicy,
  });
  acknowledgeTerminalQueue(queue);
  return queue;
}

function createStream(
  scope: Construct,
  name: string,
  constructId: string,
  props: StreamProps,
  atRest: DataAtRest,
): kinesis.Stream {
  const key = atRest.encryptionKey;
  const stream = new kinesis.Stream(scope, constructId, {
    streamName: name,
    shardCount: props.shardCount ?? 1,
    retentionPeriod: props.streamRetention ?? Duration.hours(24),
    ...(key
      ? { encryption: kinesis.StreamEncryption.KMS, encryptionKey: key }
      : { encryption: kinesis.StreamEncryption.MANAGED }),
    removalPolicy: atRest.removalPolicy,
  });
  if (key) acknowledgeKeyedStream(stream);
  return stream;
}
