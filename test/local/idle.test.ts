import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import { withSettings } from '../../lib/dsl/pipeline';
import { batchId } from '../../lib/ids';
import { sleepUntilDue, sleepWhileIdle } from '../../lib/runtime/coordinator';
import { LocalRuntime } from '../../local/runtime';
import { formatStatus, pipelineStatus } from '../../local/status';

/**
 * An idle stream puts the coordinator to sleep (no invocation waits out the minute for batches with
 * nothing in them); the first records to arrive wake it, once, through the deployed wiring (ingest
 * may invoke the coordinator, and nothing else).
 */
describe('the coordinator asleep on an idle stream', () => {
  const runs: LocalRuntime<string, [string, number]>[] = [];
  const start = async (): Promise<LocalRuntime<string, [string, number]>> => {
    const run = await LocalRuntime.start(wordcount);
    runs.push(run);
    return run;
  };
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((run) => run.stop()));
  });

  it('sleeps when the last batch took nothing and nothing waits, and ingest wakes it once', async () => {
    // Arrange: a batch with records, then an empty one.
    const run = await start();
    await run.push(['to be or not to be']);
    await run.advance();
    const busy = await sleepWhileIdle(run.ctx);
    await run.advance();

    // Act
    const asleep = await sleepWhileIdle(run.ctx);
    const marked = (await run.ctx.ledger.pipeline.get())?.asleep;
    const shown = formatStatus(await pipelineStatus(run.ctx, run.now()), 'here');
    await run.push(['that is the question']);
    await run.ingestPending();
    await run.settle();
    const woken = (await run.ctx.ledger.pipeline.get())?.asleep;
    await run.push(['whether tis nobler']);
    await run.ingestPending();
    const [batch] = await run.advance();

    // Assert
    expect(busy).toBe(false);
    expect(asleep).toBe(true);
    expect(marked).toBeTypeOf('number');
    expect(shown).toMatch(/state: +running; the stream is idle, the coordinator asleep since /);
    expect(woken).toBeUndefined();
    // One wake-up for the first records; the second ingest found the coordinator awake.
    expect(run.invoker.calls.get('ingest -> coordinator')).toBe(1);
    expect(run.invoker.refused).toEqual([]);
    expect(batch?.status).toBe('complete');
    expect(batch?.inputRecords).toBe(2);
  });

  it('stays awake, and clears a stale mark, while records wait', async () => {
    // Arrange: marked asleep, then records registered behind the cursors without waking anyone.
    const run = await start();
    await run.advance();
    await run.push(['to be or not to be']);
    await run.ingestPending();
    await run.ctx.ledger.pipeline.sleep(run.now());

    // Act
    const asleep = await sleepWhileIdle(run.ctx);

    // Assert
    expect(asleep).toBe(false);
    expect((await run.ctx.ledger.pipeline.get())?.asleep).toBeUndefined();
  });
});

/**
 * A coordinator that does not wait for batch boundaries (`coordinatorWaits: false`): after its pass
 * on a stream with records it ends, marked asleep until the next boundary, and the first ingest
 * after that boundary (not one before it) wakes a coordinator, which seals the batch that ended
 * there; an idle stream sleeps as before.
 */
