import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../lib/aws';
import { batchId } from '../../lib/ids';
import type { FaultOptions } from '../../local/faults';
import { LocalRuntime, type BatchResult } from '../../local/runtime';
import { replay, ReplayError, type ReplayedBatch, type ReplayReport } from '../../local/testing';
import { runCli, startCli, type CliResult } from '../support/cli';
import { generateLines, toCountMap } from '../support/corpus';
import { expectSameObjects, objectsUnder, originals, replayed } from '../support/objects';
import { emulatorForFile } from '../support/runs';
import wordcount from '../../examples/wordcount/pipeline';
import fragile from './fixtures/fragile';
import windowed, { windowedCounts } from './fixtures/windowed';

/** The live run's output prefix (the fixture's `s3Jsonl` sink). */
const OUTPUT = 'windowed/counts/';

/** Input of five batches; batch 2 also holds bytes that are not UTF-8 (a dead letter). */
const BATCHES = [1, 2, 3, 4, 5].map((seed) => generateLines(60, seed, 200));
const NOT_UTF8 = Uint8Array.from([0x63, 0x61, 0x66, 0xff]);

/** The same pipeline with another record-level stage: words upper-cased (a change that rolls forward). */
const shouting = windowedCounts({ shout: true });

/** The same pipeline with a longer window: what its sealed batches cannot be run with. */
const longer = windowedCounts({ length: '60s' });

/** Every item of a ledger table (batch items, task reports, state heads and chunks), in key order. */
async function ledgerOf(clients: AwsClients, table: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await clients.dynamo.send(
      new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  const key = (item: Record<string, unknown>): string => `${String(item.pk)}\u0000${String(item.sk)}`;
  return items.sort((a, b) => key(a).localeCompare(key(b)));
}

/** The records of a replayed or original batch's output objects, as word counts. */
function countsOf(objects: Map<string, Buffer>, batch: number): Map<string, number> {
  const records = [...objects]
    .filter(([key]) => key.startsWith(`batch-${String(batch).padStart(10, '0')}/`))
    .flatMap(([, body]) =>
      body
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as unknown),
    );
  return toCountMap(records);
}

const endpoint = emulatorForFile();

/** Runs the windowed word count for five batches as a named run on the emulator. */
async function liveRun(run: string, partitions: number): Promise<LocalRuntime<string, [string, number]>> {
  const live = await LocalRuntime.start(windowed, {
    endpoint: endpoint(),
    run,
    settings: { partitions },
  });
  for (const [index, lines] of BATCHES.entries()) {
    await live.push(lines);
    if (index === 1) await live.pushRaw([NOT_UTF8]);
    const [result] = await live.advance();
    expect(result?.status).toBe('complete');
  }
  return live;
}

describe.each<{ run: string; partitions: number; faults: FaultOptions; shadow: string }>([
  { run: 'one', partitions: 1, faults: {}, shadow: 'no faults' },
  { run: 'four', partitions: 4, faults: {}, shadow: 'no faults' },
  { run: 'twice', partitions: 4, faults: { duplicate: true }, shadow: 'every invocation twice' },
  { run: 'crashing', partitions: 2, faults: { crash: 0.4, seed: 5 }, shadow: 'random crashes' },
])('a replay of a windowed word count (run with $partitions partitions; in the shadow, $shadow)', (c) => {
  let live: LocalRuntime<string, [string, number]>;

  beforeAll(async () => {
    live = await liveRun(c.run, c.partitions);
  }, 120_000);

  afterAll(async () => {
    await live.stop();
  });

  const options = (outputPrefix: string) => ({
    run: c.run,
    endpoint: endpoint(),
    outputPrefix,
    faults: c.faults,
  });

  it('writes its first batches again into another prefix, byte for byte, and leaves the pipeline as it was', async () => {
    // Arrange
    const { bucket, table } = live.resources;
    const ledger = await ledgerOf(live.clients, table);
    const before = await objectsUnder(live.clients, bucket, '');

    // Act
    const report = await replay(windowed, { ...options('replays/first'), from: 1, to: 3 });

    // Assert: the output and dead letters of batches 1-3, the same names and bytes
    expect(report).toMatchObject({
      kind: 'sluice.replay@1',
      pipeline: 'windowed',
      bucket,
      outputPrefix: 'replays/first',
      from: 1,
      to: 3,
      warmUp: 0,
      batches: 3,
      inputRecords: 181,
      deadLetters: 1,
    });
    expect(report.failed).toBeUndefined();
    const expected = await originals(live.clients, bucket, OUTPUT, 1, 3);
    expect([...expected.keys()].some((key) => key.startsWith('dead-letter/phase-0/'))).toBe(true);
    expectSameObjects(await replayed(live.clients, bucket, 'replays/first'), expected);
    expect(report.objects).toBe(expected.size);
    // The ledger (batch items, reports, state) is as it was; only the replay's prefix is new.
    expect(await ledgerOf(live.clients, table)).toEqual(ledger);
    const after = await objectsUnder(live.clients, bucket, '');
    const added = [...after.keys()].filter((key) => !before.has(key));
    expect(added.length).toBe(expected.size);
    expect(added.every((key) => key.startsWith('replays/first/'))).toBe(true);
    for (const [key, body] of before) expect(after.get(key)?.equals(body), key).toBe(true);
  });

  it('rebuilds the window from batch 1 to write a later range, byte for byte', async () => {
    // Arrange
    const { bucket, table } = live.resources;
    const ledger = await ledgerOf(live.clients, table);
    const seen: ReplayedBatch[] = [];

    // Act
    const report = await replay(windowed, {
      ...options('replays/later'),
      from: 3,
      to: 5,
      onBatch: (batch) => seen.push(batch),
    });

    // Assert
    expect(report).toMatchObject({ from: 3, to: 5, warmUp: 2, batches: 3, inputRecords: 180 });
    expect(seen.map((b) => [b.batch, b.warmUp, b.status])).toEqual([
      [1, true, 'complete'],
      [2, true, 'complete'],
      [3, false, 'complete'],
      [4, false, 'complete'],
      [5, false, 'complete'],
    ]);
    expect(seen.filter((b) => b.warmUp).flatMap((b) => b.written)).toEqual([]);
    expectSameObjects(
      await replayed(live.clients, bucket, 'replays/later'),
      await originals(live.clients, bucket, OUTPUT, 3, 5),
    );
    expect(await ledgerOf(live.clients, table)).toEqual(ledger);
  });
});

