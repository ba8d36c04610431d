export { transform, map, flatMap, filter } from './dsl/transform';
export {
  reduceByKey,
  groupByKey,
  combineByKey,
  aggregateByKey,
  countByValue,
  count,
  reduce,
  type Combiner,
  type CombineByKeyOptions,
  type KeyedStageOptions,
} from './dsl/reduce';
export {
  reduceByKeyAndWindow,
  groupByKeyAndWindow,
  countByValueAndWindow,
  countByWindow,
  reduceByWindow,
  window,
  type WindowOptions,
  type InverseWindowOptions,
} from './dsl/window';
export {
  eventTimeWindow,
  windowStarts,
  type EventWindow,
  type EventTimeAggregate,
  type EventTimeWindowOptions,
} from './dsl/event-time';
export {
  branch,
  join,
  leftOuterJoin,
  rightOuterJoin,
  fullOuterJoin,
  cogroup,
  type Branch,
  type JoinKind,
  type JoinOptions,
} from './dsl/join';
export {
  updateStateByKey,
  mapWithState,
  type KeyState,
  type UpdateStateByKeyOptions,
  type MapWithStateOptions,
} from './dsl/state-stages';
export {
  kinesis,
  utf8,
  json,
  schema,
  type Decoder,
  type Source,
  type SourceSpec,
  type KinesisSourceOptions,
} from './dsl/source';
export {
  s3Jsonl,
  print,
  foreachBatch,
  type Sink,
  type SinkSpec,
  type BatchContext,
  type S3JsonlSink,
  type PrintSink,
  type ForeachBatchSink,
} from './dsl/sink';
export {
  pipeline,
  withSettings,
  type PipelineSettings,
  type Pipeline,
  type AnyPipeline,
  type PipelineOptions,
  type OnError,
  type OnBatchFailure,
  type RetryOptions,
  type TaskOptions,
} from './dsl/pipeline';
export type {
  Pair,
  Emit,
  Stage,
  AnyStage,
  NarrowStage,
  WideStage,
  NarrowSpec,
  WideSpec,
  KeyedSpec,
  WindowSpec,
  StateSpec,
  EventTimeWindowSpec,
  JoinSpec,
  ProcessingWindow,
  Aggregator,
  Downstream,
  StageOutput,
  ChainOutput,
  Wired,
  EventTimeSink,
  JoinSide,
} from './dsl/types';
export { LateRecordError } from './dsl/types';
export type { StatefulOperator, StatefulBatch, KeyedState, KeyFailure, DueClock } from './state/operator';
export type { Encodable } from './encoding/encodable';
export { toMillis, type Duration } from './duration';
export { batchId, partitionId, taskId, stageId, shardId } from './ids';
export type { BatchId, PartitionId, TaskId, StageId, ShardId } from './ids';
export {
  SluiceError,
  PipelineDefinitionError,
  InvalidInputError,
  PlanMismatchError,
  DataFormatError,
  RecordFailedError,
  NotReadyError,
  RetryableError,
  RetryBudgetExhaustedError,
  StateTooLargeError,
  MemoryBudgetError,
  ConfigError,
  isRetryable,
  classifyFailure,
  describeError,
  type FailureClass,
  type ErrorScope,
} from './errors';
export {
  awsTargetFromEnv,
  createAwsClients,
  destroyAwsClients,
  type AwsTarget,
  type AwsClients,
} from './aws';