describe('a coordinator that does not wait for boundaries', () => {
  const runs: LocalRuntime<string, [string, number]>[] = [];
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((run) => run.stop()));
  });

  it('leaves the next boundary to the first ingest after it, which wakes one coordinator', async () => {
    // Arrange: a batch with records, sealed and run by a tick.
    const run = await LocalRuntime.start(wordcount, { coordinatorWaits: false });
    runs.push(run);
    await run.push(['to be or not to be']);
    const [first] = await run.advance();
    const marked = await run.ctx.ledger.pipeline.get();
    const shown = formatStatus(await pipelineStatus(run.ctx, run.now()), 'here');
    const wake = vi.spyOn(run.context('ingest').invoker, 'wake');

    // Act: records before the next boundary, then after it, with no tick in between.
    await run.push(['that is the question']);
    await run.ingestPending();
    const beforeBoundary = run.invoker.calls.get('ingest -> coordinator') ?? 0;
    run.passTime(1);
    await run.push(['whether tis nobler']);
    await run.ingestPending();
    await run.invoker.idle();
    const second = await run.result(batchId(2));
    const after = await run.ctx.ledger.pipeline.get();

    // Assert
    expect(first?.status).toBe('complete');
    expect(marked?.asleep).toBeTypeOf('number');
    expect(marked?.wakeAt).toBe((first?.time ?? 0) + wordcount.batchIntervalMs);
    expect(shown).toMatch(/state: +running; no coordinator waits: the first ingest after \S+ wakes one/);
    expect(beforeBoundary).toBe(0);
    expect(run.invoker.calls.get('ingest -> coordinator')).toBe(1);
    // It seals; the sweep is left to the schedule's ticks.
    expect(wake.mock.calls).toEqual([[{ kind: 'sluice.tick@1', pipeline: wordcount.name, sweep: false }]]);
    expect(run.invoker.refused).toEqual([]);
    // Sealed and run by the coordinator ingest woke: both lines, the whole count.
    expect(second.status).toBe('complete');
    expect(second.inputRecords).toBe(2);
    expect(new Map(second.records as [string, number][])).toEqual(
      new Map([
        ['that', 1],
        ['is', 1],
        ['the', 1],
        ['question', 1],
        ['whether', 1],
        ['tis', 1],
        ['nobler', 1],
      ]),
    );
    // It marked itself asleep until the boundary after batch 2.
    expect(after?.wakeAt).toBe(second.time + wordcount.batchIntervalMs);
  });

  it('goes on when the boundary passed while it marked itself, and sleeps without a time when idle', async () => {
    // Arrange: records waiting behind the cursors (a busy stream).
    const run = await LocalRuntime.start(wordcount, { coordinatorWaits: false });
    runs.push(run);
    await run.advance();
    await run.push(['to be or not to be']);
    await run.ingestPending();
    // The coordinator those records woke has marked itself asleep until the next boundary.
    await run.invoker.idle();

    // Act
    const passed = await sleepUntilDue(run.ctx, run.now() - 1);
    const afterPassed = await run.ctx.ledger.pipeline.get();
    const ahead = await sleepUntilDue(run.ctx, run.now() + 1_000);
    const afterAhead = await run.ctx.ledger.pipeline.get();
    await run.advance();
    await run.advance();
    const idle = await sleepUntilDue(run.ctx, run.now() + 1_000);
    const afterIdle = await run.ctx.ledger.pipeline.get();

    // Assert
    expect(passed).toBe(false);
    expect(afterPassed?.asleep).toBeUndefined();
    expect(ahead).toBe(true);
    expect(afterAhead?.wakeAt).toBe(run.now() - 2 * wordcount.batchIntervalMs + 1_000);
    expect(idle).toBe(true);
    expect(afterIdle?.asleep).toBeTypeOf('number');
    expect(afterIdle?.wakeAt).toBeUndefined();
  });

  it('lets an ingest clear only the mark it read, not one set again for a later boundary', async () => {
    // Arrange: a mark for one boundary, then (a coordinator's next pass) for the one after.
    const run = await LocalRuntime.start(wordcount, { coordinatorWaits: false });
    runs.push(run);
    const { pipeline } = run.ctx.ledger;
    const first = run.now() + wordcount.batchIntervalMs;
    const second = first + wordcount.batchIntervalMs;
    await pipeline.sleep(run.now(), first);
    await pipeline.sleep(run.now(), second);

    // Act
    const stale = await pipeline.wake({ wakeAt: first });
    const kept = (await pipeline.get())?.wakeAt;
    const current = await pipeline.wake({ wakeAt: second });
    await pipeline.sleep(run.now());
    const idleByBoundary = await pipeline.wake({ wakeAt: second });
    const idle = await pipeline.wake({ wakeAt: undefined });

    // Assert
    expect(stale).toBe(false);
    expect(kept).toBe(second);
    expect(current).toBe(true);
    expect(idleByBoundary).toBe(false);
    expect(idle).toBe(true);
    expect((await pipeline.get())?.asleep).toBeUndefined();
  });

  it('on the system clock: the schedule passes once a minute, and ingest after each boundary seals the batches', async () => {
    // Arrange: one-second batches, records for a few seconds.
    const run = await LocalRuntime.start(withSettings(wordcount, { batchInterval: '1s' }), {
      clock: 'system',
      coordinatorWaits: false,
    });
    runs.push(run);
    const lines = Array.from({ length: 12 }, (_, i) => `word${i % 3} more`);

    // Act
    const ticks = vi.spyOn(run.invoker, 'submit');
    run.startBackground();
    for (const line of lines) {
      await run.push([line]);
      await sleep(300);
    }
    const sealedWhileRunning = (await run.ctx.ledger.pipeline.get())?.lastSealed ?? 0;
    const ticksWhileRunning = ticks.mock.calls.length;
    await run.stopBackground();
    // What the stopped poller had not read yet, then the boundary after it, then every batch run.
    await run.ingestPending();
    await sleep(1_100);
    await run.settle();
    const sealed = (await run.ctx.ledger.pipeline.get())?.lastSealed ?? 0;
    const counts = new Map<unknown, number>();
    for (let n = 1; n <= sealed; n++) {
      for (const [word, count] of (await run.result(batchId(n))).records as [string, number][])
        counts.set(word, (counts.get(word) ?? 0) + count);
    }

    // Assert: the schedule passed once (its next pass is a minute away), yet batches were sealed
    // while records came, by coordinators ingest woke; every word counted once.
    expect(ticksWhileRunning).toBe(1);
    expect(sealedWhileRunning).toBeGreaterThanOrEqual(2);
    expect(run.invoker.calls.get('ingest -> coordinator') ?? 0).toBeGreaterThanOrEqual(1);
    expect(run.invoker.refused).toEqual([]);
    expect(counts).toEqual(
      new Map([
        ['word0', 4],
        ['word1', 4],
        ['word2', 4],
        ['more', 12],
      ]),
    );
  });
});
