import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { KinesisEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  deployedFunction,
  describeDeployment,
  functionEnvironment,
  type DeployedFunction,
  type Deployment,
} from '../lib/deployment';
import type { AnyPipeline, Pipeline } from '../lib/dsl/pipeline';
import { outputPrefix, planPipeline, type Plan } from '../lib/plan';
import { BATCH_METRICS, METRICS_NAMESPACE, metricDimensions } from '../lib/runtime/lambda';
import { S3_PREFIXES } from '../lib/storage/keys';

/** The package root: where `functions/` and the lock file live, whoever instantiates the construct. */
const PACKAGE_ROOT = path.resolve(__dirname, '..');

/**
 * Properties of a {@link SluicePipeline}.
 *
 * @example
 * const props: SluicePipelineProps = {
 *   pipeline: wordcount,
 *   pipelineModule: path.resolve('examples/wordcount/pipeline.ts'),
 *   segmentRetention: Duration.days(14),
 * };
 */
export interface SluicePipelineProps<T = unknown, Out = unknown> {
  /** The pipeline to deploy: the default export of `pipelineModule`. */
  readonly pipeline: Pipeline<T, Out>;
  /**
   * Path of the module whose default export is `pipeline`. Every function bundle is built with the
   * module id `sluice-pipeline` aliased to it. Relative paths resolve against the working directory.
   */
  readonly pipelineModule: string;
  /**
   * An existing bucket for segments, manifests, shuffle files, dead letters and output. Lifecycle
   * rules, encryption and the TLS-only policy are only set on a bucket the construct creates.
   * @default - a new encrypted, private, TLS-only bucket with lifecycle rules
   */
  readonly bucket?: s3.IBucket;
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
  /**
   * Most records per ingest invocation (one segment per shard per invocation).
   * @default 1000
   */
  readonly ingestBatchSize?: number;
  /**
   * How long the event-source mapping gathers records before invoking ingest. Longer means fewer,
   * larger segments (fewer S3 PUTs) and later records.
   * @default Duration.seconds(1)
   */
  readonly ingestMaxBatchingWindow?: Duration;
  /**
   * Memory of the ingest function, in MiB.
   * @default 512
   */
  readonly ingestMemorySize?: number;
  /**
   * Timeout of the ingest function.
   * @default Duration.minutes(1)
   */
  readonly ingestTimeout?: Duration;
  /**
   * Memory of the coordinator function, in MiB.
   * @default 256
   */
  readonly coordinatorMemorySize?: number;
  /**
   * Timeout of the coordinator. It is invoked once a minute and loops inside one invocation for
   * batch intervals under a minute, so it should outlast the minute with some overlap.
   * @default Duration.seconds(80)
   */
  readonly coordinatorTimeout?: Duration;
  /**
   * Memory of the transform and reduce functions, in MiB.
   * @default 1024
   */
  readonly taskMemorySize?: number;
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
   * How long a task event may wait in Lambda's asynchronous queue before it goes to the failure
   * queue. The coordinator's sweep re-drives such tasks anyway.
   * @default Duration.hours(1)
   */
  readonly taskMaxEventAge?: Duration;
  /**
   * Retention of every function's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Ship source maps in the bundles and enable them (`--enable-source-maps`): readable stack traces
   * for bigger bundles and slower cold starts.
   * @default false
   */
  readonly sourceMaps?: boolean;
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
   * A topic the alarms notify.
   * @default - alarms without actions
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Scheduling delay (batch sealed after its interval ended) that raises the alarm.
   * @default the larger of one minute and three batch intervals
   */
  readonly schedulingDelayThreshold?: Duration;
  /**
   * Name of the CloudWatch dashboard.
   * @default `sluice-<pipeline name>`
   */
  readonly dashboardName?: string;
}

/** The alarms of a {@link SluicePipeline}. */
export interface SluicePipelineAlarms {
  /** Batches are sealed late, or none complete at all (missing data counts as breaching). */
  readonly schedulingDelay: cloudwatch.Alarm;
  /** A task failed for good and marked its batch failed. */
  readonly failedBatches: cloudwatch.Alarm;
  /** An invocation exhausted Lambda's retries (or Scheduler's) and landed in the failure queue. */
  readonly failedInvocations: cloudwatch.Alarm;
}

