import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import type { RuntimeLog } from '../../lib/runtime/context';
import {
  BATCH_METRICS,
  METRICS_NAMESPACE,
  metricDimensions,
  serviceName,
  withMetrics,
} from '../../lib/runtime/lambda';

interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly message: string;
  readonly extra?: Record<string, unknown>;
}

function recordingLog(): { log: RuntimeLog; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    log: {
      info: (message, extra) => lines.push({ level: 'info', message, ...(extra ? { extra } : {}) }),
      warn: (message, extra) => lines.push({ level: 'warn', message, ...(extra ? { extra } : {}) }),
      error: (message, extra) => lines.push({ level: 'error', message, ...(extra ? { extra } : {}) }),
    },
  };
}

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
  batch: 7,
  time: 1_700_000_010_000,
  inputRecords: 120,
  deadLetters: 2,
  outputRecords: 40,
  processingMs: 850,
  schedulingDelayMs: 35,
};

describe('withMetrics', () => {
  it("turns a 'batch complete' event into the five batch metrics, and still logs it", () => {
    // Arrange
    const { log, lines } = recordingLog();
    const metrics = pipelineMetrics('wordcount');

    // Act
    withMetrics(log, metrics).info('batch complete', completion);
    const emf = metrics.serializeMetrics() as unknown as Emf;

    // Assert
    expect(lines).toEqual([{ level: 'info', message: 'batch complete', extra: completion }]);
    const [directive] = emf._aws.CloudWatchMetrics;
    expect(directive?.Namespace).toBe('Sluice');
    expect(directive?.Metrics).toEqual(
      expect.arrayContaining([
        { Name: 'InputRecords', Unit: 'Count' },
        { Name: 'OutputRecords', Unit: 'Count' },
        { Name: 'DeadLetters', Unit: 'Count' },
        { Name: 'ProcessingTime', Unit: 'Milliseconds' },
        { Name: 'SchedulingDelay', Unit: 'Milliseconds' },
      ]),
    );
    expect(emf).toMatchObject({
      InputRecords: 120,
      OutputRecords: 40,
      DeadLetters: 2,
      ProcessingTime: 850,
      SchedulingDelay: 35,
    });
  });

  it("counts a 'task failed' event as a failed batch", () => {
    // Arrange
    const { log, lines } = recordingLog();
    const metrics = pipelineMetrics('wordcount');

    // Act
    withMetrics(log, metrics).error('task failed', { batch: 3, phase: 1, task: 0, error: 'boom' });
    const emf = metrics.serializeMetrics() as unknown as Emf;

    // Assert
    expect(lines).toHaveLength(1);
    expect(emf._aws.CloudWatchMetrics[0]?.Metrics).toEqual([
      { Name: BATCH_METRICS.failedBatches, Unit: 'Count' },
    ]);
    expect(emf[BATCH_METRICS.failedBatches]).toBe(1);
  });

  it('records nothing for other events', () => {
    // Arrange
    const { log, lines } = recordingLog();
    const metrics = pipelineMetrics('wordcount');
    const wrapped = withMetrics(log, metrics);

    // Act
    wrapped.info('batch sealed', { batch: 1, records: 5 });
    wrapped.warn('sweeping stuck batch', { batch: 1 });
    wrapped.error('something else', { inputRecords: 5 });

    // Assert
    expect(lines.map((l) => l.level)).toEqual(['info', 'warn', 'error']);
    expect(metrics.hasStoredMetrics()).toBe(false);
  });

  it('publishes with exactly the dimensions the dashboard and alarms query', () => {
    // Arrange
    const { log } = recordingLog();
    const metrics = pipelineMetrics('temperature');

    // Act
    withMetrics(log, metrics).info('batch complete', completion);
    const emf = metrics.serializeMetrics() as unknown as Emf;

    // Assert
    const dimensions = metricDimensions('temperature');
    expect([...(emf._aws.CloudWatchMetrics[0]?.Dimensions[0] ?? [])].sort()).toEqual(
      Object.keys(dimensions).sort(),
    );
    expect(emf).toMatchObject(dimensions);
  });
});
