declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A batch number: batch n covers the processing-time interval (t0 + (n-1)B, t0 + nB]. Starts at 1. */
export type BatchId = Brand<number, 'BatchId'>;
/** A reduce partition number in [0, partitions). */
export type PartitionId = Brand<number, 'PartitionId'>;
/** A task number within one phase of a batch: a transform task in phase 0, a reduce partition after. */
export type TaskId = Brand<number, 'TaskId'>;
/** The id a stage was defined with; how the runtime finds user code in the bundle. */
export type StageId = Brand<string, 'StageId'>;
/** A Kinesis shard id, e.g. `shardId-000000000000`. */
export type ShardId = Brand<string, 'ShardId'>;

/**
 * Brands a batch number after checking it.
 *
 * @example
 * const batch = batchId(3);
 */
export function batchId(n: number): BatchId {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`batch numbers start at 1, got ${n}`);
  return n as BatchId;
}

/**
 * Brands a partition number after checking it.
 *
 * @example
 * const partition = partitionId(0);
 */
export function partitionId(n: number): PartitionId {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`partitions start at 0, got ${n}`);
  return n as PartitionId;
}

/**
 * Brands a task number after checking it.
 *
 * @example
 * const task = taskId(0);
 */
export function taskId(n: number): TaskId {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`tasks start at 0, got ${n}`);
  return n as TaskId;
}

/**
 * Brands a stage id after checking its shape (it becomes part of S3 keys and function names).
 *
 * @example
 * const id = stageId('tokenize');
 */
export function stageId(id: string): StageId {
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(id)) {
    throw new RangeError(
      `stage id '${id}' must be 1-40 characters of lower-case letters, digits and '-', starting with a letter`,
    );
  }
  return id as StageId;
}

/**
 * Brands a shard id.
 *
 * @example
 * const shard = shardId('shardId-000000000000');
 */
export function shardId(id: string): ShardId {
  if (id.length === 0) throw new RangeError('empty shard id');
  return id as ShardId;
}
