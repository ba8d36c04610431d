// Builds the package into dist/: cjs/ is what Node loads (CommonJS with declarations, for ESM and
// CommonJS consumers alike); esm/ is lib/ and the function entries as ES modules, which only the
// construct's bundler reads, so that the deployed functions are tree-shaken.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const dist = path.join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
for (const project of ['tsconfig.build.json', 'tsconfig.esm.json']) {
  execFileSync(process.execPath, [tsc, '-p', path.join(root, project)], { stdio: 'inherit' });
}
mkdirSync(path.join(dist, 'esm'), { recursive: true });
writeFileSync(path.join(dist, 'esm', 'package.json'), `${JSON.stringify({ type: 'module' })}\n`);
