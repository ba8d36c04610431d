import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyPipeline } from '../lib/dsl/pipeline';

/** The repository root, which `-c pipeline=<path>` is relative to. */
export const REPO_ROOT = path.resolve(__dirname, '..');

/** A pipeline module the app found and loaded. */
export interface LoadedPipeline {
  readonly pipeline: AnyPipeline;
  /** Absolute path of the module, for the bundler's `sluice-pipeline` alias. */
  readonly modulePath: string;
}

function isPipeline(value: unknown): value is AnyPipeline {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof AnyPipeline, unknown>>;
  const source = candidate.source as { spec?: { kind?: unknown } } | undefined;
  return (
    typeof candidate.name === 'string' &&
    typeof candidate.batchIntervalMs === 'number' &&
    Array.isArray(candidate.stages) &&
    Array.isArray(candidate.sinks) &&
    typeof source?.spec?.kind === 'string'
  );
}

/**
 * Loads the default export of a pipeline module. A CommonJS module compiled from `export default`
 * arrives wrapped once more (`{ default: { default: pipeline } }`), so one extra level is unwrapped.
 *
 * @example
 * const { pipeline, modulePath } = await loadPipeline('examples/wordcount/pipeline.ts');
 */
export async function loadPipeline(modulePath: string, root: string = REPO_ROOT): Promise<LoadedPipeline> {
  const absolute = path.resolve(root, modulePath);
  if (!fs.existsSync(absolute)) {
    throw new Error(`pipeline module ${modulePath} not found (looked at ${absolute})`);
  }
  const loaded = (await import(pathToFileURL(absolute).href)) as { default?: unknown };
  const first = loaded.default;
  const candidate = isPipeline(first) ? first : (first as { default?: unknown } | undefined)?.default;
  if (!isPipeline(candidate)) {
    throw new Error(
      `${modulePath} has no pipeline as its default export; write \`export default pipeline({ ... })\``,
    );
  }
  return { pipeline: candidate, modulePath: absolute };
}
