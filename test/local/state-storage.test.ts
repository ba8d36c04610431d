import { describe, expect, it } from 'vitest';
import { RetryableError, type AnyPipeline, type Pair } from '../../lib';
import { createAwsClients, destroyAwsClients } from '../../lib/aws';
import { batchId, taskId } from '../../lib/ids';
import { createRuntimeContext } from '../../lib/runtime/context';
import { coordinate } from '../../lib/runtime/coordinator';
import type { TaskEvent } from '../../lib/runtime/events';
import { runTask } from '../../lib/runtime/tasks';
import { testPipeline } from '../../local/testing';
import { closeAfterEach } from '../support/runs';
import { runningCount } from '../support/pipelines';

const counting = runningCount;

const track = closeAfterEach();

/** Lines holding `keys` distinct words, ten to a line. */
function distinctWords(keys: number, prefix: string): string[] {
  const lines: string[] = [];
  for (let i = 0; i < keys; i += 10) {
    lines.push(Array.from({ length: Math.min(10, keys - i) }, (_, j) => `${prefix}${i + j}`).join(' '));
  }
  return lines;
}

// The document client's commands reach the wire (and the counter) as the low-level ones.
const DYNAMO_WRITES = ['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand'];

describe('state in chunks', () => {
  it('writes a few hundred items per batch for 100k changed keys, not one per key', async () => {
    const t = testPipeline(counting, {
      shards: 2,
      settings: { partitions: 4, tasks: { max: 4, targetBytes: 1 } },
    });
    track(t);
    const run = await t.local();
    const lines = distinctWords(100_000, 'w');

    run.usage.reset();
    const first = await t.push(lines).advance();
    const firstWrites = run.usage.count(...DYNAMO_WRITES);
    run.usage.reset();
    const second = await t.push(lines).advance();
    const secondWrites = run.usage.count(...DYNAMO_WRITES);

    expect(first.outputRecords).toBe(100_000);
    expect(second.outputRecords).toBe(100_000);
    expect(new Map(second.records).get('w99999')).toBe(2);
    const writes = `DynamoDB writes per batch: ${firstWrites}, then ${secondWrites}`;
    expect(firstWrites, writes).toBeGreaterThan(0);
    expect(firstWrites, writes).toBeLessThan(400);
    expect(secondWrites, writes).toBeLessThan(400);
  });

  it('writes only the chunks a batch changed', async () => {
    const t = testPipeline(counting, { settings: { partitions: 1 } });
    track(t);
    const run = await t.local();
    await t.push(distinctWords(20_000, 'k')).advance();

    run.usage.reset();
    await t.push(['k7']).advance();
    const oneKey = run.usage.count('PutItemCommand');
    run.usage.reset();
    await t.push(distinctWords(20_000, 'k')).advance();
    const allKeys = run.usage.count('PutItemCommand');

    expect(oneKey).toBeLessThan(allKeys);
  });
});

describe('a reducer that crashes half-way through its state writes', () => {
  it.each([1, 2, 3])(
    'leaves the same state and output as a clean run (crash before commit, batch %i)',
    async (crashAt) => {
      const batches = [['a b c'], ['a a d'], ['e'], ['b']];
      const clean = testPipeline(counting, { settings: { partitions: 2 } });
      const crashed = testPipeline(counting, { settings: { partitions: 2 } });
      track(clean);
      track(crashed);
      const store = (await crashed.local()).context('running').state;
      const commit = store.commit.bind(store);
      let crashes = 0;
      // The chunk writes have gone through; the process dies before the head moves.
      store.commit = async (...args) => {
        if (args[2].batch === crashAt && crashes++ < 2) throw new RetryableError('crash before commit');
        return commit(...args);
      };

      const expected: unknown[] = [];
      const actual: unknown[] = [];
      for (const batch of batches) {
        expected.push(sortPairs((await clean.push(batch).advance()).records));
        actual.push(sortPairs((await crashed.push(batch).advance()).records));
      }

      expect(crashes).toBeGreaterThan(0);
      expect(actual).toEqual(expected);
    },
  );
});

function sortPairs(records: readonly Pair<string, number>[]): Pair<string, number>[] {
  return [...records].sort(([a], [b]) => a.localeCompare(b));
}

describe('stateful partitions wait for the previous batch', () => {
  it('a reducer that ran before the previous batch committed is started again by that commit', async () => {
    // Arrange: the executors, with an invoker that only records what would be invoked.
    const t = track(testPipeline(counting, { settings: { partitions: 1 } }));
    const run = await t.local();
    const invoked: TaskEvent[] = [];
    const clock = { time: run.now() };
    const clients = createAwsClients({
      endpoint: run.resources.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const ctx = createRuntimeContext(counting as unknown as AnyPipeline, {
      config: {
        bucket: run.resources.bucket,
        table: run.resources.table,
        functions: {},
        sweepAfterMs: 60_000,
      },
      clients,
      invoker: {
        invoke: (_fn, event) => {
          invoked.push(event);
          return Promise.resolve();
        },
        wake: () => Promise.resolve(),
      },
      clock: { now: () => clock.time },
    });
    const task = (batch: number, phase: number, n: number): TaskEvent => ({
      kind: 'sluice.task@1',
      pipeline: 'running',
      batch: batchId(batch),
      phase,
      task: taskId(n),
    });
    await run.push(['a b']);
    await run.ingestPending();
    clock.time += 2 * counting.batchIntervalMs;
    await coordinate(ctx);
    await runTask(ctx, task(1, 0, 0));
    await runTask(ctx, task(2, 0, 0)).catch(() => undefined);

    // Act: batch 2's reducer first (too early), then batch 1's.
    const early = await runTask(ctx, task(2, 1, 0)).then(
      () => 'ran',
      (error: unknown) => (error as Error).name,
    );
    invoked.length = 0;
    await runTask(ctx, task(1, 1, 0));

    // Assert
    expect(early).toBe('NotReadyError');
    expect(invoked).toContainEqual(task(2, 1, 0));
    destroyAwsClients(clients);
  });
});
