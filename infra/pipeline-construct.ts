import * as fs from 'node:fs';
import * as path from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  describeDeployment,
  functionMemory,
  RESOURCES_OUTPUT_DESCRIPTION,
  type DeployedResources,
  type Deployment,
} from '../lib/deployment';
import type { AnyPipeline, Pipeline } from '../lib/dsl/pipeline';
import { outputPrefix, planPipeline, type Plan } from '../lib/plan';
import type { BATCH_METRICS } from '../lib/runtime/metric-names';
import { S3_PREFIXES } from '../lib/storage/keys';
import { checkPlanLock } from './plan-lock';
import {
  connectStreams,
  coordinatorTimeout,
  createFunctions,
  createSchedule,
  type FunctionProps,
  type IngestProps,
} from './functions';
import {
  batchMetric,
  createAlarms,
  createDashboard,
  type AlarmProps,
  type DashboardProps,
  type SluicePipelineAlarms,
} from './observability';
import {
  createBucket,
  createFailureQueue,
  createLedger,
  createStreams,
  streamOf,
  type BucketProps,
  type DataAtRest,
  type StreamProps,
} from './stores';

export type { SluicePipelineAlarms } from './observability';

/**
 * Properties of a {@link SluicePipeline}.
 *
 * @example
 * const props: SluicePipelineProps = {
 *   pipeline: wordcount,
 *   entry: 'src/pipeline.ts',
 *   segmentRetention: Duration.days(14),
 * };
 */
export interface SluicePipelineProps<T = unknown, Out = unknown>
  extends BucketProps, StreamProps, FunctionProps, IngestProps, AlarmProps, DashboardProps {
  /** The pipeline to deploy: the default export of `entry`. */
  readonly pipeline: Pipeline<T, Out>;
  /**
   * Path of the module whose default export is `pipeline` (say `src/pipeline.ts`), relative to the
   * working directory, which is the CDK app's. Every function bundle is built from it and the
   * stage modules it imports, with sluice's own code taken from the installed package.
   */
  readonly entry: string;
  /**
   * An existing bucket for segments, manifests, shuffle files, dead letters and output. Lifecycle
   * rules, encryption and the TLS-only policy are only set on a bucket the construct creates.
   * @default - a new encrypted, private, TLS-only bucket with lifecycle rules
   */
  readonly bucket?: s3.IBucket;
  /**
   * Timeout of the transform and reduce functions.
   * @default Duration.minutes(2)
   */
  readonly taskTimeout?: Duration;
  /**
   * A batch with no progress for this long is swept: its missing tasks are invoked again. Must be
   * longer than `taskTimeout`, or running tasks would be started twice.
   * @default Duration.minutes(5)
   */
  readonly sweepAfter?: Duration;
  /**
   * How long the ledger table keeps a batch's items (its batch item, task reports and segment
   * items) once the batch is complete or skipped, counted from its batch time; the coordinator's
   * sweep deletes them after that (one write unit per item). `sluice status` and `sluice batches`
   * see the batches kept; progress records in the bucket keep what each batch did for
   * `progressRetention`.
   * @default Duration.days(7)
   */
  readonly ledgerRetention?: Duration;
  /**
   * Removal policy of the stateful resources the construct creates: bucket, ledger table, streams,
   * failure queue, log groups.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * A customer-managed KMS key for data at rest: the created bucket (SSE-KMS with an S3 Bucket Key),
   * the ledger table, the created streams and the failure queue. Each function's role gets exactly
   * the use of the key its reads and writes need. The key's policy must let the account's IAM
   * policies grant its use (the default key policy does). Producers that put records into the
   * stream need `kms:GenerateDataKey` on it too; whoever reads the failure queue, `kms:Decrypt`.
   * @default - no customer-managed key: SSE-S3 for the bucket, an AWS owned key for the table,
   *   `aws/kinesis` for the streams, SSE-SQS for the queue
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Name of the CloudWatch dashboard.
   * @default `sluice-<pipeline name>`
   */
  readonly dashboardName?: string;
  /**
   * A file (relative to the CDK app's working directory; commit it) that keeps the plan last
   * synthesized. Synthesis fails, naming the change and the options, when the plan changes in a way
   * stored state or batches in flight cannot survive: a keyed stage's kind, window, timeout, the
   * keyed stages themselves, the batch interval of a pipeline that keeps state; and when a stateful
   * stage's partition count changes, unless `allowRescale`. Other changes (record-level stages,
   * sinks, stage code, a stateless keyed stage's partitions) roll forward and update the file.
   * @default - no check
   */
  readonly planLock?: string;
  /**
   * Let a stateful stage's partition count change: the first batch sealed with the new count
   * re-hashes the stage's state into the new partitions, once (every new partition reads the whole
   * old state that batch: one read of the state per new partition), and batches sealed before run
   * with the count they were sealed with. Only with `planLock`, which refuses the change otherwise.
   * @default false
   */
  readonly allowRescale?: boolean;
  /**
   * Synthesize a breaking plan change anyway: the pipeline was drained and its state cleared or
   * migrated. Only with `planLock`.
   * @default false
   */
  readonly allowBreakingChanges?: boolean;
}

