import { App, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { SluicePipeline } from 'sluice/cdk';
import { build, FIXTURES, fixturePath, logicalId, type FixtureName } from './helpers';

function acknowledged(scope: IConstruct): string[] {
  return scope.node
    .findAll()
    .flatMap((c) => c.node.metadata)
    .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
    .flatMap((entry) => Object.keys(entry.data as Record<string, string>))
    .map((id) => id.replace(/^annotation::/i, ''));
}

const ALL: FixtureName[] = ['two-phase', 'three-phase', 'single-phase', 'joined-windows', 'running-totals'];

/** A customer-managed key made in the test stack, rotated as cdk-nag's KMS5 wants. */
const withKey = (stack: Stack) => ({ encryptionKey: new kms.Key(stack, 'Key', { enableKeyRotation: true }) });

describe('cdk-nag AwsSolutions checks', () => {
  it.each(ALL)('pass for the %s fixture', (name) => {
    // Arrange
    const { stack } = build(name);

    // Act
    const report = new AwsSolutionsChecks().validateScope(stack);

    // Assert
    expect(report.violations).toEqual([]);
    expect(report.success).toBe(true);
  });

  it.each(ALL)('pass for the %s fixture with a customer-managed key', (name) => {
    // Arrange
    const { stack } = build(name, withKey);

    // Act
    const report = new AwsSolutionsChecks().validateScope(stack);

    // Assert
    expect(report.violations).toEqual([]);
  });

  it('pass with server access logs, an alarm topic and an existing bucket', () => {
    // Arrange
    const app = new App({
      context: { 'aws:cdk:bundling-stacks': [] },
      builtinCloudFormationValidation: false,
    });
    const stack = new Stack(app, 'Test');
    const topic = new sns.Topic(stack, 'Topic', { enforceSSL: true });
    Validations.of(topic).acknowledge({ id: 'AwsSolutions-SNS2', reason: 'test topic' });
    new SluicePipeline(stack, 'Logged', {
      pipeline: FIXTURES['two-phase'],
      entry: fixturePath('two-phase'),
      accessLogsBucket: s3.Bucket.fromBucketName(stack, 'Logs', 'access-logs'),
      alarmTopic: topic,
    });
    new SluicePipeline(stack, 'Existing', {
      pipeline: FIXTURES['single-phase'],
      entry: fixturePath('single-phase'),
      bucket: s3.Bucket.fromBucketName(stack, 'Data', 'existing-data'),
      dashboardName: 'other',
    });

    // Act
    const report = new AwsSolutionsChecks().validateScope(stack);

    // Assert
    expect(report.violations).toEqual([]);
  });

  it('acknowledges only inherent findings, each by its exact id', () => {
    // Arrange
    const { stack, sluice } = build('two-phase');
    const bucket = `<${logicalId(stack, sluice.bucket)}.Arn>`;
    const coordinator = `<${logicalId(stack, sluice.coordinator)}.Arn>`;

    // Act
    const ids = new Set(acknowledged(stack));

    // Assert
    expect(ids).toEqual(
      new Set([
        'AwsSolutions-S1',
        'AwsSolutions-SQS3',
        'AwsSolutions-L1',
        ...[
          'segments/',
          'segments/fixture-lines/',
          'manifests/',
          'shuffle/phase-0/',
          'dead-letter/phase-0/',
          'dead-letter/phase-1/',
          'dead-letter/skipped/',
          'results/words/',
          'progress/',
        ].map((prefix) => `AwsSolutions-IAM5[Resource::${bucket}/${prefix}*]`),
        `AwsSolutions-IAM5[Resource::${coordinator}:*]`,
      ]),
    );
  });

  it("acknowledges a role's prefix wildcards on that role only", () => {
    // Arrange
    const { stack, sluice } = build('three-phase');
    const bucket = `<${logicalId(stack, sluice.bucket)}.Arn>`;
    const role = sluice.functions.sum?.role;
    if (!role) throw new Error('no sum role');

    // Act
    const ids = acknowledged(role).filter((id) => id.startsWith('AwsSolutions-IAM5'));

    // Assert
    expect(ids.sort()).toEqual(
      ['dead-letter/phase-1/', 'manifests/', 'progress/', 'shuffle/phase-0/', 'shuffle/phase-1/']
        .map((prefix) => `AwsSolutions-IAM5[Resource::${bucket}/${prefix}*]`)
        .sort(),
    );
  });

  it('acknowledges the key wildcards and the customer-managed stream key only when given a key', () => {
    // Arrange
    const plain = build('two-phase');
    const encrypted = build('two-phase', withKey);

    // Act
    const added = new Set(
      acknowledged(encrypted.stack).filter((id) => !acknowledged(plain.stack).includes(id)),
    );

    // Assert
    expect(added).toEqual(
      new Set([
        'AwsSolutions-KDS3',
        'AwsSolutions-IAM5[Action::kms:ReEncrypt*]',
        'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      ]),
    );
    expect(acknowledged(plain.stack).filter((id) => id.includes('kms') || id.includes('KDS'))).toEqual([]);
  });

  it('still reports a key wildcard on a role of the pipeline that was not given one', () => {
    // Arrange
    const { stack, sluice } = build('two-phase', withKey);
    const tickRole = sluice.node.tryFindChild('TickRole');
    if (!(tickRole instanceof iam.Role)) throw new Error('no tick role');
    sluice.failureQueue.encryptionMasterKey?.grantEncryptDecrypt(tickRole);

    // Act
    const report = new AwsSolutionsChecks().validateScope(stack);

    // Assert
    expect(report.violations.map((v) => v.ruleName).sort()).toEqual([
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      'AwsSolutions-IAM5[Action::kms:ReEncrypt*]',
    ]);
  });

  it('still reports a wildcard that is not a granted prefix', () => {
    // Arrange
    const { stack, sluice } = build('two-phase');
    const transform = sluice.functions.split;
    if (!transform?.role) throw new Error('no transform role');
    transform.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [sluice.bucket.arnForObjects('*')] }),
    );

    // Act
    const report = new AwsSolutionsChecks().validateScope(stack);

    // Assert
    expect(report.violations.map((v) => v.ruleName)).toEqual([
      `AwsSolutions-IAM5[Resource::<${logicalId(stack, sluice.bucket)}.Arn>/*]`,
    ]);
  });

  it('reports server access logs when they are off and unacknowledged', () => {
    // Arrange
    const app = new App({
      context: { 'aws:cdk:bundling-stacks': [] },
      builtinCloudFormationValidation: false,
    });
    const stack = new Stack(app, 'Test');
    new s3.Bucket(stack, 'Plain', { enforceSSL: true });

    // Act
    const report = new AwsSolutionsChecks().validateScope(stack);

    // Assert
    expect(report.violations.map((v) => v.ruleName)).toContain('AwsSolutions-S1');
  });
});
