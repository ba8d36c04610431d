import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The parts of sluice's own `package.json` that its tools read. */
export interface PackageManifest {
  readonly name: string;
  readonly version: string;
  /** Optional peers (the emulator, esbuild, tsx, the CDK) with the ranges sluice supports. */
  readonly peerDependencies: Readonly<Record<string, string>>;
  /** Exact versions sluice is built and tested with (what `sluice init` pins). */
  readonly devDependencies: Readonly<Record<string, string>>;
}

/**
 * Where the files of the running sluice package are: from its TypeScript sources (a development
 * checkout, run through tsx or vitest) or from its build (installed from npm). The construct bundles
 * the function entries and library named here; `sluice init` copies the templates.
 */
export interface PackageFiles {
  /** The folder holding sluice's `package.json`. */
  readonly root: string;
  /** True when running from the build (`dist/`), false from the TypeScript sources. */
  readonly built: boolean;
  readonly manifest: PackageManifest;
  /** The library as the bundler should take it: ES modules, so that unused code is shaken out. */
  readonly libraryEntry: string;
  /** The templates `sluice init` copies. */
  readonly templates: string;
  /** The Lambda entry of a function kind (`ingest`, `coordinator`, `transform`, `reduce`). */
  functionEntry(kind: string): string;
}

function readManifest(file: string): PackageManifest | undefined {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<Record<keyof PackageManifest, unknown>>;
  if (parsed.name !== 'sluice' || typeof parsed.version !== 'string') return undefined;
  const record = (value: unknown): Readonly<Record<string, string>> =>
    typeof value === 'object' && value !== null ? (value as Record<string, string>) : {};
  return {
    name: parsed.name,
    version: parsed.version,
    peerDependencies: record(parsed.peerDependencies),
    devDependencies: record(parsed.devDependencies),
  };
}

/**
 * The files of the running sluice package, found by walking up from this module (or the module
 * file given) to the `package.json` named `sluice`.
 *
 * @example
 * const { functionEntry } = packageFiles();
 * functionEntry('reduce'); // .../node_modules/sluice/dist/esm/functions/reduce.js
 */
export function packageFiles(moduleFile: string = __filename): PackageFiles {
  // This module runs as TypeScript only from the sources; the build is JavaScript.
  const built = !moduleFile.endsWith('.ts');
  let dir = path.dirname(moduleFile);
  for (;;) {
    const file = path.join(dir, 'package.json');
    const manifest = existsSync(file) ? readManifest(file) : undefined;
    if (manifest) {
      const root = dir;
      const tree = built ? path.join(root, 'dist', 'esm') : root;
      const extension = built ? '.js' : '.ts';
      return Object.freeze({
        root,
        built,
        manifest,
        libraryEntry: path.join(tree, 'lib', `index${extension}`),
        templates: path.join(root, 'templates'),
        functionEntry: (kind: string) => path.join(tree, 'functions', `${kind}${extension}`),
      });
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json of sluice above ${path.dirname(moduleFile)}`);
    dir = parent;
  }
}

/**
 * Which of sluice's optional peers the project lacks, each with the version sluice is tested with
 * (what to install).
 *
 * @example
 * const missing = missingPeers(['dynalite', 'kinesalite']);
 * if (Object.keys(missing).length > 0) throw new MissingPackageError('Local runs', missing);
 */
export function missingPeers(names: readonly string[]): Readonly<Record<string, string>> {
  const missing = names.filter((name) => {
    try {
      require.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return {};
  const pinned = packageFiles().manifest.devDependencies;
  return Object.fromEntries(missing.map((name) => [name, pinned[name] ?? 'latest']));
}
