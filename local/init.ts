import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageFiles, type PackageManifest } from '../lib/package-files';

/** A project that `sluice init` will not write, with a message for the person who ran it. */
export class InitError extends Error {
  override readonly name = 'InitError';
}

/** Options of {@link initProject}. */
export interface InitOptions {
  /**
   * The version range or location the project's `package.json` depends on sluice by (a tarball, a
   * folder, a git URL).
   * @default `^<this sluice's version>`
   */
  readonly sluice?: string;
}

/** What {@link initProject} wrote. */
export interface InitResult {
  readonly dir: string;
  /** The package name the project was given. */
  readonly name: string;
  /** The name of its pipeline (and so of its stack, `sluice-<name>`). */
  readonly pipelineName: string;
  /** Every file written, relative to `dir`, in the order written. */
  readonly files: readonly string[];
}

/**
 * The development tools a scaffolded project needs, pinned to the versions sluice is tested with:
 * the emulator and tsx for tests and local runs, esbuild and the CDK for deploys.
 */
const DEV_TOOLS = [
  '@20minutes/s3rver',
  '@types/node',
  'aws-cdk',
  'aws-cdk-lib',
  'constructs',
  'dynalite',
  'esbuild',
  'kinesalite',
  'tsx',
  'typescript',
  'vitest',
] as const;

/** Template files stored under another name, because npm would drop them from the package. */
const RENAMED: Readonly<Record<string, string>> = { gitignore: '.gitignore' };

function packageName(dir: string): string {
  const name = path
    .basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+|[-]+$/g, '');
  return name === '' ? 'sluice-pipeline' : name.slice(0, 214);
}

/** A pipeline name (lower-case letters, digits and '-', starting with a letter, at most 40). */
function pipelineNameOf(name: string): string {
  const candidate = name
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return candidate === '' ? 'wordcount' : candidate;
}

function projectManifest(name: string, sluice: string, own: PackageManifest): string {
  const devDependencies = Object.fromEntries(
    DEV_TOOLS.map((tool) => {
      const version = own.devDependencies[tool];
      if (version === undefined) throw new Error(`sluice's package.json does not pin ${tool}`);
      return [tool, version];
    }),
  );
  const manifest = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: {
      test: 'vitest run',
      typecheck: 'tsc --noEmit',
      local: 'sluice local run src/pipeline.ts --input sample.txt',
      synth: 'cdk synth',
      deploy: 'cdk deploy',
    },
    dependencies: { sluice },
    devDependencies,
    // npm 11 asks before running install scripts: the emulator's LevelDB and esbuild's binary.
    allowScripts: { 'classic-level': true, esbuild: true, leveldown: true },
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

function copyTemplates(
  from: string,
  to: string,
  relative: string,
  values: Readonly<Record<string, string>>,
  written: string[],
): void {
  for (const entry of readdirSync(from, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const source = path.join(from, entry.name);
    const name = RENAMED[entry.name] ?? entry.name;
    const target = path.join(to, name);
    const shown = relative === '' ? name : `${relative}/${name}`;
    if (entry.isDirectory()) {
      mkdirSync(target, { recursive: true });
      copyTemplates(source, target, shown, values, written);
      continue;
    }
    const text = readFileSync(source, 'utf8');
    if (text.includes('{{')) {
      writeFileSync(
        target,
        text.replace(/\{\{(\w+)\}\}/g, (match, key: string) => values[key] ?? match),
      );
    } else {
      copyFileSync(source, target);
    }
    written.push(shown);
  }
}

/**
 * Scaffolds a sluice project in `dir` (created if missing, refused if not empty): a word-count
 * pipeline with its stage modules, a test with `testPipeline`, a CDK app with `SluicePipeline`,
 * `package.json`, `tsconfig.json`, `cdk.json` and a README. It installs nothing.
 *
 * @example
 * const { files } = initProject('counts');
 * // then: cd counts && npm install && npm test
 */
export function initProject(dir: string, options: InitOptions = {}): InitResult {
  const absolute = path.resolve(dir);
  if (existsSync(absolute) && readdirSync(absolute).length > 0) {
    throw new InitError(`${dir} is not empty: sluice init writes a new project into an empty or new folder`);
  }
  const files = packageFiles();
  const name = packageName(absolute);
  const pipelineName = pipelineNameOf(name);
  mkdirSync(absolute, { recursive: true });
  const written: string[] = [];
  copyTemplates(path.join(files.templates, 'init'), absolute, '', { name, pipelineName }, written);
  const sluice = options.sluice ?? `^${files.manifest.version}`;
  writeFileSync(path.join(absolute, 'package.json'), projectManifest(name, sluice, files.manifest));
  written.push('package.json');
  return { dir: absolute, name, pipelineName, files: written };
}
