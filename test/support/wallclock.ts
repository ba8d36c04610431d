import { withSettings, type Pipeline } from '../../lib/dsl/pipeline';
import { batchId } from '../../lib/ids';
import type { FaultOptions } from '../../local/faults';
import { LocalRuntime, type BatchResult } from '../../local/runtime';

/** What a wall-clock run gave: every batch, in order, and what the runtime counted. */
export interface WallClockRun {
  readonly batches: readonly BatchResult[];
  readonly invocations: number;
  readonly failedInvocations: number;
}

/**
 * Runs a pipeline on the system clock, as `sluice local run` does without `--lines-per-batch`:
 * the scheduler and the poller run in the background while lines go into the stream in chunks
 * over some time; once everything pushed is sealed, the background stops and the run settles.
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
    await run.ingestPending();
    const ingestedBy = Date.now();
    const interval = run.pipeline.batchIntervalMs;
    for (let waited = 0; ; waited += 100) {
      const state = await run.ctx.ledger.pipelineState();
      if (state && state.zeroTime + state.lastSealed * interval > ingestedBy) break;
      if (waited > 120_000) throw new Error('the last batch was never sealed');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await run.stopBackground();
    await run.settle();
    const last = (await run.ctx.ledger.pipelineState())?.lastSealed ?? 0;
    const batches: BatchResult[] = [];
    for (let n = 1; n <= last; n++) batches.push(await run.result(batchId(n)));
    return { batches, invocations: run.invoker.invocations, failedInvocations: run.invoker.failed.length };
  } finally {
    await run.stop();
  }
}
