import { Duration, Stack, type RemovalPolicy } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { KinesisEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import {
  deployedFunction,
  functionEnvironment,
  functionMemory,
  INGEST_BATCH_SIZE,
  ingestBatchingWindowMs,
  SCHEDULE_RATE_MS,
  type DeployedFunction,
  type Deployment,
} from '../lib/deployment';
import { packageFiles } from '../lib/package-files';
import { grantFunctionAccess, grantQueueKeyToProducer, grantSelfInvoke } from './access';
import { acknowledgeGrantWildcards, acknowledgePinnedRuntime, acknowledgeTickWildcard } from './nag';
import { streamOf } from './stores';

/**
 * The construct props the functions are sized and built with.
 * Part of `SluicePipelineProps`, which extends it; each prop says its default.
 *
 * @example
 * const sizing: FunctionProps = { taskMemorySize: 2048, sourceMaps: true };
 */
export interface FunctionProps {
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
   * Whether a coordinator invocation waits for each batch boundary while records arrive and seals
   * the batch there (billed most of every minute while records flow). `false`: it ends after its
   * pass, and the first ingest after the next boundary starts a coordinator that seals the batch
   * (billed a short pass per batch); a batch after which no records come is sealed by the next
   * minute's tick, up to a minute late.
   * @default true
   */
  readonly coordinatorWaits?: boolean;
  /**
   * Memory of the transform and reduce functions, in MiB.
   * @default 1024
   */
  readonly taskMemorySize?: number;
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
   * The lock file of the project the CDK app is in, which the bundler's cache keys on; the folder
   * holding it is the bundler's project root and must hold the pipeline module and sluice.
   * @default - the lock file found upward from the working directory (the CDK app's)
   */
  readonly depsLockFilePath?: string;
  /**
   * Ship source maps in the bundles and enable them (`--enable-source-maps`): readable stack traces
   * for bigger bundles and slower cold starts.
   * @default false
   */
  readonly sourceMaps?: boolean;
}

/**
 * What the functions are built around: the deployment description, the pipeline module the bundles
 * alias, the stores they use, and the settings the construct resolved and checked.
 *
 * @example
 * const context: FunctionContext = {
 *   deployment, pipelineName: pipeline.name, entry, bucket, table, streams, failureQueue,
 *   removalPolicy, taskTimeout: Duration.minutes(2), sweepAfter: Duration.minutes(5),
 * };
 */
export interface FunctionContext {
  readonly deployment: Deployment;
  readonly pipelineName: string;
  /** Absolute path of the pipeline module, checked to be safe on a shell command line. */
  readonly entry: string;
  readonly bucket: s3.IBucket;
  readonly table: dynamodb.ITable;
  /** Every source's stream, by the source's stream name. */
  readonly streams: Readonly<Record<string, kinesis.IStream>>;
  readonly failureQueue: sqs.IQueue;
  readonly removalPolicy: RemovalPolicy;
  readonly taskTimeout: Duration;
  readonly sweepAfter: Duration;
  readonly ledgerRetention: Duration;
}

/**
 * The Lambda functions of a deployment, by role in the pipeline.
 *
 * @example
 * const { ingest, coordinator, phases } = createFunctions(this, context, props);
 */
export interface PipelineFunctions {
  readonly ingest: NodejsFunction;
  readonly coordinator: NodejsFunction;
  /** The phase functions, by phase function id, in the order they were created. */
  readonly phases: Readonly<Record<string, NodejsFunction>>;
}

/**
 * The construct props that shape how ingest reads the streams.
 * Part of `SluicePipelineProps`, which extends it; each prop says its default.
 *
 * @example
 * const reading: IngestProps = { ingestBatchSize: 500 };
 */
export interface IngestProps {
  /**
   * Most records per ingest invocation (one segment per shard per invocation).
   * @default 10000 (`INGEST_BATCH_SIZE`: the batching window, not the count, sets the calls)
   */
  readonly ingestBatchSize?: number;
  /**
   * How long the event-source mapping gathers records before invoking ingest. Longer means fewer,
   * larger segments (fewer S3 PUTs, ledger writes and invocations) and later records: a record
   * may go into the batch after the one it arrived in.
   * @default - the pipeline's batch interval, from 1 s to 300 s (`ingestBatchingWindowMs`)
   */
  readonly ingestMaxBatchingWindow?: Duration;
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
 * Creates every function of the deployment, each after the functions it invokes: a function's
 * environment names them, so their names must exist first (a function never names itself).
 *
 * @example
 * const { ingest, coordinator, phases } = createFunctions(this, context, props);
 */
export function createFunctions(
  scope: Construct,
  context: FunctionContext,
  props: FunctionProps,
): PipelineFunctions {
  const { deployment, pipelineName } = context;
  const created = new Map<string, NodejsFunction>();
  const pending = new Set<string>();
  const create = (spec: DeployedFunction): void => {
    if (created.has(spec.id)) return;
    if (pending.has(spec.id)) {
      throw new Error(`the functions of '${pipelineName}' invoke each other in a cycle through '${spec.id}'`);
    }
    pending.add(spec.id);
    for (const target of spec.invokes) {
      if (target !== spec.id) create(deployedFunction(deployment, target));
    }
    created.set(spec.id, createFunction(scope, spec, created, context, props));
  };
  for (const spec of deployment.functions) create(spec);

  const createdFunction = (fnId: string): NodejsFunction => {
    const fn = created.get(fnId);
    if (!fn) throw new Error(`the deployment of '${pipelineName}' has no function '${fnId}'`);
    return fn;
  };
  const phaseIds = new Set(deployment.functions.filter((f) => f.phase !== undefined).map((f) => f.id));
  return {
    phases: Object.freeze(Object.fromEntries([...created].filter(([fnId]) => phaseIds.has(fnId)))),
    coordinator: createdFunction('coordinator'),
    ingest: createdFunction('ingest'),
  };
}

/**
 * The coordinator's one-minute tick: an EventBridge Scheduler schedule that sends the deployment's
 * tick event, with its own role, and undeliverable ticks to the failure queue.
 *
 * @example
 * const schedule = createSchedule(this, pipeline.name, deployment, coordinator, failureQueue);
 */
export function createSchedule(
  scope: Construct,
  pipelineName: string,
  deployment: Deployment,
  coordinator: lambda.IFunction,
  failureQueue: sqs.IQueue,
): scheduler.Schedule {
  const stack = Stack.of(scope);
  // An own role instead of the stack-level one the target would create, so that its policy
  // lives (and is acknowledged) inside this construct.
  const role = new iam.Role(scope, 'TickRole', {
    description: `sluice ${pipelineName}: EventBridge Scheduler invokes the coordinator`,
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
  const schedule = new scheduler.Schedule(scope, 'Tick', {
    description: `sluice ${pipelineName}: coordinator tick`,
    schedule: scheduler.ScheduleExpression.rate(Duration.millis(SCHEDULE_RATE_MS)),
    target: new targets.LambdaInvoke(coordinator, {
      role,
      // The coordinator refuses anything but this tick.
      input: scheduler.ScheduleTargetInput.fromObject(deployment.tick),
      // A tick older than a minute is superseded by the next one.
      maxEventAge: Duration.minutes(1),
      retryAttempts: 2,
      deadLetterQueue: failureQueue,
    }),
  });
  // Scheduler sends an undeliverable tick to the failure queue as this role.
  grantQueueKeyToProducer(role, failureQueue);
  acknowledgeTickWildcard(role, coordinator);
  return schedule;
}

/**
 * Feeds every stream to the ingest function through an event-source mapping. Grants the ingest
 * role read on each stream and, through `stream.grantRead`, decrypt on the stream's key; the
 * failure destination grants it send (and the queue key's use).
 *
 * @example
 * connectStreams(ingest, streams, failureQueue, props);
 */
export function connectStreams(
  ingest: lambda.Function,
  streams: Readonly<Record<string, kinesis.IStream>>,
  failureQueue: sqs.IQueue,
  props: IngestProps & { readonly batchIntervalMs: number },
): void {
  for (const stream of Object.values(streams)) {
    ingest.addEventSource(
      new KinesisEventSource(stream, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: props.ingestBatchSize ?? INGEST_BATCH_SIZE,
        maxBatchingWindow:
          props.ingestMaxBatchingWindow ?? Duration.millis(ingestBatchingWindowMs(props.batchIntervalMs)),
        parallelizationFactor: 1,
        // A segment is named by its first sequence number: a failed batch must come back whole, so
        // no bisecting, no partial-batch responses, and retries until the records expire.
        bisectBatchOnError: false,
        reportBatchItemFailures: false,
        onFailure: new SqsDlq(failureQueue),
      }),
    );
  }
}

/**
 * The coordinator's timeout, as the props set it.
 *
 * @example
 * coordinatorTimeout({}).toSeconds(); // 80
 */
export function coordinatorTimeout(props: FunctionProps): Duration {
  return props.coordinatorTimeout ?? Duration.seconds(80);
}

function settingsOf(
  spec: DeployedFunction,
  context: FunctionContext,
  props: FunctionProps,
): FunctionSettings {
  const name = context.pipelineName;
  switch (spec.kind) {
    case 'ingest':
      return {
        constructId: 'Ingest',
        description: `sluice ${name}: ingest (writes stream records ahead to S3 segments)`,
        memorySize: functionMemory(props).ingest,
        timeout: props.ingestTimeout ?? Duration.minutes(1),
      };
    case 'coordinator':
      return {
        constructId: 'Coordinator',
        description: `sluice ${name}: coordinator (seals batches, starts and sweeps tasks)`,
        memorySize: functionMemory(props).coordinator,
        timeout: coordinatorTimeout(props),
        // A tick older than a minute is superseded by the next one.
        maxEventAge: Duration.minutes(1),
      };
    case 'transform':
    case 'reduce':
      return {
        constructId: `${spec.kind === 'transform' ? 'Transform' : 'Reduce'}-${spec.id}`,
        description: `sluice ${name}: ${spec.kind} phase ${spec.phase ?? 0} (${spec.id})`,
        memorySize: functionMemory(props)[spec.kind],
        timeout: context.taskTimeout,
        maxEventAge: props.taskMaxEventAge ?? Duration.hours(1),
      };
  }
}

/**
 * One function of the deployment, with its own role, log group and environment. `created` holds
 * the functions it invokes (other than itself).
 */
function createFunction(
  scope: Construct,
  spec: DeployedFunction,
  created: ReadonlyMap<string, NodejsFunction>,
  context: FunctionContext,
  props: FunctionProps,
): NodejsFunction {
  const { deployment, bucket, table, streams, failureQueue } = context;
  const settings = settingsOf(spec, context, props);
  const target = (fnId: string): lambda.IFunction => {
    const fn = fnId === spec.id ? undefined : created.get(fnId);
    if (!fn) throw new Error(`'${spec.id}' names '${fnId}' before it exists`);
    return fn;
  };
  // An own role without AWSLambdaBasicExecutionRole: that policy may write to every log group.
  const role = new iam.Role(scope, `${settings.constructId}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: settings.description,
  });
  const logGroup = new logs.LogGroup(scope, `${settings.constructId}Logs`, {
    retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: context.removalPolicy,
  });
  grantFunctionAccess(role, spec, {
    logGroup,
    bucket,
    table,
    invoked: spec.invokes.filter((fnId) => fnId !== spec.id).map(target),
  });

  const stack = Stack.of(scope);
  const environment = functionEnvironment(
    deployment,
    spec.id,
    {
      bucket: bucket.bucketName,
      table: table.tableName,
      functionName: (fnId) => target(fnId).functionName,
      streams: deployment.streams.map((source) => [streamOf(streams, source).streamName, source] as const),
      sweepAfterMs: context.sweepAfter.toMilliseconds(),
      ledgerRetentionMs: context.ledgerRetention.toMilliseconds(),
      ...(props.coordinatorWaits === false ? { coordinatorWaits: false } : {}),
    },
    (value) => stack.toJsonString(value),
  );
  const sourceMaps = props.sourceMaps ?? false;
  const files = packageFiles();
  const fn = new NodejsFunction(scope, settings.constructId, {
    description: settings.description,
    entry: files.functionEntry(spec.kind),
    handler: 'handler',
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: settings.memorySize,
    timeout: settings.timeout,
    role,
    logGroup,
    ...(props.depsLockFilePath === undefined ? {} : { depsLockFilePath: props.depsLockFilePath }),
    environment: { ...environment, ...(sourceMaps ? { NODE_OPTIONS: '--enable-source-maps' } : {}) },
    bundling: {
      format: OutputFormat.CJS,
      target: 'node22',
      minify: true,
      sourceMap: sourceMaps,
      // The runtime ships the AWS SDK v3 and the Smithy packages it is built on; bundling them would
      // triple cold-start code.
      externalModules: ['@aws-sdk/*', '@smithy/*'],
      // ES module builds first: CommonJS builds (@smithy/*) cannot be tree-shaken.
      mainFields: ['module', 'main'],
      esbuildArgs: {
        '--alias:sluice-pipeline': context.entry,
        // The pipeline's `import ... from 'sluice'` and the function entry share one copy of the
        // library: its ES module build (or, in a checkout of sluice, its sources).
        '--alias:sluice': files.libraryEntry,
        '--tree-shaking': 'true',
      },
    },
    ...(spec.asyncRetries === undefined
      ? {}
      : {
          retryAttempts: spec.asyncRetries,
          maxEventAge: settings.maxEventAge,
          onFailure: new SqsDestination(failureQueue),
        }),
  });
  grantSelfInvoke(scope, `${settings.constructId}SelfInvoke`, spec, role, fn);
  acknowledgePinnedRuntime(fn);
  acknowledgeGrantWildcards(role, spec, { bucket, table, failureQueue });
  return fn;
}
