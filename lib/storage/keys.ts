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
  progress: 'progress/',
});

/** Zero-padded so that keys list in batch order. */
function batchSegment(batch: BatchId): string {
  return `batch-${String(batch).padStart(10, '0')}`;
}

/** An input segment, named by shard and its first sequence number. */
export function segmentKey(shard: ShardId, firstSeq: string): string {
  return `${S3_PREFIXES.segments}${shard}/${firstSeq}.seg`;
}

/** A finished batch's progress record. */
export function progressKey(batch: BatchId): string {
  return `${S3_PREFIXES.progress}${batchSegment(batch)}.json`;
}

/** The sealed manifest of a batch. */
export function manifestKey(batch: BatchId): string {
  return `${S3_PREFIXES.manifests}${batchSegment(batch)}.json`;
}

/**
 * Where one phase's shuffle files go. The phase comes first so that each phase function may be
 * allowed to write under its own prefix only.
 */
export function shufflePrefix(phase: number): string {
  return `${S3_PREFIXES.shuffle}phase-${phase}/`;
}

/** The one shuffle file a task of a phase writes. */
export function shuffleKey(batch: BatchId, phase: number, task: TaskId): string {
  return `${shufflePrefix(phase)}${batchSegment(batch)}/task-${String(task).padStart(5, '0')}.shuffle`;
}

/** Where one phase's dead letters go (phase first, as for the shuffle). */
export function deadLetterPrefix(phase: number): string {
  return `${S3_PREFIXES.deadLetter}phase-${phase}/`;
}

/** Dead letters of one task of a phase, as JSON Lines. */
export function deadLetterKey(batch: BatchId, phase: number, task: TaskId): string {
  return `${deadLetterPrefix(phase)}${batchSegment(batch)}/task-${String(task).padStart(5, '0')}.jsonl`;
}

/** Where the dead letters of skipped batches go: one object per batch, written by whoever skips it. */
export const SKIPPED_PREFIX = `${S3_PREFIXES.deadLetter}skipped/`;

/** The dead letter of a skipped batch: its whole input, by reference to its sealed manifest. */
export function skippedBatchKey(batch: BatchId): string {
  return `${SKIPPED_PREFIX}${batchSegment(batch)}.jsonl`;
}

/** The batch output of one partition, under the output prefix. */
export function outputKey(prefix: string, batch: BatchId, partition: PartitionId): string {
  return `${prefix}/${batchSegment(batch)}/part-${String(partition).padStart(5, '0')}.jsonl`;
}
