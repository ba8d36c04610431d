import { App, CfnOutput, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadPipeline } from './load-pipeline';
import { SluicePipeline } from './pipeline-construct';

const USAGE = 'usage: npx cdk synth|deploy -c pipeline=examples/wordcount/pipeline.ts';

/** One stack per pipeline, named after it; cdk-nag's AWS Solutions checks fail the synth on findings. */
async function main(): Promise<void> {
  const app = new App();
  const modulePath: unknown = app.node.tryGetContext('pipeline');
  if (typeof modulePath !== 'string' || modulePath.trim() === '') {
    throw new Error(`no pipeline given. ${USAGE}`);
  }
  const { pipeline, modulePath: absolute } = await loadPipeline(modulePath.trim());
  const stack = new Stack(app, `sluice-${pipeline.name}`, {
    description: `sluice pipeline ${pipeline.name}`,
    // Unset without credentials: an environment-agnostic stack that synthesizes offline.
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  const sluice = new SluicePipeline(stack, 'Pipeline', { pipeline, entry: absolute });
  new CfnOutput(stack, 'StreamName', { value: sluice.stream.streamName });
  new CfnOutput(stack, 'BucketName', { value: sluice.bucket.bucketName });
  new CfnOutput(stack, 'LedgerTableName', { value: sluice.table.tableName });
  new CfnOutput(stack, 'FailureQueueUrl', { value: sluice.failureQueue.queueUrl });
  new CfnOutput(stack, 'DashboardName', { value: sluice.dashboard.dashboardName });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
