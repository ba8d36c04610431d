import { expect } from 'vitest';
import { withSettings, type Pipeline } from '../../lib/dsl/pipeline';
import { batchId } from '../../lib/ids';
import type { FaultOptions } from '../../local/faults';
import { LocalRuntime, type BatchResult } from '../../local/runtime';
import { countWords, sortedEntries, toCountMap } from './corpus';

/** What a wall-clock run gave: every batch, in order, and what the runtime counted. */
export interface WallClockRun {
  readonly batches: readonly BatchResult[];
  readonly invocations: number;
  readonly failedInvocations: number;
}

/**
 * Runs a pipeline on the system clock, as `sluice local run` does without `--lines-per-batch`:
 * the scheduler and the poller run in the background while lines go into the stream in chunks
 * over some time, then the run finishes as the CLI's does (`LocalRuntime.finish`).
 */
export async function runOnWallClock(
  pipeline: Pipeline<string, unknown>,
  lines: readonly string[],
  options: {
    readonly batchInterval: `${number}ms`;
    readonly endpoint?: string;
    readonly faults?: FaultOptions;
    readonly chunks?: number;
    readonly pauseMs?: number;
    readonly shards?: number;
  },
): Promise<WallClockRun> {
  const run = await LocalRuntime.start(withSettings(pipeline, { batchInterval: options.batchInterval }), {
    clock: 'system',
    shards: options.shards ?? 2,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.faults ? { faults: options.faults } : {}),
  });
  try {
    run.startBackground();
    const chunks = options.chunks ?? 6;
    const size = Math.ceil(lines.length / chunks);
    for (let i = 0; i < chunks; i++) {
      await run.push(lines.slice(i * size, (i + 1) * size));
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs ?? 300));
    }
    await run.finish();
    const last = (await run.ctx.ledger.pipeline.get())?.lastSealed ?? 0;
    const batches: BatchResult[] = [];
    for (let n = 1; n <= last; n++) batches.push(await run.result(batchId(n)));
    return { batches, invocations: run.invoker.invocations, failedInvocations: run.invoker.failed.length };
  } finally {
    await run.stop();
  }
}

/**
 * Asserts that a wall-clock word count lost and doubled nothing: every batch complete, and the
 * counts over all batches equal an independent count of the lines.
 */
export function expectExactWordCounts(run: WallClockRun, lines: readonly string[]): void {
  expect(run.batches.map((b) => `${b.batch}: ${b.status}${b.failure ? ` ${b.failure}` : ''}`)).toEqual(
    run.batches.map((b) => `${b.batch}: complete`),
  );
  const total = new Map<string, number>();
  for (const batch of run.batches) {
    for (const [word, n] of toCountMap(batch.records)) total.set(word, (total.get(word) ?? 0) + n);
  }
  expect(sortedEntries(total)).toEqual(sortedEntries(countWords(lines)));
  expect(run.batches.reduce((n, b) => n + b.inputRecords, 0)).toBe(lines.length);
}