/** Sizing, naming and async settings of one deployed function, by its kind. */
interface FunctionSettings {
  /** Construct id (kept stable: logical ids of existing stacks derive from it). */
  readonly constructId: string;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** How long an asynchronous invocation may wait (functions invoked asynchronously only). */
  readonly maxEventAge?: Duration;
}

/**
 * Whether a function reads and writes the ledger at all: actions without partition keys would
 * grant nothing, and partition keys without actions neither.
 */
function ledgerUse(spec: DeployedFunction): { readonly reads: boolean; readonly writes: boolean } {
  const { read, readActions, write, writeActions } = spec.ledger;
  return {
    reads: readActions.length > 0 && read.length > 0,
    writes: writeActions.length > 0 && write.length > 0,
  };
}

const PREFIX_WILDCARD_REASON =
  'Object ARNs under one key prefix of the pipeline bucket: the wildcard is the prefix scoping itself ' +
  '(object keys are batch, phase and task numbers known only at run time).';

/** What CDK's `grantEncryptDecrypt` and an SQS sender grant on a KMS key, as cdk-nag names them. */
const KMS_WILDCARD_ACTIONS = ['kms:ReEncrypt*', 'kms:GenerateDataKey*'];

const KMS_WILDCARD_REASON =
  "CDK's encrypt grant on the pipeline's customer-managed key (writers of the bucket and ledger, " +
  'senders to the failure queue): the action wildcards only cover ReEncrypt and GenerateDataKey ' +
  'variants, on that one key.';

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
 * import wordcount from '../examples/wordcount/pipeline';
 *
 * const stack = new Stack(app, 'sluice-wordcount');
 * const sluice = new SluicePipeline(stack, 'Pipeline', {
 *   pipeline: wordcount,
 *   pipelineModule: path.resolve('examples/wordcount/pipeline.ts'),
 * });
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

  private readonly props: SluicePipelineProps<T, Out>;
  private readonly pipeline: AnyPipeline;
  private readonly pipelineModule: string;
  private readonly removalPolicy: RemovalPolicy;
  private readonly sweepAfter: Duration;
  private readonly taskTimeout: Duration;

  constructor(scope: Construct, id: string, props: SluicePipelineProps<T, Out>) {
    super(scope, id);
    this.props = props;
    // The record types matter to the stages' code, not to the resources around them.
    const pipeline = props.pipeline as AnyPipeline;
    this.pipeline = pipeline;
    this.plan = planPipeline(pipeline);
    this.deployment = describeDeployment(pipeline, this.plan);
    this.pipelineModule = checkModulePath(props.pipelineModule);
    this.removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.taskTimeout = props.taskTimeout ?? Duration.minutes(2);
    this.sweepAfter = props.sweepAfter ?? Duration.minutes(5);
    if (this.sweepAfter.toMilliseconds() <= this.taskTimeout.toMilliseconds()) {
      throw new Error(
        `sweepAfter (${this.sweepAfter.toHumanString()}) must be longer than taskTimeout ` +
          `(${this.taskTimeout.toHumanString()}), or tasks still running would be started again`,
      );
    }
    checkOutputPrefix(outputPrefix(this.plan.spec));
    const key = props.encryptionKey;

    this.bucket = props.bucket ?? this.createBucket();
    this.table = new dynamodb.Table(this, 'Ledger', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: this.removalPolicy,
      // Without a key: DynamoDB's default, an AWS owned key.
      ...(key ? { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: key } : {}),
    });
    // One stream per source: the pipeline's, and a join's other source if it reads another stream.
    const streams: Record<string, kinesis.IStream> = {};
    this.deployment.streams.forEach((name, i) => {
      const given = i === 0 ? props.stream : props.streams?.[name];
      streams[name] = given ?? this.createStream(name, i === 0 ? 'Stream' : `Stream${i}`);
    });
    this.streams = streams;
    this.stream = this.streamOf(pipeline.source.spec.stream);
    this.failureQueue = new sqs.Queue(this, 'Failures', {
      ...(key
        ? { encryption: sqs.QueueEncryption.KMS, encryptionMasterKey: key }
        : { encryption: sqs.QueueEncryption.SQS_MANAGED }),
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      // Its messages are the only record of invocations that gave up: kept like the data.
      removalPolicy: this.removalPolicy,
    });
    Validations.of(this.failureQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is the terminal destination of failed asynchronous invocations, event-source ' +
        'mapping batches and schedule deliveries; a dead-letter queue behind it would only move the ' +
        'same messages again. The failedInvocations alarm watches its depth.',
    });

    const created = this.createFunctions();
    const createdFunction = (fnId: string): NodejsFunction => {
      const fn = created.get(fnId);
      if (!fn) throw new Error(`the deployment of '${pipeline.name}' has no function '${fnId}'`);
      return fn;
    };
    const phaseIds = new Set(this.deployment.functions.filter((f) => f.phase !== undefined).map((f) => f.id));
    this.functions = Object.freeze(Object.fromEntries([...created].filter(([fnId]) => phaseIds.has(fnId))));
    this.coordinator = createdFunction('coordinator');
    this.ingest = createdFunction('ingest');
    this.schedule = this.createSchedule();

    for (const stream of Object.values(this.streams)) {
      // Grants the ingest role read on the stream and, through stream.grantRead, decrypt on the
      // stream's key; the failure destination grants it send (and the queue key's use).
      this.ingest.addEventSource(
        new KinesisEventSource(stream, {
          startingPosition: lambda.StartingPosition.TRIM_HORIZON,
          batchSize: props.ingestBatchSize ?? 1000,
          maxBatchingWindow: props.ingestMaxBatchingWindow ?? Duration.seconds(1),
          parallelizationFactor: 1,
          // A segment is named by its first sequence number: a failed batch must come back whole, so
          // no bisecting, no partial-batch responses, and retries until the records expire.
          bisectBatchOnError: false,
          reportBatchItemFailures: false,
          onFailure: new SqsDlq(this.failureQueue),
        }),
      );
    }

    this.alarms = this.createAlarms();
    this.dashboard = this.createDashboard();
  }

  /**
   * A batch metric of this pipeline, as the functions publish it.
   *
   * @example
   * sluice.metricBatch('inputRecords', { statistic: 'Sum', period: Duration.minutes(5) });
   */
  metricBatch(name: keyof typeof BATCH_METRICS, options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: BATCH_METRICS[name],
      dimensionsMap: { ...metricDimensions(this.pipeline.name) },
      period: Duration.minutes(1),
      statistic: 'Sum',
      ...options,
    });
  }

  private createSchedule(): scheduler.Schedule {
    const stack = Stack.of(this);
    // An own role instead of the stack-level one the target would create, so that its policy
    // lives (and is acknowledged) inside this construct.
    const role = new iam.Role(this, 'TickRole', {
      description: `sluice ${this.pipeline.name}: EventBridge Scheduler invokes the coordinator`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: {
            'aws:SourceAccount': stack.account,
            'aws:SourceArn': stack.formatArn({
              service: 'scheduler',
              resource: 'schedule-group',
              resourceName: 'default',
            }),
          },
        },
      }),
    });
    const schedule = new scheduler.Schedule(this, 'Tick', {
      description: `sluice ${this.pipeline.name}: coordinator tick`,
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
      target: new targets.LambdaInvoke(this.coordinator, {
        role,
        // The coordinator refuses anything but this tick.
        input: scheduler.ScheduleTargetInput.fromObject(this.deployment.tick),
        // A tick older than a minute is superseded by the next one.
        maxEventAge: Duration.minutes(1),
        retryAttempts: 2,
        deadLetterQueue: this.failureQueue,
      }),
    });
    // Scheduler sends an undeliverable tick to the failure queue as this role: with a customer-managed
    // key, that is what any SQS producer needs (no wildcard actions, unlike CDK's send grant).
    this.failureQueue.encryptionMasterKey?.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey');
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${flattenForNag(stack.resolve(`${this.coordinator.functionArn}:*`))}]`,
      reason:
        'The LambdaInvoke schedule target grants invoke on the coordinator and its qualified ARNs ' +
        '(versions, aliases); the wildcard never reaches another function.',
    });
    return schedule;
  }

  private createBucket(): s3.Bucket {
    const keep = (duration: Duration | undefined, fallback: number): Duration =>
      duration ?? Duration.days(fallback);
    const key = this.props.encryptionKey;
    const bucket = new s3.Bucket(this, 'Bucket', {
      // A Bucket Key: S3 asks KMS for a data key per bucket and time window, not per object (the
      // pipeline writes hundreds of objects per batch).
      ...(key
        ? { encryption: s3.BucketEncryption.KMS, encryptionKey: key, bucketKeyEnabled: true }
        : { encryption: s3.BucketEncryption.S3_MANAGED }),
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      removalPolicy: this.removalPolicy,
      ...(this.props.accessLogsBucket
        ? {
            serverAccessLogsBucket: this.props.accessLogsBucket,
            serverAccessLogsPrefix: this.props.accessLogsPrefix ?? `sluice/${this.pipeline.name}/`,
          }
        : {}),
      lifecycleRules: [
        { id: 'segments', prefix: S3_PREFIXES.segments, expiration: keep(this.props.segmentRetention, 30) },
        { id: 'shuffle', prefix: S3_PREFIXES.shuffle, expiration: keep(this.props.shuffleRetention, 7) },
        {
          id: 'manifests',
          prefix: S3_PREFIXES.manifests,
          expiration: keep(this.props.manifestRetention, 90),
        },
        {
          id: 'dead-letter',
          prefix: S3_PREFIXES.deadLetter,
          expiration: keep(this.props.deadLetterRetention, 90),
        },
        { id: 'incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    if (!this.props.accessLogsBucket) {
      Validations.of(bucket).acknowledge({
        id: 'AwsSolutions-S1',
        reason:
          'Only the pipeline functions write this bucket, hundreds of machine-named objects per ' +
          'batch; request logs would cost more than the pipeline. Pass accessLogsBucket to turn ' +
          'server access logs on, or use CloudTrail data events.',
      });
    }
    return bucket;
  }

  private createStream(name: string, constructId: string): kinesis.Stream {
    const key = this.props.encryptionKey;
    const stream = new kinesis.Stream(this, constructId, {
      streamName: name,
      shardCount: this.props.shardCount ?? 1,
      retentionPeriod: this.props.streamRetention ?? Duration.hours(24),
      ...(key
        ? { encryption: kinesis.StreamEncryption.KMS, encryptionKey: key }
        : { encryption: kinesis.StreamEncryption.MANAGED }),
      removalPolicy: this.removalPolicy,
    });
    if (key) {
      Validations.of(stream).acknowledge({
        id: 'AwsSolutions-KDS3',
        reason:
          'The stream uses the customer-managed key the deployment was given (encryptionKey), as ' +
          'every data store of the pipeline does; its per-request KMS cost is part of that choice.',
      });
    }
    return stream;
  }

  private streamOf(source: string): kinesis.IStream {
    const stream = this.streams[source];
    if (!stream) throw new Error(`no stream for source '${source}'`);
    return stream;
  }

  /**
   * Creates every function of the deployment, each after the functions it invokes: a function's
   * environment names them, so their names must exist first (a function never names itself).
   */
  private createFunctions(): ReadonlyMap<string, NodejsFunction> {
    const created = new Map<string, NodejsFunction>();
    const pending = new Set<string>();
    const create = (spec: DeployedFunction): void => {
      if (created.has(spec.id)) return;
      if (pending.has(spec.id)) {
        throw new Error(
          `the functions of '${this.pipeline.name}' invoke each other in a cycle through '${spec.id}'`,
        );
      }
      pending.add(spec.id);
      for (const target of spec.invokes) {
        if (target !== spec.id) create(deployedFunction(this.deployment, target));
      }
      created.set(spec.id, this.createFunction(spec, created));
    };
    for (const spec of this.deployment.functions) create(spec);
    return created;
  }

  private settingsOf(spec: DeployedFunction): FunctionSettings {
    const { props } = this;
    const name = this.pipeline.name;
    switch (spec.kind) {
      case 'ingest':
        return {
          constructId: 'Ingest',
          description: `sluice ${name}: ingest (writes stream records ahead to S3 segments)`,
          memorySize: props.ingestMemorySize ?? 512,
          timeout: props.ingestTimeout ?? Duration.minutes(1),
        };
      case 'coordinator':
        return {
          constructId: 'Coordinator',
          description: `sluice ${name}: coordinator (seals batches, starts and sweeps tasks)`,
          memorySize: props.coordinatorMemorySize ?? 256,
          timeout: props.coordinatorTimeout ?? Duration.seconds(80),
          // A tick older than a minute is superseded by the next one.
          maxEventAge: Duration.minutes(1),
        };
      case 'transform':
      case 'reduce':
        return {
          constructId: `${spec.kind === 'transform' ? 'Transform' : 'Reduce'}-${spec.id}`,
          description: `sluice ${name}: ${spec.kind} phase ${spec.phase ?? 0} (${spec.id})`,
          memorySize: props.taskMemorySize ?? 1024,
          timeout: this.taskTimeout,
          maxEventAge: props.taskMaxEventAge ?? Duration.hours(1),
        };
    }
  }

  /**
   * One function of the deployment, with its own role, log group and environment. `created` holds
   * the functions it invokes (other than itself).
   */
  private createFunction(
    spec: DeployedFunction,
    created: ReadonlyMap<string, NodejsFunction>,
  ): NodejsFunction {
    const settings = this.settingsOf(spec);
    const target = (fnId: string): lambda.IFunction => {
      const fn = fnId === spec.id ? undefined : created.get(fnId);
      if (!fn) throw new Error(`'${spec.id}' names '${fnId}' before it exists`);
      return fn;
    };
    // An own role without AWSLambdaBasicExecutionRole: that policy may write to every log group.
    const role = new iam.Role(this, `${settings.constructId}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: settings.description,
    });
    const logGroup = new logs.LogGroup(this, `${settings.constructId}Logs`, {
      retention: this.props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: this.removalPolicy,
    });
    logGroup.grantWrite(role);
    this.grantObjects(role, spec);
    this.grantLedger(role, spec);
    const others = spec.invokes.filter((fnId) => fnId !== spec.id);
    if (others.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          resources: others.map((fnId) => target(fnId).functionArn),
        }),
      );
    }

    const stack = Stack.of(this);
    const environment = functionEnvironment(
      this.deployment,
      spec.id,
      {
        bucket: this.bucket.bucketName,
        table: this.table.tableName,
        functionName: (fnId) => target(fnId).functionName,
        streams: this.deployment.streams.map((source) => [this.streamOf(source).streamName, source] as const),
        sweepAfterMs: this.sweepAfter.toMilliseconds(),
      },
      (value) => stack.toJsonString(value),
    );
    const sourceMaps = this.props.sourceMaps ?? false;
    const fn = new NodejsFunction(this, settings.constructId, {
      description: settings.description,
      entry: path.join(PACKAGE_ROOT, 'functions', `${spec.kind}.ts`),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: settings.memorySize,
      timeout: settings.timeout,
      role,
      logGroup,
      projectRoot: PACKAGE_ROOT,
      depsLockFilePath: path.join(PACKAGE_ROOT, 'package-lock.json'),
      environment: { ...environment, ...(sourceMaps ? { NODE_OPTIONS: '--enable-source-maps' } : {}) },
      bundling: {
        format: OutputFormat.CJS,
        target: 'node22',
        minify: true,
        sourceMap: sourceMaps,
        // The runtime ships the AWS SDK v3; bundling it would triple cold-start code.
        externalModules: ['@aws-sdk/*'],
        // ES module builds first: CommonJS builds (@smithy/*) cannot be tree-shaken.
        mainFields: ['module', 'main'],
        esbuildArgs: {
          '--alias:sluice-pipeline': this.pipelineModule,
          '--tree-shaking': 'true',
        },
      },
      ...(spec.asyncRetries === undefined
        ? {}
        : {
            retryAttempts: spec.asyncRetries,
            maxEventAge: settings.maxEventAge,
            onFailure: new SqsDestination(this.failureQueue),
          }),
    });
    if (spec.invokes.includes(spec.id)) {
      // A stateful phase restarts its own waiting successor. The function depends on its role and
      // everything under it (the default policy too), so a statement there naming the function's
      // own ARN would be a dependency cycle; a policy outside the role attaches to it afterwards.
      new iam.Policy(this, `${settings.constructId}SelfInvoke`, {
        roles: [role],
        statements: [
          new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [fn.functionArn] }),
        ],
      });
    }
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'sluice targets nodejs22.x, the runtime its code, bundles (esbuild target node22) and AWS SDK ' +
        'v3 support window are tested against; moving to a newer runtime is a deliberate upgrade.',
    });
    this.acknowledgeWildcards(role, spec);
    return fn;
  }

  /** S3: each read prefix and each write prefix of the description, and listing for readers only. */
  private grantObjects(role: iam.Role, spec: DeployedFunction): void {
    const { read, write } = spec.objects;
    const objects = (prefixes: readonly string[]) =>
      prefixes.map((prefix) => this.bucket.arnForObjects(`${prefix}*`));
    if (read.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: objects(read) }),
      );
      // Without ListBucket, S3 answers a GET of a missing key with 403 instead of 404, and the
      // runtime could no longer tell "not written yet" (retry) from "not allowed". S3 checks that
      // implied ListBucket with the requested key as s3:prefix, so the read prefixes suffice, and a
      // real listing reaches no further than the reads do.
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [this.bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': read.map((prefix) => `${prefix}*`) } },
        }),
      );
    }
    if (write.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: objects(write) }),
      );
    }
    const key = this.bucket.encryptionKey;
    if (write.length > 0) key?.grantEncryptDecrypt(role);
    else if (read.length > 0) key?.grantDecrypt(role);
  }

  /**
   * DynamoDB: the read actions on the items whose partition keys the description lets the function
   * read, the write actions on those it may write. `ForAllValues` covers a BatchGetItem's every key.
   */
  private grantLedger(role: iam.Role, spec: DeployedFunction): void {
    const { read, readActions, write, writeActions } = spec.ledger;
    const statement = (actions: readonly string[], leadingKeys: readonly string[]) =>
      new iam.PolicyStatement({
        actions: [...actions],
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...leadingKeys] } },
      });
    const { reads, writes } = ledgerUse(spec);
    if (reads) role.addToPrincipalPolicy(statement(readActions, read));
    if (writes) role.addToPrincipalPolicy(statement(writeActions, write));
    const key = this.table.encryptionKey;
    if (writes) key?.grantEncryptDecrypt(role);
    else if (reads) key?.grantDecrypt(role);
  }

  /** Acknowledges exactly the wildcards this role was given, as cdk-nag names them. */
  private acknowledgeWildcards(role: iam.Role, spec: DeployedFunction): void {
    const stack = Stack.of(this);
    const prefixes = new Set([...spec.objects.read, ...spec.objects.write]);
    for (const prefix of prefixes) {
      const resource = flattenForNag(stack.resolve(this.bucket.arnForObjects(`${prefix}*`)));
      Validations.of(role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${resource}]`,
        reason: PREFIX_WILDCARD_REASON,
      });
    }
    // Every function sends to the failure queue (an async destination, or ingest's event-source
    // failure destination); writers of an encrypted bucket or table get CDK's encrypt grant.
    const keyWildcards =
      this.failureQueue.encryptionMasterKey !== undefined ||
      (this.bucket.encryptionKey !== undefined && spec.objects.write.length > 0) ||
      (this.table.encryptionKey !== undefined && ledgerUse(spec).writes);
    if (keyWildcards) {
      for (const action of KMS_WILDCARD_ACTIONS) {
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[Action::${action}]`,
          reason: KMS_WILDCARD_REASON,
        });
      }
    }
  }

  private createAlarms(): SluicePipelineAlarms {
    const { pipeline } = this;
    const intervalMs = pipeline.batchIntervalMs;
    const threshold =
      this.props.schedulingDelayThreshold ?? Duration.millis(Math.max(60_000, 3 * intervalMs));
    // Batches complete (empty ones too) every interval, so a period of whole minutes that holds at
    // least one batch sees data unless the pipeline is stuck.
    const period = Duration.minutes(Math.max(1, Math.ceil(intervalMs / 60_000)));
    const schedulingDelay = new cloudwatch.Alarm(this, 'SchedulingDelayAlarm', {
      alarmDescription:
        `sluice ${pipeline.name}: batches are sealed more than ${threshold.toHumanString()} late, ` +
        'or none completed (the coordinator or its schedule is stuck).',
      metric: this.metricBatch('schedulingDelay', { statistic: 'Maximum', period }),
      threshold: threshold.toMilliseconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    const failedBatches = new cloudwatch.Alarm(this, 'FailedBatchesAlarm', {
      alarmDescription: `sluice ${pipeline.name}: a task failed for good and its batch is marked failed.`,
      metric: this.metricBatch('failedBatches', { statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const failedInvocations = new cloudwatch.Alarm(this, 'FailedInvocationsAlarm', {
      alarmDescription: `sluice ${pipeline.name}: invocations exhausted their retries (see the failure queue).`,
      metric: this.failureQueue.metricApproximateNumberOfMessagesVisible({
        statistic: 'Maximum',
        period: Duration.minutes(1),
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const alarms = { schedulingDelay, failedBatches, failedInvocations };
    if (this.props.alarmTopic) {
      const action = new SnsAction(this.props.alarmTopic);
      for (const alarm of Object.values(alarms)) alarm.addAlarmAction(action);
    }
    return alarms;
  }

  private createDashboard(): cloudwatch.Dashboard {
    const { pipeline } = this;
    const all: [string, lambda.IFunction][] = [
      ['ingest', this.ingest],
      ['coordinator', this.coordinator],
      ...Object.entries(this.functions),
    ];
    const width = 8;
    const graph = (
      title: string,
      left: cloudwatch.IMetric[],
      extra: Partial<cloudwatch.GraphWidgetProps> = {},
    ) => new cloudwatch.GraphWidget({ title, left, width, height: 6, ...extra });
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: this.props.dashboardName ?? `sluice-${pipeline.name}`,
      defaultInterval: Duration.hours(3),
    });
    dashboard.addWidgets(
      graph('Input records', [
        this.metricBatch('inputRecords', { label: 'records in sealed batches' }),
        this.stream.metricIncomingRecords({
          label: 'records put to the stream',
          statistic: 'Sum',
          period: Duration.minutes(1),
        }),
      ]),
      graph('Output records and dead letters', [
        this.metricBatch('outputRecords', { label: 'output records' }),
        this.metricBatch('deadLetters', { label: 'dead letters' }),
      ]),
      graph('Failed batches and invocations', [
        this.metricBatch('failedBatches', { label: 'failed batches' }),
        this.failureQueue.metricApproximateNumberOfMessagesVisible({
          label: 'failure queue depth',
          statistic: 'Maximum',
          period: Duration.minutes(1),
        }),
      ]),
    );
    dashboard.addWidgets(
      graph('Batch processing time (ms)', [
        this.metricBatch('processingTime', { statistic: 'Average', label: 'average' }),
        this.metricBatch('processingTime', { statistic: 'p99', label: 'p99' }),
        this.metricBatch('processingTime', { statistic: 'Maximum', label: 'max' }),
      ]),
      graph(
        'Scheduling delay (ms)',
        [
          this.metricBatch('schedulingDelay', { statistic: 'Average', label: 'average' }),
          this.metricBatch('schedulingDelay', { statistic: 'Maximum', label: 'max' }),
        ],
        { leftAnnotations: [this.alarms.schedulingDelay.toAnnotation()] },
      ),
      graph('Ingest lag: iterator age (ms)', [
        this.ingest.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) }),
      ]),
    );
    dashboard.addWidgets(
      graph(
        'Function errors',
        all.map(([name, fn]) => fn.metricErrors({ label: name, period: Duration.minutes(1) })),
      ),
      graph(
        'Function duration p99 (ms)',
        all.map(([name, fn]) =>
          fn.metricDuration({ label: name, statistic: 'p99', period: Duration.minutes(1) }),
        ),
      ),
      graph(
        'Function throttles',
        all.map(([name, fn]) => fn.metricThrottles({ label: name, period: Duration.minutes(1) })),
      ),
    );
    return dashboard;
  }
}

/** Resolves and checks the pipeline module path; esbuild gets it inside a shell command. */
function checkModulePath(modulePath: string): string {
  const absolute = path.resolve(modulePath);
  if (!fs.existsSync(absolute) || !fs.statSync(absolute).isFile()) {
    throw new Error(`pipeline module '${modulePath}' does not exist (resolved to ${absolute})`);
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

/**
 * A resolved CloudFormation value as cdk-nag writes it in finding ids: `Fn::GetAtt` as
 * `<Logical.Attr>`, `Ref` as `<Logical>`, joins concatenated.
 */
function flattenForNag(value: unknown): string {
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof value === 'object' && value !== null) {
    const node = value as Record<string, unknown>;
    const join = node['Fn::Join'];
    if (Array.isArray(join)) {
      const [delimiter, items] = join as [unknown, unknown];
      return Array.isArray(items) ? items.map(flattenForNag).join(String(delimiter)) : '';
    }
    if ('Fn::Sub' in node) return flattenForNag(node['Fn::Sub']);
    const getAtt = node['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${flattenForNag(getAtt[0])}.${flattenForNag(getAtt[1])}>`;
    if ('Fn::ImportValue' in node) return flattenForNag(node['Fn::ImportValue']);
    if ('Ref' in node) return `<${flattenForNag(node.Ref)}>`;
  }
  return JSON.stringify(value);
}
