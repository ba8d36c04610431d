import { describe, expect, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import type { AnyPipeline } from '../../lib';
import { deployedFunction } from '../../lib/deployment';
import { batchId } from '../../lib/ids';
import { coordinate } from '../../lib/runtime/coordinator';
import { createRuntimeContext, type RuntimeContext } from '../../lib/runtime/context';
import { LocalRuntime } from '../../local/runtime';
import { generateLines } from '../support/corpus';

/** The run's coordinator as deployed, with a ledger retention and a clock of the test's choosing. */
function coordinatorAt(run: LocalRuntime<string>, retentionMs: number, now: number): RuntimeContext {
  return createRuntimeContext(wordcount as AnyPipeline, {
    config: {
      bucket: run.resources.bucket,
      table: run.resources.table,
      functions: {},
      sweepAfterMs: 60_000,
      ledgerRetentionMs: retentionMs,
    },
    clients: run.clients,
    invoker: { invoke: () => Promise.resolve(), wake: () => Promise.resolve() },
    clock: { now: () => now },
  });
}

/** What the ledger still holds of a batch: its item, its task reports, the segment items it took. */
async function held(ctx: RuntimeContext, batch: number): Promise<{ item: boolean; reports: number }> {
  const item = await ctx.ledger.batches.get(batchId(batch));
  const reports = [
    ...(await ctx.ledger.reports.list(batchId(batch), 0)),
    ...(await ctx.ledger.reports.list(batchId(batch), 1)),
  ];
  return { item: item !== undefined, reports: reports.length };
}

describe('ledger expiry by sweep', () => {
  it("deletes settled batches' items after the retention, oldest first, and the pipeline goes on", async () => {
    // Arrange: five complete batches, 10 s apart
    const run = (await LocalRuntime.start(wordcount, { shards: 2 })) as LocalRuntime<string>;
    try {
      for (let batch = 1; batch <= 5; batch++) {
        await run.push(generateLines(20, batch));
        await run.advance();
      }
      const state = await run.ctx.ledger.pipeline.get();
      const shards = await run.ctx.ledger.segments.shards();
      const segmentsBefore = (
        await Promise.all(shards.map((shard) => run.ctx.ledger.segments.between(shard, undefined)))
      ).flat();
      const fifth = (state?.zeroTime ?? 0) + 5 * wordcount.batchIntervalMs;
      const coordinator = deployedFunction(run.deployment, 'coordinator');

      // Act: a sweep at batch 5's time keeping 25 s expires batches 1 and 2 (under the
      // coordinator's own grants); a sweep a day later expires the rest but the last sealed
      const early = coordinatorAt(run, 25_000, fifth);
      await run.guard.run(coordinator, () => coordinate(early, { stuckBefore: 0 }));
      const afterFirst = await Promise.all([1, 2, 3, 4, 5].map((n) => held(run.ctx, n)));
      const expiredFirst = (await run.ctx.ledger.pipeline.get())?.expiredThrough;
      const segmentsLeft = (
        await Promise.all(shards.map((shard) => run.ctx.ledger.segments.between(shard, undefined)))
      ).flat();
      const late = coordinatorAt(run, 25_000, fifth + 86_400_000);
      await run.guard.run(coordinator, () => coordinate(late, { stuckBefore: 0, maxBatches: 0 }));
      const expiredLate = (await run.ctx.ledger.pipeline.get())?.expiredThrough;
      await run.push(generateLines(20, 6));
      const [sixth] = await run.advance();

      // Assert
      expect(afterFirst.map((b) => b.item)).toEqual([false, false, true, true, true]);
      expect(afterFirst.map((b) => b.reports > 0)).toEqual([false, false, true, true, true]);
      expect(expiredFirst).toBe(2);
      expect(segmentsLeft.length).toBeLessThan(segmentsBefore.length);
      expect(segmentsLeft.length).toBeGreaterThan(0);
      expect(expiredLate).toBe(4);
      expect((await run.ctx.ledger.batches.from(1)).map((b) => b.batch)).toEqual([5, 6]);
      expect(sixth?.status).toBe('complete');
      expect(sixth?.inputRecords).toBe(20);
    } finally {
      await run.stop();
    }
  });

  it('keeps a failed batch and everything after it', async () => {
    // Arrange: batch 2 fails (the pipeline fails on a record that cannot be decoded, and halts)
    const strict = { ...wordcount, onError: 'fail' as const } as AnyPipeline;
    const run = (await LocalRuntime.start(strict, { shards: 1 })) as LocalRuntime<string>;
    try {
      await run.push(generateLines(5, 1));
      await run.advance();
      await run.pushRaw([Buffer.from([0xff, 0xfe, 0xfd])]);
      await run.advance().catch(() => []);
      const state = await run.ctx.ledger.pipeline.get();
      const much = (state?.zeroTime ?? 0) + 86_400_000;

      // Act
      await coordinate(coordinatorAt(run, 0, much), { stuckBefore: 0, maxBatches: 0 });

      // Assert
      const items = await run.ctx.ledger.batches.from(1);
      expect(items.map((b) => [b.batch, b.status])).toEqual([[2, 'failed']]);
      expect((await run.ctx.ledger.pipeline.get())?.expiredThrough).toBe(1);
    } finally {
      await run.stop();
    }
  });
});
