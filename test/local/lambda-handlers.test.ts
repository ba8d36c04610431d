import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import { withSettings } from '../../lib/dsl/pipeline';
import { lambdaHandlers } from '../../lib/runtime/lambda';
import { CONFIG_ENV } from '../../lib/runtime/context';
import { LocalRuntime } from '../../local/runtime';

/**
 * The Lambda adapters themselves (what `functions/*.ts` export), against the emulator's S3,
 * DynamoDB and Kinesis. The emulator has no Lambda, so these runs avoid invoking tasks: ingest on
 * its own, and the coordinator's loop over batches with no input.
 */
const fast = withSettings(wordcount, { batchInterval: '200ms' });

describe('the Lambda handlers', () => {
  let run: LocalRuntime<string, [string, number]>;
  let env: NodeJS.ProcessEnv;
  const saved = { ...process.env };

  beforeAll(async () => {
    run = await LocalRuntime.start(fast);
    env = {
      AWS_ENDPOINT_URL: run.resources.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      [CONFIG_ENV.bucket]: run.resources.bucket,
      [CONFIG_ENV.table]: run.resources.table,
      [CONFIG_ENV.streams]: JSON.stringify([[run.resources.stream, 'lines']]),
    };
    // Powertools reads these from the process: no log lines or metric documents in test output.
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  });
  afterAll(async () => {
    process.env = saved;
    await run.stop();
  });

  it('ingest writes a Kinesis event ahead as one segment per shard, under the source name', async () => {
    const handlers = lambdaHandlers(fast, env);
    const record = (seq: string, text: string) => ({
      eventID: `shardId-000000000003:${seq}`,
      eventSourceARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${run.resources.stream}`,
      kinesis: {
        sequenceNumber: seq,
        data: Buffer.from(text).toString('base64'),
        partitionKey: 'p',
        approximateArrivalTimestamp: 1_700_000_000.5,
      },
    });

    await handlers.ingest({ Records: [record('12', 'b'), record('11', 'a')] });
    const segments = await run.ctx.ledger.segments.between('lines/shardId-000000000003' as never, undefined);

    expect(segments).toEqual([
      expect.objectContaining({
        firstSeq: '11',
        lastSeq: '12',
        records: 2,
        key: 'segments/lines/shardId-000000000003/11.seg',
      }),
    ]);
    expect(await run.ctx.ledger.segments.shards()).toContain('lines/shardId-000000000003');
  });

  it('rejects an event that is not a Kinesis event where it enters', async () => {
    const handlers = lambdaHandlers(fast, env);

    await expect(handlers.ingest({ Records: [{ nope: true }] })).rejects.toThrow(/not a Kinesis event/);
    await expect(handlers.transform({ kind: 'sluice.task@1', batch: 0 })).rejects.toThrow(/not a task event/);
    await expect(
      handlers.coordinator({ source: 'sluice.schedule' }, { getRemainingTimeInMillis: () => 60_000 }),
    ).rejects.toThrow(/not a coordinator tick/);
    await expect(
      handlers.coordinator(
        { kind: 'sluice.tick@1', pipeline: 'another' },
        { getRemainingTimeInMillis: () => 60_000 },
      ),
    ).rejects.toThrow(/a tick for pipeline 'another'/);
  });

  it.each([
    { waits: 'waits', variables: {} },
    { waits: 'does not wait', variables: { [CONFIG_ENV.coordinatorWaits]: 'false' } },
  ])(
    'the coordinator that $waits seals what is due, then sleeps instead of looping while the stream is idle',
    async ({ variables }) => {
      const fresh = await LocalRuntime.start(fast);
      try {
        const handlers = lambdaHandlers(fast, {
          ...env,
          ...variables,
          AWS_ENDPOINT_URL: fresh.resources.endpoint,
          [CONFIG_ENV.bucket]: fresh.resources.bucket,
          [CONFIG_ENV.table]: fresh.resources.table,
        });
        // A few 200 ms batches come due first.
        await new Promise((resolve) => setTimeout(resolve, 700));
        const deadline = Date.now() + 8_500;

        const outcome = await handlers.coordinator(fresh.deployment.tick, {
          getRemainingTimeInMillis: () => deadline - Date.now(),
        });
        const reports = outcome.kind === 'sluice.passes@1' ? outcome.passes : [];
        const batches = await fresh.ctx.ledger.batches.from(1);
        const state = await fresh.ctx.ledger.pipeline.get();

        // One pass: the batches due were sealed (empty, so complete), and no invocation waits.
        expect(reports).toHaveLength(1);
        expect(reports[0]?.sealed.length).toBeGreaterThan(0);
        expect(batches.map((b) => b.status)).toEqual(batches.map(() => 'complete'));
        expect(state?.asleep).toBeTypeOf('number');
        // Idle, it sleeps until records come, not until a boundary.
        expect(state?.wakeAt).toBeUndefined();
        expect(deadline - Date.now()).toBeGreaterThan(5_000);
      } finally {
        await fresh.stop();
      }
    },
  );
});
