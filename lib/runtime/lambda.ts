import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { awsTargetFromEnv, createAwsClients } from '../aws';
import type { AnyPipeline, Pipeline } from '../dsl/pipeline';
import { ConfigError, InvalidInputError } from '../errors';
import type { StageId } from '../ids';
import {
  configFromEnv,
  createRuntimeContext,
  type Invoker,
  type RuntimeConfig,
  type RuntimeLog,
} from './context';
import { coordinate, type CoordinatorReport } from './coordinator';
import { parseKinesisEvent, parseTaskEvent, type TaskEvent } from './events';
import { ingest } from './ingest';
import { handleTask } from './tasks';

/**
 * Starts tasks with Lambda's asynchronous invoke: Lambda queues the event, retries failures twice
 * and sends exhausted events to the function's on-failure destination.
 *
 * @example
 * const invoker = new LambdaInvoker(clients.lambda, config);
 */
export class LambdaInvoker implements Invoker {
  constructor(
    private readonly lambda: LambdaClient,
    private readonly config: RuntimeConfig,
  ) {}

  async invoke(fn: StageId, event: TaskEvent): Promise<void> {
    const name = this.config.functions[fn];
    if (!name) throw new ConfigError(`no function is configured for phase function '${fn}'`);
    await this.lambda.send(
      new InvokeCommand({
        FunctionName: name,
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify(event)),
      }),
    );
  }
}

/** The CloudWatch namespace of sluice's batch metrics. */
export const METRICS_NAMESPACE = 'Sluice';

/** Names of the metrics the functions publish, in CloudWatch embedded metric format. */
export const BATCH_METRICS = Object.freeze({
  inputRecords: 'InputRecords',
  outputRecords: 'OutputRecords',
  deadLetters: 'DeadLetters',
  processingTime: 'ProcessingTime',
  schedulingDelay: 'SchedulingDelay',
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

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

/** Fields of the 'batch complete' log event that become metrics, with their metric and unit. */
const BATCH_COMPLETE_METRICS: readonly (readonly [string, string, Unit])[] = [
  ['inputRecords', BATCH_METRICS.inputRecords, MetricUnit.Count],
  ['outputRecords', BATCH_METRICS.outputRecords, MetricUnit.Count],
  ['deadLetters', BATCH_METRICS.deadLetters, MetricUnit.Count],
  ['processingMs', BATCH_METRICS.processingTime, MetricUnit.Milliseconds],
  ['schedulingDelayMs', BATCH_METRICS.schedulingDelay, MetricUnit.Milliseconds],
];

/**
 * Wraps a runtime log so that the events that matter to operators also become metrics: the
 * executors already report a finished batch ('batch complete') and a task that failed for good
 * ('task failed') through the log, so metrics need no second reporting path through them.
 * Metrics are buffered; the caller publishes them (`publishStoredMetrics`) once per invocation.
 *
 * @example
 * const log = withMetrics(baseLog, new Metrics({ namespace: METRICS_NAMESPACE }));
 */
export function withMetrics(log: RuntimeLog, metrics: Metrics): RuntimeLog {
  return {
    info(message, extra) {
      log.info(message, extra);
      if (message !== 'batch complete' || !extra) return;
      for (const [field, name, unit] of BATCH_COMPLETE_METRICS) {
        const value = extra[field];
        if (typeof value === 'number' && Number.isFinite(value)) metrics.addMetric(name, unit, value);
      }
    },
    warn(message, extra) {
      log.warn(message, extra);
    },
    error(message, extra) {
      log.error(message, extra);
      if (message === 'task failed') metrics.addMetric(BATCH_METRICS.failedBatches, MetricUnit.Count, 1);
    },
  };
}

/** The four Lambda handlers of a pipeline. */
export interface LambdaHandlers {
  ingest(event: unknown): Promise<void>;
  coordinator(
    event: unknown,
    context: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<CoordinatorReport[]>;
  /** Phase 0 tasks: segment slices in, one shuffle file (or the output) out. */
  transform(event: unknown): Promise<void>;
  /** Phase 1+ tasks: one reduce partition's shuffle runs in, a shuffle file or the output out. */
  reduce(event: unknown): Promise<void>;
}

/** How long before its timeout the looping coordinator stops starting new passes. */
const COORDINATOR_MARGIN_MS = 5_000;

/**
 * Builds a pipeline's Lambda handlers from the environment, once per cold start: SDK clients and
 * frozen configuration are the only module-level state.
 *
 * @example
 * // functions/task.ts
 * export const handler = lambdaHandlers(pipeline).task;
 */
export function lambdaHandlers<T, Out>(
  typed: Pipeline<T, Out>,
  env: NodeJS.ProcessEnv = process.env,
): LambdaHandlers {
  // The handlers only move records through; their types were checked where the pipeline was defined.
  const pipeline = typed as unknown as AnyPipeline;
  const config = configFromEnv(env);
  const clients = createAwsClients(awsTargetFromEnv(env));
  const logger = new Logger({ serviceName: serviceName(pipeline.name) });
  const metrics = new Metrics({
    namespace: METRICS_NAMESPACE,
    serviceName: serviceName(pipeline.name),
    defaultDimensions: { pipeline: pipeline.name },
  });
  const ctx = createRuntimeContext(pipeline, {
    config,
    clients,
    invoker: new LambdaInvoker(clients.lambda, config),
    log: withMetrics(
      {
        info: (message, extra) => logger.info(message, extra ?? {}),
        warn: (message, extra) => logger.warn(message, extra ?? {}),
        error: (message, extra) => logger.error(message, extra ?? {}),
      },
      metrics,
    ),
  });
  // Publishing an empty buffer makes Powertools warn in the log; most invocations record nothing.
  const publish = (): void => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  return {
    async ingest(event) {
      try {
        await ingest(ctx, parseKinesisEvent(event));
      } finally {
        publish();
      }
    },
    async coordinator(_event, context) {
      // Batch intervals under a minute: EventBridge Scheduler's minimum rate is one minute, so one
      // invocation loops, sealing each batch at its boundary, until its time is nearly up.
      const reports: CoordinatorReport[] = [];
      try {
        for (;;) {
          const report = await coordinate(ctx);
          reports.push(report);
          // Per pass, not per invocation: EMF stamps metrics when they are published, and one
          // invocation spans more than a minute of batches.
          publish();
          const wait = report.nextBatchTime - ctx.clock.now();
          if (context.getRemainingTimeInMillis() - Math.max(wait, 0) < COORDINATOR_MARGIN_MS + 2_000)
            return reports;
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
      } finally {
        publish();
      }
    },
    transform: (event) => task(event, 'transform'),
    reduce: (event) => task(event, 'reduce'),
  };

  async function task(event: unknown, kind: 'transform' | 'reduce'): Promise<void> {
    const parsed = parseTaskEvent(event);
    if ((parsed.phase === 0) !== (kind === 'transform')) {
      throw new InvalidInputError(`the ${kind} function got a task of phase ${parsed.phase}`, {
        batch: parsed.batch,
      });
    }
    logger.appendKeys({ batch: parsed.batch, phase: parsed.phase, task: parsed.task });
    try {
      await handleTask(ctx, parsed);
    } finally {
      publish();
      logger.removeKeys(['batch', 'phase', 'task']);
    }
  }
}
