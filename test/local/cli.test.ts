import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BatchProgress } from '../../lib/runtime/batch-progress';
import { MAX_RECORD_BYTES } from '../../local/input';
import { runCli } from '../support/cli';
import { countWords, generateLines, sortedEntries } from '../support/corpus';

interface JsonOutput {
  batch: number;
  time: number;
  stage: string;
  partition: number;
  records: [string, number][];
}

const dir = mkdtempSync(path.join(tmpdir(), 'sluice-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const lines = generateLines(20_000, 77);
const input = path.join(dir, 'lines.txt');
writeFileSync(input, `${lines.join('\n')}\n`);

/**
 * Input lines as raw bytes with their line ends, and what each should be once read: its record
 * text, or `invalid` for bytes that are not UTF-8 (the wordcount source dead-letters them).
 */
const RAW_LINES: { bytes: Buffer; end: '\n' | '\r\n' | ''; record: string }[] = [
  { bytes: Buffer.from('The quick brown fox'), end: '\n', record: 'The quick brown fox' },
  { bytes: Buffer.from(''), end: '\n', record: '' },
  { bytes: Buffer.from('jumps over'), end: '\r\n', record: 'jumps over' },
  { bytes: Buffer.from('lazy\rdogs and\rcats'), end: '\n', record: 'lazy\rdogs and\rcats' },
  {
    bytes: Buffer.from([0x63, 0x61, 0x66, 0xff, 0x20, 0x61, 0x75, 0x20, 0x6c, 0x61, 0x69, 0x74]),
    end: '\n',
    record: 'invalid',
  },
  { bytes: Buffer.from('fox fox'), end: '\r\n', record: 'fox fox' },
  { bytes: Buffer.from(''), end: '\r\n', record: '' },
  { bytes: Buffer.from('ünïcödé words'), end: '\n', record: 'ünïcödé words' },
  { bytes: Buffer.from([0xe2, 0x82, 0x20, 0x65, 0x6e, 0x64]), end: '\n', record: 'invalid' },
  { bytes: Buffer.from('tail without a line end'), end: '', record: 'tail without a line end' },
];
const rawInput = path.join(dir, 'raw.txt');
writeFileSync(rawInput, Buffer.concat(RAW_LINES.flatMap((l) => [l.bytes, Buffer.from(l.end)])));

function perBatch(stdout: string): Map<number, Map<string, number>> {
  const batches = new Map<number, Map<string, number>>();
  for (const line of stdout.split('\n').filter(Boolean)) {
    const out = JSON.parse(line) as JsonOutput | { batch: number; progress: BatchProgress };
    // A batch's progress follows its outputs.
    if ('progress' in out) continue;
    const counts = batches.get(out.batch) ?? new Map<string, number>();
    for (const [w, n] of out.records) {
      expect(counts.has(w), `${w} twice in batch ${out.batch}`).toBe(false);
      counts.set(w, n);
    }
    batches.set(out.batch, counts);
  }
  return batches;
}

describe('sluice local run', () => {
  it.each([
    { faults: undefined, label: 'clean' },
    { faults: 'duplicate', label: 'every invocation twice' },
  ])('--json prints per-batch word counts equal to an independent count ($label)', async ({ faults }) => {
    const args = ['local', 'run', 'examples/wordcount/pipeline.ts', '--input', input, '--json'];
    args.push('--shards', '4', '--tasks', '4', '--partitions', '4', '--lines-per-batch', '5000');
    if (faults) args.push('--faults', faults);

    const result = await runCli(args);

    expect(result.code, result.stderr).toBe(0);
    const batches = perBatch(result.stdout);
    expect([...batches.keys()]).toEqual([1, 2, 3, 4]);
    for (const [batch, counts] of batches) {
      const chunk = lines.slice((batch - 1) * 5000, batch * 5000);
      expect(sortedEntries(counts)).toEqual(sortedEntries(countWords(chunk)));
    }
    const first = JSON.parse(result.stdout.split('\n')[0] as string) as JsonOutput;
    expect(first.stage).toBe('count');
    expect(result.stderr).toMatch(/4 batches, 20000 records in, 0 dead-lettered/);
    const progress = result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { batch: number; progress?: BatchProgress })
      .flatMap((line) => (line.progress ? [line.progress] : []));
    expect(progress.map((p) => [p.batch, p.inputRecords])).toEqual([
      [1, 5000],
      [2, 5000],
      [3, 5000],
      [4, 5000],
    ]);
  });

  it('reads standard input on the wall clock and loses nothing across batch boundaries', async () => {
    const some = lines.slice(0, 3_000);

    const result = await runCli(
      [
        'local',
        'run',
        'examples/wordcount/pipeline.ts',
        '--input',
        '-',
        '--json',
        '--batch-interval',
        '500ms',
      ],
      { stdin: `${some.join('\n')}\n` },
    );

    expect(result.code, result.stderr).toBe(0);
    const total = new Map<string, number>();
    for (const counts of perBatch(result.stdout).values()) {
      for (const [w, n] of counts) total.set(w, (total.get(w) ?? 0) + n);
    }
    expect(sortedEntries(total)).toEqual(sortedEntries(countWords(some)));
  });

  it('prints batches like Spark print() without --json', async () => {
    const result = await runCli([
      'local',
      'run',
      'examples/wordcount/pipeline.ts',
      '-i',
      'examples/wordcount/input.txt',
      '--lines-per-batch',
      '5',
    ]);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /^-{43}\nTime: \d+ ms \(batch 1: 5 records in, \d+ out, processed in \d+ ms\)\n-{43}\n\(\w+,\d+\)\n/,
    );
    expect(result.stdout.match(/^Time: /gm)).toHaveLength(3);
  });

  it('says what a reading command lacks: sluice cost without input or stack, sluice ui with both a run and a stack', async () => {
    // Act
    const nothing = await runCli(['cost', 'examples/wordcount/pipeline.ts']);
    const range = await runCli(['cost', 'examples/wordcount/pipeline.ts', '-i', input, '--from', '2']);
    const both = await runCli(['ui', 'examples/wordcount/pipeline.ts', '--run', 'a', '--stack', 'b']);
    const badFrom = await runCli([
      'cost',
      'examples/wordcount/pipeline.ts',
      '--stack',
      's',
      '--from',
      'soon',
    ]);

    // Assert
    expect([nothing.code, range.code, both.code, badFrom.code]).toEqual([2, 2, 2, 2]);
    expect(nothing.stderr).toContain('sluice cost needs sample input to run (or a deployed stack to read)');
    expect(range.stderr).toContain('--from and --to choose batches of a deployed stack');
    expect(both.stderr).toContain('sluice ui reads either a named run or a stack, not both');
    expect(badFrom.stderr).toContain("'soon' is neither a batch number nor a time");
  });

  it('says clearly when the pipeline file is missing or is not a pipeline', async () => {
    const missing = await runCli(['local', 'run', 'no/such/pipeline.ts', '-i', input]);
    const notPipeline = path.join(dir, 'not-a-pipeline.ts');
    writeFileSync(notPipeline, 'export default { hello: 1 };\n');
    const invalid = await runCli(['local', 'run', notPipeline, '-i', input]);

    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('pipeline file not found: no/such/pipeline.ts');
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/does not export a pipeline/);
  });

  it('sends each line as its bytes: invalid UTF-8 is dead-lettered, empty lines count, only LF and CRLF end a line', async () => {
    const n = 3;

    const result = await runCli([
      'local',
      'run',
      'examples/wordcount/pipeline.ts',
      '--input',
      rawInput,
      '--json',
      '--lines-per-batch',
      String(n),
    ]);

    expect(result.code, result.stderr).toBe(0);
    const batches = perBatch(result.stdout);
    const expected = Math.ceil(RAW_LINES.length / n);
    for (let batch = 1; batch <= expected; batch++) {
      const records = RAW_LINES.slice((batch - 1) * n, batch * n).map((l) => l.record);
      const valid = records.filter((r) => r !== 'invalid');
      expect(sortedEntries(batches.get(batch) ?? new Map()), `batch ${batch}`).toEqual(
        sortedEntries(countWords(valid)),
      );
    }
    const invalid = RAW_LINES.filter((l) => l.record === 'invalid').length;
    expect(result.stderr).toContain(
      `sluice: ${expected} batches, ${RAW_LINES.length} records in, ${invalid} dead-lettered,`,
    );
  });

  it('--lines-per-batch n puts exactly n lines in each batch, empty lines included', async () => {
    const result = await runCli([
      'local',
      'run',
      'examples/wordcount/pipeline.ts',
      '-i',
      rawInput,
      '--lines-per-batch',
      '4',
    ]);

    expect(result.code, result.stderr).toBe(0);
    const perBatchIn = [...result.stdout.matchAll(/\(batch (\d+): (\d+) records in/g)].map((m) => [
      Number(m[1]),
      Number(m[2]),
    ]);
    expect(perBatchIn).toEqual([
      [1, 4],
      [2, 4],
      [3, 2],
    ]);
  });

  it("refuses a line over Kinesis's record limit, says which, sends the rest and exits 1", async () => {
    const file = path.join(dir, 'long-line.txt');
    const long = Buffer.alloc(MAX_RECORD_BYTES + 1, 'y');
    writeFileSync(file, Buffer.concat([Buffer.from('a b\n'), long, Buffer.from('\r\nb c\n')]));

    const result = await runCli([
      'local',
      'run',
      'examples/wordcount/pipeline.ts',
      '-i',
      file,
      '--json',
      '--lines-per-batch',
      '10',
    ]);

    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(
      `sluice: line 2 is ${MAX_RECORD_BYTES + 1} bytes, over Kinesis's 1 MiB record limit; not sent\n`,
    );
    expect(result.stderr).toMatch(/sluice: 1 batches, 2 records in, 0 dead-lettered, 1 refused, /);
    expect(sortedEntries(perBatch(result.stdout).get(1) ?? new Map())).toEqual(
      sortedEntries(countWords(['a b', 'b c'])),
    );
  });
});

