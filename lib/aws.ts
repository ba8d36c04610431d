import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { KinesisClient, type KinesisClientConfig } from '@aws-sdk/client-kinesis';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * Where AWS calls go. `endpoint` is unset on AWS; locally it is the embedded emulator or LocalStack.
 */
export interface AwsTarget {
  /** A single endpoint for every service (as `AWS_ENDPOINT_URL` gives), or unset for real AWS. */
  readonly endpoint?: string;
  /** @default process.env.AWS_REGION ?? 'us-east-1' */
  readonly region?: string;
  /** Static credentials for emulators; unset on AWS (the Lambda role is used). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/** The SDK clients sluice uses, built once per process. */
export interface AwsClients {
  readonly s3: S3Client;
  readonly dynamo: DynamoDBDocumentClient;
  readonly kinesis: KinesisClient;
  readonly lambda: LambdaClient;
}

/**
 * Reads the target from the environment the way the AWS SDK does (`AWS_ENDPOINT_URL`), so
 * LocalStack, a `sluice local serve` endpoint and real AWS are all the same code path.
 *
 * @example
 * const clients = createAwsClients(awsTargetFromEnv());
 */
export function awsTargetFromEnv(env: NodeJS.ProcessEnv = process.env): AwsTarget {
  const endpoint = env.AWS_ENDPOINT_URL;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  if (!endpoint) return { region };
  // Emulators accept any credentials; LocalStack's convention is test/test.
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY }
      : { accessKeyId: 'test', secretAccessKey: 'test' };
  return { endpoint, region, credentials };
}

/**
 * Builds the S3, DynamoDB, Kinesis and Lambda clients for a target. Against an emulator it applies
 * the options the emulators need: path-style S3 without optional checksums, and HTTP/1 for Kinesis
 * (kinesalite cannot speak the HTTP/2 the SDK would otherwise use).
 *
 * @example
 * const { s3, dynamo } = createAwsClients({ endpoint: 'http://127.0.0.1:4566', region: 'us-east-1' });
 */
export function createAwsClients(target: AwsTarget): AwsClients {
  const base = clientConfig(target);
  const local = target.endpoint !== undefined;
  const s3Config: S3ClientConfig = {
    ...base,
    ...(local
      ? {
          forcePathStyle: true,
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }
      : {}),
  };
  const kinesisConfig: KinesisClientConfig = {
    ...base,
    ...(local ? { requestHandler: new NodeHttpHandler() } : {}),
  };
  const dynamoConfig: DynamoDBClientConfig = base;
  return {
    s3: new S3Client(s3Config),
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient(dynamoConfig), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    kinesis: new KinesisClient(kinesisConfig),
    lambda: new LambdaClient(base),
  };
}

/**
 * What every client of a target is configured with: its region, endpoint and credentials (for a
 * client sluice builds only where it is needed, as the CLI's CloudFormation client).
 *
 * @example
 * const cloudFormation = new CloudFormationClient(clientConfig(awsTargetFromEnv()));
 */
export function clientConfig(target: AwsTarget): {
  region: string;
  endpoint?: string;
  credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
} {
  return {
    region: target.region ?? 'us-east-1',
    ...(target.endpoint ? { endpoint: target.endpoint } : {}),
    ...(target.credentials ? { credentials: target.credentials } : {}),
  };
}

/** Closes the clients' sockets so a process (a test, the CLI) can exit promptly. */
export function destroyAwsClients(clients: AwsClients): void {
  clients.s3.destroy();
  clients.dynamo.destroy();
  clients.kinesis.destroy();
  clients.lambda.destroy();
}
