import type { BatchId } from '../lib/ids';
import type { RuntimeContext } from '../lib/runtime/context';
import { fromJsonLines } from '../lib/runtime/output';
import type { DeadLetter } from '../lib/runtime/datapath';
import { skippedBatchKey } from '../lib/storage/keys';

/**
 * The dead letters of a batch, read from the dead-letter prefix: a skipped batch's input first,
 * then what each task of each phase set aside, in phase order (the order the records were lost in).
 *
 * @example
 * const letters = await readDeadLetters(run.ctx, batchId(2));
 * expect(letters.map((l) => l.kind)).toEqual(['decode']);
 */
export async function readDeadLetters(ctx: RuntimeContext, batch: BatchId): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  const skipped = await ctx.objects.getIfExists(skippedBatchKey(batch));
  if (skipped) letters.push(...(fromJsonLines(skipped) as DeadLetter[]));
  for (let phase = 0; phase < ctx.plan.phases.length; phase++) {
    for (const report of await ctx.ledger.reports.list(batch, phase)) {
      if (report.deadLetterKey) {
        letters.push(...(fromJsonLines(await ctx.objects.get(report.deadLetterKey)) as DeadLetter[]));
      }
    }
  }
  return letters;
}
