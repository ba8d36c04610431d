import { App, Stack } from 'aws-cdk-lib';
import { SluicePipeline } from 'sluice/cdk';
import wordcount from '../src/pipeline.js';

const app = new App();
const stack = new Stack(app, `sluice-${wordcount.name}`, {
  description: `sluice pipeline ${wordcount.name}`,
  // Unset without credentials: an environment-agnostic stack that synthesizes offline.
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
// `entry` is the module whose default export `pipeline` is: every function is bundled from it.
// `planLock` keeps the plan last synthesized (commit it): a change that stored state could not
// survive, such as another window length, fails `cdk synth` and says what to do.
new SluicePipeline(stack, 'Pipeline', {
  pipeline: wordcount,
  entry: 'src/pipeline.ts',
  planLock: 'sluice.plan.json',
});
app.synth();
