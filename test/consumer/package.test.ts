import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The package as a user gets it: packed, installed into projects outside this repository, used
// through its bin, its three entry points and its scaffold, with nothing of this checkout in reach.

const ROOT = path.resolve(__dirname, '../..');
const run = promisify(execFile);

/**
 * The environment of a command run in a user's project: without what `npm test` and vitest set
 * for this repository (npm's configuration of this package, vitest's own markers).
 */
function userEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(npm_|VITEST|NODE_OPTIONS$|NODE_ENV$|TSX_)/i.test(name),
    ),
  );
}

async function sh(
  cwd: string,
  command: string,
  args: readonly string[],
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(command, args, { cwd, env: userEnv(), maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout ?? ''}\n${stderr ?? ''}`, {
      cause: error,
    });
  }
}

const npm = (cwd: string, ...args: string[]) => sh(cwd, 'npm', [...args, '--no-audit', '--no-fund']);
const npx = (cwd: string, ...args: string[]) => sh(cwd, 'npx', ['--no-install', ...args]);

/** A stateful pipeline a user adds: running totals per word, kept in state across batches. */
const TOTALS_PIPELINE = `import { kinesis, pipeline, updateStateByKey, utf8 } from 'sluice';
import tokenize from './stages/tokenize.js';

const totals = updateStateByKey<string, number, number>('totals', (counts, total) =>
  counts.reduce((a, b) => a + b, total ?? 0),
);

export default pipeline({
  name: 'totals',
  batchInterval: '5s',
  source: kinesis({ stream: 'words', decode: utf8 }),
  stages: [tokenize, totals],
  sinks: [],
});
`;

const TOTALS_TEST = `import { expect, it } from 'vitest';
import { testPipeline } from 'sluice/testing';
import totals from '../src/totals.js';

it('keeps a running total per word', async () => {
  const run = testPipeline(totals, { settings: { partitions: 2 } });
  try {
    await run.push(['a b a']).advance();
    const second = await run.push(['b c']).advance();
    expect(new Map(second.records)).toEqual(new Map([['a', 2], ['b', 2], ['c', 1]]));
  } finally {
    await run.close();
  }
});
`;

/** Words of a line as the scaffold's tokenize stage defines them, counted independently. */
function oracleCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    for (const word of line.toLowerCase().split(/[^\p{L}\p{N}']+/u)) {
      if (word) counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  return counts;
}

function withoutColours(text: string): string {
  // eslint-disable-next-line no-control-regex -- ANSI colour sequences start with ESC
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((entry) => path.join(dir, entry));
}

describe('the packed package in a project of its own', () => {
  let work: string;
  let tarball: string;
  let app: string;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'sluice-consumer-'));
    // `npm pack` builds first (prepack), as publishing would.
    const { stdout } = await npm(ROOT, 'pack', '--pack-destination', work, '--json');
    const [packed] = JSON.parse(stdout) as [{ filename: string }];
    tarball = path.join(work, packed.filename);
    app = path.join(work, 'counts');
  }, 180_000);

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('passes publint, strict', async () => {
    const unpacked = path.join(work, 'unpacked');
    mkdirSync(unpacked);
    await sh(unpacked, 'tar', ['xzf', tarball]);

    const { stdout } = await npx(
      ROOT,
      'publint',
      path.join(unpacked, 'package'),
      '--pack',
      'false',
      '--strict',
    );

    expect(stdout).toContain('All good!');
  });

  it('has types that resolve for CommonJS, ES module and bundler consumers, and node10', async () => {
    const { stdout } = await npx(ROOT, 'attw', tarball, '--format', 'json');

    const report = JSON.parse(stdout) as { analysis: { problems: unknown[] } };
    expect(report.analysis.problems).toEqual([]);
  });

  it('scaffolds a project with `npx sluice init`', async () => {
    await sh(work, 'npx', [
      '--yes',
      `--package=${tarball}`,
      '--',
      'sluice',
      'init',
      'counts',
      '--sluice',
      `file:${tarball}`,
    ]);

    const files = filesUnder(app).map((file) => path.relative(app, file));
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'tsconfig.json',
        'cdk.json',
        'README.md',
        '.gitignore',
        path.join('src', 'pipeline.ts'),
        path.join('src', 'stages', 'tokenize.ts'),
        path.join('test', 'pipeline.test.ts'),
        path.join('bin', 'app.ts'),
      ]),
    );
  }, 180_000);

  it('installs, and type-checks under strict nodenext without skipLibCheck', async () => {
    await npm(app, 'install', '--prefer-offline');
    // A pipeline of the project's own beside the scaffold's: state kept across batches.
    writeFileSync(path.join(app, 'src', 'totals.ts'), TOTALS_PIPELINE);
    writeFileSync(path.join(app, 'test', 'totals.test.ts'), TOTALS_TEST);

    const tsconfig = readFileSync(path.join(app, 'tsconfig.json'), 'utf8');
    expect(tsconfig).not.toContain('skipLibCheck');
    await npx(app, 'tsc', '--noEmit');
  }, 300_000);

  it("passes the scaffold's tests and its own (testPipeline on the emulator)", async () => {
    const { stdout } = await npm(app, 'test');

    expect(withoutColours(stdout)).toMatch(/Tests\s+3 passed \(3\)/);
  }, 180_000);

  it('runs the pipeline with `sluice local run` and counts what an oracle counts', async () => {
    const sample = readFileSync(path.join(app, 'sample.txt'), 'utf8');

    const { stdout } = await npx(
      app,
      'sluice',
      'local',
      'run',
      'src/pipeline.ts',
      '--input',
      'sample.txt',
      '--json',
    );

    const outputs = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { batch: number; stage: string; records: [string, number][] });
    // The run is in wall-clock time: on a busy machine the input may reach the stream after the
    // first batch has closed. The last batch's 30-second window holds it all either way (the input
    // takes well under three batches to write), so that window is what the oracle is held to.
    const counts = outputs.filter((output) => output.stage === 'count');
    const last = Math.max(...counts.map((output) => output.batch));
    const window = counts.filter((output) => output.batch === last);
    expect(new Map(window.flatMap((output) => output.records))).toEqual(oracleCounts(sample));
  }, 120_000);

  it('serves the streaming page of a local run from the installed package', async () => {
    // Arrange
    // The bin itself, not through npx, so that Ctrl-C (SIGINT) reaches the process that serves.
    const child = spawn(
      process.execPath,
      [
        path.join(app, 'node_modules', 'sluice', 'bin', 'sluice.cjs'),
        'local',
        'run',
        'src/pipeline.ts',
        '--input',
        'sample.txt',
        '--lines-per-batch',
        '2',
        '--ui',
        '--ui-port',
        '0',
      ],
      { cwd: app, env: userEnv() },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        const timer = setTimeout(() => reject(new Error(`no page in: ${err}`)), 60_000);
        child.stderr.on('data', (chunk: Buffer) => {
          err += chunk.toString();
          const match = /the page stays at (http:\S+)/.exec(err);
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
        child.on('error', reject);
      });

      // Act
      const page = await fetch(url);
      const chart = await fetch(`${url}uplot.js`);
      const batches = (await (await fetch(`${url}api/batches`)).json()) as {
        batch: number;
        inputRecords: number;
      }[];

      // Assert
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('data-testid="batches"');
      expect(chart.status).toBe(200);
      expect(batches.map((b) => b.inputRecords)).toEqual([2, 2]);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    }
  }, 120_000);

  it('loads every entry point from CommonJS too', async () => {
    const script = [
      "const { pipeline } = require('sluice');",
      "const { testPipeline } = require('sluice/testing');",
      "const { SluicePipeline } = require('sluice/cdk');",
      'console.log([pipeline, testPipeline, SluicePipeline].map((f) => typeof f).join(" "));',
    ].join('\n');

    const { stdout } = await sh(app, process.execPath, ['--input-type=commonjs', '-e', script]);

    expect(stdout.trim()).toBe('function function function');
  });

  it('synthesizes its CDK app offline, with small function bundles', async () => {
    await npx(app, 'cdk', 'synth', '--quiet');

    const out = path.join(app, 'cdk.out');
    const template = JSON.parse(readFileSync(path.join(out, 'sluice-counts.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string }>;
    };
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions).toHaveLength(4);
    const bundles = filesUnder(out).filter((file) => file.endsWith(`${path.sep}index.js`));
    expect(bundles).toHaveLength(4);
    // As for this repository's own bundles (test/infra/app.test.ts): the AWS SDK is left to the runtime.
    for (const bundle of bundles) expect(statSync(bundle).size).toBeLessThan(192 * 1024);
    // The plan lock it keeps refuses a change stored state could not survive, before deploying.
    expect(JSON.parse(readFileSync(path.join(app, 'sluice.plan.json'), 'utf8'))).toMatchObject({
      kind: 'sluice.plan@1',
      pipeline: 'counts',
    });
    const stage = path.join(app, 'src', 'stages', 'count.ts');
    const original = readFileSync(stage, 'utf8');
    writeFileSync(stage, original.replace("length: '30s'", "length: '60s'"));
    try {
      await expect(npx(app, 'cdk', 'synth', '--quiet')).rejects.toThrow(
        /pipeline 'counts': this plan cannot take over from the one in sluice.plan.json: keyed stage 'count' changed \(window\)/,
      );
    } finally {
      writeFileSync(stage, original);
    }
  }, 240_000);

  it('serves a project that only uses the DSL, and says what local runs need', async () => {
    const dslOnly = path.join(work, 'dsl-only');
    mkdirSync(dslOnly);
    await npm(dslOnly, 'init', '--yes');
    await npm(dslOnly, 'install', '--prefer-offline', tarball);
    const script = [
      "const { pipeline, kinesis, utf8, transform } = require('sluice');",
      "const upper = transform('upper', (line, emit) => emit(line.toUpperCase()));",
      "const p = pipeline({ name: 'dsl', batchInterval: '1s', source: kinesis({ stream: 's', decode: utf8 }), stages: [upper], sinks: [] });",
      "const { testPipeline } = require('sluice/testing');",
      'testPipeline(p).push(["a"]).advance().then(() => process.exit(3), (e) => { console.log(e.name + ": " + e.message + " / " + e.hint); });',
    ].join('\n');

    const { stdout } = await sh(dslOnly, process.execPath, ['-e', script]);

    const installed = readdirSync(path.join(dslOnly, 'node_modules'));
    for (const optional of ['aws-cdk-lib', 'constructs', 'dynalite', 'kinesalite', 'esbuild', 'tsx']) {
      expect(installed).not.toContain(optional);
    }
    expect(stdout).toMatch(
      /^MissingPackageError: .*dynalite.* \/ Install them beside sluice: npm i -D dynalite@4\.0\.0/,
    );
  }, 180_000);
});
