import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { SluicePipeline } from 'sluice/cdk';
import {
  pipeline,
  s3Jsonl,
  kinesis as kinesisSource,
  utf8,
  map,
  reduceByKey,
  updateStateByKey,
  type AnyStage,
} from '../../lib';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AnyPipeline } from '../../lib/dsl/pipeline';
import { RESOURCES_OUTPUT_DESCRIPTION } from '../../lib/deployment';
import { CONFIG_ENV, configFromEnv } from '../../lib/runtime/context';
import { parseTickEvent } from '../../lib/runtime/events';
import {
  build,
  fixturePath,
  FIXTURES,
  functionGrants,
  functionOf,
  logicalId,
  resolvedEnvironment,
  roleGrants,
  type Built,
  type FixtureName,
} from './helpers';

const twoPhase = build('two-phase');

/** A KMS key made in the test stack, as a deployer would pass one. */
const withKey = (stack: Stack) => ({ encryptionKey: new kms.Key(stack, 'Key', { enableKeyRotation: true }) });

function only(template: Template, type: string): Record<string, unknown> {
  const found = Object.values(template.findResources(type));
  expect(found).toHaveLength(1);
  return (found[0] as { Properties: Record<string, unknown> }).Properties;
}

describe('SluicePipeline: bucket', () => {
  it('is encrypted, private and owner-enforced', () => {
    // Arrange
    const { template } = twoPhase;

    // Act
    const bucket = only(template, 'AWS::S3::Bucket');

    // Assert
    expect(bucket).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
  });

  it('denies requests without TLS 1.2', () => {
    // Arrange
    const { template } = twoPhase;

    // Act
    const policy = only(template, 'AWS::S3::BucketPolicy');

    // Assert
    expect(policy.PolicyDocument).toMatchObject({
      Statement: expect.arrayContaining([
        expect.objectContaining({
          Effect: 'Deny',
          Action: 's3:*',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
        expect.objectContaining({
          Effect: 'Deny',
          Action: 's3:*',
          Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
        }),
      ]) as unknown,
    });
  });

  it('expires shuffle files after 7 days, segments after the retention and keeps manifests, dead letters and progress longer', () => {
    // Arrange
    const { template } = build('two-phase', {
      segmentRetention: Duration.days(14),
      progressRetention: Duration.days(30),
    });

    // Act
    const rules = (
      only(template, 'AWS::S3::Bucket').LifecycleConfiguration as {
        Rules: { Prefix?: string; ExpirationInDays?: number }[];
      }
    ).Rules;
    const days: unknown = Object.fromEntries(
      rules.filter((r) => r.Prefix).map((r) => [r.Prefix, r.ExpirationInDays]),
    );

    // Assert
    expect(days).toEqual({
      'shuffle/': 7,
      'segments/': 14,
      'manifests/': 90,
      'dead-letter/': 90,
      'progress/': 30,
    });
  });

  it('is retained by default and never expires the output', () => {
    // Arrange
    const { template } = twoPhase;

    // Act
    const buckets = template.findResources('AWS::S3::Bucket');
    const rules = JSON.stringify(buckets);

    // Assert
    expect(Object.values(buckets)[0]).toMatchObject({ DeletionPolicy: 'Retain' });
    expect(rules).not.toContain('results/words');
  });

  it("expires the output under the sink's prefix after outputRetention, when given", () => {
    // Arrange
    const { template } = build('two-phase', { outputRetention: Duration.days(180) });

    // Act
    const rules = (
      only(template, 'AWS::S3::Bucket').LifecycleConfiguration as {
        Rules: { Id?: string; Prefix?: string; ExpirationInDays?: number; Status?: string }[];
      }
    ).Rules;

    // Assert
    expect(rules.find((r) => r.Id === 'output')).toEqual({
      Id: 'output',
      Prefix: 'results/words/',
      ExpirationInDays: 180,
      Status: 'Enabled',
    });
  });

  it('writes server access logs when given a log bucket', () => {
    // Arrange
    const app = new App({
      context: { 'aws:cdk:bundling-stacks': [] },
      builtinCloudFormationValidation: false,
    });
    const stack = new Stack(app, 'Test');
    const logs = s3.Bucket.fromBucketName(stack, 'Logs', 'my-access-logs');

    // Act
    new SluicePipeline(stack, 'Pipeline', {
      pipeline: FIXTURES['two-phase'],
      entry: fixturePath('two-phase'),
      accessLogsBucket: logs,
    });

    // Assert
    Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: {
        DestinationBucketName: 'my-access-logs',
        LogFilePrefix: 'sluice/fixture-words/',
      },
    });
  });

  it('uses an existing bucket and stream instead of creating them', () => {
    // Arrange
    const app = new App({
      context: { 'aws:cdk:bundling-stacks': [] },
      builtinCloudFormationValidation: false,
    });
    const stack = new Stack(app, 'Test');
    const bucket = s3.Bucket.fromBucketName(stack, 'Existing', 'existing-bucket');
    const stream = kinesis.Stream.fromStreamArn(
      stack,
      'ExistingStream',
      'arn:aws:kinesis:us-east-1:123456789012:stream/existing',
    );

    // Act
    new SluicePipeline(stack, 'Pipeline', {
      pipeline: FIXTURES['two-phase'],
      entry: fixturePath('two-phase'),
      bucket,
      stream,
    });
    const template = Template.fromStack(stack);

    // Assert
    template.resourceCountIs('AWS::S3::Bucket', 0);
    template.resourceCountIs('AWS::Kinesis::Stream', 0);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: 'arn:aws:kinesis:us-east-1:123456789012:stream/existing',
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ SLUICE_BUCKET: 'existing-bucket' }) },
    });
  });
});

