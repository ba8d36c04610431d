import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CloudFormationClient,
  DescribeStacksCommand,
  ListStackResourcesCommand,
  type StackResourceSummary,
} from '@aws-sdk/client-cloudformation';
import { App, Stack } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import { SluicePipeline } from '../../infra/pipeline-construct';
import { DeleteStreamCommand } from '@aws-sdk/client-kinesis';
import { createAwsClients, destroyAwsClients } from '../../lib/aws';
import { batchId } from '../../lib/ids';
import { progressKey } from '../../lib/storage/keys';
import { type DeployedResources } from '../../lib/deployment';
import type { StackCostReport } from '../../local/cost-report';
import { LocalRuntime, type BatchResult } from '../../local/runtime';
import type { ReplayedBatch, ReplayReport } from '../../local/replay';
import { openStack, resolveStack, StackLookupError } from '../../local/stack';
import type { UiBatch } from '../../local/ui/server';
import { ROOT, runCli, startCli } from '../support/cli';
import { generateLines } from '../support/corpus';
import { expectSameObjects, originals, replayed } from '../support/objects';
import {
  deployStack,
  MOTO_REGION,
  motoAvailable,
  startMoto,
  type DeployedStack,
  type Moto,
} from '../support/moto';

/** moto checks no signatures; the SDK only needs credentials to sign with. */
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/**
 * A deployed stack read from this machine: the word-count stack created by moto's CloudFormation
 * from the synthesized template (its references, outputs and asset locations resolved as in a
 * deployment). moto cannot run the functions (no Docker), so the runtime runs them here on the
 * stack's own bucket, ledger table and stream; the CLI then finds the pipeline through the stack's
 * resources output, as it would on AWS.
 */
