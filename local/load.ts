import { existsSync } from 'node:fs';
import path from 'node:path';
import type { AnyPipeline } from '../lib/dsl/pipeline';
import { MissingPackageError } from '../lib/errors';
import { missingPeers } from '../lib/package-files';

/** A pipeline module that cannot be used, with a message meant for the person who ran the command. */
export class PipelineLoadError extends Error {
  override readonly name = 'PipelineLoadError';
}

function isPipeline(value: unknown): value is AnyPipeline {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Partial<AnyPipeline>;
  return (
    typeof p.name === 'string' &&
    typeof p.batchIntervalMs === 'number' &&
    Array.isArray(p.stages) &&
    typeof p.source === 'object'
  );
}

/**
 * Loads a pipeline module (TypeScript or JavaScript) and returns its default export.
 *
 * @example
 * const pipeline = loadPipeline('examples/wordcount/pipeline.ts');
 */
export function loadPipeline(file: string, cwd = process.cwd()): AnyPipeline {
  const absolute = path.resolve(cwd, file);
  if (!existsSync(absolute)) throw new PipelineLoadError(`pipeline file not found: ${file}`);

  let module: unknown;
  try {
    // require() goes through tsx's CommonJS hooks (TypeScript as is), and Node >= 20.19 can
    // require ES modules too.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path known only at run time
    module = require(absolute) as unknown;
  } catch (error) {
    // The sluice command registers tsx's hooks when the project has tsx; without them Node cannot
    // read TypeScript.
    const missing = /\.[cm]?tsx?$/.test(absolute) ? missingPeers(['tsx']) : {};
    if (Object.keys(missing).length > 0) {
      throw new MissingPackageError('TypeScript pipelines on the command line', missing, error);
    }
    const reason = error instanceof Error ? error.message : String(error);
    throw new PipelineLoadError(`could not load ${file}: ${reason}`);
  }
  // Transpiled `export default` sits under `default`; an ES module's may be nested once more.
  let candidate = (module as { default?: unknown }).default;
  if (!isPipeline(candidate)) candidate = (candidate as { default?: unknown } | undefined)?.default;
  if (!isPipeline(candidate)) {
    throw new PipelineLoadError(
      `${file} does not export a pipeline: its default export must be the result of pipeline({ ... })`,
    );
  }
  return candidate;
}
