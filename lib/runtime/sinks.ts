import type { BatchId, TaskId } from '../ids';
import { partitionId } from '../ids';
import { outputPrefix } from '../plan';
import { outputKey } from '../storage/keys';
import type { RuntimeContext } from './context';
import type { PhaseRunner } from './datapath';
import { toJsonLine } from './output';

/**
 * The last phase's output as JSON Lines, record by record: a record JSON would change (NaN, a Map,
 * a function) is dead-lettered instead of written, and sinks get exactly the records that were
 * written.
 *
 * @example
 * const { records, body } = encodeOutput(collector.records, runner);
 */
export function encodeOutput(
  all: readonly unknown[],
  runner: PhaseRunner,
): { records: unknown[]; body: Buffer } {
  const records: unknown[] = [];
  let text = '';
  for (const record of all) {
    let line: string;
    try {
      line = toJsonLine(record);
    } catch (error) {
      runner.outputRefused(record, error);
      continue;
    }
    records.push(record);
    text += `${line}\n`;
  }
  return { records, body: Buffer.from(text, 'utf8') };
}

/**
 * Writes one partition's output of a batch: the JSON Lines object at its deterministic key (a
 * replay overwrites it), then every `foreachBatch` sink with the same records. Nothing is written
 * for a partition without output. Returns the key written, if any, and its bytes.
 *
 * @example
 * const written = await writeOutput(ctx, manifest.batch, manifest.time, task, encoded);
 */
export async function writeOutput(
  ctx: RuntimeContext,
  batch: BatchId,
  time: number,
  task: TaskId,
  encoded: { readonly records: readonly unknown[]; readonly body: Buffer },
): Promise<{ key: string; bytes: number } | undefined> {
  if (encoded.records.length === 0) return undefined;
  const partition = partitionId(task);
  const key = outputKey(outputPrefix(ctx.plan.spec), batch, partition);
  await ctx.objects.put(key, encoded.body, 'application/x-ndjson');
  for (const sink of ctx.pipeline.sinks) {
    if (sink.spec.kind !== 'sluice.sink/foreachBatch@1' || !('write' in sink)) continue;
    await sink.write(encoded.records, { pipeline: ctx.pipeline.name, batch, time, partition });
  }
  return { key, bytes: encoded.body.length };
}
