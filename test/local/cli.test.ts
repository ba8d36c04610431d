import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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

function perBatch(stdout: string): Map<number, Map<string, number>> {
  const batches = new Map<number, Map<string, number>>();
  for (const line of stdout.split('\n').filter(Boolean)) {
    const out = JSON.parse(line) as JsonOutput;
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
});
