import { toMillis, type Duration } from '../duration';
import { PipelineDefinitionError } from '../errors';
import type { Sink } from './sink';
import type { Source } from './source';
import type { AnyStage, ChainOutput, Wired } from './types';
import { isEventTime, processingWindow } from './spec';

/** What to do with a record that fails to decode or throws in stage code. */
export type OnError = 'deadLetter' | 'fail';

/**
 * What happens after a batch fails (a permanent error, a record under `onError: 'fail'`, or a step
 * that used up its retry budget). `halt`: the coordinator stops sealing new batches, visibly, until
 * an operator retries the batch (after a fix) or skips it; nothing is read past it. `skip`: the
 * batch's input goes to the dead-letter prefix as one `batch` dead letter with the reason, every
 * stateful partition moves its state past the batch unchanged, and the pipeline goes on.
 */
export type OnBatchFailure = 'halt' | 'skip';

/** How long a step that fails transiently (throttling, 5xx, timeouts) is retried before its batch fails. */
export interface RetryOptions {
  /** Failed attempts of one task (its own retries and the sweep's re-drives) before its batch fails. @default 10 */
  readonly attempts?: number;
  /** Time from a task's first failed attempt after which its batch fails. @default '15m' */
  readonly within?: Duration;
}

/** How a batch's input is split into transform tasks (by bytes, so a hot shard gets several). */
export interface TaskOptions {
  /** At most this many transform tasks per batch. @default 64 */
  readonly max?: number;
  /** Aim for this many input bytes per task. @default 4 MiB */
  readonly targetBytes?: number;
}

/** The definition a pipeline module passes to `pipeline()`. */
export interface PipelineOptions<T, S extends readonly AnyStage[]> {
  /** Names the deployed resources and S3 prefixes; lower-case letters, digits and '-'. */
  readonly name: string;
  /** The micro-batch interval, like Spark's `batchDuration`. */
  readonly batchInterval: Duration;
  readonly source: Source<T>;
  /** The stages, in order; each must take what the one before it gives. */
  readonly stages: S & Wired<T, S>;
  /** Where output goes. The output is always written as JSON Lines (see `s3Jsonl`). @default [] */
  readonly sinks?: readonly Sink<ChainOutput<T, S>>[];
  /** @default 'deadLetter' */
  readonly onError?: OnError;
  /** @default 'halt' */
  readonly onBatchFailure?: OnBatchFailure;
  /** The retry budget of a step that fails transiently. @default { attempts: 10, within: '15m' } */
  readonly retry?: RetryOptions;
  /** Reduce partitions of keyed stages that do not set their own. @default 4 */
  readonly partitions?: number;
  readonly tasks?: TaskOptions;
  /**
   * Backpressure: the most input records one batch takes. A batch takes whole segments, each shard's
   * in order; what does not fit waits for the next batch (after a pause, an outage or a burst), and
   * a batch always takes at least one segment. @default no bound by records
   */
  readonly maxRecordsPerBatch?: number;
  /** The same, in input bytes. @default 256 MiB */
  readonly maxBytesPerBatch?: number;
}

/** A validated pipeline: what infra deploys and the runtime runs. */
export interface Pipeline<T, Out> {
  readonly name: string;
  readonly batchIntervalMs: number;
  readonly source: Source<T>;
  readonly stages: readonly AnyStage[];
  readonly sinks: readonly Sink<Out>[];
  readonly onError: OnError;
  readonly onBatchFailure: OnBatchFailure;
  readonly retry: { readonly attempts: number; readonly withinMs: number };
  readonly partitions: number;
  readonly tasks: Required<TaskOptions>;
  /** Set when the definition bounds a batch's records (`maxRecordsPerBatch`). */
  readonly maxRecordsPerBatch?: number;
  /** Set when the definition bounds a batch's bytes; else `DEFAULT_MAX_BATCH_BYTES`. */
  readonly maxBytesPerBatch?: number;
}

/**
 * The input bytes a batch takes at most unless the pipeline says otherwise: 64 transform tasks of
 * 4 MiB (the default `tasks`). Not derived from `tasks`, which only decides how a batch is split.
 */
export const DEFAULT_MAX_BATCH_BYTES = 256 * 1024 * 1024;

