import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { batchId } from '../../lib/ids';
import { powertoolsMetrics } from '../../lib/runtime/lambda';
import {
  BATCH_METRICS,
  METRICS_NAMESPACE,
  metricDimensions,
  serviceName,
} from '../../lib/runtime/metric-names';

/** Metrics as the Lambda handlers configure them. */
function pipelineMetrics(name: string): Metrics {
  return new Metrics({
    namespace: METRICS_NAMESPACE,
    serviceName: serviceName(name),
    defaultDimensions: { pipeline: name },
  });
}

interface Emf {
  readonly _aws: {
    readonly CloudWatchMetrics: readonly {
      readonly Namespace: string;
      readonly Dimensions: readonly (readonly string[])[];
      readonly Metrics: readonly { readonly Name: string; readonly Unit: string }[];
    }[];
  };
  readonly [key: string]: unknown;
}

const completion = {
  batch: batchId(7),
  inputRecords: 120,
  deadLetters: 2,
  outputRecords: 40,
  processingMs: 850,
  schedulingDelayMs: 35,
  inputBytes: 4096,
  totalDelayMs: 885,
  sealMs: 12,
  gbSeconds: 1.5,
  costUsd: 0.0000421,
  stateKeys: 900,
  stateBytes: 12_000,
  watermarkLagMs: 40_000,
};

describe('powertoolsMetrics', () => {
  it('turns a batch completion into the batch metrics', () => {
    // Arrange
    const metrics = pipelineMetrics('wordcount');

    // Act
    powertoolsMetrics(metrics).batchComplete(completion);
    const emf = metrics.serializeMetrics() as unknown as Emf;

    // Assert
    const [directive] = emf._aws.CloudWatchMetrics;
    expect(directive?.Namespace).toBe('Sluice');
    expect(directive?.Metrics).toEqual(
      expect.arrayContaining([
        { Name: 'InputRecords', Unit: 'Count' },
        { Name: 'OutputRecords', Unit: 'Count' },
        { Name: 'DeadLetters', Unit: 'Count' },
        { Name: 'ProcessingTime', Unit: 'Milliseconds' },
        { Name: 'SchedulingDelay', Unit: 'Milliseconds' },
        { Name: 'TotalDelay', Unit: 'Milliseconds' },
        { Name: 'InputBytes', Unit: 'Bytes' },
        { Name: 'BatchGbSeconds', Unit: 'None' },
        { Name: 'BatchCostMicroUsd', Unit: 'Count' },
        { Name: 'SealTime', Unit: 'Milliseconds' },
        { Name: 'StateKeys', Unit: 'Count' },
        { Name: 'StateBytes', Unit: 'Bytes' },
        { Name: 'WatermarkLag', Unit: 'Milliseconds' },
      ]),
    );
    expect(emf).toMatchObject({
      InputRecords: 120,
      OutputRecords: 40,
      DeadLetters: 2,
      ProcessingTime: 850,
      SchedulingDelay: 35,
      TotalDelay: 885,
      InputBytes: 4096,
      BatchGbSeconds: 1.5,
      BatchCostMicroUsd: 42,
      SealTime: 12,
      StateKeys: 900,
      StateBytes: 12_000,
      WatermarkLag: 40_000,
    });
  });

  it('counts a failed batch', () => {
    // Arrange
    const metrics = pipelineMetrics('wordcount');

    // Act
    powertoolsMetrics(metrics).batchFailed({ batch: batchId(3) });
    const emf = metrics.serializeMetrics() as unknown as Emf;

    // Assert
    expect(emf._aws.CloudWatchMetrics[0]?.Metrics).toEqual([
      { Name: BATCH_METRICS.failedBatches, Unit: 'Count' },
    ]);
    expect(emf[BATCH_METRICS.failedBatches]).toBe(1);
  });

  it('publishes with exactly the dimensions the dashboard and alarms query', () => {
    // Arrange
    const metrics = pipelineMetrics('temperature');

    // Act
    powertoolsMetrics(metrics).batchComplete(completion);
    const emf = metrics.serializeMetrics() as unknown as Emf;

    // Assert
    const dimensions = metricDimensions('temperature');
    expect([...(emf._aws.CloudWatchMetrics[0]?.Dimensions[0] ?? [])].sort()).toEqual(
      Object.keys(dimensions).sort(),
    );
    expect(emf).toMatchObject(dimensions);
  });
});
