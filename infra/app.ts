import path from 'node:path';
import { App, CfnOutput, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadPipeline } from '../local/load';
import { SluicePipeline } from './pipeline-construct';

/** The repository root, which `-c pipeline=<path>` is relative to. */
const REPO_ROOT = path.resolve(__dirname, '..');

const USAGE = 'usage: npx cdk synth|deploy -c pipeline=examples/wordcount/pipeline.ts';

/**
 * This repository's app, for its examples and fixtures: one stack per pipeline, named after it;
 * cdk-nag's AWS Solutions checks fail the synth on findings. A user's app is their own (`sluice init`).
 */
function main(): void {
  const app = new App();
  const modulePath: unknown = app.node.tryGetContext('pipeline');
  if (typeof modulePath !== 'string' || modulePath.trim() === '') {
    throw new Error(`no pipeline given. ${USAGE}`);
  }
  const entry = path.resolve(REPO_ROOT, modulePath.trim());
  const pipeline = loadPipeline(entry);
  const stack = new Stack(app, `sluice-${pipeline.name}`, {
    description: `sluice pipeline ${pipeline.name}`,
    // Unset without credentials: an environment-agnostic stack that synthesizes offline.
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  const sluice = new SluicePipeline(stack, 'Pipeline', { pipeline, entry });
  new CfnOutput(stack, 'StreamName', { value: sluice.stream.streamName });
  new CfnOutput(stack, 'BucketName', { value: sluice.bucket.bucketName });
  new CfnOutput(stack, 'LedgerTableName', { value: sluice.table.tableName });
  new CfnOutput(stack, 'FailureQueueUrl', { value: sluice.failureQueue.queueUrl });
  new CfnOutput(stack, 'DashboardName', { value: sluice.dashboard.dashboardName });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
}

try {
  main();
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}