/**
 * The most records and bytes a batch of the pipeline takes (see `maxRecordsPerBatch`).
 *
 * @example
 * batchLimits(wordcount); // { maxRecords: Infinity, maxBytes: 268435456 }
 */
export function batchLimits(pipeline: Pick<AnyPipeline, 'maxRecordsPerBatch' | 'maxBytesPerBatch'>): {
  readonly maxRecords: number;
  readonly maxBytes: number;
} {
  return {
    maxRecords: pipeline.maxRecordsPerBatch ?? Number.POSITIVE_INFINITY,
    maxBytes: pipeline.maxBytesPerBatch ?? DEFAULT_MAX_BATCH_BYTES,
  };
}

/** A pipeline of any record types, as the runtime sees it. */
export type AnyPipeline = Pipeline<unknown, unknown>;

/**
 * Windows are whole numbers of batches, as in Spark: a window's length and slide must be multiples
 * of the batch interval. Checked when the pipeline is defined, and again when settings change it.
 */
function checkWindows(stages: readonly AnyStage[], intervalMs: number): void {
  for (const stage of stages) {
    const window = stage.shape === 'wide' ? processingWindow(stage.spec) : undefined;
    if (!window) continue;
    const { lengthMs, slideMs } = window;
    for (const [what, ms] of [
      ['length', lengthMs],
      ['slide', slideMs],
    ] as const) {
      if (ms % intervalMs !== 0) {
        throw new PipelineDefinitionError(
          `stage '${stage.id}': window ${what} ${ms} ms is not a multiple of the batch interval ${intervalMs} ms`,
          { stage: stage.id },
        );
      }
    }
  }
}

/** Stage ids the runtime uses for its own functions. */
export const RESERVED_IDS: readonly string[] = Object.freeze(['ingest', 'coordinator', 'read']);

/**
 * Defines a pipeline: a source, stages that type-check against each other, and sinks.
 *
 * @example
 * export default pipeline({
 *   name: 'wordcount',
 *   batchInterval: '10s',
 *   source: kinesis({ stream: 'lines', decode: utf8 }),
 *   stages: [tokenize, count],
 *   sinks: [print({ top: 10 })],
 * });
 */
