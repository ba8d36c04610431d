import { Stack, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { DeployedFunction } from '../lib/deployment';
import { ledgerUse } from './access';

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
 * The stores a function's role may have been granted wildcards on, and the failure queue every
 * function sends to.
 *
 * @example
 * const stores: GrantedStores = { bucket: sluice.bucket, table: sluice.table, failureQueue: sluice.failureQueue };
 */
export interface GrantedStores {
  readonly bucket: s3.IBucket;
  readonly table: dynamodb.ITable;
  readonly failureQueue: sqs.IQueue;
}

/**
 * Acknowledges that the failure queue has no dead-letter queue (AwsSolutions-SQS3).
 *
 * @example
 * acknowledgeTerminalQueue(failureQueue);
 */
export function acknowledgeTerminalQueue(queue: sqs.IQueue): void {
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason:
      'This queue is the terminal destination of failed asynchronous invocations, event-source ' +
      'mapping batches and schedule deliveries; a dead-letter queue behind it would only move the ' +
      'same messages again. The failedInvocations alarm watches its depth.',
  });
}

/**
 * Acknowledges that a bucket the construct created writes no server access logs (AwsSolutions-S1),
 * when it was given no `accessLogsBucket`.
 *
 * @example
 * if (!props.accessLogsBucket) acknowledgeUnloggedBucket(bucket);
 */
export function acknowledgeUnloggedBucket(bucket: s3.IBucket): void {
  Validations.of(bucket).acknowledge({
    id: 'AwsSolutions-S1',
    reason:
      'Only the pipeline functions write this bucket, hundreds of machine-named objects per ' +
      'batch; request logs would cost more than the pipeline. Pass accessLogsBucket to turn ' +
      'server access logs on, or use CloudTrail data events.',
  });
}

/**
 * Acknowledges that a created stream uses the customer-managed key instead of `aws/kinesis`
 * (AwsSolutions-KDS3).
 *
 * @example
 * if (encryptionKey) acknowledgeKeyedStream(stream);
 */
export function acknowledgeKeyedStream(stream: kinesis.IStream): void {
  Validations.of(stream).acknowledge({
    id: 'AwsSolutions-KDS3',
    reason:
      'The stream uses the customer-managed key the deployment was given (encryptionKey), as ' +
      'every data store of the pipeline does; its per-request KMS cost is part of that choice.',
  });
}

/**
 * Acknowledges that a function runs on nodejs22.x rather than the newest runtime (AwsSolutions-L1).
 *
 * @example
 * acknowledgePinnedRuntime(fn);
 */
export function acknowledgePinnedRuntime(fn: lambda.IFunction): void {
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-L1',
    reason:
      'sluice targets nodejs22.x, the runtime its code, bundles (esbuild target node22) and AWS SDK ' +
      'v3 support window are tested against; moving to a newer runtime is a deliberate upgrade.',
  });
}

/**
 * Acknowledges exactly the wildcards a function's role was given, as cdk-nag names them
 * (AwsSolutions-IAM5): its object prefixes, and the KMS action wildcards of CDK's encrypt grant.
 *
 * @example
 * acknowledgeGrantWildcards(role, spec, { bucket, table, failureQueue });
 */
export function acknowledgeGrantWildcards(
  role: iam.IRole,
  spec: DeployedFunction,
  stores: GrantedStores,
): void {
  const stack = Stack.of(role);
  const { bucket, table, failureQueue } = stores;
  const prefixes = new Set([...spec.objects.read, ...spec.objects.write]);
  for (const prefix of prefixes) {
    const resource = flattenForNag(stack.resolve(bucket.arnForObjects(`${prefix}*`)));
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${resource}]`,
      reason: PREFIX_WILDCARD_REASON,
    });
  }
  // Every function sends to the failure queue (an async destination, or ingest's event-source
  // failure destination); writers of an encrypted bucket or table get CDK's encrypt grant.
  const keyWildcards =
    failureQueue.encryptionMasterKey !== undefined ||
    (bucket.encryptionKey !== undefined && spec.objects.write.length > 0) ||
    (table.encryptionKey !== undefined && ledgerUse(spec).writes);
  if (keyWildcards) {
    for (const action of KMS_WILDCARD_ACTIONS) {
      Validations.of(role).acknowledge({
        id: `AwsSolutions-IAM5[Action::${action}]`,
        reason: KMS_WILDCARD_REASON,
      });
    }
  }
}

/**
 * Acknowledges the wildcard of the schedule's invoke grant on the coordinator (AwsSolutions-IAM5).
 *
 * @example
 * acknowledgeTickWildcard(tickRole, coordinator);
 */
export function acknowledgeTickWildcard(role: iam.IRole, coordinator: lambda.IFunction): void {
  const stack = Stack.of(role);
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${flattenForNag(stack.resolve(`${coordinator.functionArn}:*`))}]`,
    reason:
      'The LambdaInvoke schedule target grants invoke on the coordinator and its qualified ARNs ' +
      '(versions, aliases); the wildcard never reaches another function.',
  });
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
