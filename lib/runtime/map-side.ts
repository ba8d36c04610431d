import { InvalidInputError, type ErrorScope } from '../errors';
import type { TaskId } from '../ids';
import type { Manifest, Slice } from '../manifest';
import type { RuntimeContext } from './context';
import { runSlice, type PhaseRunner } from './datapath';
import { fetchInOrder, GETS_AHEAD } from './prefetch';

/**
 * A transform task's input: its slices of the batch's input segments, read with one ranged GET
 * each (a few ahead of the one being run), their records fed to the runner in order (`runSlice`, which the data-path benchmark also
 * calls on bytes in memory).
 *
 * @example
 * const { records, bytes } = await readSegments(ctx, manifest, task, scope, runner);
 */
export async function readSegments(
  ctx: RuntimeContext,
  manifest: Manifest,
  task: TaskId,
  scope: ErrorScope,
  runner: PhaseRunner,
): Promise<{ records: number; bytes: number }> {
  const slices: readonly Slice[] | undefined = manifest.tasks[task];
  if (!slices) throw new InvalidInputError(`batch ${manifest.batch} has no task ${task}`, scope);
  let records = 0;
  let bytes = 0;
  await fetchInOrder(
    slices,
    GETS_AHEAD,
    (slice) => ctx.objects.getRange(slice.segment, slice.start, slice.end, scope),
    (slice, body) => {
      bytes += body.length;
      records += runSlice(runner, body, slice);
    },
  );
  return { records, bytes };
}
