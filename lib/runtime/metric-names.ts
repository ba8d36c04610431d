// The names the functions publish their metrics under and the construct's dashboard and alarms
// read, kept apart from the publishing code so that the construct's types need no Powertools.

/** The CloudWatch namespace of sluice's batch metrics. */
export const METRICS_NAMESPACE = 'Sluice';

/** Names of the metrics the functions publish, in CloudWatch embedded metric format. */
export const BATCH_METRICS = Object.freeze({
  inputRecords: 'InputRecords',
  outputRecords: 'OutputRecords',
  deadLetters: 'DeadLetters',
  processingTime: 'ProcessingTime',
  schedulingDelay: 'SchedulingDelay',
  totalDelay: 'TotalDelay',
  inputBytes: 'InputBytes',
  sealTime: 'SealTime',
  /** Lambda GB-seconds of the batch's ingest, sealing pass and tasks. */
  gbSeconds: 'BatchGbSeconds',
  /** The same's cost in millionths of a US dollar: CloudWatch sums whole counts best. */
  cost: 'BatchCostMicroUsd',
  /** Keys and encoded bytes of every stateful stage's state after the batch. */
  stateKeys: 'StateKeys',
  stateBytes: 'StateBytes',
  /** Event-time pipelines: batch time less the watermark the batch ran with, ms. */
  watermarkLag: 'WatermarkLag',
  failedBatches: 'FailedBatches',
});

/** The service name of a pipeline's logs and metrics. */
export function serviceName(pipelineName: string): string {
  return `sluice-${pipelineName}`;
}

/**
 * The dimensions every batch metric carries. Powertools always adds `service`, so dashboards and
 * alarms must name both to find the metrics.
 *
 * @example
 * metricDimensions('wordcount'); // { service: 'sluice-wordcount', pipeline: 'wordcount' }
 */
export function metricDimensions(pipelineName: string): Readonly<Record<'service' | 'pipeline', string>> {
  return Object.freeze({ service: serviceName(pipelineName), pipeline: pipelineName });
}