describe('a replay with other code, and what a replay refuses', () => {
  let live: LocalRuntime<string, [string, number]>;
  let results: BatchResult[] = [];
  const run = 'changed';
  const options = () => ({ run, endpoint: endpoint() });

  beforeAll(async () => {
    live = await liveRun(run, 4);
    results = await Promise.all([1, 2, 3, 4, 5].map((n) => live.result(batchId(n))));
  }, 120_000);

  afterAll(async () => {
    await live.stop();
  });

  it('writes what the new code makes of the same input under the prefix only', async () => {
    // Arrange
    const { bucket, table } = live.resources;
    const ledger = await ledgerOf(live.clients, table);
    const output = await objectsUnder(live.clients, bucket, OUTPUT);

    // Act
    const report = await replay(shouting, {
      ...options(),
      from: 1,
      to: 2,
      outputPrefix: 'replays/shouting',
    });

    // Assert: the same counts, of upper-cased words; the pipeline's own output unchanged
    const mine = await replayed(live.clients, bucket, 'replays/shouting');
    const theirs = await originals(live.clients, bucket, OUTPUT, 1, 2);
    expect(report).toMatchObject({ batches: 2, from: 1, to: 2 });
    for (const batch of [1, 2]) {
      // Words that differ only in case are one word upper-cased.
      const upper = new Map<string, number>();
      for (const [word, n] of countsOf(theirs, batch)) {
        upper.set(word.toUpperCase(), (upper.get(word.toUpperCase()) ?? 0) + n);
      }
      expect(countsOf(mine, batch)).toEqual(upper);
    }
    for (const [key, body] of mine) {
      if (theirs.has(key) && !key.startsWith('dead-letter/'))
        expect(theirs.get(key)?.equals(body)).toBe(false);
    }
    const outputAfter = await objectsUnder(live.clients, bucket, OUTPUT);
    expect([...outputAfter.keys()]).toEqual([...output.keys()]);
    for (const [key, body] of output) expect(outputAfter.get(key)?.equals(body), key).toBe(true);
    expect(await ledgerOf(live.clients, table)).toEqual(ledger);
  });

  it('takes its range as times: the batches whose intervals end within it', async () => {
    // Act
    const report = await replay(windowed, {
      ...options(),
      from: { time: (results[2]?.time ?? 0) - 1 },
      to: { time: results[3]?.time ?? 0 },
      outputPrefix: 'replays/by-time',
    });

    // Assert
    expect(report).toMatchObject({ from: 3, to: 4, warmUp: 2, batches: 2 });
  });

  it.each([
    { prefix: 'windowed', why: /output prefix 'windowed' overlaps the pipeline's own windowed\/counts\// },
    { prefix: 'windowed/counts/again', why: /overlaps the pipeline's own windowed\/counts\// },
    { prefix: 'segments/old', why: /overlaps the pipeline's own segments\// },
    { prefix: '/dead-letter/', why: /overlaps the pipeline's own dead-letter\// },
    { prefix: 'a//b', why: /is not a usable S3 prefix/ },
    { prefix: '', why: /is not a usable S3 prefix/ },
  ])('refuses the output prefix $prefix', async ({ prefix, why }) => {
    // Act
    const refused = replay(windowed, { ...options(), from: 1, outputPrefix: prefix });

    // Assert
    await expect(refused).rejects.toThrow(ReplayError);
    await expect(refused).rejects.toThrow(why);
  });

  it.each([
    {
      from: 6,
      to: undefined,
      why: /the first batch to replay, batch 6, is past the last sealed batch, 5 \(/,
    },
    { from: 3, to: 9, why: /batch 9 is not sealed: the last sealed batch, 5/ },
    { from: 3, to: 2, why: /the last batch to replay, 2, is before the first, 3/ },
    { from: 0, to: undefined, why: /there is no batch 0/ },
  ])('refuses the range $from to $to', async ({ from, to, why }) => {
    // Act
    const refused = replay(windowed, {
      ...options(),
      from,
      ...(to === undefined ? {} : { to }),
      outputPrefix: 'replays/refused',
    });

    // Assert
    await expect(refused).rejects.toThrow(ReplayError);
    await expect(refused).rejects.toThrow(why);
  });

  it('refuses a time past the last sealed batch, and code or settings that cannot run the sealed plan', async () => {
    // Act: each refusal is caught as it comes, as the three run at once
    const refusal = (replaying: Promise<ReplayReport>): Promise<unknown> =>
      replaying.then(
        () => undefined,
        (error: unknown) => error,
      );
    const [late, breaking, faster] = await Promise.all([
      refusal(
        replay(windowed, {
          ...options(),
          from: { time: (results[4]?.time ?? 0) + 1 },
          outputPrefix: 'replays/late',
        }),
      ),
      refusal(replay(longer, { ...options(), from: 1, outputPrefix: 'replays/longer' })),
      refusal(
        replay(windowed, {
          ...options(),
          from: 1,
          outputPrefix: 'replays/faster',
          settings: { batchInterval: '5s' },
        }),
      ),
    ]);

    // Assert
    expect(late).toBeInstanceOf(ReplayError);
    expect((late as Error).message).toMatch(/is past the last sealed batch, 5/);
    expect(breaking).toBeInstanceOf(ReplayError);
    expect((breaking as Error).message).toMatch(
      /batch 1 was sealed under a plan this code cannot run: .*keyed stage 'count' changed \(window\)/,
    );
    expect(faster).toBeInstanceOf(ReplayError);
    expect((faster as Error).message).toMatch(/the batch interval changed \(10000 ms to 5000 ms\)/);
  });
});

describe('a replay of a pipeline without state', () => {
  it('starts at --from, with no warm-up, and writes the same bytes', async () => {
    // Arrange
    const live = await LocalRuntime.start(wordcount, { endpoint: endpoint(), run: 'stateless' });
    try {
      for (const lines of BATCHES.slice(0, 4)) {
        await live.push(lines);
        await live.advance();
      }
      const { bucket } = live.resources;
      const seen: ReplayedBatch[] = [];

      // Act
      const report = await replay(wordcount, {
        run: 'stateless',
        endpoint: endpoint(),
        from: 3,
        outputPrefix: 'replays/stateless',
        onBatch: (batch) => seen.push(batch),
      });

      // Assert
      expect(seen.map((b) => [b.batch, b.warmUp, b.status])).toEqual([
        [3, false, 'complete'],
        [4, false, 'complete'],
      ]);
      expect(report).toMatchObject({ from: 3, to: 4, warmUp: 0, batches: 2, inputRecords: 120 });
      expectSameObjects(
        await replayed(live.clients, bucket, 'replays/stateless'),
        await originals(live.clients, bucket, 'wordcount/counts/', 3, 4),
      );
    } finally {
      await live.stop();
    }
  });
});

describe('a replay past a batch the pipeline skipped', () => {
  it('skips it again for the same reason, and the state after it is the same', async () => {
    // Arrange: batch 2 fails on 'boom' and the operator skips it
    const live = await LocalRuntime.start(fragile, { endpoint: endpoint(), run: 'skipping' });
    try {
      await live.push(['a b', 'b c']);
      await live.advance();
      await live.push(['a boom']);
      const [failed] = await live.advance();
      await live.skipBatch(batchId(2), 'a producer bug');
      await live.push(['a c']);
      await live.advance();
      const { bucket } = live.resources;
      const seen: ReplayedBatch[] = [];

      // Act
      const report = await replay(fragile, {
        run: 'skipping',
        endpoint: endpoint(),
        from: 1,
        outputPrefix: 'replays/skipping',
        onBatch: (batch) => seen.push(batch),
      });

      // Assert
      expect(failed?.status).toBe('failed');
      expect(seen.map((b) => b.status)).toEqual(['complete', 'skipped', 'complete']);
      expect(report).toMatchObject({ from: 1, to: 3, batches: 3, deadLetters: 1 });
      expect(report.failed).toBeUndefined();
      expectSameObjects(
        await replayed(live.clients, bucket, 'replays/skipping'),
        await originals(live.clients, bucket, 'output/', 1, 3),
      );
    } finally {
      await live.stop();
    }
  });
});

/** The lines of a command's standard output, each one JSON value. */
function jsonLines(result: CliResult): unknown[] {
  expect(result.code, result.stderr).toBe(0);
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as unknown);
}

describe('sluice replay on a named run', () => {
  const FIXTURE = 'test/local/fixtures/windowed.ts';
  let endpoint = '';
  let stop: () => void = () => {};
  let dir = '';
  let clients: AwsClients | undefined;
  const sluice = (args: readonly string[]): Promise<CliResult> =>
    runCli(args, { env: { AWS_ENDPOINT_URL: endpoint } });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sluice-replay-'));
    const { child, match } = await startCli(['local', 'serve', '--port', '0'], /listening on (http:\/\/\S+)/);
    endpoint = match[1] ?? '';
    stop = () => child.kill('SIGTERM');
    clients = createAwsClients({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const input = path.join(dir, 'lines.txt');
    writeFileSync(input, `${BATCHES.flat().join('\n')}\n`);
    const driven = await sluice([
      'local',
      'run',
      FIXTURE,
      '-i',
      input,
      '--lines-per-batch',
      '60',
      '--run',
      'cli',
    ]);
    expect(driven.code, driven.stderr).toBe(0);
  }, 120_000);

  afterAll(() => {
    if (clients) destroyAwsClients(clients);
    stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints one JSON object per replayed batch, then the totals, and writes the batches byte for byte', async () => {
    // Act
    const result = await sluice([
      'replay',
      FIXTURE,
      '--run',
      'cli',
      '--from',
      '1',
      '--to',
      '2',
      '--output-prefix',
      'replays/r1',
      '--json',
    ]);

    // Assert
    const lines = jsonLines(result);
    const batches = lines.slice(0, -1) as ReplayedBatch[];
    const report = lines[lines.length - 1] as ReplayReport;
    expect(batches.map((b) => [b.kind, b.batch, b.status, b.inputRecords])).toEqual([
      ['sluice.replayed-batch@1', 1, 'complete', 60],
      ['sluice.replayed-batch@1', 2, 'complete', 60],
    ]);
    expect(report).toMatchObject({ kind: 'sluice.replay@1', from: 1, to: 2, batches: 2, warmUp: 0 });
    expect(report.source).toMatch(/^run 'cli' on http:/);
    const s3 = clients as AwsClients;
    const written = await replayed(s3, report.bucket, 'replays/r1');
    expectSameObjects(written, await originals(s3, report.bucket, OUTPUT, 1, 2));
    expect(batches.flatMap((b) => b.written).sort()).toEqual(
      [...written.keys()].map((k) => `replays/r1/${k}`).sort(),
    );
  });

  it('says each batch and the totals for a person, warm-up batches aside', async () => {
    // Act
    const result = await sluice([
      'replay',
      FIXTURE,
      '--run',
      'cli',
      '--from',
      '4',
      '--output-prefix',
      'replays/r2',
    ]);

    // Assert
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /batch 1 \(\S+\): complete, 60 records in, \d+ out, 0 dead-lettered \(warm-up, not published\)/,
    );
    expect(result.stdout).toMatch(
      /^batch 4 \(\S+\): complete, 60 records in, \d+ out, 0 dead-lettered, \d+ objects written\n/,
    );
    expect(result.stdout).toMatch(
      /Replayed batches 4 to 5 of windowed from run 'cli' on http:\S+, after 3 warm-up batches that rebuilt its state:\n {2}2 batches published, 120 records in/,
    );
    expect(result.stdout).toMatch(/objects written under s3:\/\/\S+\/replays\/r2\/\n$/);
  });

  it('refuses an output prefix among the pipeline’s own, saying why and what to give', async () => {
    // Act
    const result = await sluice([
      'replay',
      FIXTURE,
      '--run',
      'cli',
      '--from',
      '1',
      '--output-prefix',
      'segments',
    ]);

    // Assert
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^sluice: output prefix 'segments' overlaps the pipeline's own segments\/\n {2}A replay writes beside/,
    );
  });
});
