/**
 * `sluice/cdk`: the CDK construct that deploys a pipeline, and its props. Each part of the props
 * (`BucketProps`, `StreamProps`, ...) is exported so that an app can type the settings it builds.
 *
 * @example
 * import { SluicePipeline } from 'sluice/cdk';
 * new SluicePipeline(stack, 'Counts', { pipeline: wordcount, entry: 'src/pipeline.ts' });
 */
export { SluicePipeline, type SluicePipelineProps } from './pipeline-construct';
export type { BucketProps, StreamProps, DataAtRest } from './stores';
export type { FunctionProps, IngestProps } from './functions';
export type { AlarmProps, DashboardProps, SluicePipelineAlarms } from './observability';
