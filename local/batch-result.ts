import type { BatchId } from '../lib/ids';
import { outputPrefix } from '../lib/plan';
import { progressOf, type BatchProgress } from '../lib/runtime/batch-progress';
import type { RuntimeContext } from '../lib/runtime/context';
import { readBatchOutput, type PartitionOutput } from '../lib/runtime/output';
import type { BatchItem } from '../lib/batch';

/**
 * What a finished batch gave: its totals and its output records, by partition and in order.
 *
 * @example
 * const [batch]: BatchResult<[string, number]>[] = await run.advance();
 * if (batch?.status === 'complete') console.log(batch.records);
 */
export interface BatchResult<Out = unknown> {
  readonly batch: BatchId;
  readonly time: number;
  readonly status: BatchItem['status'];
  readonly inputRecords: number;
  readonly outputRecords: number;
  readonly deadLetters: number;
  /** From sealing to completion, ms (Spark's processing time plus task start-up). */
  readonly processingMs: number;
  /** From the batch time to sealing, ms (Spark's scheduling delay). */
  readonly schedulingDelayMs: number;
  readonly outputs: readonly PartitionOutput[];
  /** All output records: partition 0's first, in the order they were written. */
  readonly records: readonly Out[];
  readonly failure?: string;
  /** What the batch did and cost, once it is complete. */
  readonly progress?: BatchProgress;
}

/**
 * A sealed batch's result, from its ledger item and (once it is complete) its output manifest.
 * A batch that failed or was skipped has no output: its records went nowhere or to dead letters.
 *
 * @example
 * const result = await readBatchResult(run.ctx, batchId(1));
 * expect(result.status).toBe('complete');
 */
export async function readBatchResult(ctx: RuntimeContext, batch: BatchId): Promise<BatchResult> {
  const item = await ctx.ledger.batches.get(batch);
  if (!item) throw new Error(`batch ${batch} is not sealed`);
  const complete = item.status === 'complete';
  const outputs = complete ? await readBatchOutput(ctx.objects, outputPrefix(ctx.plan.spec), item) : [];
  const progress = complete ? await progressOf(ctx, item) : undefined;
  return {
    batch,
    time: item.time,
    status: item.status,
    inputRecords: item.inputRecords,
    outputRecords: item.summary?.outputRecords ?? 0,
    deadLetters: item.summary?.deadLetters ?? 0,
    processingMs: (item.completedAt ?? item.updatedAt) - item.sealedAt,
    schedulingDelayMs: item.sealedAt - item.time,
    outputs,
    records: outputs.flatMap((o) => o.records),
    ...(item.failure ? { failure: item.failure.message } : {}),
    ...(progress ? { progress } : {}),
  };
}
