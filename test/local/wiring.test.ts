import { describe, expect, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import type { Pair } from '../../lib';
import { deployedFunction } from '../../lib/deployment';
import { batchId, shardId, taskId } from '../../lib/ids';
import type { RuntimeContext } from '../../lib/runtime/context';
import { coordinate } from '../../lib/runtime/coordinator';
import { FaultInjector } from '../../local/faults';
import { LocalInvoker } from '../../local/invoker';
import { testPipeline } from '../../local/testing';
import { generateLines } from '../support/corpus';
import { closeAfterEach } from '../support/runs';
import { runningCount } from '../support/pipelines';
import { expectExactWordCounts, runOnWallClock } from '../support/wallclock';

/**
 * The local runtime runs each function with the environment the CDK construct gives it, invokes
 * through the invocations the deployment permits, and refuses ledger and bucket access outside
 * each function's grants: what would fail on AWS fails here.
 */

const counting = runningCount;

const track = closeAfterEach();

describe('a stateful pipeline catching up, wired as the construct wires it', () => {
  it('completes every batch: each committed partition restarts its waiting successor, as permitted', async () => {
    // Arrange: five batches sealed at once, so batch n+1's partitions start before n commits.
    const t = track(testPipeline(counting, { shards: 2, settings: { partitions: 3 } }));
    const lines = ['a b c a', 'b d e a', 'f g a b'];
    const run = await t.local();

    // Act
    const results = await t.push(lines).advanceBy(5);

    // Assert
    expect(results.map((r) => r.status)).toEqual([
      'complete',
      'complete',
      'complete',
      'complete',
      'complete',
    ]);
    const expected = new Map<string, number>();
    for (const word of lines.join(' ').split(' ')) expected.set(word, (expected.get(word) ?? 0) + 1);
    expect(new Map(results[4]?.records as Pair<string, number>[])).toEqual(expected);
    expect(run.invoker.calls.get('running -> running')).toBeGreaterThan(0);
    expect(run.invoker.refused).toEqual([]);
    expect(run.guard.refused).toEqual([]);
    expect(deployedFunction(run.deployment, 'running').invokes).toContain('running');
    expect(deployedFunction(run.deployment, 'ones').invokes).toEqual(['running']);
  });
});

describe('the local invoker refuses what Lambda and IAM refuse', () => {
  it('a function the deployment does not have, and a target the caller may not invoke', async () => {
    // Arrange
    const t = track(testPipeline(wordcount));
    const run = await t.local();
    const invoker = new LocalInvoker(new FaultInjector());
    const count = run.invoker.function(run.resources.functions.count ?? '');
    if (!count) throw new Error('no count function');
    invoker.register(count);
    const transform = deployedFunction(run.deployment, 'tokenize');
    const reduce = deployedFunction(run.deployment, 'count');

    // Act
    const missing = invoker.transportFor(transform)('no-such-function', '{}');
    const denied = invoker.transportFor(reduce)(count.name, '{}');

    // Assert: a stateless reduce may not invoke itself; nothing may invoke what does not exist.
    await expect(missing).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(denied).rejects.toMatchObject({ name: 'AccessDeniedException' });
    expect(invoker.refused).toEqual(['tokenize -> no-such-function', 'count -> count']);
  });
});

describe("the local runtime refuses ledger and bucket access outside a function's grants", () => {
  it.each([
    {
      name: 'a reduce function moving the pipeline item',
      fn: 'count',
      act: (ctx: RuntimeContext) => ctx.ledger.pipeline.recordSeal(batchId(1), {}),
    },
    {
      name: 'a transform function reading a segment item (only the coordinator reads them)',
      fn: 'tokenize',
      act: (ctx: RuntimeContext) =>
        ctx.ledger.segments.between(shardId('lines/shardId-000000000000'), undefined),
    },
    {
      name: "a transform function writing another phase's shuffle",
      fn: 'tokenize',
      act: (ctx: RuntimeContext) =>
        ctx.objects.put('shuffle/phase-1/batch-0000000001/task-00000.shuffle', Buffer.from('x')),
    },
    {
      name: 'ingest reading a manifest',
      fn: 'ingest',
      act: (ctx: RuntimeContext) => ctx.objects.getIfExists('manifests/batch-0000000001.json'),
    },
    {
      name: "a reduce function writing a transform task's report",
      fn: 'count',
      act: (ctx: RuntimeContext) =>
        ctx.ledger.reports.put({
          batch: batchId(1),
          phase: 0,
          task: taskId(0),
          withData: [],
          recordsIn: 0,
          recordsOut: 0,
          deadLetters: 0,
          bytesRead: 0,
          bytesWritten: 0,
        }),
    },
  ])('$name', async ({ fn, act }) => {
    // Arrange
    const t = track(testPipeline(wordcount));
    const run = await t.local();

    // Act
    const attempt = run.guard.run(deployedFunction(run.deployment, fn), async (): Promise<unknown> =>
      act(run.context(fn)),
    );

    // Assert
    await expect(attempt).rejects.toMatchObject({ name: expect.stringMatching(/^AccessDenied/) as unknown });
    expect(run.guard.refused).toHaveLength(1);
  });
});

describe('a wall-clock run on a slow endpoint', () => {
  it('at a 500 ms interval, with every request slowed, finishes with exact counts', async () => {
    // Arrange: 40 ms per request makes a coordinator pass or a task take longer than an interval.
    const lines = generateLines(3_000, 5);

    // Act
    const run = await runOnWallClock(wordcount as never, lines, {
      batchInterval: '500ms',
      faults: { latencyMs: 40 },
    });

    // Assert
    expectExactWordCounts(run, lines);
  });
});

describe('two coordinators sealing the same batch', () => {
  it('start its tasks once: only the pass that records the seal starts the batch', async () => {
    // Arrange: input ingested and the clock past the batch's end, as two overlapping passes see it.
    const t = track(testPipeline(wordcount, { shards: 2, settings: { tasks: { targetBytes: 4096 } } }));
    const run = await t.local();
    await run.push(generateLines(1000, 7));
    await run.ingestPending();
    const deployed = run.context('coordinator');
    const ahead = deployed.clock.now() + wordcount.batchIntervalMs;
    const coordinator = { ...deployed, clock: { now: () => ahead } };

    // Act
    await Promise.all([coordinate(coordinator), coordinate(coordinator)]);
    await run.settle();

    // Assert
    const item = await coordinator.ledger.batches.get(batchId(1));
    expect(item?.status).toBe('complete');
    expect(item?.tasks).toBeGreaterThan(1);
    expect(run.invoker.calls.get('coordinator -> tokenize')).toBe(item?.tasks);
  });
});
