import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import type { CommandResult } from '../../lib/runtime/operator';
import { LocalRuntime } from '../../local/runtime';
import type { PipelineStatus } from '../../local/status';
import type { UiBatch, UiBatchDetail } from '../../local/ui/server';
import { runCli, startCli, type CliResult } from '../support/cli';

const WORDCOUNT = 'examples/wordcount/pipeline.ts';
const FRAGILE = 'test/local/fixtures/fragile.ts';

/** The output of a command that printed one JSON value. */
function json(result: CliResult): unknown {
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as unknown;
}

/**
 * Operating a named run on a long-running endpoint (`sluice local serve`) from the command line,
 * as an operator operates a deployed stack: status, batches, pause and resume, retry and skip.
 */
describe('sluice status, batches, pause and resume on a named run', () => {
  let endpoint = '';
  let stop: () => void = () => {};
  let dir = '';
  const env = (): NodeJS.ProcessEnv => ({ AWS_ENDPOINT_URL: endpoint });
  const sluice = (args: readonly string[]): Promise<CliResult> => runCli(args, { env: env() });
  const input = (name: string, lines: readonly string[]): string => {
    const file = path.join(dir, name);
    writeFileSync(file, lines.map((line) => `${line}\n`).join(''));
    return file;
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sluice-operate-'));
    const { child, match } = await startCli(['local', 'serve', '--port', '0'], /listening on (http:\/\/\S+)/);
    endpoint = match[1] ?? '';
    stop = () => child.kill('SIGTERM');
  }, 60_000);

  afterAll(() => {
    stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says how far a run is, lists its batches and shows one', async () => {
    // Arrange
    const driven = await sluice([
      'local',
      'run',
      WORDCOUNT,
      '-i',
      input('a.txt', ['a b', 'b c', 'c d']),
      '--lines-per-batch',
      '2',
      '--run',
      'shown',
    ]);
    expect(driven.code, driven.stderr).toBe(0);

    // Act
    const status = json(await sluice(['status', WORDCOUNT, '--run', 'shown', '--json'])) as PipelineStatus;
    const text = await sluice(['status', WORDCOUNT, '--run', 'shown']);
    const batches = json(
      await sluice(['batches', 'list', WORDCOUNT, '--run', 'shown', '--json']),
    ) as UiBatch[];
    const last = json(
      await sluice(['batches', 'list', WORDCOUNT, '--run', 'shown', '--last', '1', '--json']),
    ) as UiBatch[];
    const table = await sluice(['batches', 'list', WORDCOUNT, '--run', 'shown']);
    const detail = json(
      await sluice(['batches', 'show', WORDCOUNT, '1', '--run', 'shown', '--json']),
    ) as UiBatchDetail;
    const missing = await sluice(['batches', 'show', WORDCOUNT, '9', '--run', 'shown']);

    // Assert
    expect(status).toMatchObject({
      pipeline: 'wordcount',
      started: true,
      lastSealed: 2,
      lastCompleted: { batch: 2 },
      open: [],
      failed: [],
      waiting: { records: 0 },
    });
    expect(status.paused).toBeUndefined();
    expect(text.stdout).toMatch(/^wordcount \(run 'shown' on http:\S+\)\n {2}state: {11}running\n/);
    expect(batches.map((b) => [b.batch, b.inputRecords, b.status])).toEqual([
      [1, 2, 'complete'],
      [2, 1, 'complete'],
    ]);
    expect(last.map((b) => b.batch)).toEqual([2]);
    expect(table.stdout.split('\n')[0]).toMatch(/^batch\s+time\s+status\s+input\s+output/);
    expect(detail.progress?.phases.map((p) => p.function)).toEqual(['tokenize', 'count']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('batch 9 is not sealed');
  });

  it('pauses a run (input is written ahead and waits) and resumes it (the waiting input is sealed)', async () => {
    // Arrange
    const first = await sluice([
      'local',
      'run',
      WORDCOUNT,
      '-i',
      input('b.txt', ['x y']),
      '--lines-per-batch',
      '1',
      '--run',
      'paused',
    ]);
    expect(first.code, first.stderr).toBe(0);

    // Act
    const paused = json(
      await sluice(['pause', WORDCOUNT, '--run', 'paused', '--reason', 'deploying a fix', '--json']),
    ) as CommandResult;
    const whilePaused = await sluice([
      'local',
      'run',
      WORDCOUNT,
      '-i',
      input('c.txt', ['p q', 'q r']),
      '--lines-per-batch',
      '2',
      '--run',
      'paused',
    ]);
    const realtime = await sluice([
      'local',
      'run',
      WORDCOUNT,
      '-i',
      input('d.txt', ['s']),
      '--run',
      'paused',
    ]);
    const status = json(await sluice(['status', WORDCOUNT, '--run', 'paused', '--json'])) as PipelineStatus;
    const text = await sluice(['status', WORDCOUNT, '--run', 'paused']);
    const resumed = await sluice(['resume', WORDCOUNT, '--run', 'paused']);
    const run = await LocalRuntime.start(wordcount, { endpoint, run: 'paused' });
    const sealed = await run.advance().finally(() => run.stop());

    // Assert
    expect(paused).toMatchObject({ command: 'pause', changed: true });
    expect(whilePaused.stderr).toContain(
      "run 'paused' is paused (deploying a fix): the input is written ahead",
    );
    expect(realtime.code).toBe(2);
    expect(realtime.stderr).toMatch(
      /run 'paused' is paused since .* \(deploying a fix\): no batch would close/,
    );
    expect(status).toMatchObject({
      lastSealed: 1,
      paused: { reason: 'deploying a fix' },
      waiting: { records: 2 },
    });
    expect(text.stdout).toMatch(/state: +paused since \S+ \(deploying a fix\)/);
    expect(resumed.stdout).toMatch(/run 'paused' on \S+: resumed/);
    expect(sealed.reduce((sum, b) => sum + b.inputRecords, 0)).toBe(2);
  });

  it('shows a failed batch with its reason; retry runs it again, skip gives it up and the run goes on', async () => {
    // Arrange
    const driven = await sluice([
      'local',
      'run',
      FRAGILE,
      '-i',
      input('e.txt', ['a b', 'boom', 'c']),
      '--lines-per-batch',
      '1',
      '--run',
      'fragile',
    ]);

    // Act
    const failed = json(await sluice(['status', FRAGILE, '--run', 'fragile', '--json'])) as PipelineStatus;
    const retried = json(
      await sluice(['batches', 'retry', FRAGILE, '2', '--run', 'fragile', '--json']),
    ) as CommandResult;
    const afterRetry = json(
      await sluice(['status', FRAGILE, '--run', 'fragile', '--json']),
    ) as PipelineStatus;
    const skipped = await sluice([
      'batches',
      'skip',
      FRAGILE,
      '2',
      '--run',
      'fragile',
      '--reason',
      'a producer bug',
    ]);
    const afterSkip = json(await sluice(['status', FRAGILE, '--run', 'fragile', '--json'])) as PipelineStatus;
    const shown = json(
      await sluice(['batches', 'show', FRAGILE, '2', '--run', 'fragile', '--json']),
    ) as UiBatchDetail;
    const notFailed = await sluice(['batches', 'retry', FRAGILE, '1', '--run', 'fragile']);

    // Assert
    expect(driven.stderr).toMatch(/halted/);
    expect(failed.failed).toEqual([expect.objectContaining({ batch: 2 })]);
    expect(failed.failed[0]?.reason).toContain('cannot take boom');
    expect(retried).toMatchObject({ command: 'retry', changed: true });
    // The same input fails the same way: the batch is failed again.
    expect(afterRetry.failed.map((f) => f.batch)).toEqual([2]);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stdout).toContain('batch 2 is being skipped');
    expect(afterSkip.failed).toEqual([]);
    expect(shown.batch.status).toBe('skipped');
    expect(shown.deadLetters[0]).toMatchObject({
      kind: 'batch',
      reason: expect.stringContaining('cannot take boom') as string,
    });
    expect(notFailed.code).toBe(2);
    expect(notFailed.stderr).toContain('batch 1 is complete, not failed');
  });
});