describe.skipIf(!motoAvailable)('a deployed stack (word count, in moto)', () => {
  let moto: Moto | undefined;
  let outdir = '';
  let deployed: DeployedStack;
  let listed: StackResourceSummary[] = [];
  let cloudFormation: CloudFormationClient | undefined;
  let resources: DeployedResources;
  const results: BatchResult[] = [];
  /** Whether the empty third batch (quiet: complete at its seal) left a progress record. */
  let quietRecord: boolean | undefined;
  const env = (): NodeJS.ProcessEnv => ({
    AWS_ENDPOINT_URL: moto?.endpoint ?? '',
    AWS_REGION: MOTO_REGION,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });

  beforeAll(async () => {
    outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-stack-'));
    moto = await startMoto();
    cloudFormation = new CloudFormationClient({ endpoint: moto.endpoint, region: MOTO_REGION, credentials });
    // Its own output directory, and real bundling: the functions' code is what gets uploaded.
    const app = new App({ outdir });
    const stack = new Stack(app, 'sluice-wordcount');
    new SluicePipeline(stack, 'Pipeline', {
      pipeline: wordcount,
      entry: path.join(ROOT, 'examples/wordcount/pipeline.ts'),
    });
    deployed = await deployStack(moto.endpoint, stack);
    listed =
      (await cloudFormation.send(new ListStackResourcesCommand({ StackName: deployed.stackName })))
        .StackResourceSummaries ?? [];
    resources = await resolveStack(cloudFormation, deployed.stackName, 'wordcount');
    // Three batches on the stack's storage, by the functions' own code run here.
    const run = await LocalRuntime.start(wordcount, { endpoint: moto.endpoint, resources });
    try {
      for (const lines of [generateLines(120, 1), generateLines(40, 2), []]) {
        await run.push(lines);
        results.push(...(await run.advance()));
      }
      quietRecord = (await run.ctx.objects.getIfExists(progressKey(batchId(3)))) !== undefined;
    } finally {
      await run.stop();
    }
  }, 180_000);

  afterAll(async () => {
    cloudFormation?.destroy();
    await moto?.stop();
    fs.rmSync(outdir, { recursive: true, force: true });
  });

  /** Physical ids of the stack's resources of one type. */
  const physicalIds = (type: string): string[] =>
    listed.filter((r) => r.ResourceType === type).map((r) => r.PhysicalResourceId ?? '');

  it('is created, and names its resources in an output that resolves to their physical ids', async () => {
    // Act
    const { Stacks: stacks = [] } =
      (await cloudFormation?.send(new DescribeStacksCommand({ StackName: deployed.stackName }))) ?? {};

    // Assert
    expect(stacks.map((s) => s.StackStatus)).toEqual(['CREATE_COMPLETE']);
    expect(resources).toMatchObject({
      kind: 'sluice.resources@1',
      pipeline: 'wordcount',
      bucket: physicalIds('AWS::S3::Bucket')[0],
      table: physicalIds('AWS::DynamoDB::Table')[0],
      streams: { lines: physicalIds('AWS::Kinesis::Stream')[0] },
      memoryMb: { ingest: 512, coordinator: 256, transform: 1024, reduce: 1024 },
      coordinatorTimeoutMs: 80_000,
    });
    expect(Object.keys(resources.functions).sort()).toEqual(['coordinator', 'count', 'ingest', 'tokenize']);
    expect(Object.values(resources.functions).sort()).toEqual(physicalIds('AWS::Lambda::Function').sort());
    expect(results.map((r) => r.status)).toEqual(['complete', 'complete', 'complete']);
  });

  it('is refused, saying why, when it has no such pipeline or does not exist', async () => {
    // Act
    const other = resolveStack(cloudFormation as CloudFormationClient, deployed.stackName, 'temperature');
    const missing = resolveStack(cloudFormation as CloudFormationClient, 'no-such-stack', 'wordcount');

    // Assert
    await expect(other).rejects.toThrow(StackLookupError);
    await expect(other).rejects.toThrow(/has no pipeline 'temperature', only 'wordcount'/);
    await expect(missing).rejects.toThrow(/no stack 'no-such-stack'/);
  });

  it('is read through its resources: the batches and progress records the run left there', async () => {
    // Act
    const opened = await openStack(wordcount, deployed.stackName, {
      endpoint: moto?.endpoint ?? '',
      region: MOTO_REGION,
      credentials,
    });
    const items = await opened.ctx.ledger.batches.all().finally(() => opened.close());

    // Assert
    expect(items.map((item) => [item.batch, item.inputRecords, item.status])).toEqual(
      results.map((r) => [r.batch, r.inputRecords, 'complete']),
    );
  });

  it('`sluice cost --stack` prices its batches from their progress records, over a range', async () => {
    // Act
    const all = await runCli(
      ['cost', 'examples/wordcount/pipeline.ts', '--stack', deployed.stackName, '--json'],
      {
        env: env(),
      },
    );
    const fromTwo = await runCli(
      ['cost', 'examples/wordcount/pipeline.ts', '--stack', deployed.stackName, '--from', '2', '--json'],
      { env: env() },
    );
    // The README's form: a range of times (batch times, ends included).
    const byTime = await runCli(
      [
        'cost',
        'examples/wordcount/pipeline.ts',
        '--stack',
        deployed.stackName,
        '--from',
        new Date(results[0]?.time ?? 0).toISOString(),
        '--to',
        new Date(results[1]?.time ?? 0).toISOString(),
        '--json',
      ],
      { env: env() },
    );
    const text = await runCli(['cost', 'examples/wordcount/pipeline.ts', '--stack', deployed.stackName], {
      env: env(),
    });

    // Assert
    expect(all.code, all.stderr).toBe(0);
    const report = JSON.parse(all.stdout) as StackCostReport;
    const progress = results.map((r) => r.progress);
    const sum = (pick: (p: NonNullable<BatchResult['progress']>) => number): number =>
      progress.reduce((total, p) => total + (p ? pick(p) : 0), 0);
    const line = (item: string): number => report.bill.lines.find((l) => l.item === item)?.quantity ?? 0;
    // The quiet third batch has no progress record: it is priced from its ledger item.
    expect(quietRecord).toBe(false);
    expect(report).toMatchObject({ stack: 'sluice-wordcount', batches: 3, unpriced: 0, records: 160 });
    // Three 10 s intervals: 30 s, a coordinator tick every minute of them.
    expect(report.hours).toBeCloseTo(30 / 3600, 9);
    expect(line('requests')).toBeCloseTo(
      sum((p) => (p.functions.ingest?.invocations ?? 0) + p.phases.reduce((n, phase) => n + phase.tasks, 0)) +
        0.5,
      9,
    );
    expect(line('PUT and LIST requests')).toBe(sum((p) => p.requests['s3:PutObject'] ?? 0));
    expect(line('write request units')).toBeCloseTo(
      sum((p) => p.writeUnits),
      9,
    );
    expect(line('read request units')).toBeCloseTo(
      sum((p) => p.readUnits),
      9,
    );
    expect(report.bill.total).toBeGreaterThan(0);
    expect(report.projection.recordsPerSecond).toBeCloseTo(160 / 30, 9);
    expect(fromTwo.code, fromTwo.stderr).toBe(0);
    expect((JSON.parse(fromTwo.stdout) as StackCostReport).batches).toBe(2);
    expect(byTime.code, byTime.stderr).toBe(0);
    expect(JSON.parse(byTime.stdout)).toMatchObject({ batches: 2, records: 160 });
    expect(text.stdout).toMatch(/^Stack sluice-wordcount, pipeline wordcount, at us-east-1 list prices:/);
    expect(text.stdout).toContain('Lambda + one DynamoDB UpdateItem per record');
  });

  it('`sluice status --stack`, `batches list --stack`, `pause` and `resume` operate it from this machine', async () => {
    // Act
    const status = await runCli(
      ['status', 'examples/wordcount/pipeline.ts', '--stack', deployed.stackName, '--json'],
      {
        env: env(),
      },
    );
    const listed = await runCli(
      ['batches', 'list', 'examples/wordcount/pipeline.ts', '--stack', deployed.stackName, '--json'],
      { env: env() },
    );
    const paused = await runCli(
      ['pause', 'examples/wordcount/pipeline.ts', '--stack', deployed.stackName, '--reason', 'maintenance'],
      { env: env() },
    );
    const whilePaused = await runCli(
      ['status', 'examples/wordcount/pipeline.ts', '--stack', deployed.stackName, '--json'],
      { env: env() },
    );
    const resumed = await runCli(
      ['resume', 'examples/wordcount/pipeline.ts', '--stack', deployed.stackName],
      {
        env: env(),
      },
    );

    // Assert
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      pipeline: 'wordcount',
      lastSealed: 3,
      lastCompleted: { batch: 3 },
      failed: [],
    });
    expect((JSON.parse(listed.stdout) as UiBatch[]).map((b) => b.inputRecords)).toEqual([120, 40, 0]);
    expect(paused.stdout).toBe(
      "stack 'sluice-wordcount': paused: no batch is sealed until resumed (ingest goes on)\n",
    );
    expect(JSON.parse(whilePaused.stdout)).toMatchObject({ paused: { reason: 'maintenance' } });
    expect(resumed.stdout).toContain("stack 'sluice-wordcount': resumed");
  });

  it('`sluice ui --stack` serves the page of its batches', async () => {
    // Act
    const { child, match } = await startCli(
      ['ui', 'examples/wordcount/pipeline.ts', '--stack', deployed.stackName, '--ui-port', '0'],
      /at (http:\S+) until Ctrl-C/,
      { env: env() },
    );
    const batches = await fetch(`${match[1] ?? ''}api/batches`)
      .then((response) => response.json() as Promise<UiBatch[]>)
      .finally(() => child.kill('SIGINT'));

    // Assert
    expect(batches.map((b) => [b.batch, b.inputRecords, b.status])).toEqual(
      results.map((r) => [r.batch, r.inputRecords, 'complete']),
    );
    expect(batches.every((b) => (b.costUsd ?? 0) > 0)).toBe(true);
  });

  it('`sluice replay --stack` writes its batches again under another prefix, byte for byte, with its stream gone', async () => {
    // Arrange: past the stream's retention, only the bucket has the input
    const clients = createAwsClients({ endpoint: moto?.endpoint ?? '', region: MOTO_REGION, credentials });
    try {
      await clients.kinesis.send(new DeleteStreamCommand({ StreamName: resources.streams.lines }));

      // Act
      const result = await runCli(
        [
          'replay',
          'examples/wordcount/pipeline.ts',
          '--stack',
          deployed.stackName,
          '--from',
          '1',
          '--output-prefix',
          'replays/stack',
          '--json',
        ],
        { env: env() },
      );

      // Assert
      expect(result.code, result.stderr).toBe(0);
      const lines = result.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as ReplayedBatch | ReplayReport);
      expect(lines.map((line) => line.kind)).toEqual([
        'sluice.replayed-batch@1',
        'sluice.replayed-batch@1',
        'sluice.replayed-batch@1',
        'sluice.replay@1',
      ]);
      expect(lines[3]).toMatchObject({
        source: "stack 'sluice-wordcount'",
        bucket: resources.bucket,
        from: 1,
        to: 3,
        batches: 3,
        inputRecords: 160,
      });
      expectSameObjects(
        await replayed(clients, resources.bucket, 'replays/stack'),
        await originals(clients, resources.bucket, 'wordcount/counts/', 1, 3),
      );
    } finally {
      destroyAwsClients(clients);
    }
  });
});
