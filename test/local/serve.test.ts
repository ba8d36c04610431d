import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../lib/aws';
import { runCli, startCli } from '../support/cli';

function hasAwsCli(): boolean {
  try {
    execFileSync('aws', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('sluice local serve', () => {
  let endpoint: string;
  let stop: () => void;
  let bucket: string;
  let table: string;
  let clients: AwsClients;

  beforeAll(async () => {
    const { child, match } = await startCli(['local', 'serve', '--port', '0'], /listening on (http:\/\/\S+)/);
    endpoint = match[1] as string;
    stop = () => child.kill('SIGTERM');
    clients = createAwsClients({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const run = await runCli(
      [
        'local',
        'run',
        'examples/wordcount/pipeline.ts',
        '-i',
        'examples/wordcount/input.txt',
        '--lines-per-batch',
        '8',
      ],
      {
        env: { AWS_ENDPOINT_URL: endpoint },
      },
    );
    expect(run.code, run.stderr).toBe(0);
    const names = /on endpoint \S+: bucket (\S+), table (\S+),/.exec(run.stderr);
    bucket = names?.[1] as string;
    table = names?.[2] as string;
  });
  afterAll(() => {
    destroyAwsClients(clients);
    stop();
  });

  it('keeps the run in the served emulator: manifests and outputs are there to list', async () => {
    const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (listed.Contents ?? []).map((o) => o.Key);

    expect(keys).toContain('manifests/batch-0000000001.json');
    expect(keys).toContain('manifests/batch-0000000002.json');
    expect(keys.some((k) => k?.startsWith('wordcount/counts/batch-0000000001/part-'))).toBe(true);
  });

  it('keeps the ledger there too', async () => {
    const scanned = await clients.dynamo.send(new ScanCommand({ TableName: table }));

    expect(scanned.Items?.filter((i) => i.pk === 'batch').map((i): unknown => i.status)).toEqual([
      'complete',
      'complete',
    ]);
  });

  it.skipIf(!hasAwsCli())('answers the AWS CLI', () => {
    const env = {
      ...process.env,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_DEFAULT_REGION: 'us-east-1',
    };

    const listing = execFileSync(
      'aws',
      ['--endpoint-url', endpoint, 's3', 'ls', `s3://${bucket}/`, '--recursive'],
      { env },
    ).toString();

    expect(listing).toContain('manifests/batch-0000000001.json');
    expect(listing).toContain('wordcount/counts/batch-0000000001/part-');
  });

  it('a named run continues where it stopped: same resources, batches and stream position', async () => {
    // Arrange: the first half of the input under a name, then the second half under the same name.
    const lines = ['to be or not', 'to be', 'that is', 'the question', 'whether tis', 'nobler in'];
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-resume-'));
    const first = path.join(dir, 'first.txt');
    const second = path.join(dir, 'second.txt');
    writeFileSync(first, `${lines.slice(0, 4).join('\n')}\n`);
    writeFileSync(second, `${lines.slice(4).join('\n')}\n`);
    const args = (input: string) => [
      'local',
      'run',
      'examples/wordcount/pipeline.ts',
      '-i',
      input,
      '--lines-per-batch',
      '2',
      '--json',
      '--run',
      'resumable',
    ];

    try {
      // Act
      const a = await runCli(args(first), { env: { AWS_ENDPOINT_URL: endpoint } });
      const b = await runCli(args(second), { env: { AWS_ENDPOINT_URL: endpoint } });

      // Assert: the second run found the first's resources and went on from batch 3, with only
      // its own lines (nothing read again from the stream).
      expect(a.code, a.stderr).toBe(0);
      expect(b.code, b.stderr).toBe(0);
      expect(b.stderr).toMatch(/continuing run 'resumable'/);
      expect(a.stderr).toMatch(/2 batches, 4 records in/);
      expect(b.stderr).toMatch(/1 batches, 2 records in/);
      const batches = b.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { batch: number }).batch);
      expect(new Set(batches)).toEqual(new Set([3]));
      expect(a.stderr).toMatch(/run 'resumable' kept/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`sluice ui` serves the page of a named run another process drove, and refuses a run that is not there', async () => {
    // Arrange
    const input = mkdtempSync(path.join(tmpdir(), 'sluice-ui-'));
    const file = path.join(input, 'lines.txt');
    writeFileSync(file, 'to be or not\nto be\nthat is\n');
    const env = { AWS_ENDPOINT_URL: endpoint };
    try {
      const driven = await runCli(
        [
          'local',
          'run',
          'examples/wordcount/pipeline.ts',
          '-i',
          file,
          '--lines-per-batch',
          '2',
          '--run',
          'watched',
        ],
        { env },
      );
      expect(driven.code, driven.stderr).toBe(0);

      // Act
      const { child, match } = await startCli(
        ['ui', 'examples/wordcount/pipeline.ts', '--run', 'watched', '--ui-port', '0'],
        /at (http:\S+) until Ctrl-C/,
        { env },
      );
      const batches = await fetch(`${match[1] ?? ''}api/batches`)
        .then(
          (response) => response.json() as Promise<{ batch: number; inputRecords: number; status: string }[]>,
        )
        .finally(() => child.kill('SIGINT'));
      const missing = await runCli(
        ['ui', 'examples/wordcount/pipeline.ts', '--run', 'nobody', '--ui-port', '0'],
        { env },
      );

      // Assert
      expect(batches.map((b) => [b.batch, b.inputRecords, b.status])).toEqual([
        [1, 2, 'complete'],
        [2, 1, 'complete'],
      ]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/no run with bucket .* start it with sluice local run --run/);
    } finally {
      rmSync(input, { recursive: true, force: true });
    }
  });
});