describe('SluicePipeline: ledger table and stream', () => {
  it('creates one on-demand table keyed by pk/sk strings with point-in-time recovery', () => {
    // Arrange
    const { template } = twoPhase;

    // Act
    const table = only(template, 'AWS::DynamoDB::Table');

    // Assert
    expect(table).toMatchObject({
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });

  it('creates the source stream by its name, encrypted with the aws/kinesis key', () => {
    // Arrange
    const { template } = build('two-phase', { shardCount: 3 });

    // Act
    const stream = only(template, 'AWS::Kinesis::Stream');

    // Assert
    expect(stream).toMatchObject({
      Name: 'fixture-lines',
      ShardCount: 3,
      RetentionPeriodHours: 24,
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
  });

  it('applies the removal policy to the stateful resources', () => {
    // Arrange
    const { template } = build('two-phase', { removalPolicy: RemovalPolicy.DESTROY });

    // Act
    const policies = [
      'AWS::S3::Bucket',
      'AWS::DynamoDB::Table',
      'AWS::Kinesis::Stream',
      'AWS::SQS::Queue',
      'AWS::Logs::LogGroup',
    ].map((type) =>
      Object.values(template.findResources(type)).map(
        (r) => (r as { DeletionPolicy?: string }).DeletionPolicy,
      ),
    );

    // Assert
    expect(new Set(policies.flat())).toEqual(new Set(['Delete']));
  });
});

describe('SluicePipeline: functions', () => {
  it('creates ingest, coordinator and one function per phase', () => {
    // Arrange
    const { sluice, template } = build('three-phase');

    // Act
    const functions = template.findResources('AWS::Lambda::Function');

    // Assert
    expect(Object.keys(sluice.functions)).toEqual(['histogram', 'sum', 'split']);
    expect(Object.keys(functions)).toHaveLength(5);
  });

  it('runs every function on nodejs22.x, arm64, with its own log group', () => {
    // Arrange
    const { template } = twoPhase;

    // Act
    const functions = Object.values(template.findResources('AWS::Lambda::Function')) as {
      Properties: Record<string, unknown>;
    }[];

    // Assert
    expect(functions).toHaveLength(4);
    for (const fn of functions) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        LoggingConfig: { LogGroup: { Ref: expect.any(String) as unknown } },
      });
    }
    template.resourceCountIs('AWS::Logs::LogGroup', 4);
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('configures each function from CONFIG_ENV, naming only the functions it invokes', () => {
    // Arrange
    const { stack, sluice, template } = twoPhase;
    const ref = (fn: Parameters<typeof logicalId>[1]) => ({ Ref: logicalId(stack, fn) });
    const sum = sluice.functions.sum;
    if (!sum) throw new Error('no sum function');

    // Act
    const env = (fn: Parameters<typeof logicalId>[1]) =>
      (
        template.findResources('AWS::Lambda::Function')[logicalId(stack, fn)] as {
          Properties: { Environment: { Variables: Record<string, unknown> } };
        }
      ).Properties.Environment.Variables;

    // Assert
    expect(env(sluice.coordinator)).toEqual({
      SLUICE_BUCKET: ref(sluice.bucket),
      SLUICE_TABLE: ref(sluice.table),
      SLUICE_FUNCTION: 'coordinator',
      SLUICE_FUNCTIONS: {
        'Fn::Join': ['', ['{"split":"', ref(sluice.functions.split ?? sum), '","sum":"', ref(sum), '"}']],
      },
      SLUICE_SWEEP_AFTER_MS: '300000',
      SLUICE_LEDGER_RETENTION_MS: String(7 * 24 * 3600_000),
      SLUICE_STREAMS: { 'Fn::Join': ['', ['[["', ref(sluice.stream), '","fixture-lines"]]']] },
    });
    expect(env(sum).SLUICE_FUNCTIONS).toBe('{}');
    expect(env(sum).SLUICE_LEDGER_RETENTION_MS).toBeUndefined();
    // Ingest wakes the coordinator when records reach an idle stream.
    expect(env(sluice.ingest).SLUICE_FUNCTIONS).toEqual({
      'Fn::Join': ['', ['{"coordinator":"', ref(sluice.coordinator), '"}']],
    });
  });

  it.each<FixtureName>(['two-phase', 'three-phase', 'single-phase', 'joined-windows', 'running-totals'])(
    'names in the environment of each %s function exactly the other functions it invokes',
    (name) => {
      // Arrange
      const built = build(name);
      const { stack, sluice, template } = built;
      const ref = (id: string) => `<${logicalId(stack, functionOf(built, id))}>`;

      // Act
      const configs = sluice.deployment.functions.map((spec) => {
        const env = resolvedEnvironment(template, logicalId(stack, functionOf(built, spec.id)));
        return { spec, env, config: configFromEnv(env) };
      });

      // Assert
      expect(configs).toHaveLength(Object.keys(template.findResources('AWS::Lambda::Function')).length);
      for (const { spec, env, config } of configs) {
        const others = spec.invokes.filter((target) => target !== spec.id);
        expect(env.SLUICE_FUNCTION).toBe(spec.id);
        expect(config.functions).toEqual(Object.fromEntries(others.map((target) => [target, ref(target)])));
      }
    },
  );

  it('leaves a stateful phase its own name to Lambda, which configFromEnv adds', () => {
    // Arrange
    const built = build('running-totals');
    const { stack, template } = built;
    const env = resolvedEnvironment(template, logicalId(stack, functionOf(built, 'totals')));

    // Act
    const config = configFromEnv({ ...env, AWS_LAMBDA_FUNCTION_NAME: 'deployed-totals' });

    // Assert
    expect(JSON.parse(env.SLUICE_FUNCTIONS ?? '')).not.toHaveProperty('totals');
    expect(config.functions).toEqual({
      recent: `<${logicalId(stack, functionOf(built, 'recent'))}>`,
      totals: 'deployed-totals',
    });
  });

  it('maps deployed stream names to sources for a join', () => {
    // Arrange
    const built = build('joined-windows');
    const { stack, sluice, template } = built;

    // Act
    const config = configFromEnv(resolvedEnvironment(template, logicalId(stack, sluice.ingest)));

    // Assert
    expect(config.streams).toEqual(
      Object.fromEntries(
        Object.entries(sluice.streams).map(([source, stream]) => [`<${logicalId(stack, stream)}>`, source]),
      ),
    );
    expect(Object.values(config.streams ?? {}).sort()).toEqual(['fixture-left', 'fixture-right']);
  });

  it('sets asynchronous retries from the description, and none for ingest', () => {
    // Arrange
    const built = build('running-totals');
    const { stack, sluice, template } = built;

    // Act
    const configs = Object.values(template.findResources('AWS::Lambda::EventInvokeConfig')) as {
      Properties: { FunctionName: { Ref: string }; MaximumRetryAttempts: number };
    }[];
    const retries = Object.fromEntries(
      configs.map((c) => [c.Properties.FunctionName.Ref, c.Properties.MaximumRetryAttempts]),
    );

    // Assert
    expect(retries).toEqual(
      Object.fromEntries(
        sluice.deployment.functions
          .filter((spec) => spec.asyncRetries !== undefined)
          .map((spec) => [logicalId(stack, functionOf(built, spec.id)), spec.asyncRetries]),
      ),
    );
    expect(retries).not.toHaveProperty(logicalId(stack, sluice.ingest));
  });

  it('sizes functions from the props', () => {
    // Arrange
    const props = {
      taskMemorySize: 2048,
      taskTimeout: Duration.minutes(3),
      coordinatorTimeout: Duration.seconds(90),
      ingestMemorySize: 256,
    };

    // Act
    const { stack, sluice, template } = build('two-phase', props);
    const fn = (c: Parameters<typeof logicalId>[1]) =>
      (
        template.findResources('AWS::Lambda::Function')[logicalId(stack, c)] as {
          Properties: Record<string, unknown>;
        }
      ).Properties;

    // Assert
    expect(fn(sluice.functions.split ?? sluice.ingest)).toMatchObject({ MemorySize: 2048, Timeout: 180 });
    expect(fn(sluice.coordinator)).toMatchObject({ MemorySize: 256, Timeout: 90 });
    expect(fn(sluice.ingest)).toMatchObject({ MemorySize: 256, Timeout: 60 });
  });

  it('tells only the coordinator not to wait for boundaries when coordinatorWaits is false, and says so in its output', () => {
    // Act
    const { stack, sluice, template } = build('two-phase', { coordinatorWaits: false });
    const waiting = build('two-phase');
    const env = (built: typeof waiting, fn: Parameters<typeof logicalId>[1]) =>
      resolvedEnvironment(built.template, logicalId(built.stack, fn));
    const outputs = Object.values(template.findOutputs('*', { Description: RESOURCES_OUTPUT_DESCRIPTION }));

    // Assert
    expect(env({ stack, sluice, template }, sluice.coordinator)[CONFIG_ENV.coordinatorWaits]).toBe('false');
    expect(configFromEnv(env({ stack, sluice, template }, sluice.coordinator)).coordinatorWaits).toBe(false);
    for (const fn of [sluice.ingest, ...Object.values(sluice.functions)])
      expect(env({ stack, sluice, template }, fn)).not.toHaveProperty(CONFIG_ENV.coordinatorWaits);
    expect(env(waiting, waiting.sluice.coordinator)).not.toHaveProperty(CONFIG_ENV.coordinatorWaits);
    expect(configFromEnv(env(waiting, waiting.sluice.coordinator)).coordinatorWaits).toBeUndefined();
    expect(JSON.stringify(outputs[0]?.Value)).toContain('\\"coordinatorWaits\\":false');
  });

  it('names its resources, memory and coordinator timeout in a stack output the CLI reads', () => {
    // Arrange
    const props = { taskMemorySize: 2048, coordinatorTimeout: Duration.seconds(90) };

    // Act
    const { stack, sluice, template } = build('two-phase', props);
    const outputs = Object.values(template.findOutputs('*', { Description: RESOURCES_OUTPUT_DESCRIPTION }));
    const value = JSON.stringify(outputs[0]?.Value);

    // Assert
    expect(outputs).toHaveLength(1);
    expect(sluice.resourcesOutput.description).toBe(RESOURCES_OUTPUT_DESCRIPTION);
    expect(value).toContain('\\"kind\\":\\"sluice.resources@1\\"');
    expect(value).toContain(
      '\\"memoryMb\\":{\\"ingest\\":512,\\"coordinator\\":256,\\"transform\\":2048,\\"reduce\\":2048}',
    );
    expect(value).toContain('\\"coordinatorTimeoutMs\\":90000');
    for (const resource of [sluice.bucket, sluice.table, sluice.ingest, sluice.coordinator]) {
      expect(value).toContain(`"Ref":"${logicalId(stack, resource)}"`);
    }
  });

  it('retries task invocations twice, then sends them to the failure queue', () => {
    // Arrange
    const { stack, sluice, template } = twoPhase;
    const queue = { 'Fn::GetAtt': [logicalId(stack, sluice.failureQueue), 'Arn'] };

    // Act
    const configs = Object.values(template.findResources('AWS::Lambda::EventInvokeConfig')) as {
      Properties: { FunctionName: { Ref: string } } & Record<string, unknown>;
    }[];
    const byFunction = Object.fromEntries(configs.map((c) => [c.Properties.FunctionName.Ref, c.Properties]));

    // Assert
    for (const fn of Object.values(sluice.functions)) {
      expect(byFunction[logicalId(stack, fn)]).toMatchObject({
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: 3600,
        DestinationConfig: { OnFailure: { Destination: queue } },
      });
    }
    expect(byFunction[logicalId(stack, sluice.coordinator)]).toMatchObject({
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
  });

  it('retains the failure queue by default', () => {
    // Arrange
    const { template } = twoPhase;

    // Act
    const queues = Object.values(template.findResources('AWS::SQS::Queue'));

    // Assert
    expect(queues).toEqual([
      expect.objectContaining({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' }),
    ]);
  });

  it('encrypts the failure queue and requires TLS on it', () => {
    // Arrange
    const { template } = twoPhase;

    // Act
    const queue = only(template, 'AWS::SQS::Queue');
    const policy = only(template, 'AWS::SQS::QueuePolicy');

    // Assert
    expect(queue).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    expect(JSON.stringify(policy.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
  });
});

describe('SluicePipeline: triggers', () => {
  it('maps the stream to ingest from the trim horizon, one batch per shard, never bisected', () => {
    // Arrange
    const { stack, sluice, template } = build('two-phase', { ingestBatchSize: 500 });

    // Act
    const mapping = only(template, 'AWS::Lambda::EventSourceMapping');

    // Assert
    expect(mapping).toEqual({
      FunctionName: { Ref: logicalId(stack, sluice.ingest) },
      EventSourceArn: { 'Fn::GetAtt': [logicalId(stack, sluice.stream), 'Arn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 500,
      // The pipeline's batch interval: one ingest call per shard per interval at low rates.
      MaximumBatchingWindowInSeconds: 10,
      ParallelizationFactor: 1,
      BisectBatchOnFunctionError: false,
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(stack, sluice.failureQueue), 'Arn'] } },
      },
    });
  });

  it('gathers records for a batch interval (up to 300 s) and up to 10,000 records, unless told otherwise', () => {
    // Act
    const long = only(build('three-phase').template, 'AWS::Lambda::EventSourceMapping');
    const told = only(
      build('two-phase', { ingestMaxBatchingWindow: Duration.seconds(3) }).template,
      'AWS::Lambda::EventSourceMapping',
    );

    // Assert
    expect(long).toMatchObject({ BatchSize: 10_000, MaximumBatchingWindowInSeconds: 120 });
    expect(told).toMatchObject({ BatchSize: 10_000, MaximumBatchingWindowInSeconds: 3 });
  });

  it('ticks the coordinator every minute from EventBridge Scheduler', () => {
    // Arrange
    const { stack, sluice, template } = twoPhase;

    // Act
    const schedule = only(template, 'AWS::Scheduler::Schedule');

    // Assert
    expect(schedule).toMatchObject({
      ScheduleExpression: 'rate(1 minute)',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [logicalId(stack, sluice.coordinator), 'Arn'] },
        RetryPolicy: { MaximumEventAgeInSeconds: 60, MaximumRetryAttempts: 2 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(stack, sluice.failureQueue), 'Arn'] } },
      },
    });
  });

  it('sends the coordinator the tick of the description, which the coordinator accepts', () => {
    // Arrange
    const { sluice, template } = twoPhase;

    // Act
    const input = (only(template, 'AWS::Scheduler::Schedule').Target as { Input: string }).Input;
    const tick: unknown = JSON.parse(input);

    // Assert
    expect(tick).toEqual({ kind: 'sluice.tick@1', pipeline: 'fixture-words' });
    expect(tick).toEqual(sluice.deployment.tick);
    expect(parseTickEvent(tick, 'fixture-words')).toEqual(sluice.deployment.tick);
  });
});

describe('SluicePipeline: observability', () => {
  it('alarms on scheduling delay, treating no completed batches as breaching', () => {
    // Arrange
    const { template } = build('three-phase');

    // Act
    const alarms = template.findResources('AWS::CloudWatch::Alarm', {
      Properties: { MetricName: 'SchedulingDelay' },
    });

    // Assert
    expect(Object.values(alarms)[0]).toMatchObject({
      Properties: {
        Namespace: 'Sluice',
        Dimensions: expect.arrayContaining([
          { Name: 'service', Value: 'sluice-fixture-histogram' },
          { Name: 'pipeline', Value: 'fixture-histogram' },
        ]) as unknown,
        Statistic: 'Maximum',
        // The fixture's batch interval is two minutes: three intervals, over two-minute periods.
        Threshold: 360_000,
        Period: 120,
        TreatMissingData: 'breaching',
      },
    });
  });

  it('alarms on failed batches, failed invocations and ingest lag, notifying the topic', () => {
    // Arrange
    const app = new App({
      context: { 'aws:cdk:bundling-stacks': [] },
      builtinCloudFormationValidation: false,
    });
    const stack = new Stack(app, 'Test');
    const topic = sns.Topic.fromTopicArn(stack, 'Topic', 'arn:aws:sns:us-east-1:123456789012:ops');

    // Act
    new SluicePipeline(stack, 'Pipeline', {
      pipeline: FIXTURES['two-phase'],
      entry: fixturePath('two-phase'),
      alarmTopic: topic,
      streamRetention: Duration.hours(48),
    });
    const template = Template.fromStack(stack);

    // Assert
    template.resourceCountIs('AWS::CloudWatch::Alarm', 4);
    // Half the stream's retention: records left unread past it are lost.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Namespace: 'AWS/Lambda',
      Threshold: 24 * 3600 * 1000,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: ['arn:aws:sns:us-east-1:123456789012:ops'],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'FailedBatches',
      Namespace: 'Sluice',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: ['arn:aws:sns:us-east-1:123456789012:ops'],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      AlarmActions: ['arn:aws:sns:us-east-1:123456789012:ops'],
    });
  });

  it('builds a dashboard of batch metrics and per-function errors and durations', () => {
    // Arrange
    const { template } = twoPhase;

    // Act
    const body = JSON.stringify(only(template, 'AWS::CloudWatch::Dashboard'));

    // Assert
    for (const text of [
      'InputRecords',
      'OutputRecords',
      'DeadLetters',
      'ProcessingTime',
      'SchedulingDelay',
      'FailedBatches',
      'IncomingRecords',
      'IteratorAge',
      'Errors',
      'Duration',
      'Batch processing time',
      'Scheduling delay',
      'TotalDelay',
      'InputBytes',
      'BatchCostMicroUsd',
      'Batch cost per hour',
      'StateKeys',
      'StateBytes',
      'SealTime',
      'WatermarkLag',
    ]) {
      expect(body).toContain(text);
    }
    expect(body).toContain('sluice-fixture-words');
  });
});

describe('SluicePipeline: validation', () => {
  it('refuses a sweep that would re-drive tasks still within their timeout', () => {
    // Arrange
    const props = { taskTimeout: Duration.minutes(5), sweepAfter: Duration.minutes(5) };

    // Act
    const attempt = () => build('two-phase', props);

    // Assert
    expect(attempt).toThrow(/sweepAfter .* must be longer than taskTimeout/);
  });

  it('refuses a pipeline module that does not exist', () => {
    // Arrange
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Test');

    // Act
    const attempt = () =>
      new SluicePipeline(stack, 'Pipeline', {
        pipeline: FIXTURES['two-phase'],
        entry: 'nowhere/p.ts',
      });

    // Assert
    expect(attempt).toThrow(/pipeline module 'nowhere\/p.ts' does not exist/);
  });

  it('refuses an output prefix inside the runtime prefixes', () => {
    // Arrange
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Test');
    const clash = pipeline({
      name: 'clash',
      batchInterval: '10s',
      source: kinesisSource({ stream: 's', decode: utf8 }),
      stages: [map<string, string>('id', (s) => s)],
      sinks: [s3Jsonl({ prefix: 'segments/out' })],
    }) as AnyPipeline;

    // Act
    const attempt = () =>
      new SluicePipeline(stack, 'Pipeline', { pipeline: clash, entry: fixturePath('two-phase') });

    // Assert
    expect(attempt).toThrow(/overlaps the runtime's 'segments\/' prefix/);
  });

  it('refuses an output prefix that IAM would read as a wildcard, even from a sink s3Jsonl did not check', () => {
    // Arrange: s3Jsonl() refuses '*' itself; a sink written by hand reaches the construct.
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Test');
    expect(() => s3Jsonl({ prefix: '*' })).toThrow(/unsafe in S3 keys or IAM resources/);
    const handWritten = { spec: { kind: 'sluice.sink/s3Jsonl@1', prefix: '*' } } as const;
    const everywhere = pipeline({
      name: 'everywhere',
      batchInterval: '10s',
      source: kinesisSource({ stream: 's', decode: utf8 }),
      stages: [map<string, string>('id', (s) => s)],
      sinks: [handWritten],
    }) as AnyPipeline;

    // Act
    const attempt = () =>
      new SluicePipeline(stack, 'Pipeline', {
        pipeline: everywhere,
        entry: fixturePath('two-phase'),
      });

    // Assert
    expect(attempt).toThrow(/output prefix '\*' has '\*'/);
  });
});

describe('SluicePipeline: customer-managed KMS key', () => {
  const encrypted = build('joined-windows', withKey);
  const keyArn = (built: Built) => {
    const key = built.sluice.table.encryptionKey;
    if (!key) throw new Error('no key');
    return { 'Fn::GetAtt': [logicalId(built.stack, key), 'Arn'] };
  };

  it('encrypts the bucket with the key and an S3 Bucket Key', () => {
    // Arrange
    const { template } = encrypted;

    // Act
    const bucket = only(template, 'AWS::S3::Bucket');

    // Assert
    expect(bucket.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [
        {
          BucketKeyEnabled: true,
          ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyArn(encrypted) },
        },
      ],
    });
  });

  it('encrypts the ledger table, every stream and the failure queue with the key', () => {
    // Arrange
    const { template } = encrypted;

    // Act
    const table = only(template, 'AWS::DynamoDB::Table');
    const streams = Object.values(template.findResources('AWS::Kinesis::Stream')) as {
      Properties: Record<string, unknown>;
    }[];
    const queue = only(template, 'AWS::SQS::Queue');

    // Assert
    expect(table.SSESpecification).toEqual({
      SSEEnabled: true,
      SSEType: 'KMS',
      KMSMasterKeyId: keyArn(encrypted),
    });
    expect(streams).toHaveLength(2);
    for (const stream of streams) {
      expect(stream.Properties.StreamEncryption).toEqual({ EncryptionType: 'KMS', KeyId: keyArn(encrypted) });
    }
    expect(queue.KmsMasterKeyId).toEqual(keyArn(encrypted));
    expect(queue).not.toHaveProperty('SqsManagedSseEnabled');
  });

  it('keeps the default encryption of each resource without a key', () => {
    // Arrange
    const { template } = build('joined-windows');

    // Act
    const table = only(template, 'AWS::DynamoDB::Table');
    const queue = only(template, 'AWS::SQS::Queue');
    const bucket = only(template, 'AWS::S3::Bucket');

    // Assert
    expect(table).not.toHaveProperty('SSESpecification');
    expect(queue).toMatchObject({ SqsManagedSseEnabled: true });
    expect(JSON.stringify(bucket.BucketEncryption)).toContain('AES256');
    template.allResourcesProperties('AWS::Kinesis::Stream', {
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
    expect(JSON.stringify(template.toJSON())).not.toContain('kms:');
  });

  it('lets every function encrypt and decrypt with the key (each writes the bucket and the ledger), and nothing else', () => {
    // Arrange
    const key = `<${logicalId(encrypted.stack, encrypted.sluice.table.encryptionKey ?? encrypted.sluice.table)}.Arn>`;

    // Act
    const uses = encrypted.sluice.deployment.functions.map(({ id }) => {
      const fn = functionOf(encrypted, id);
      const grants = functionGrants(encrypted, fn).filter((g) => g.actions.some((a) => a.startsWith('kms:')));
      return {
        id,
        resources: [...new Set(grants.flatMap((g) => g.resources))],
        actions: [...new Set(grants.flatMap((g) => g.actions))].sort(),
      };
    });

    // Assert
    for (const use of uses) {
      expect(use.resources).toEqual([key]);
      expect(use.actions).toEqual(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*']);
    }
  });

  it('lets the schedule role put undeliverable ticks into the encrypted queue, without wildcards', () => {
    // Arrange
    const { template } = encrypted;
    const schedule = only(template, 'AWS::Scheduler::Schedule') as {
      Target: { RoleArn: { 'Fn::GetAtt': [string, string] } };
    };

    // Act
    const grants = roleGrants(template, schedule.Target.RoleArn['Fn::GetAtt'][0]).filter((g) =>
      g.actions.some((a) => a.startsWith('kms:')),
    );

    // Assert
    expect(grants.map((g) => [...g.actions].sort())).toEqual([['kms:Decrypt', 'kms:GenerateDataKey']]);
  });

  it("grants decrypt on an existing stream's own key to ingest, through the event-source mapping", () => {
    // Arrange
    const built = build('two-phase', (stack) => ({
      stream: kinesis.Stream.fromStreamAttributes(stack, 'Existing', {
        streamArn: 'arn:aws:kinesis:us-east-1:123456789012:stream/existing',
        encryptionKey: kms.Key.fromKeyArn(
          stack,
          'StreamKey',
          'arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555',
        ),
      }),
    }));

    // Act
    const grants = functionGrants(built, built.sluice.ingest).filter((g) =>
      g.resources.includes('arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555'),
    );
    const others = built.sluice.deployment.functions
      .filter(({ id }) => id !== 'ingest')
      .flatMap(({ id }) => functionGrants(built, functionOf(built, id)))
      .filter((g) => g.actions.some((a) => a.startsWith('kms:')));

    // Assert
    expect(grants.flatMap((g) => g.actions)).toEqual(['kms:Decrypt']);
    expect(others).toEqual([]);
  });

  it("grants an existing bucket's own key to every function, each of which writes the bucket", () => {
    // Arrange
    const bucketKey = 'arn:aws:kms:us-east-1:123456789012:key/66666666-7777-8888-9999-000000000000';
    const built = build('two-phase', (stack) => ({
      bucket: s3.Bucket.fromBucketAttributes(stack, 'Existing', {
        bucketName: 'existing-data',
        encryptionKey: kms.Key.fromKeyArn(stack, 'BucketKey', bucketKey),
      }),
    }));

    // Act
    const uses = built.sluice.deployment.functions.map(({ id }) => [
      id,
      functionGrants(built, functionOf(built, id))
        .filter((g) => g.resources.includes(bucketKey))
        .flatMap((g) => g.actions)
        .sort(),
    ]);

    // Assert
    expect(Object.fromEntries(uses)).toEqual(
      Object.fromEntries(
        ['split', 'sum', 'coordinator', 'ingest'].map((id) => [
          id,
          ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'],
        ]),
      ),
    );
  });
});

describe('SluicePipeline: plan lock', () => {
  const source = kinesisSource({ stream: 'locked', decode: utf8 });
  const words = map<string, [string, number]>('pairs', (line) => [line, 1]);
  const count = (partitions: number) => reduceByKey<string, number>('count', (a, b) => a + b, { partitions });
  const totals = (partitions: number, id = 'totals') =>
    updateStateByKey<string, number, number>(
      id,
      (values, state) => values.reduce((a, b) => a + b, state ?? 0),
      {
        partitions,
      },
    );
  const make = (stages: readonly AnyStage[]) =>
    pipeline({ name: 'locked', batchInterval: '10s', source, stages: stages as never }) as AnyPipeline;
  const construct = (
    locked: AnyPipeline,
    lock: string,
    options: { allowBreakingChanges?: boolean; allowRescale?: boolean } = {},
  ) => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    return new SluicePipeline(new Stack(app, 'Locked'), 'Pipeline', {
      pipeline: locked,
      entry: fixturePath('two-phase'),
      planLock: lock,
      ...options,
    });
  };
  const refusal = (attempt: () => unknown): Error | undefined => {
    try {
      attempt();
      return undefined;
    } catch (error) {
      return error as Error;
    }
  };
  const lockedFingerprint = (lock: string) =>
    (JSON.parse(readFileSync(lock, 'utf8')) as { fingerprint: string }).fingerprint;

  it('keeps the plan, rolls a compatible change forward, and refuses a breaking one before deploying', () => {
    // Arrange
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-lock-'));
    const lock = path.join(dir, 'sluice.plan.json');
    const first = construct(make([words, count(4)]), lock);
    const compatible = construct(
      make([words, count(4), map('upper', ([w, n]: [string, number]) => [w.toUpperCase(), n])]),
      lock,
    );
    const stateless = construct(make([words, count(8)]), lock);

    try {
      // Act
      const breaking = refusal(() => construct(make([words, totals(8)]), lock));
      const refusedLock = lockedFingerprint(lock);
      const allowed = construct(make([words, totals(8)]), lock, { allowBreakingChanges: true });

      // Assert
      expect(first.plan.spec.fingerprint).not.toBe(compatible.plan.spec.fingerprint);
      expect(breaking?.message).toMatch(
        /pipeline 'locked': this plan cannot take over from the one in .*sluice.plan.json: the keyed stages changed \(count to totals\)\. .*Options: undo the change/,
      );
      expect(refusedLock).toBe(stateless.plan.spec.fingerprint);
      expect(lockedFingerprint(lock)).toBe(allowed.plan.spec.fingerprint);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a stateful stage's new partition count unless the rescale is allowed", () => {
    // Arrange
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-lock-'));
    const lock = path.join(dir, 'sluice.plan.json');
    construct(make([words, totals(4)]), lock);

    try {
      // Act
      const refused = refusal(() => construct(make([words, totals(8)]), lock));
      const rescaled = construct(make([words, totals(8)]), lock, { allowRescale: true });

      // Assert
      expect(refused?.message).toMatch(
        /pipeline 'locked': keyed stage 'totals' goes from 4 to 8 partitions .*re-hashed into the new partitions .*allowRescale: true/,
      );
      expect(lockedFingerprint(lock)).toBe(rescaled.plan.spec.fingerprint);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