describe('sluice command-line mistakes', () => {
  const run = (...flags: string[]): string[] => [
    'local',
    'run',
    'examples/wordcount/pipeline.ts',
    '-i',
    input,
    ...flags,
  ];

  it.each([
    {
      label: '--faults crash=2',
      args: run('--faults', 'crash=2'),
      says: /--faults.*'crash=2'.*crash probability must be in \[0, 1\)/,
    },
    { label: '--shards 100000', args: run('--shards', '100000'), says: /--shards.*'100000'.*from 1 to 500/ },
    { label: '--partitions 0', args: run('--partitions', '0'), says: /--partitions.*'0'.*from 1 to 10000/ },
    {
      label: '--batch-interval 10x',
      args: run('--batch-interval', '10x'),
      says: /--batch-interval.*'10x' is not a duration/,
    },
    {
      label: 'serve --port abc',
      args: ['local', 'serve', '--port', 'abc'],
      says: /--port.*'abc'.*from 0 to 65535/,
    },
    { label: 'an unknown option', args: run('--bogus'), says: /unknown option '--bogus'/ },
    {
      label: 'a missing input file',
      args: ['local', 'run', 'examples/wordcount/pipeline.ts', '-i', 'no/such/input.txt'],
      says: /^sluice: cannot read input 'no\/such\/input.txt': no such file\n/,
    },
    {
      label: 'a directory as input',
      args: ['local', 'run', 'examples/wordcount/pipeline.ts', '-i', 'examples'],
      says: /^sluice: cannot read input 'examples': it is a directory\n/,
    },
  ])('$label: one line saying what is wrong, a hint, exit 2, nothing started', async ({ args, says }) => {
    const result = await runCli(args);

    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(says);
    expect(result.stderr.trimEnd().split('\n').length, result.stderr).toBeLessThanOrEqual(2);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stderr).not.toContain('embedded emulator');
    expect(result.stdout).toBe('');
  });

  it('names an unexpected error and hides its stack unless SLUICE_DEBUG=1', async () => {
    const server = createServer();
    const port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
    );
    await new Promise((resolve) => server.close(resolve));
    const env = { AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` };

    const plain = await runCli(run('--lines-per-batch', '5'), { env });
    const debug = await runCli(run('--lines-per-batch', '5'), { env: { ...env, SLUICE_DEBUG: '1' } });

    expect(plain.code).toBe(2);
    expect(plain.stderr).toBe(
      `sluice: Error: connect ECONNREFUSED 127.0.0.1:${port}\n  set SLUICE_DEBUG=1 to see where it happened\n`,
    );
    expect(debug.code).toBe(2);
    expect(debug.stderr).toMatch(/^sluice: Error: connect ECONNREFUSED [\d.:]+\n(\s+at .+\n)+$/);
  });
});
