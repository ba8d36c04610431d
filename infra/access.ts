import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { DeployedFunction } from '../lib/deployment';

/**
 * What one function's role is granted parts of: its own log group, the pipeline's bucket and ledger
 * table, and the other functions it invokes.
 *
 * @example
 * const reach: FunctionReach = { logGroup, bucket, table, invoked: [coordinator] };
 */
export interface FunctionReach {
  readonly logGroup: logs.ILogGroup;
  readonly bucket: s3.IBucket;
  readonly table: dynamodb.ITable;
  /** The functions it invokes, other than itself (see {@link grantSelfInvoke}). */
  readonly invoked: readonly lambda.IFunction[];
}

/**
 * Whether a function reads and writes the ledger at all: actions without partition keys would
 * grant nothing, and partition keys without actions neither.
 *
 * @example
 * if (ledgerUse(spec).writes) table.encryptionKey?.grantEncryptDecrypt(role);
 */
export function ledgerUse(spec: DeployedFunction): { readonly reads: boolean; readonly writes: boolean } {
  const { read, readActions, write, writeActions } = spec.ledger;
  return {
    reads: readActions.length > 0 && read.length > 0,
    writes: writeActions.length > 0 && write.length > 0,
  };
}

/**
 * Grants a function's role what the deployment description says the function uses, and nothing
 * else: writing its own log group (not every log group, as AWSLambdaBasicExecutionRole would), its
 * key prefixes of the bucket, its ledger items by partition key, invoking the functions it invokes,
 * and the use of the bucket's and table's keys its reads and writes need. The statements keep this
 * order in the role's policy.
 *
 * @example
 * grantFunctionAccess(role, deployedFunction(deployment, 'sum'), { logGroup, bucket, table, invoked: [] });
 */
export function grantFunctionAccess(role: iam.IRole, spec: DeployedFunction, reach: FunctionReach): void {
  reach.logGroup.grantWrite(role);
  grantObjects(role, spec, reach.bucket);
  grantLedger(role, spec, reach.table);
  if (reach.invoked.length > 0) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: reach.invoked.map((fn) => fn.functionArn),
      }),
    );
  }
}

/**
 * Lets a stateful phase invoke itself (it restarts its own waiting successor), if the description
 * says it does. The function depends on its role and everything under it (the default policy too),
 * so a statement there naming the function's own ARN would be a dependency cycle; a policy outside
 * the role attaches to it afterwards.
 *
 * @example
 * grantSelfInvoke(this, 'Reduce-sumSelfInvoke', spec, role, fn);
 */
export function grantSelfInvoke(
  scope: Construct,
  id: string,
  spec: DeployedFunction,
  role: iam.IRole,
  fn: lambda.IFunction,
): void {
  if (!spec.invokes.includes(spec.id)) return;
  new iam.Policy(scope, id, {
    roles: [role],
    statements: [
      new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [fn.functionArn] }),
    ],
  });
}

/**
 * Lets a producer that is no Lambda destination (EventBridge Scheduler delivering an undeliverable
 * tick) use the failure queue's customer-managed key, if it has one: what any SQS producer needs,
 * without the wildcard actions of CDK's send grant.
 *
 * @example
 * grantQueueKeyToProducer(tickRole, failureQueue);
 */
export function grantQueueKeyToProducer(role: iam.IRole, queue: sqs.IQueue): void {
  queue.encryptionMasterKey?.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey');
}

/** S3: each read prefix and each write prefix of the description, and listing for readers only. */
function grantObjects(role: iam.IRole, spec: DeployedFunction, bucket: s3.IBucket): void {
  const { read, write } = spec.objects;
  const objects = (prefixes: readonly string[]) =>
    prefixes.map((prefix) => bucket.arnForObjects(`${prefix}*`));
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
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': read.map((prefix) => `${prefix}*`) } },
      }),
    );
  }
  if (write.length > 0) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: objects(write) }),
    );
  }
  const key = bucket.encryptionKey;
  if (write.length > 0) key?.grantEncryptDecrypt(role);
  else if (read.length > 0) key?.grantDecrypt(role);
}

/**
 * DynamoDB: the read actions on the items whose partition keys the description lets the function
 * read, the write actions on those it may write. `ForAllValues` covers a BatchGetItem's every key.
 */
function grantLedger(role: iam.IRole, spec: DeployedFunction, table: dynamodb.ITable): void {
  const { read, readActions, write, writeActions } = spec.ledger;
  const statement = (actions: readonly string[], leadingKeys: readonly string[]) =>
    new iam.PolicyStatement({
      actions: [...actions],
      resources: [table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...leadingKeys] } },
    });
  const { reads, writes } = ledgerUse(spec);
  if (reads) role.addToPrincipalPolicy(statement(readActions, read));
  if (writes) role.addToPrincipalPolicy(statement(writeActions, write));
  const expire = spec.ledger.expire ?? [];
  if (expire.length > 0) role.addToPrincipalPolicy(statement(['dynamodb:DeleteItem'], expire));
  const key = table.encryptionKey;
  if (writes) key?.grantEncryptDecrypt(role);
  else if (reads) key?.grantDecrypt(role);
}
