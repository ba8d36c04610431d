import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { priceRun } from '../../lib/cost/model';
import { US_EAST_1 } from '../../lib/cost/prices';
import type { AwsClients } from '../../lib/aws';
import { DEFAULT_MEMORY_MB } from '../../lib/deployment';
import { aroundRequests } from '../../lib/middleware';
import type { CostReport } from '../../local/cost-report';
import { LocalRuntime } from '../../local/runtime';
import { coordinate } from '../../lib/runtime/coordinator';
import wordcount from '../../examples/wordcount/pipeline';
import { runCli } from '../support/cli';
import { generateLines } from '../support/corpus';

const dir = mkdtempSync(path.join(tmpdir(), 'sluice-cost-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A recount of a run's billable requests of its own, from every request the clients send: S3 PUTs
 * and GETs by command, and the request units DynamoDB reports in each response.
 */
function recount(run: { readonly clients: AwsClients }): {
  s3Puts: number;
  s3Gets: number;
  writeUnits: number;
  readUnits: number;
} {
  const counts = { s3Puts: 0, s3Gets: 0, writeUnits: 0, readUnits: 0 };
  aroundRequests(run.clients.s3, 'recount', async (command, send) => {
    if (command === 'PutObjectCommand') counts.s3Puts++;
    if (command === 'GetObjectCommand' || command === 'HeadObjectCommand') counts.s3Gets++;
    return send();
  });
  aroundRequests(run.clients.dynamo, 'recount', async (command, send) => {
    try {
      const result = (await send()) as { output?: { ConsumedCapacity?: { CapacityUnits?: number } } };
      const units = result.output?.ConsumedCapacity?.CapacityUnits ?? 0;
      if (/^(Get|Query|BatchGet)/.test(command)) counts.readUnits += units;
      else counts.writeUnits += units;
      return result;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') counts.writeUnits += 1;
      throw error;
    }
  });
  return counts;
}

describe('what a run costs', () => {
  it('prices S3 and DynamoDB within 5% of a recount of the same run at list prices', async () => {
    // Arrange
    const run = await LocalRuntime.start(wordcount, { clock: 'manual', shards: 2 });
    try {
      const counts = recount(run);
      const lines = generateLines(3_000, 11);

      // Act
      for (let i = 0; i < 3; i++) {
        await run.push(lines.slice(i * 1000, (i + 1) * 1000));
        await run.advance();
      }
      const bill = priceRun(run.usage.usage(), US_EAST_1, DEFAULT_MEMORY_MB);

      // Assert
      const s3 = (counts.s3Puts / 1000) * 0.005 + (counts.s3Gets / 1000) * 0.0004;
      const dynamodb = (counts.writeUnits / 1e6) * 0.625 + (counts.readUnits / 1e6) * 0.125;
      expect(counts.s3Puts).toBeGreaterThan(0);
      expect(counts.writeUnits).toBeGreaterThan(0);
      expect(Math.abs((bill.byService.s3 ?? 0) - s3) / s3).toBeLessThan(0.05);
      expect(Math.abs((bill.byService.dynamodb ?? 0) - dynamodb) / dynamodb).toBeLessThan(0.05);
      expect(bill.lines.find((l) => l.item === 'PUT payload units')?.quantity).toBe(3_000);
    } finally {
      await run.stop();
    }
  });

  it('`sluice cost --json` runs batches of the size the rate gives and reports a month beside the alternatives', async () => {
    // Arrange
    const input = path.join(dir, 'lines.txt');
    writeFileSync(input, `${generateLines(1_200, 5).join('\n')}\n`);

    // Act: 40 records/s at wordcount's 10 s interval is 400 lines a batch
    const { code, stdout, stderr } = await runCli([
      'cost',
      'examples/wordcount/pipeline.ts',
      '-i',
      input,
      '--rate',
      '40/s',
      '--json',
    ]);

    // Assert
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as CostReport;
    expect(report.kind).toBe('sluice.cost@1');
    expect(report.run).toMatchObject({ batches: 3, records: 1_200 });
    expect(report.projection.recordsPerSecond).toBe(40);
    expect(report.alternatives.perRecord.beyondKinesis).toBeGreaterThan(0);
    expect(report.alternatives.flink.total).toBeCloseTo(165.6, 6);
    expect(report.projection.month.total).toBeGreaterThan(report.projection.beyondKinesis);
  });

  it('`sluice cost --no-coordinator-waits` runs and prices a coordinator that does not wait: no looping minute', async () => {
    // Arrange
    const input = path.join(dir, 'waits.txt');
    writeFileSync(input, `${generateLines(600, 6).join('\n')}\n`);
    const cost = (...more: string[]) =>
      runCli(['cost', 'examples/wordcount/pipeline.ts', '-i', input, '--rate', '20/s', '--json', ...more]);

    // Act
    const waiting = await cost();
    const woken = await cost('--no-coordinator-waits');

    // Assert: the same batches; the month's Lambda time without a coordinator waiting out each minute.
    expect(waiting.code, waiting.stderr).toBe(0);
    expect(woken.code, woken.stderr).toBe(0);
    const [before, after] = [waiting, woken].map((r) => JSON.parse(r.stdout) as CostReport);
    expect(after?.run).toMatchObject({ batches: 3, records: 600 });
    const gbSeconds = (report: CostReport | undefined) =>
      report?.projection.month.lines.find((l) => l.item === 'GB-seconds')?.quantity ?? 0;
    // A waiting coordinator bills about 68 s of every minute at 256 MiB: 43,800 ticks.
    expect(gbSeconds(before) - gbSeconds(after)).toBeGreaterThan(0.9 * 43_800 * 68 * 0.25);
    expect(after?.projection.beyondKinesis).toBeLessThan((before?.projection.beyondKinesis ?? 0) - 5);
  });

  it('prices with a price table from a file (`--prices`)', async () => {
    // Arrange: every list price doubled, under another region's name
    const doubled = JSON.parse(JSON.stringify(US_EAST_1), (_key, value: unknown) =>
      typeof value === 'number' ? value * 2 : value,
    ) as Record<string, unknown>;
    const prices = path.join(dir, 'prices.json');
    writeFileSync(prices, JSON.stringify({ ...doubled, region: 'eu-west-1' }));

    // Act
    const { code, stdout, stderr } = await runCli([
      'cost',
      'examples/wordcount/pipeline.ts',
      '-i',
      'examples/wordcount/input.txt',
      '--prices',
      prices,
      '--json',
    ]);

    // Assert: what a PUT costs is the file's price
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as CostReport;
    expect(report.region).toBe('eu-west-1');
    const puts = report.run.bill.lines.find((line) => line.item === 'PUT and LIST requests');
    expect(puts?.quantity).toBeGreaterThan(0);
    expect((puts?.dollars ?? 0) / (puts?.quantity ?? 1)).toBeCloseTo((2 * 0.005) / 1000, 12);
    expect(report.alternatives.flink.total).toBeCloseTo(2 * 165.6, 6);
  });

  it('`sluice local run --cost --json` prints the report after the batches', async () => {
    // Arrange
    const input = path.join(dir, 'run.txt');
    writeFileSync(input, `${generateLines(60, 8).join('\n')}\n`);

    // Act
    const { code, stdout, stderr } = await runCli([
      'local',
      'run',
      'examples/wordcount/pipeline.ts',
      '-i',
      input,
      '--lines-per-batch',
      '20',
      '--cost',
      '--rate',
      '2/s',
      '--json',
    ]);

    // Assert
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    const report = JSON.parse(lines[lines.length - 1] ?? '') as CostReport;
    expect(report.kind).toBe('sluice.cost@1');
    expect(report.run).toMatchObject({ batches: 3, records: 60 });
    expect(report.projection.recordsPerSecond).toBe(2);
    expect(lines.slice(0, -1).every((line) => 'batch' in (JSON.parse(line) as object))).toBe(true);
  });

  it('says when a region has no built-in prices', async () => {
    const { code, stderr } = await runCli([
      'cost',
      'examples/wordcount/pipeline.ts',
      '-i',
      'examples/wordcount/input.txt',
      '--region',
      'eu-west-1',
    ]);

    expect(code).toBe(2);
    expect(stderr).toContain('no built-in prices for eu-west-1');
  });
});

describe('what ingest costs', () => {
  it('registers a shard once per process, not on every call', async () => {
    // Arrange
    const run = await LocalRuntime.start(wordcount, { shards: 1 });
    try {
      // Act: three ingest calls for the one shard
      for (const seed of [1, 2, 3]) {
        await run.push(generateLines(5, seed));
        await run.ingestPending();
      }
      const ingest = run.usage.usage().functions.ingest;

      // Assert: three segments (a PUT and a ledger item each), one registration of the shard
      expect(ingest?.invocations).toBe(3);
      expect(ingest?.operations['s3:PutObject']?.requests).toBe(3);
      expect(ingest?.operations['dynamodb:PutItem']?.requests).toBe(3);
      expect(ingest?.operations['dynamodb:UpdateItem']?.requests).toBe(1);
      expect(await run.ctx.ledger.segments.shards()).toHaveLength(1);
    } finally {
      await run.stop();
    }
  });
});

describe('what the coordinator reads', () => {
  it('sweeps only the batches after the settled ones, not the last hundred', async () => {
    // Arrange: 20 complete batches
    const run = await LocalRuntime.start(wordcount, { shards: 1 });
    try {
      for (let batch = 1; batch <= 20; batch++) {
        await run.push(generateLines(3, batch));
        await run.advance();
      }
      const settled = (await run.ctx.ledger.pipeline.get())?.settledThrough;
      run.usage.reset();

      // Act: a pass that sweeps everything it finds open
      await coordinate(run.ctx, { stuckBefore: Number.MAX_SAFE_INTEGER });
      const queries = run.usage.usage().outside['dynamodb:Query'];
      const sweptAll = await run.ctx.ledger.batches.from(1);

      // Assert: the batch query finds no batch item to read (each is 1 KB or more)
      expect(settled).toBeGreaterThanOrEqual(19);
      expect((await run.ctx.ledger.pipeline.get())?.settledThrough).toBe(20);
      expect(sweptAll).toHaveLength(20);
      expect(queries?.readUnits ?? 0).toBeLessThan(2);
    } finally {
      await run.stop();
    }
  });
});
