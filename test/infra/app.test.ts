import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli';
import { cfnLint, cfnLintAvailable, cfnLintTitle } from './helpers';

/**
 * Bundles must stay small for fast cold starts; the AWS SDK is left to the runtime. They are about
 * 163 KB (each function carries the four handlers, zod and Powertools): this bound catches a
 * dependency bundled by mistake, not a few new features.
 */
const MAX_BUNDLE_BYTES = 192 * 1024;

/** Runs the CDK app the way the CLI does: context and output directory through the environment. */
function runApp(context: Record<string, unknown>, outdir: string): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'infra/app.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify(context), CDK_OUTDIR: outdir },
    timeout: 60_000,
  });
  return { status: result.status, stderr: result.stderr };
}

interface Asset {
  readonly path: string;
  readonly bytes: number;
}

describe('infra/app.ts with real bundling (word count example)', () => {
  let outdir: string;
  let run: { status: number | null; stderr: string };
  let template: { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
  let bundles: Map<string, Asset>;

  beforeAll(() => {
    outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-synth-'));
    run = runApp({ pipeline: 'examples/wordcount/pipeline.ts' }, outdir);
    if (run.status !== 0) return;
    template = JSON.parse(
      fs.readFileSync(path.join(outdir, 'sluice-wordcount.template.json'), 'utf8'),
    ) as typeof template;
    const assets = JSON.parse(fs.readFileSync(path.join(outdir, 'sluice-wordcount.assets.json'), 'utf8')) as {
      files: Record<string, { source: { path: string; packaging?: string } }>;
    };
    bundles = new Map();
    for (const [hash, asset] of Object.entries(assets.files)) {
      if (asset.source.packaging !== 'zip') continue;
      const file = path.join(outdir, asset.source.path, 'index.js');
      bundles.set(hash, { path: file, bytes: fs.statSync(file).size });
    }
  });

  afterAll(() => {
    fs.rmSync(outdir, { recursive: true, force: true });
  });

  it('synthesizes the stack named after the pipeline and passes the cdk-nag and CloudFormation validations', () => {
    // Arrange: done in beforeAll (one synth for every assertion here).

    // Act
    const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: unknown[];
    };

    // Assert
    expect(run.stderr).not.toMatch(/AwsSolutions/);
    expect(run.status).toBe(0);
    expect(report.pluginReports).toEqual([]);
    expect(Object.keys(template.Resources).length).toBeGreaterThan(20);
  });

  it.skipIf(!cfnLintAvailable())(
    cfnLintTitle('passes cfn-lint (only the W3005 warnings CDK causes itself)'),
    () => {
      // Arrange
      const file = path.join(outdir, 'sluice-wordcount.template.json');

      // Act
      const findings = cfnLint([file]);

      // Assert
      expect(findings).toEqual([]);
    },
  );

  it(`bundles each of the four functions under ${MAX_BUNDLE_BYTES / 1024} KB`, () => {
    // Arrange
    const sizes = [...bundles.values()].map((b) => b.bytes);

    // Act
    const largest = Math.max(...sizes);

    // Assert
    expect(sizes).toHaveLength(4);
    expect(largest).toBeLessThan(MAX_BUNDLE_BYTES);
  });

  it('leaves the AWS SDK out and aliases sluice-pipeline to the example', () => {
    // Arrange
    const code = [...bundles.values()].map((b) => fs.readFileSync(b.path, 'utf8'));

    // Act
    const unresolved = code.filter((c) => c.includes('sluice-pipeline'));

    // Assert
    expect(code).toHaveLength(4);
    expect(unresolved).toEqual([]);
    for (const c of code) {
      expect(c).toContain('require("@aws-sdk/client-s3")');
      expect(c).toContain('tokenize');
    }
  });

  it('loads every bundle and exports a handler', () => {
    // Arrange: the externals resolve from the repository's node_modules, as from the runtime's.
    const files = [...bundles.values()].map((b) => b.path);
    expect(files).toHaveLength(4);
    const script = `for (const f of ${JSON.stringify(files)}) { if (typeof require(f).handler !== 'function') process.exit(2); }`;

    // Act
    const result = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        NODE_PATH: path.join(ROOT, 'node_modules'),
        AWS_REGION: 'us-east-1',
        SLUICE_BUCKET: 'bucket',
        SLUICE_TABLE: 'table',
        SLUICE_FUNCTIONS: '{}',
      },
      timeout: 30_000,
    });

    // Assert
    expect(result.stderr).not.toMatch(/Error|Cannot find/);
    expect(result.status).toBe(0);
  });
});

describe('infra/app.ts errors', () => {
  it('says how to choose a pipeline when none is given', () => {
    // Arrange
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-synth-'));

    // Act
    const run = runApp({}, outdir);
    fs.rmSync(outdir, { recursive: true, force: true });

    // Assert
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('-c pipeline=examples/wordcount/pipeline.ts');
  });
});