/**
 * One sluice pipeline on AWS: a Kinesis stream feeding an ingest function, a coordinator on a
 * one-minute EventBridge Scheduler schedule, one Lambda function per phase of the plan (the transform
 * function, then one reduce function per keyed stage), the bucket and ledger table they share, a
 * failure queue, a dashboard and alarms. The functions, who invokes whom, each function's
 * environment and what each role may reach all come from {@link describeDeployment}, the same
 * description the local runtime enforces: each role reaches only the key prefixes, ledger items
 * (by partition key) and functions its function uses.
 *
 * @example
 * import wordcount from '../src/pipeline.js';
 *
 * const stack = new Stack(app, 'sluice-wordcount');
 * const sluice = new SluicePipeline(stack, 'Pipeline', { pipeline: wordcount, entry: 'src/pipeline.ts' });
 * sluice.functions['count']; // the reduce function of the 'count' stage
 */
export class SluicePipeline<T = unknown, Out = unknown> extends Construct {
  /** The plan the functions were built for. */
  readonly plan: Plan;
  /** What is deployed: the functions, their invocations, grants and environment. */
  readonly deployment: Deployment;
  /** Segments, manifests, shuffle files, dead letters and output. */
  readonly bucket: s3.IBucket;
  /** The ledger: segments, batches and task reports (`pk`/`sk` strings). */
  readonly table: dynamodb.Table;
  /** The input stream of the pipeline's source. */
  readonly stream: kinesis.IStream;
  /** Every source's stream, by the source's stream name (a join may read a second one). */
  readonly streams: Readonly<Record<string, kinesis.IStream>>;
  /** Writes stream records ahead to S3 segments. */
  readonly ingest: NodejsFunction;
  /** Seals batches and starts and sweeps their tasks. */
  readonly coordinator: NodejsFunction;
  /** The phase functions, by phase function id (`plan.phases[i].spec.function`). */
  readonly functions: Readonly<Record<string, NodejsFunction>>;
  /** Where invocations that exhausted their retries are recorded. */
  readonly failureQueue: sqs.Queue;
  /** The coordinator's one-minute tick. */
  readonly schedule: scheduler.Schedule;
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: SluicePipelineAlarms;
  /**
   * The stack output naming the pipeline's resources (`sluice.resources@1`), through which
   * `sluice status`, `sluice ui --stack` and `sluice cost --stack` find them.
   */
  readonly resourcesOutput: CfnOutput;

  /** Name of the pipeline, which its batch metrics are published under. */
  private readonly pipelineName: string;

