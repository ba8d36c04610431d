import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { awsTargetFromEnv, createAwsClients } from '../aws';
import { UsageMeter } from '../cost/usage';
import type { AnyPipeline, Pipeline } from '../dsl/pipeline';
import type { RuntimeMetrics } from './context';
import { BATCH_METRICS, METRICS_NAMESPACE, serviceName } from './metric-names';
import { createHandlers, type CoordinatorOutcome, type InvokeTransport } from './handlers';

/**
 * Sends an invocation with Lambda's asynchronous invoke: Lambda queues the event, retries failures
 * twice and sends exhausted events to the function's on-failure destination.
 *
 * @example
 * const send = lambdaTransport(clients.lambda);
 */
export function lambdaTransport(lambda: LambdaClient): InvokeTransport {
  return async (functionName, payload) => {
    await lambda.send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: 'Event',
        Payload: Buffer.from(payload),
      }),
    );
  };
}

/**
 * The runtime's metrics as CloudWatch embedded metrics, through Powertools: a finished batch gives
 * its figures, a failed batch counts one. Metrics are buffered; the caller publishes them
 * (`publishStoredMetrics`) once per invocation.
 *
 * @example
 * const ctx = createRuntimeContext(pipeline, { ..., metrics: powertoolsMetrics(new Metrics({ namespace: METRICS_NAMESPACE })) });
 */
export function powertoolsMetrics(metrics: Metrics): RuntimeMetrics {
  return {
    batchComplete(completion) {
      metrics.addMetric(BATCH_METRICS.inputRecords, MetricUnit.Count, completion.inputRecords);
      metrics.addMetric(BATCH_METRICS.outputRecords, MetricUnit.Count, completion.outputRecords);
      metrics.addMetric(BATCH_METRICS.deadLetters, MetricUnit.Count, completion.deadLetters);
      metrics.addMetric(BATCH_METRICS.processingTime, MetricUnit.Milliseconds, completion.processingMs);
      metrics.addMetric(BATCH_METRICS.schedulingDelay, MetricUnit.Milliseconds, completion.schedulingDelayMs);
      metrics.addMetric(BATCH_METRICS.totalDelay, MetricUnit.Milliseconds, completion.totalDelayMs);
      metrics.addMetric(BATCH_METRICS.inputBytes, MetricUnit.Bytes, completion.inputBytes);
      metrics.addMetric(BATCH_METRICS.gbSeconds, MetricUnit.NoUnit, completion.gbSeconds);
      metrics.addMetric(BATCH_METRICS.cost, MetricUnit.Count, Math.round(completion.costUsd * 1e6));
      metrics.addMetric(BATCH_METRICS.sealTime, MetricUnit.Milliseconds, completion.sealMs);
      metrics.addMetric(BATCH_METRICS.stateKeys, MetricUnit.Count, completion.stateKeys);
      metrics.addMetric(BATCH_METRICS.stateBytes, MetricUnit.Bytes, completion.stateBytes);
      if (completion.watermarkLagMs !== undefined) {
        metrics.addMetric(BATCH_METRICS.watermarkLag, MetricUnit.Milliseconds, completion.watermarkLagMs);
      }
    },
    batchFailed() {
      metrics.addMetric(BATCH_METRICS.failedBatches, MetricUnit.Count, 1);
    },
  };
}

/**
 * The part of Lambda's invocation context the coordinator uses: how long it may still run. Declared
 * here rather than taken from `@types/aws-lambda`, so that the package's types need nothing a user
 * has not installed.
 */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/** The four Lambda handlers of a pipeline: properties, as Lambda calls each one detached. */
export interface LambdaHandlers {
  readonly ingest: (event: unknown) => Promise<void>;
  readonly coordinator: (event: unknown, context: InvocationContext) => Promise<CoordinatorOutcome>;
  /** Phase 0 tasks: segment slices in, one shuffle file (or the output) out. */
  readonly transform: (event: unknown) => Promise<void>;
  /** Phase 1+ tasks: one reduce partition's shuffle runs in, a shuffle file or the output out. */
  readonly reduce: (event: unknown) => Promise<void>;
}

/**
 * Builds a pipeline's Lambda handlers from the environment, once per cold start: SDK clients and
 * frozen configuration are the only module-level state. They are the shared handlers
 * (`createHandlers`) with Lambda's transport, Powertools logs and metrics.
 *
 * @example
 * // functions/reduce.ts
 * export const handler = lambdaHandlers(pipeline).reduce;
 */
export function lambdaHandlers<T, Out>(
  typed: Pipeline<T, Out>,
  env: NodeJS.ProcessEnv = process.env,
): LambdaHandlers {
  // The handlers only move records through; their types were checked where the pipeline was defined.
  const pipeline = typed as unknown as AnyPipeline;
  const clients = createAwsClients(awsTargetFromEnv(env));
  // Each invocation's requests and units, which its task report and the batch's progress carry.
  const meter = new UsageMeter();
  meter.attach(clients.s3, 's3');
  meter.attach(clients.dynamo, 'dynamodb');
  const logger = new Logger({ serviceName: serviceName(pipeline.name) });
  const metrics = new Metrics({
    namespace: METRICS_NAMESPACE,
    serviceName: serviceName(pipeline.name),
    defaultDimensions: { pipeline: pipeline.name },
  });
  const handlers = createHandlers(pipeline, {
    env,
    clients,
    send: lambdaTransport(clients.lambda),
    log: {
      info: (message, extra) => logger.info(message, extra ?? {}),
      warn: (message, extra) => logger.warn(message, extra ?? {}),
      error: (message, extra) => logger.error(message, extra ?? {}),
    },
    metrics: powertoolsMetrics(metrics),
    meter,
  });
  // Publishing an empty buffer makes Powertools warn in the log; most invocations record nothing.
  const publish = (): void => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  const task = async (
    event: unknown,
    kind: 'transform' | 'reduce',
    run: (event: unknown) => Promise<void>,
  ): Promise<void> => {
    const keys = taskKeys(event);
    logger.appendKeys(keys);
    try {
      await meter.invocation(kind, () => run(event));
    } finally {
      publish();
      logger.removeKeys(Object.keys(keys));
    }
  };
  return {
    async ingest(event) {
      try {
        await meter.invocation('ingest', () => handlers.ingest(event));
      } finally {
        publish();
      }
    },
    async coordinator(event, context) {
      try {
        // Published per pass, not per invocation: EMF stamps metrics when they are published, and
        // one invocation spans more than a minute of batches.
        return await meter.invocation('coordinator', () =>
          handlers.coordinator(event, () => context.getRemainingTimeInMillis(), publish),
        );
      } finally {
        publish();
      }
    },
    transform: (event) => task(event, 'transform', handlers.transform),
    reduce: (event) => task(event, 'reduce', handlers.reduce),
  };
}

/** Batch, phase and task of a task event, for the log lines of its invocation (empty if malformed). */
function taskKeys(event: unknown): Record<string, unknown> {
  if (typeof event !== 'object' || event === null) return {};
  const { batch, phase, task } = event as Record<string, unknown>;
  return { batch, phase, task };
}
