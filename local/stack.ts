import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  awsTargetFromEnv,
  clientConfig,
  createAwsClients,
  destroyAwsClients,
  type AwsClients,
  type AwsTarget,
} from '../lib/aws';
import type { AnyPipeline, Pipeline } from '../lib/dsl/pipeline';
import {
  parseDeployedResources,
  RESOURCES_OUTPUT_DESCRIPTION,
  type DeployedResources,
} from '../lib/deployment';
import { SluiceError } from '../lib/errors';
import { createRuntimeContext, type RuntimeContext } from '../lib/runtime/context';
import { ConfiguredInvoker } from '../lib/runtime/handlers';
import { lambdaTransport } from '../lib/runtime/lambda';

/**
 * A deployed stack that does not hold the pipeline asked for: no such stack, no sluice pipeline in
 * it, or only others.
 *
 * @example
 * if (error instanceof StackLookupError) console.error(error.hint);
 */
export class StackLookupError extends SluiceError {
  override readonly name = 'StackLookupError';
  constructor(message: string, hint: string) {
    super(message, { retryable: false, hint });
  }
}

/**
 * Finds a pipeline's resources in a deployed stack: the `SluicePipeline` construct puts them in a
 * stack output (`sluice.resources@1`), one per pipeline, so a stack with several pipelines is
 * fine and nothing depends on generated physical names.
 *
 * @example
 * const resources = await resolveStack(cloudFormation, 'sluice-wordcount', 'wordcount');
 * resources.table; // 'sluice-wordcount-PipelineLedger1A2B3C-XYZ'
 */
export async function resolveStack(
  cloudFormation: CloudFormationClient,
  stackName: string,
  pipelineName: string,
): Promise<DeployedResources> {
  let outputs;
  try {
    const described = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = described.Stacks?.[0]?.Outputs ?? [];
  } catch (error) {
    if ((error as { name?: string }).name === 'ValidationError') {
      throw new StackLookupError(
        `no stack '${stackName}' in this account and region`,
        'Check the stack name (cdk list) and AWS_REGION, or deploy it first with cdk deploy.',
      );
    }
    throw error;
  }
  const pipelines = outputs
    .filter((output) => output.Description === RESOURCES_OUTPUT_DESCRIPTION && output.OutputValue)
    .map((output) => parseDeployedResources(JSON.parse(output.OutputValue ?? '') as unknown));
  const found = pipelines.find((resources) => resources.pipeline === pipelineName);
  if (found) return found;
  if (pipelines.length === 0) {
    throw new StackLookupError(
      `stack '${stackName}' has no sluice pipeline (no output described '${RESOURCES_OUTPUT_DESCRIPTION}')`,
      'Deploy the stack with this version of the SluicePipeline construct, which adds that output.',
    );
  }
  throw new StackLookupError(
    `stack '${stackName}' has no pipeline '${pipelineName}', only ${pipelines.map((p) => `'${p.pipeline}'`).join(', ')}`,
    'Pass the module of a pipeline deployed in that stack.',
  );
}

/** A deployed pipeline, opened from a machine: its resources and a context over them. */
export interface DeployedPipeline {
  readonly stack: string;
  readonly resources: DeployedResources;
  /**
   * Reads the ledger, bucket and state as the functions do; invokes nothing, unless opened to
   * operate (then it starts tasks as the coordinator does, with Lambda's asynchronous invoke).
   */
  readonly ctx: RuntimeContext;
  readonly clients: AwsClients;
  close(): void;
}

/**
 * Opens a deployed pipeline to read it from this machine, with the credentials and region the AWS
 * SDK finds (or `AWS_ENDPOINT_URL`, for a stack in an emulator's CloudFormation).
 *
 * @example
 * const deployed = await openStack(wordcount, 'sluice-wordcount');
 * const items = await deployed.ctx.ledger.batches.all();
 * deployed.close();
 */
export async function openStack<T, Out>(
  pipeline: Pipeline<T, Out>,
  stack: string,
  target: AwsTarget = awsTargetFromEnv(),
  options: { readonly operate?: boolean } = {},
): Promise<DeployedPipeline> {
  const cloudFormation = new CloudFormationClient(clientConfig(target));
  let resources: DeployedResources;
  try {
    resources = await resolveStack(cloudFormation, stack, pipeline.name);
  } finally {
    cloudFormation.destroy();
  }
  const clients = createAwsClients(target);
  const config = {
    bucket: resources.bucket,
    table: resources.table,
    functions: resources.functions,
    sweepAfterMs: 5 * 60_000,
  };
  const refuse = (): Promise<never> =>
    Promise.reject(
      new StackLookupError(
        'a deployed pipeline opened to read invokes no function',
        'Reading a deployed pipeline changes nothing: its own functions run it.',
      ),
    );
  const readOnly = { invoke: refuse, wake: refuse };
  // The record types matter to the stages' code, not to reading the ledger and bucket.
  const ctx = createRuntimeContext(pipeline as AnyPipeline, {
    config,
    clients,
    invoker: options.operate ? new ConfiguredInvoker(config, lambdaTransport(clients.lambda)) : readOnly,
  });
  return { stack, resources, ctx, clients, close: () => destroyAwsClients(clients) };
}
