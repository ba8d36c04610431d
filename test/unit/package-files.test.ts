import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MissingPackageError, SluiceError } from '../../lib/errors';
import { missingPeers, packageFiles } from '../../lib/package-files';

const dir = mkdtempSync(path.join(tmpdir(), 'sluice-package-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('packageFiles', () => {
  it('finds the ES module build of an installed package from its CommonJS build', () => {
    // Arrange: node_modules/sluice as npm installs it, under a project of its own
    const root = path.join(dir, 'project', 'node_modules', 'sluice');
    mkdirSync(path.join(root, 'dist', 'cjs', 'lib'), { recursive: true });
    writeFileSync(
      path.join(dir, 'project', 'package.json'),
      JSON.stringify({ name: 'project', version: '1.0.0' }),
    );
    writeFileSync(
      path.join(root, 'package.json'),
      JSON.stringify({ name: 'sluice', version: '9.8.7', peerDependencies: { dynalite: '4.0.0' } }),
    );

    // Act
    const files = packageFiles(path.join(root, 'dist', 'cjs', 'lib', 'package-files.js'));

    // Assert
    expect(files).toMatchObject({ root, built: true, templates: path.join(root, 'templates') });
    expect(files.manifest).toEqual({
      name: 'sluice',
      version: '9.8.7',
      peerDependencies: { dynalite: '4.0.0' },
      devDependencies: {},
    });
    expect(files.libraryEntry).toBe(path.join(root, 'dist', 'esm', 'lib', 'index.js'));
    expect(files.functionEntry('reduce')).toBe(path.join(root, 'dist', 'esm', 'functions', 'reduce.js'));
  });

  it('says so when no package.json of sluice is above the module', () => {
    // Arrange
    const stray = path.join(dir, 'stray', 'lib');
    mkdirSync(stray, { recursive: true });

    // Act
    const attempt = () => packageFiles(path.join(stray, 'package-files.js'));

    // Assert
    expect(attempt).toThrow(/no package.json of sluice above/);
  });
});

describe('missingPeers', () => {
  it('names only the packages that do not resolve, with the version sluice pins or latest', () => {
    // Act
    const missing = missingPeers(['zod', 'dynalite', 'no-such-package-of-sluice']);

    // Assert
    expect(missing).toEqual({ 'no-such-package-of-sluice': 'latest' });
  });
});

describe('MissingPackageError', () => {
  it('names the packages and the command that installs them, and is not retryable', () => {
    // Act
    const error = new MissingPackageError('Local runs', { dynalite: '4.0.0', kinesalite: '3.3.3' });

    // Assert
    expect(error).toBeInstanceOf(SluiceError);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe('Local runs need dynalite, kinesalite, which this project does not have');
    expect(error.hint).toBe('Install them beside sluice: npm i -D dynalite@4.0.0 kinesalite@3.3.3');
  });
});
