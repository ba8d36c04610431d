import type { BatchId, TaskId } from '../ids';
import { partitionId } from '../ids';
import { outputPrefix } from '../plan';
import { outputKey } from '../storage/keys';
import type { RuntimeContext } from './context';
import type { OutputCollector } from './buffers';

/**
 * Whether the pipeline has a `foreachBatch` sink, which takes a partition's output records as
 * objects: only then are they kept beside their JSON Lines.
 *
 * @example
 * const runner = new PhaseRunner({ ...options, keepOutput: takesRecords(ctx.pipeline.sinks) });
 */
export function takesRecords(sinks: RuntimeContext['pipeline']['sinks']): boolean {
  return sinks.some(isForeachBatch);
}

function isForeachBatch<S extends RuntimeContext['pipeline']['sinks'][number]>(
  sink: S,
): sink is Extract<S, { write: unknown }> {
  return sink.spec.kind === 'sluice.sink/foreachBatch@1' && 'write' in sink;
}

/**
 * Writes one partition's output of a batch: the JSON Lines object at its deterministic key (a
 * replay overwrites it), then every `foreachBatch` sink with the same records (the collector kept
 * them when the pipeline has one: `takesRecords`). Nothing is written for a partition without
 * output. Returns the key written, if any, and its bytes.
 *
 * @example
 * const written = await writeOutput(ctx, manifest.batch, manifest.time, task, terminal.output);
 */
export async function writeOutput(
  ctx: RuntimeContext,
  batch: BatchId,
  time: number,
  task: TaskId,
  output: OutputCollector,
): Promise<{ key: string; bytes: number } | undefined> {
  if (output.count === 0) return undefined;
  const partition = partitionId(task);
  const key = outputKey(outputPrefix(ctx.plan.spec), batch, partition);
  const body = output.body();
  await ctx.objects.put(key, body, 'application/x-ndjson');
  for (const sink of ctx.pipeline.sinks) {
    if (!isForeachBatch(sink)) continue;
    await sink.write(output.records ?? [], { pipeline: ctx.pipeline.name, batch, time, partition });
  }
  return { key, bytes: body.length };
}
