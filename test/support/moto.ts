import { execFile, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  CloudFormationClient,
  CreateStackCommand,
  type CreateStackCommandInput,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  ListStackResourcesCommand,
  type Stack as DescribedStack,
} from '@aws-sdk/client-cloudformation';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Stage, type Stack } from 'aws-cdk-lib';
import { FileAssetPackaging } from 'aws-cdk-lib/cloud-assembly-schema';
import { AssetManifestArtifact } from 'aws-cdk-lib/cx-api';

/**
 * moto's server (Python, already on every machine of the project): S3, DynamoDB, Kinesis, SQS and
 * CloudFormation on one endpoint, the closest thing to LocalStack without Docker. Tests that need it
 * skip themselves when it is missing (`describe.skipIf(!motoAvailable)`).
 */
export const motoAvailable: boolean =
  spawnSync('python3', ['-c', 'import moto.server'], { stdio: 'ignore' }).status === 0;

/** moto's account id, unless its server was started with `MOTO_ACCOUNT_ID`. */
export const MOTO_ACCOUNT = '123456789012';
export const MOTO_REGION = 'us-east-1';

/** moto checks no signatures; the SDK only needs some credentials to sign with. */
const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/** A port nobody listens on now: moto's server takes a port number, not port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Polls `url` until it answers 2xx: a spawned server takes a few seconds to import its services. */
export async function waitFor(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A running moto server of this process. */
export interface Moto {
  /** `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL` or a client's `endpoint`. */
  readonly endpoint: string;
  /** Stops the server and waits for its process to end. */
  stop(): Promise<void>;
}

/**
 * Starts a fresh moto server on a free loopback port: one per test file keeps it fast (its state
 * only grows) and keeps files from seeing each other's resources.
 *
 * @example
 * let moto: Moto;
 * beforeAll(async () => { moto = await startMoto(); }, 40_000);
 * afterAll(() => moto.stop());
 */
export async function startMoto(options: { readonly timeoutMs?: number } = {}): Promise<Moto> {
  const port = await freePort();
  const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    // The server's threads normally end at once; a stuck one must not hold the test run.
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    // A port taken between freePort and the server's bind makes it exit: fail then, not at the timeout.
    await Promise.race([
      waitFor(`${endpoint}/moto-api/`, options.timeoutMs ?? 30_000),
      exited.then(() => {
        throw new Error(`moto's server exited before answering (exit code ${String(child.exitCode)})`);
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, stop };
}

/** Options of {@link deployStack}. */
export interface DeployOptions {
  /** @default the stack's own name */
  readonly stackName?: string;
  /** Values of the template's parameters. */
  readonly parameters?: Readonly<Record<string, string>>;
  /** The account that `${AWS::AccountId}` means in asset destinations. @default MOTO_ACCOUNT */
  readonly account?: string;
  /** @default MOTO_REGION */
  readonly region?: string;
  /** How long the stack may take to reach CREATE_COMPLETE. @default 60 s */
  readonly timeoutMs?: number;
}

/** A stack that reached CREATE_COMPLETE. */
export interface DeployedStack {
  readonly stackName: string;
  readonly stackId: string;
  /** The stack's outputs, by output key. */
  readonly outputs: Record<string, string>;
  /**
   * The template's resources that moto passed over because its CloudFormation does not know their
   * type: it only warns in its own log and still reports CREATE_COMPLETE. Real CloudFormation
   * creates every resource or fails, so a test can say which gaps it accepts.
   */
  readonly skipped: readonly { readonly logicalId: string; readonly type: string }[];
}

/** The parts of a CloudFormation template that {@link deployStack} changes. */
interface TemplateDocument {
  Resources?: Record<string, { Type?: string }>;
  Parameters?: Record<string, { Type?: string; Default?: unknown }>;
  Rules?: Record<string, unknown>;
  [section: string]: unknown;
}

/**
 * Deploys a CDK stack into moto's CloudFormation, as `cdk deploy` would into a bootstrapped
 * account: synthesizes its app (bundling the Lambda code), uploads the file assets to the buckets
 * the template names, creates the stack and waits for CREATE_COMPLETE. moto creates its resources
 * without running any code (Lambda functions exist but cannot be invoked without Docker) and skips
 * resource types it does not know, without a failure: check the resources a test relies on.
 *
 * @example
 * const app = new App({ outdir });
 * const stack = new Stack(app, 'sluice-wordcount');
 * new SluicePipeline(stack, 'Pipeline', { pipeline: wordcount, entry });
 * const { outputs } = await deployStack(moto.endpoint, stack);
 */
export async function deployStack(
  endpoint: string,
  stack: Stack,
  options: DeployOptions = {},
): Promise<DeployedStack> {
  const region = options.region ?? MOTO_REGION;
  const account = options.account ?? MOTO_ACCOUNT;
  const stackName = options.stackName ?? stack.stackName;
  const stage = Stage.of(stack);
  if (!stage) throw new Error(`stack ${stack.node.path} is not in an App or a Stage`);
  // The app's own synthesis if it already ran (synth() caches its assembly), with the Lambda bundles.
  const artifact = stage.synth().getStackArtifact(stack.artifactId);

  const s3 = new S3Client({
    endpoint,
    region,
    credentials: CREDENTIALS,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const cloudformation = new CloudFormationClient({ endpoint, region, credentials: CREDENTIALS });
  try {
    for (const dependency of artifact.dependencies) {
      if (AssetManifestArtifact.isAssetManifestArtifact(dependency)) {
        await publishAssets(s3, dependency, { account, region });
      }
    }
    const template = withoutBootstrapCheck(artifact.template as TemplateDocument);
    await createStack(endpoint, region, {
      StackName: stackName,
      // moto takes any size; real CloudFormation takes 51,200 bytes here and larger ones by TemplateURL.
      TemplateBody: JSON.stringify(template),
      Parameters: Object.entries(options.parameters ?? {}).map(([ParameterKey, ParameterValue]) => ({
        ParameterKey,
        ParameterValue,
      })),
      Capabilities: ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM', 'CAPABILITY_AUTO_EXPAND'],
    });
    const described = await waitForCreation(cloudformation, stackName, options.timeoutMs ?? 60_000);
    const created = await createdResources(cloudformation, stackName);
    return {
      stackName,
      stackId: described.StackId ?? stackName,
      outputs: Object.fromEntries(
        (described.Outputs ?? []).map((output) => [output.OutputKey ?? '', output.OutputValue ?? '']),
      ),
      skipped: Object.entries(template.Resources ?? {})
        .filter(([logicalId]) => !created.has(logicalId))
        .map(([logicalId, resource]) => ({ logicalId, type: resource.Type ?? '' })),
    };
  } finally {
    s3.destroy();
    cloudformation.destroy();
  }
}

/**
 * CreateStack, once. moto creates every resource within the call, so a resource it cannot create
 * fails the call itself (answered in the failing service's protocol, which the CloudFormation client
 * cannot parse: the body is in the error) and leaves the stack CREATE_IN_PROGRESS for good, with no
 * failed event. A retry would only meet that half-created stack.
 */
async function createStack(endpoint: string, region: string, input: CreateStackCommandInput): Promise<void> {
  const client = new CloudFormationClient({ endpoint, region, credentials: CREDENTIALS, maxAttempts: 1 });
  try {
    await client.send(new CreateStackCommand(input));
  } catch (error) {
    const body =
      error instanceof Error && '$responseBodyText' in error && typeof error.$responseBodyText === 'string'
        ? error.$responseBodyText
        : undefined;
    const reason = body ?? (error instanceof Error ? error.message : String(error));
    throw new Error(`could not create stack ${input.StackName ?? ''}: ${reason}`, { cause: error });
  } finally {
    client.destroy();
  }
}

/**
 * The template without CDK's bootstrap check. Its `BootstrapVersion` parameter reads an SSM
 * parameter that only `cdk bootstrap` creates (moto fails the whole stack on a missing one), and
 * the rule it feeds (moto ignores rules anyway) guards a bootstrap stack that moto does not need:
 * the asset buckets are created here. Nothing else in a CDK template refers to either.
 */
function withoutBootstrapCheck(template: TemplateDocument): TemplateDocument {
  const copy = structuredClone(template);
  const parameter = copy.Parameters?.BootstrapVersion;
  if (parameter?.Type?.startsWith('AWS::SSM::Parameter::') && copy.Parameters) {
    delete copy.Parameters.BootstrapVersion;
    if (Object.keys(copy.Parameters).length === 0) delete copy.Parameters;
  }
  if (copy.Rules) {
    delete copy.Rules.CheckBootstrapVersion;
    if (Object.keys(copy.Rules).length === 0) delete copy.Rules;
  }
  return copy;
}

/** Replaces `${AWS::AccountId}`, `${AWS::Region}` and `${AWS::Partition}` in an asset destination. */
function resolvePlaceholders(text: string, env: { account: string; region: string }): string {
  return text
    .replaceAll('${AWS::AccountId}', env.account)
    .replaceAll('${AWS::Region}', env.region)
    .replaceAll('${AWS::Partition}', 'aws');
}

/**
 * Uploads every file asset of a manifest to each of its destinations, creating the buckets (the
 * bootstrap stack's, on a real account). Directories are zipped, as the CDK CLI does. Container
 * images would need a registry and Docker: refused.
 */
async function publishAssets(
  s3: S3Client,
  manifest: AssetManifestArtifact,
  env: { account: string; region: string },
): Promise<void> {
  const { files = {}, dockerImages = {} } = manifest.contents;
  if (Object.keys(dockerImages).length > 0) {
    throw new Error(
      `container image assets cannot be deployed to moto: ${Object.keys(dockerImages).join(', ')}`,
    );
  }
  const root = path.dirname(manifest.file);
  const uploads = Object.entries(files).map(([id, asset]) => {
    const { path: source, packaging, executable } = asset.source;
    if (executable || source === undefined) {
      throw new Error(`asset ${id} is built by a command, which deployStack does not run`);
    }
    return {
      source: path.resolve(root, source),
      zip: packaging === FileAssetPackaging.ZIP_DIRECTORY,
      destinations: Object.values(asset.destinations).map((destination) => ({
        bucket: resolvePlaceholders(destination.bucketName, env),
        key: resolvePlaceholders(destination.objectKey, env),
      })),
    };
  });
  for (const bucket of new Set(uploads.flatMap((u) => u.destinations.map((d) => d.bucket)))) {
    await ensureBucket(s3, bucket);
  }
  // Concurrently: zipping is a Python process per asset. Distinct keys, so moto's race on two PUTs
  // of one key cannot happen.
  await Promise.all(
    uploads.map(async ({ source, zip, destinations }) => {
      const body = zip ? await zipDirectory(source) : await fs.promises.readFile(source);
      for (const { bucket, key } of destinations) {
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      }
    }),
  );
}

async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    // Another stack of the same server published to it first.
    if (!(error instanceof Error && error.name === 'BucketAlreadyOwnedByYou')) throw error;
  }
}

const execFileAsync = promisify(execFile);

/**
 * A zip archive of a directory's contents, paths relative to it (Lambda reads `index.js` at the
 * root). Python's zipfile module, since moto already needs Python and the project has no zip
 * library of its own.
 */
async function zipDirectory(directory: string): Promise<Buffer> {
  const scratch = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'sluice-asset-'));
  try {
    const archive = path.join(scratch, 'asset.zip');
    const entries = await fs.promises.readdir(directory);
    await execFileAsync('python3', ['-m', 'zipfile', '-c', archive, ...entries], { cwd: directory });
    return await fs.promises.readFile(archive);
  } finally {
    await fs.promises.rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Waits for the stack to leave its IN_PROGRESS states (moto creates resources within CreateStack,
 * a real endpoint takes minutes) and fails with the events' reasons unless it is CREATE_COMPLETE.
 */
async function waitForCreation(
  cloudformation: CloudFormationClient,
  stackName: string,
  timeoutMs: number,
): Promise<DescribedStack> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { Stacks: stacks = [] } = await cloudformation.send(
      new DescribeStacksCommand({ StackName: stackName }),
    );
    const stack = stacks[0];
    const status = stack?.StackStatus ?? 'missing';
    if (stack && status === 'CREATE_COMPLETE') return stack;
    if (!status.endsWith('_IN_PROGRESS')) {
      throw new Error(`stack ${stackName} is ${status}: ${await failureReasons(cloudformation, stackName)}`);
    }
    if (Date.now() > until) throw new Error(`stack ${stackName} still ${status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Logical ids of the resources the stack created. moto lists a resource it skipped as a summary
 * with empty fields (no logical id, type or physical id).
 */
async function createdResources(
  cloudformation: CloudFormationClient,
  stackName: string,
): Promise<Set<string>> {
  const ids = new Set<string>();
  let token: string | undefined;
  do {
    const page = await cloudformation.send(
      new ListStackResourcesCommand({ StackName: stackName, NextToken: token }),
    );
    for (const summary of page.StackResourceSummaries ?? []) {
      if (summary.LogicalResourceId) ids.add(summary.LogicalResourceId);
    }
    token = page.NextToken;
  } while (token);
  return ids;
}

/** The reasons of the stack's failed events, oldest first. */
async function failureReasons(cloudformation: CloudFormationClient, stackName: string): Promise<string> {
  const { StackEvents: events = [] } = await cloudformation.send(
    new DescribeStackEventsCommand({ StackName: stackName }),
  );
  const reasons = events
    .filter((event) => event.ResourceStatus?.endsWith('_FAILED'))
    .reverse()
    .map(
      (event) =>
        `${event.LogicalResourceId ?? '?'} (${event.ResourceType ?? '?'}): ${event.ResourceStatusReason ?? 'no reason given'}`,
    );
  return reasons.length > 0 ? reasons.join('; ') : 'no failed events';
}
