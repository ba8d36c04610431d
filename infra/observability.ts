import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { AnyPipeline } from '../lib/dsl/pipeline';
import { BATCH_METRICS, METRICS_NAMESPACE, metricDimensions } from '../lib/runtime/metric-names';

/**
 * The alarms of a `SluicePipeline`.
 *
 * @example
 * sluice.alarms.failedBatches.addAlarmAction(new SnsAction(topic));
 */
export interface SluicePipelineAlarms {
  /** Batches are sealed late, or none complete at all (missing data counts as breaching). */
  readonly schedulingDelay: cloudwatch.Alarm;
  /** A task failed for good and marked its batch failed. */
  readonly failedBatches: cloudwatch.Alarm;
  /** An invocation exhausted Lambda's retries (or Scheduler's) and landed in the failure queue. */
  readonly failedInvocations: cloudwatch.Alarm;
  /**
   * Ingest reads the stream late: records older than the threshold are waiting. Past the stream's
   * retention they expire unread, so this is the deadline for exactly once.
   */
  readonly ingestLag: cloudwatch.Alarm;
}

/**
 * The construct props the alarms are made from.
 * Part of `SluicePipelineProps`, which extends it; each prop says its default.
 *
 * @example
 * const alerting: AlarmProps = { alarmTopic: topic, schedulingDelayThreshold: Duration.minutes(5) };
 */
export interface AlarmProps {
  /**
   * A topic the alarms notify.
   * @default - alarms without actions
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Scheduling delay (batch sealed after its interval ended) that raises the alarm.
   * @default the larger of one minute and three batch intervals
   */
  readonly schedulingDelayThreshold?: Duration;
  /**
   * Age of the oldest record ingest has not read (the event-source mapping's iterator age) that
   * raises the alarm.
   * @default half the stream's retention (`streamRetention`, 24 hours unless set)
   */
  readonly ingestLagThreshold?: Duration;
}

/**
 * The construct props the dashboard is made from.
 * Part of `SluicePipelineProps`, which extends it; each prop says its default.
 *
 * @example
 * const naming: DashboardProps = { dashboardName: 'words' };
 */
export interface DashboardProps {
  /**
   * Name of the CloudWatch dashboard.
   * @default `sluice-<pipeline name>`
   */
  readonly dashboardName?: string;
}

/**
 * What the dashboard shows: the pipeline's input stream, failure queue and functions, and the
 * scheduling delay alarm's threshold.
 *
 * @example
 * const watched: DashboardSubjects = { stream, failureQueue, ingest, coordinator, phases, schedulingDelay };
 */
export interface DashboardSubjects {
  readonly stream: kinesis.IStream;
  readonly failureQueue: sqs.IQueue;
  readonly ingest: lambda.IFunction;
  readonly coordinator: lambda.IFunction;
  /** The phase functions, by phase function id. */
  readonly phases: Readonly<Record<string, lambda.IFunction>>;
  readonly schedulingDelay: cloudwatch.Alarm;
  readonly ingestLag: cloudwatch.Alarm;
}

/**
 * A batch metric of a pipeline, as its functions publish it: a one-minute sum unless `options`
 * say otherwise.
 *
 * @example
 * batchMetric('fixture-words', 'inputRecords', { statistic: 'Sum', period: Duration.minutes(5) });
 */
export function batchMetric(
  pipelineName: string,
  name: keyof typeof BATCH_METRICS,
  options: cloudwatch.MetricOptions = {},
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: BATCH_METRICS[name],
    dimensionsMap: { ...metricDimensions(pipelineName) },
    period: Duration.minutes(1),
    statistic: 'Sum',
    ...options,
  });
}

/**
 * The pipeline's alarms, notifying `props.alarmTopic` if given.
 *
 * @example
 * const alarms = createAlarms(this, pipeline, { failureQueue, ingest }, props);
 */
