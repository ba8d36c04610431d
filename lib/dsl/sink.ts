import { PipelineDefinitionError } from '../errors';
import { stageId, type BatchId, type PartitionId, type StageId } from '../ids';

/** Spec of a sink, as serialized into the sealed manifest. */
export type SinkSpec =
  | { readonly kind: 'sluice.sink/s3Jsonl@1'; readonly prefix: string }
  | { readonly kind: 'sluice.sink/print@1'; readonly top: number }
  | { readonly kind: 'sluice.sink/foreachBatch@1'; readonly id: StageId };

/** What a `foreachBatch` function is told about the records it gets. */
export interface BatchContext {
  readonly pipeline: string;
  readonly batch: BatchId;
  /** The batch time, in epoch milliseconds: the end of the batch interval. */
  readonly time: number;
  readonly partition: PartitionId;
}

/** Writes each batch's output as JSON Lines, one object per (batch, partition). */
export interface S3JsonlSink {
  readonly spec: Extract<SinkSpec, { kind: 'sluice.sink/s3Jsonl@1' }>;
}

/** Prints the first records of each batch, the way Spark's `print()` does. */
export interface PrintSink {
  readonly spec: Extract<SinkSpec, { kind: 'sluice.sink/print@1' }>;
}

/** Hands each (batch, partition) of output to user code. */
export interface ForeachBatchSink<T> {
  readonly spec: Extract<SinkSpec, { kind: 'sluice.sink/foreachBatch@1' }>;
  readonly write: (records: readonly T[], context: BatchContext) => Promise<void>;
}

/** Any sink of records of type `T`. */
export type Sink<T> = S3JsonlSink | PrintSink | ForeachBatchSink<T>;

/**
 * The batch output as JSON Lines in the pipeline's bucket, at
 * `<prefix>/batch=<batch>/part-<partition>.jsonl`. Replays overwrite the same objects. Every
 * pipeline writes its output this way (the CLI and `print` read it); this sink chooses the prefix.
 *
 * @example
 * sinks: [s3Jsonl({ prefix: 'wordcount/counts' })]
 */
export function s3Jsonl(options: { readonly prefix?: string } = {}): S3JsonlSink {
  const prefix = (options.prefix ?? 'output').replace(/^\/+|\/+$/g, '');
  // No '*' or '?': the prefix also scopes IAM grants, where they are wildcards.
  if (!/^[a-zA-Z0-9!_.'()/=-]+$/.test(prefix)) {
    throw new PipelineDefinitionError(
      `s3Jsonl prefix '${prefix}' has characters unsafe in S3 keys or IAM resources (use letters, digits and !_.'()/=-)`,
    );
  }
  return Object.freeze({ spec: Object.freeze({ kind: 'sluice.sink/s3Jsonl@1', prefix }) });
}

/**
 * Prints a header with the batch time, then the first `top` records of the batch, like Spark's
 * `DStream.print()`. On AWS it goes to the log; locally to the terminal.
 *
 * @example
 * sinks: [print({ top: 10 })]
 */
export function print(options: { readonly top?: number } = {}): PrintSink {
  const top = options.top ?? 10;
  if (!Number.isSafeInteger(top) || top < 1)
    throw new PipelineDefinitionError('print top must be a positive integer');
  return Object.freeze({ spec: Object.freeze({ kind: 'sluice.sink/print@1', top }) });
}

/**
 * Runs your code on each (batch, partition) of output, in the reduce function. It is called again
 * when a step is replayed, so it must be idempotent per (batch, partition): upsert, do not append.
 *
 * @example
 * sinks: [foreachBatch<[string, number]>('to-table', async (records, { batch, partition }) => {
 *   await upsertCounts(records, `${batch}/${partition}`);
 * })]
 */
export function foreachBatch<T>(
  id: string,
  write: (records: readonly T[], context: BatchContext) => Promise<void>,
): ForeachBatchSink<T> {
  return Object.freeze({
    spec: Object.freeze({ kind: 'sluice.sink/foreachBatch@1', id: stageId(id) }),
    write,
  });
}