export function pipeline<T, const S extends readonly AnyStage[]>(
  options: PipelineOptions<T, S>,
): Pipeline<T, ChainOutput<T, S>> {
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(options.name)) {
    throw new PipelineDefinitionError(
      `pipeline name '${options.name}' must be 1-40 lower-case letters, digits and '-', starting with a letter`,
    );
  }
  const stages = options.stages as readonly AnyStage[];
  const seen = new Set<string>();
  for (const stage of stages) {
    if (RESERVED_IDS.includes(stage.id)) {
      throw new PipelineDefinitionError(`stage id '${stage.id}' is reserved for the runtime`, {
        stage: stage.id,
      });
    }
    if (seen.has(stage.id)) {
      throw new PipelineDefinitionError(`stage id '${stage.id}' is used twice`, { stage: stage.id });
    }
    seen.add(stage.id);
  }
  const firstWide = stages.findIndex((s) => s.shape === 'wide');
  stages.forEach((stage, i) => {
    if (stage.shape === 'wide' && stage.join) {
      if (i !== firstWide) {
        throw new PipelineDefinitionError(
          `stage '${stage.id}': a join must be the first keyed stage (its other side runs in the transform tasks)`,
          { stage: stage.id },
        );
      }
      for (const side of stage.join.right.stages) {
        if (seen.has(side.id) || RESERVED_IDS.includes(side.id)) {
          throw new PipelineDefinitionError(`stage id '${side.id}' of the join's other side is already used`);
        }
        seen.add(side.id);
      }
    }
  });
  if (stages.filter((s) => s.shape === 'wide' && isEventTime(s.spec)).length > 1) {
    throw new PipelineDefinitionError(
      'a pipeline has at most one event-time stage: the watermark is per pipeline',
    );
  }
  const sinks = options.sinks ?? [];
  for (const sink of sinks) {
    if (sink.spec.kind === 'sluice.sink/foreachBatch@1') {
      if (seen.has(sink.spec.id)) throw new PipelineDefinitionError(`id '${sink.spec.id}' is used twice`);
      seen.add(sink.spec.id);
    }
  }
  if (sinks.filter((s) => s.spec.kind === 'sluice.sink/s3Jsonl@1').length > 1) {
    throw new PipelineDefinitionError(
      'a pipeline has at most one s3Jsonl sink: it sets where output is written',
    );
  }
  const partitions = options.partitions ?? 4;
  if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > 10_000) {
    throw new PipelineDefinitionError('partitions must be a whole number from 1 to 10000');
  }
  const max = options.tasks?.max ?? 64;
  const targetBytes = options.tasks?.targetBytes ?? 4 * 1024 * 1024;
  if (!Number.isSafeInteger(max) || max < 1)
    throw new PipelineDefinitionError('tasks.max must be a positive integer');
  if (!Number.isSafeInteger(targetBytes) || targetBytes < 1) {
    throw new PipelineDefinitionError('tasks.targetBytes must be a positive integer');
  }
  const batchIntervalMs = toMillis(options.batchInterval);
  checkWindows(stages, batchIntervalMs);
  // Typed `unknown` so the check stays: a pipeline written in JavaScript may pass anything.
  const onBatchFailure: unknown = options.onBatchFailure ?? 'halt';
  if (onBatchFailure !== 'halt' && onBatchFailure !== 'skip') {
    throw new PipelineDefinitionError(
      `onBatchFailure must be 'halt' or 'skip', not '${String(onBatchFailure)}'`,
    );
  }
  const attempts = options.retry?.attempts ?? 10;
  if (!Number.isSafeInteger(attempts) || attempts < 1 || attempts > 1000) {
    throw new PipelineDefinitionError('retry.attempts must be a whole number from 1 to 1000');
  }
  const withinMs = toMillis(options.retry?.within ?? '15m');
  for (const [name, bound] of [
    ['maxRecordsPerBatch', options.maxRecordsPerBatch],
    ['maxBytesPerBatch', options.maxBytesPerBatch],
  ] as const) {
    if (bound !== undefined && (!Number.isSafeInteger(bound) || bound < 1)) {
      throw new PipelineDefinitionError(`${name} must be a positive whole number`);
    }
  }
  return Object.freeze({
    name: options.name,
    batchIntervalMs,
    source: options.source,
    stages: Object.freeze([...stages]),
    sinks: Object.freeze([...sinks]),
    onError: options.onError ?? 'deadLetter',
    onBatchFailure,
    retry: Object.freeze({ attempts, withinMs }),
    partitions,
    tasks: Object.freeze({ max, targetBytes }),
    ...(options.maxRecordsPerBatch === undefined ? {} : { maxRecordsPerBatch: options.maxRecordsPerBatch }),
    ...(options.maxBytesPerBatch === undefined ? {} : { maxBytesPerBatch: options.maxBytesPerBatch }),
  });
}

/** Settings that may be changed for a run without changing what a pipeline computes per batch. */
export interface PipelineSettings {
  readonly batchInterval?: Duration;
  readonly partitions?: number;
  readonly tasks?: TaskOptions;
}

/**
 * A copy of a pipeline with other run settings (the CLI's `--batch-interval`, `--partitions`,
 * `--tasks`), validated like the original.
 *
 * @example
 * const wide = withSettings(wordcount, { partitions: 16 });
 */
export function withSettings<T, Out>(base: Pipeline<T, Out>, settings: PipelineSettings): Pipeline<T, Out> {
  const partitions = settings.partitions ?? base.partitions;
  if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > 10_000) {
    throw new PipelineDefinitionError('partitions must be a whole number from 1 to 10000');
  }
  const max = settings.tasks?.max ?? base.tasks.max;
  const targetBytes = settings.tasks?.targetBytes ?? base.tasks.targetBytes;
  if (!Number.isSafeInteger(max) || max < 1 || !Number.isSafeInteger(targetBytes) || targetBytes < 1) {
    throw new PipelineDefinitionError('tasks.max and tasks.targetBytes must be positive integers');
  }
  return Object.freeze({
    ...base,
    batchIntervalMs:
      settings.batchInterval === undefined ? base.batchIntervalMs : toMillis(settings.batchInterval),
    partitions,
    tasks: Object.freeze({ max, targetBytes }),
  });
}
