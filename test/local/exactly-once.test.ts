import { GetObjectCommand, ListObjectsCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import { batchId, taskId } from '../../lib/ids';
import { sealBatch } from '../../lib/runtime/coordinator';
import { runTask } from '../../lib/runtime/tasks';
import { manifestKey } from '../../lib/storage/keys';
import { LEDGER_ITEM_KEYS } from '../../lib/storage/ledger/items';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../lib/aws';
import { testPipeline } from '../../local/testing';
import { closeAfterEach } from '../support/runs';
import type { LocalRuntime } from '../../local/runtime';
import { countWords, generateLines, sortedEntries, toCountMap } from '../support/corpus';

const track = closeAfterEach();

/** SDK clients of the test's own, pointed at the run's endpoint. */
function clientsFor(run: LocalRuntime<string, [string, number]>): AwsClients {
  return createAwsClients({
    endpoint: run.resources.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
}

/** Every object in the run's bucket, key to bytes. */
async function snapshot(run: LocalRuntime<string, [string, number]>): Promise<Map<string, string>> {
  const clients = clientsFor(run);
  try {
    const objects = new Map<string, string>();
    let marker: string | undefined;
    do {
      const page = await clients.s3.send(
        new ListObjectsCommand({ Bucket: run.resources.bucket, Marker: marker }),
      );
      for (const o of page.Contents ?? []) {
        const body = await clients.s3.send(
          new GetObjectCommand({ Bucket: run.resources.bucket, Key: o.Key }),
        );
        objects.set(
          o.Key as string,
          Buffer.from(
            await (body.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
          ).toString('base64'),
        );
      }
      marker = page.IsTruncated ? page.Contents?.at(-1)?.Key : undefined;
    } while (marker);
    return objects;
  } finally {
    destroyAwsClients(clients);
  }
}

describe('replays write identical objects to the same keys', () => {
  it('re-running every task and re-sealing every batch leaves the bucket byte-identical', async () => {
    const t = testPipeline(wordcount, {
      shards: 3,
      settings: { partitions: 3, tasks: { max: 3, targetBytes: 1 } },
    });
    track(t);
    await t.push(generateLines(3_000, 1)).advance();
    await t.push(generateLines(2_000, 2)).advance();
    const run = await t.local();
    const before = await snapshot(run);
    const clients = clientsFor(run);

    for (const n of [1, 2]) {
      const batch = batchId(n);
      const item = await run.ctx.ledger.batches.get(batch);
      if (!item) throw new Error(`batch ${n} is not in the ledger`);
      await sealBatch(run.ctx, batch, item.time);
      for (let phase = 0; phase < run.ctx.plan.phases.length; phase++) {
        for (const report of await run.ctx.ledger.reports.list(batch, phase)) {
          // Forget the report so the task does all its work again, not just report again.
          await clients.dynamo.send(
            new DeleteCommand({
              TableName: run.resources.table,
              Key: LEDGER_ITEM_KEYS.task(report.batch, report.phase, report.task),
            }),
          );
          expect(await run.ctx.ledger.reports.get(report.batch, report.phase, report.task)).toBeUndefined();
          await runTask(run.ctx, {
            kind: 'sluice.task@1',
            pipeline: 'wordcount',
            batch,
            phase,
            task: taskId(report.task),
          });
        }
      }
    }
    await run.invoker.idle();
    destroyAwsClients(clients);
    const after = await snapshot(run);

    expect(after.size).toBe(before.size);
    for (const [key, body] of before) expect(after.get(key), key).toBe(body);
    expect([...before.keys()].some((k) => k === manifestKey(batchId(1)))).toBe(true);
  });

  it('a batch whose task invocations are all lost is found by the sweep and re-driven', async () => {
    const lines = generateLines(4_000, 9);
    const t = testPipeline(wordcount, {
      shards: 2,
      faults: { crash: 0.6, seed: 3 },
      retries: 0,
      settings: { partitions: 2, tasks: { max: 4, targetBytes: 1 } },
    });
    track(t);

    const batch = await t.push(lines).advance();
    const run = await t.local();

    expect(run.invoker.failed.length).toBeGreaterThan(0);
    expect(batch.status).toBe('complete');
    expect(sortedEntries(toCountMap(batch.records))).toEqual(sortedEntries(countWords(lines)));
  });
});
