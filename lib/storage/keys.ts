import type { BatchId, PartitionId, ShardId, TaskId } from '../ids';

/**
 * The S3 layout of one pipeline's bucket. Every key is a pure function of what it names, so a
 * replayed step overwrites the same object with the same bytes.
 */
export const S3_PREFIXES = Object.freeze({
  segments: 'segments/',
  manifests: 'manifests/',
  shuffle: 'shuffle/',
  deadLetter: 'dead-letter/',
});

/** Zero-padded so that keys list in batch order. */
function batchSegment(batch: BatchId): string {
  return `batch-${String(batch).padStart(10, '0')}`;
}

/** An input segment, named by shard and its first sequence number. */
export function segmentKey(shard: ShardId, firstSeq: string): string {
  return `${S3_PREFIXES.segments}${shard}/${firstSeq}.seg`;
}

/** The sealed manifest of a batch. */
export function manifestKey(batch: BatchId): string {
  return `${S3_PREFIXES.manifests}${batchSegment(batch)}.json`;
}

/** The one shuffle file a task of a phase writes. */
export function shuffleKey(batch: BatchId, phase: number, task: TaskId): string {
  return `${S3_PREFIXES.shuffle}${batchSegment(batch)}/phase-${phase}/task-${String(task).padStart(5, '0')}.shuffle`;
}

/** Dead letters of one task of a phase, as JSON Lines. */
export function deadLetterKey(batch: BatchId, phase: number, task: TaskId): string {
  return `${S3_PREFIXES.deadLetter}${batchSegment(batch)}/phase-${phase}/task-${String(task).padStart(5, '0')}.jsonl`;
}

/** The batch output of one partition, under the output prefix. */
export function outputKey(prefix: string, batch: BatchId, partition: PartitionId): string {
  return `${prefix}/${batchSegment(batch)}/part-${String(partition).padStart(5, '0')}.jsonl`;
}
