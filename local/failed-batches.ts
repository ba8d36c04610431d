import type { AnyPipeline } from '../lib/dsl/pipeline';
import type { RuntimeContext } from '../lib/runtime/context';
import { haltsSealing, type Halt } from '../lib/runtime/failure';

/**
 * The failed batches of a run as its callers see them: how many nobody has retried or skipped yet,
 * and the oldest of them that halts sealing, if one does.
 *
 * @example
 * const { halt, unresolved }: FailedBatches = await findFailedBatches(run.ctx, run.pipeline);
 * if (halt) console.log(`halted by batch ${halt.batch}: ${halt.reason}`);
 */
export interface FailedBatches {
  readonly halt?: Halt;
  readonly unresolved: number;
}

/**
 * Reads the ledger's failed markers (oldest batch first) and finds the first batch that is still
 * failed and halts sealing: under `onBatchFailure: 'halt'`, or one that failed while being skipped.
 * A marker whose batch has moved on (retried, skipped) still counts as unresolved until the
 * coordinator clears it.
 *
 * @example
 * const failed = await findFailedBatches(run.ctx, run.pipeline);
 * expect(failed.halt?.batch).toBe(batchId(3));
 */
export async function findFailedBatches(
  ctx: RuntimeContext,
  pipeline: Pick<AnyPipeline, 'onBatchFailure'>,
): Promise<FailedBatches> {
  const markers = await ctx.ledger.failed.list();
  for (const marker of markers) {
    const item = await ctx.ledger.batches.get(marker.batch);
    if (item?.status === 'failed' && haltsSealing(pipeline, item)) {
      return {
        halt: { batch: item.batch, reason: item.failure?.message ?? marker.message },
        unresolved: markers.length,
      };
    }
  }
  return { unresolved: markers.length };
}