  constructor(scope: Construct, id: string, props: SluicePipelineProps<T, Out>) {
    super(scope, id);
    // The record types matter to the stages' code, not to the resources around them.
    const pipeline = props.pipeline as AnyPipeline;
    this.pipelineName = pipeline.name;
    this.plan = planPipeline(pipeline);
    this.deployment = describeDeployment(pipeline, this.plan);
    const entry = checkEntry(props.entry);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const taskTimeout = props.taskTimeout ?? Duration.minutes(2);
    const sweepAfter = props.sweepAfter ?? Duration.minutes(5);
    if (sweepAfter.toMilliseconds() <= taskTimeout.toMilliseconds()) {
      throw new Error(
        `sweepAfter (${sweepAfter.toHumanString()}) must be longer than taskTimeout ` +
          `(${taskTimeout.toHumanString()}), or tasks still running would be started again`,
      );
    }
    checkOutputPrefix(outputPrefix(this.plan.spec));
    if (props.planLock !== undefined) {
      checkPlanLock(props.planLock, this.plan.spec, {
        allowBreakingChanges: props.allowBreakingChanges ?? false,
        allowRescale: props.allowRescale ?? false,
      });
    }
    const atRest: DataAtRest = { removalPolicy, encryptionKey: props.encryptionKey };

    this.bucket =
      props.bucket ?? createBucket(this, pipeline.name, props, atRest, outputPrefix(this.plan.spec));
    this.table = createLedger(this, atRest);
    this.streams = createStreams(this, this.deployment.streams, props, atRest);
    this.stream = streamOf(this.streams, pipeline.source.spec.stream);
    this.failureQueue = createFailureQueue(this, atRest);

    const { ingest, coordinator, phases } = createFunctions(
      this,
      {
        deployment: this.deployment,
        pipelineName: pipeline.name,
        entry,
        bucket: this.bucket,
        table: this.table,
        streams: this.streams,
        failureQueue: this.failureQueue,
        removalPolicy,
        taskTimeout,
        sweepAfter,
        ledgerRetention: props.ledgerRetention ?? Duration.days(7),
      },
      props,
    );
    this.functions = phases;
    this.coordinator = coordinator;
    this.ingest = ingest;
    this.schedule = createSchedule(this, pipeline.name, this.deployment, coordinator, this.failureQueue);
    connectStreams(ingest, this.streams, this.failureQueue, {
      ...props,
      batchIntervalMs: props.pipeline.batchIntervalMs,
    });

    this.resourcesOutput = new CfnOutput(this, 'Resources', {
      description: RESOURCES_OUTPUT_DESCRIPTION,
      value: Stack.of(this).toJsonString({
        kind: 'sluice.resources@1',
        pipeline: pipeline.name,
        bucket: this.bucket.bucketName,
        table: this.table.tableName,
        streams: Object.fromEntries(
          Object.entries(this.streams).map(([source, stream]) => [source, stream.streamName]),
        ),
        functions: Object.fromEntries([
          ...Object.entries(phases).map(([fnId, fn]) => [fnId, fn.functionName]),
          ['coordinator', coordinator.functionName],
          ['ingest', ingest.functionName],
        ]),
        memoryMb: functionMemory(props),
        coordinatorTimeoutMs: coordinatorTimeout(props).toMilliseconds(),
        coordinatorWaits: props.coordinatorWaits ?? true,
      } satisfies Record<keyof DeployedResources, unknown>),
    });

    this.alarms = createAlarms(this, pipeline, { failureQueue: this.failureQueue, ingest }, props);
    this.dashboard = createDashboard(
      this,
      pipeline.name,
      {
        stream: this.stream,
        failureQueue: this.failureQueue,
        ingest,
        coordinator,
        phases,
        schedulingDelay: this.alarms.schedulingDelay,
        ingestLag: this.alarms.ingestLag,
      },
      props,
    );
  }

  /**
   * A batch metric of this pipeline, as the functions publish it.
   *
   * @example
   * sluice.metricBatch('inputRecords', { statistic: 'Sum', period: Duration.minutes(5) });
   */
  metricBatch(name: keyof typeof BATCH_METRICS, options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return batchMetric(this.pipelineName, name, options);
  }
}

/** Resolves and checks the pipeline module path; esbuild gets it inside a shell command. */
function checkEntry(entry: string): string {
  const absolute = path.resolve(entry);
  if (!fs.existsSync(absolute) || !fs.statSync(absolute).isFile()) {
    throw new Error(`pipeline module '${entry}' does not exist (resolved to ${absolute})`);
  }
  if (!/^[\w@%+=:,./-]+$/.test(absolute)) {
    throw new Error(
      `pipeline module path '${absolute}' has spaces or shell characters; the bundler passes it through a shell`,
    );
  }
  return absolute;
}

/**
 * The output prefix must not overlap the runtime's own prefixes, which other roles may write, and
 * must not hold `*` (S3 allows it in keys, but IAM reads it as a wildcard: `*` alone would let the
 * last phase write every prefix).
 */
function checkOutputPrefix(prefix: string): void {
  if (prefix.includes('*')) {
    throw new Error(`the output prefix '${prefix}' has '*', which IAM policies would read as a wildcard`);
  }
  for (const reserved of Object.values(S3_PREFIXES)) {
    if (`${prefix}/`.startsWith(reserved) || reserved.startsWith(`${prefix}/`)) {
      throw new Error(`the output prefix '${prefix}' overlaps the runtime's '${reserved}' prefix`);
    }
  }
}