export function createAlarms(
  scope: Construct,
  pipeline: Pick<AnyPipeline, 'name' | 'batchIntervalMs'>,
  subjects: { readonly failureQueue: sqs.IQueue; readonly ingest: lambda.IFunction },
  props: AlarmProps & { readonly streamRetention?: Duration },
): SluicePipelineAlarms {
  const { failureQueue, ingest } = subjects;
  const intervalMs = pipeline.batchIntervalMs;
  const threshold = props.schedulingDelayThreshold ?? Duration.millis(Math.max(60_000, 3 * intervalMs));
  // Batches complete (empty ones too) every interval, so a period of whole minutes that holds at
  // least one batch sees data unless the pipeline is stuck.
  const period = Duration.minutes(Math.max(1, Math.ceil(intervalMs / 60_000)));
  const schedulingDelay = new cloudwatch.Alarm(scope, 'SchedulingDelayAlarm', {
    alarmDescription:
      `sluice ${pipeline.name}: batches are sealed more than ${threshold.toHumanString()} late, ` +
      'or none completed (the coordinator or its schedule is stuck).',
    metric: batchMetric(pipeline.name, 'schedulingDelay', { statistic: 'Maximum', period }),
    threshold: threshold.toMilliseconds(),
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
  });
  const failedBatches = new cloudwatch.Alarm(scope, 'FailedBatchesAlarm', {
    alarmDescription: `sluice ${pipeline.name}: a task failed for good and its batch is marked failed.`,
    metric: batchMetric(pipeline.name, 'failedBatches', { statistic: 'Sum' }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const failedInvocations = new cloudwatch.Alarm(scope, 'FailedInvocationsAlarm', {
    alarmDescription: `sluice ${pipeline.name}: invocations exhausted their retries (see the failure queue).`,
    metric: failureQueue.metricApproximateNumberOfMessagesVisible({
      statistic: 'Maximum',
      period: Duration.minutes(1),
    }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const retention = props.streamRetention ?? Duration.hours(24);
  const lag = props.ingestLagThreshold ?? Duration.millis(retention.toMilliseconds() / 2);
  const ingestLag = new cloudwatch.Alarm(scope, 'IngestLagAlarm', {
    alarmDescription:
      `sluice ${pipeline.name}: ingest is reading records older than ${lag.toHumanString()}; ` +
      `records left unread past the stream's retention (${retention.toHumanString()}) are lost.`,
    metric: ingest.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) }),
    threshold: lag.toMilliseconds(),
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const alarms = { schedulingDelay, failedBatches, failedInvocations, ingestLag };
  if (props.alarmTopic) {
    const action = new SnsAction(props.alarmTopic);
    for (const alarm of Object.values(alarms)) alarm.addAlarmAction(action);
  }
  return alarms;
}

/**
 * The pipeline's dashboard: records in and out, failures, batch timing, ingest lag, total delay,
 * input bytes, the tasks' cost, and every function's errors, durations and throttles.
 *
 * @example
 * const dashboard = createDashboard(this, pipeline.name, subjects, props);
 */
export function createDashboard(
  scope: Construct,
  pipelineName: string,
  subjects: DashboardSubjects,
  props: DashboardProps,
): cloudwatch.Dashboard {
  const { stream, failureQueue, ingest } = subjects;
  const metric = (name: keyof typeof BATCH_METRICS, options: cloudwatch.MetricOptions) =>
    batchMetric(pipelineName, name, options);
  const all: [string, lambda.IFunction][] = [
    ['ingest', ingest],
    ['coordinator', subjects.coordinator],
    ...Object.entries(subjects.phases),
  ];
  const width = 8;
  const graph = (
    title: string,
    left: cloudwatch.IMetric[],
    extra: Partial<cloudwatch.GraphWidgetProps> = {},
  ) => new cloudwatch.GraphWidget({ title, left, width, height: 6, ...extra });
  /** A batch metric's average and maximum per period. */
  const averageAndMax = (
    title: string,
    name: keyof typeof BATCH_METRICS,
    extra: Partial<cloudwatch.GraphWidgetProps> = {},
  ) =>
    graph(
      title,
      [
        metric(name, { statistic: 'Average', label: 'average' }),
        metric(name, { statistic: 'Maximum', label: 'max' }),
      ],
      extra,
    );
  const dashboard = new cloudwatch.Dashboard(scope, 'Dashboard', {
    dashboardName: props.dashboardName ?? `sluice-${pipelineName}`,
    defaultInterval: Duration.hours(3),
  });
  dashboard.addWidgets(
    graph('Input records', [
      metric('inputRecords', { label: 'records in sealed batches' }),
      stream.metricIncomingRecords({
        label: 'records put to the stream',
        statistic: 'Sum',
        period: Duration.minutes(1),
      }),
    ]),
    graph('Output records and dead letters', [
      metric('outputRecords', { label: 'output records' }),
      metric('deadLetters', { label: 'dead letters' }),
    ]),
    graph('Failed batches and invocations', [
      metric('failedBatches', { label: 'failed batches' }),
      failureQueue.metricApproximateNumberOfMessagesVisible({
        label: 'failure queue depth',
        statistic: 'Maximum',
        period: Duration.minutes(1),
      }),
    ]),
  );
  dashboard.addWidgets(
    graph('Batch processing time (ms)', [
      metric('processingTime', { statistic: 'Average', label: 'average' }),
      metric('processingTime', { statistic: 'p99', label: 'p99' }),
      metric('processingTime', { statistic: 'Maximum', label: 'max' }),
    ]),
    averageAndMax('Scheduling delay (ms)', 'schedulingDelay', {
      leftAnnotations: [subjects.schedulingDelay.toAnnotation()],
    }),
    graph(
      'Ingest lag: iterator age (ms)',
      [ingest.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) })],
      { leftAnnotations: [subjects.ingestLag.toAnnotation()] },
    ),
  );
  dashboard.addWidgets(
    averageAndMax('Total delay: batch time to completion (ms)', 'totalDelay'),
    graph('Input bytes', [metric('inputBytes', { label: 'bytes in sealed batches' })]),
    graph('Batch cost per hour (USD, list prices)', [
      new cloudwatch.MathExpression({
        expression: 'cost / 1000000',
        usingMetrics: { cost: metric('cost', { statistic: 'Sum', period: Duration.hours(1) }) },
        label: 'ingest, seal and tasks',
        period: Duration.hours(1),
      }),
    ]),
  );
  dashboard.addWidgets(
    graph('State after each batch', [
      metric('stateKeys', { statistic: 'Maximum', label: 'keys' }),
      metric('stateBytes', { statistic: 'Maximum', label: 'bytes' }),
    ]),
    averageAndMax('Seal time (ms)', 'sealTime'),
    graph('Watermark lag behind the batch time (ms, event time)', [
      metric('watermarkLag', { statistic: 'Maximum', label: 'max' }),
    ]),
  );
  dashboard.addWidgets(
    graph(
      'Function errors',
      all.map(([name, fn]) => fn.metricErrors({ label: name, period: Duration.minutes(1) })),
    ),
    graph(
      'Function duration p99 (ms)',
      all.map(([name, fn]) =>
        fn.metricDuration({ label: name, statistic: 'p99', period: Duration.minutes(1) }),
      ),
    ),
    graph(
      'Function throttles',
      all.map(([name, fn]) => fn.metricThrottles({ label: name, period: Duration.minutes(1) })),
    ),
  );
  return dashboard;
}
