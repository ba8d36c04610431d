import { afterEach, describe, expect, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import { sleepWhileIdle } from '../../lib/runtime/coordinator';
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
