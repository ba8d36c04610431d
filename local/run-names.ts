import { randomBytes } from 'node:crypto';
import type { Deployment } from '../lib/deployment';
import { ConfigError } from '../lib/errors';

/** The longest S3 bucket name. */
const BUCKET_NAME_MAX = 63;

/**
 * What a run's resources are called. Every name carries the run's name, so runs of one pipeline
 * share an endpoint without meeting, and a named run finds its own again.
 *
 * @example
 * const names: RunNames = runNames(describeDeployment(wordcount), 'nightly');
 * names.table; // 'sluice-wordcount-nightly-ledger'
 */
export interface RunNames {
  readonly bucket: string;
  readonly table: string;
  /** Source stream name to the run's stream for it. */
  readonly streams: Readonly<Record<string, string>>;
  /** Function id to deployed name, for every function of the deployment. */
  readonly functions: Readonly<Record<string, string>>;
  /** The deployed name of a function id, as the run names its functions. */
  readonly functionName: (id: string) => string;
}

/**
 * Why a run name cannot be used (it becomes part of bucket, table and stream names), or `undefined`.
 *
 * @example
 * runNameProblem('Nightly'); // "must be 1-20 lower-case letters, digits and '-'"
 */
export function runNameProblem(name: string): string | undefined {
  return /^[a-z0-9][a-z0-9-]{0,19}$/.test(name)
    ? undefined
    : "must be 1-20 lower-case letters, digits and '-'";
}

/**
 * The name of a run: the one given, once checked, or a new one (time and randomness, so two runs
 * started at once do not collide). A named run continues from its resources, which only a
 * long-running endpoint keeps between runs, so it needs one.
 *
 * @example
 * runName(undefined, undefined); // 'lx2k9q1c3f8a21', a new run on the embedded emulator
 * runName('nightly', 'http://localhost:4566'); // 'nightly'
 */
export function runName(named: string | undefined, endpoint: string | undefined): string {
  if (named === undefined) return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const problem = runNameProblem(named);
  if (problem) throw new ConfigError(`run name '${named}' ${problem}`);
  if (!endpoint) {
    throw new ConfigError(
      'a named run continues from resources on a long-running endpoint: start `sluice local serve` ' +
        'and set AWS_ENDPOINT_URL to it',
    );
  }
  return named;
}

/**
 * Names a run's resources after its pipeline and its name: `sluice-<pipeline>-<run>` for the
 * bucket (cut to S3's limit), with `-ledger` for the table and `-<function>` for each function,
 * and `<source>-<run>` for each source's stream.
 *
 * @example
 * const names = runNames(describeDeployment(wordcount), 'nightly');
 * names.streams.lines; // 'lines-nightly'
 */
export function runNames(deployment: Deployment, run: string): RunNames {
  const base = `sluice-${deployment.pipeline}-${run}`;
  const functionName = (id: string): string => `${base}-${id}`;
  return {
    bucket: base.slice(0, BUCKET_NAME_MAX).replace(/-+$/, ''),
    table: `${base}-ledger`,
    streams: Object.fromEntries(deployment.streams.map((source) => [source, `${source}-${run}`])),
    functions: Object.fromEntries(deployment.functions.map((fn) => [fn.id, functionName(fn.id)])),
    functionName,
  };
}
