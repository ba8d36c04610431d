import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageFiles } from '../../lib/package-files';
import { runCli } from '../support/cli';

// `sluice init` as run from this checkout; test/consumer runs the scaffold itself from the packed package.

const dir = mkdtempSync(path.join(tmpdir(), 'sluice-init-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sluice init', () => {
  it('writes a project and says what to run next', async () => {
    const target = path.join(dir, 'Sensor Counts');

    const { code, stdout } = await runCli(['init', target]);

    expect(code).toBe(0);
    expect(stdout).toContain('Created sensor-counts in ');
    expect(stdout).toContain("pipeline 'sensor-counts'");
    expect(stdout).toContain('npm install');
    expect(readdirSync(target).sort()).toEqual(
      [
        '.gitignore',
        'README.md',
        'bin',
        'cdk.json',
        'package.json',
        'sample.txt',
        'src',
        'test',
        'tsconfig.json',
        'vitest.config.ts',
      ].sort(),
    );
  });

  it('names the pipeline after the folder and pins the tools sluice is tested with', async () => {
    const target = path.join(dir, '9-lives_app');

    await runCli(['init', target, '--sluice', 'file:../sluice.tgz']);

    const manifest = JSON.parse(readFileSync(path.join(target, 'package.json'), 'utf8')) as {
      name: string;
      type: string;
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const own = packageFiles().manifest;
    expect(manifest).toMatchObject({
      name: '9-lives_app',
      type: 'module',
      dependencies: { sluice: 'file:../sluice.tgz' },
    });
    for (const tool of [
      'dynalite',
      'kinesalite',
      '@20minutes/s3rver',
      'esbuild',
      'aws-cdk-lib',
      'aws-cdk',
      'tsx',
    ]) {
      expect(manifest.devDependencies[tool]).toBe(own.devDependencies[tool]);
    }
    expect(readFileSync(path.join(target, 'src', 'pipeline.ts'), 'utf8')).toContain("name: 'lives-app'");
    expect(readFileSync(path.join(target, 'README.md'), 'utf8')).toMatch(/^# 9-lives_app\n/);
  });

  it('depends on this version of sluice unless told otherwise', async () => {
    const target = path.join(dir, 'plain');

    await runCli(['init', target]);

    const manifest = JSON.parse(readFileSync(path.join(target, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(manifest.dependencies.sluice).toBe(`^${packageFiles().manifest.version}`);
  });

  it('refuses a folder that is not empty and leaves it as it was', async () => {
    const target = path.join(dir, 'taken');
    mkdirSync(target);
    writeFileSync(path.join(target, 'notes.txt'), 'mine');

    const { code, stderr } = await runCli(['init', target]);

    expect(code).toBe(2);
    expect(stderr).toContain('is not empty');
    expect(readdirSync(target)).toEqual(['notes.txt']);
    expect(existsSync(path.join(target, 'package.json'))).toBe(false);
  });
});

describe('packageFiles', () => {
  it('finds the function entries and the library of this checkout (its sources)', () => {
    const files = packageFiles();

    expect(files.built).toBe(false);
    expect(files.manifest.name).toBe('sluice');
    for (const kind of ['ingest', 'coordinator', 'transform', 'reduce']) {
      expect(existsSync(files.functionEntry(kind))).toBe(true);
    }
    expect(existsSync(files.libraryEntry)).toBe(true);
    expect(existsSync(path.join(files.templates, 'init', 'src', 'pipeline.ts'))).toBe(true);
  });
});
