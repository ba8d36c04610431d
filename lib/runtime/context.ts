import type { AwsClients } from '../aws';
import type { UsageMeter } from '../cost/usage';
import type { AnyPipeline } from '../dsl/pipeline';
import { ConfigError } from '../errors';
import type { BatchId, StageId } from '../ids';
import { planPipeline, type Plan } from '../plan';
import { Ledger } from '../storage/ledger/ledger';
import { ObjectStore } from '../storage/objects';
import { StateStore } from '../storage/state-store';
import type { TaskEvent, TickEvent } from './events';

/** Names of the deployed resources a pipeline's functions use. */
export interface RuntimeConfig {
  readonly bucket: string;
  /** The ledger table. */
  readonly table: string;
  /** Phase function id (a stage id, or 'read') to the name the invoker calls it by. */
  readonly functions: Readonly<Record<string, string>>;
  /** A batch with no progress for this long is swept: its missing tasks are invoked again. */
  readonly sweepAfterMs: number;
  /** Deployed stream name to the source stream name it stands for, when they differ. */
  readonly streams?: Readonly<Record<string, string>>;
  /**
   * How long the ledger keeps a settled batch's items (its batch item, task reports and segment
   * items) after its batch time; the sweep deletes them after that. @default 7 days
   */
  readonly ledgerRetentionMs?: number;
  /** The function's memory, MiB (Lambda's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`): its tasks' budget follows. */
  readonly memoryMb?: number;
  /**
   * Whether a coordinator invocation waits for each batch boundary while records arrive, sealing
   * the batch there. `false`: it ends after its pass, and the first ingest after the next boundary
   * wakes a coordinator (a batch after which no records come is sealed by the next tick). The
   * coordinator's only. @default true
   */
  readonly coordinatorWaits?: boolean;
}

/** How long the ledger keeps a settled batch's items unless configured: 7 days. */
export const DEFAULT_LEDGER_RETENTION_MS = 7 * 24 * 3600_000;

/** Environment variables that carry `RuntimeConfig` into a Lambda function. */
export const CONFIG_ENV = Object.freeze({
  bucket: 'SLUICE_BUCKET',
  table: 'SLUICE_TABLE',
  /** The id of the function itself (a phase function id, `coordinator` or `ingest`). */
  function: 'SLUICE_FUNCTION',
  functions: 'SLUICE_FUNCTIONS',
  sweepAfterMs: 'SLUICE_SWEEP_AFTER_MS',
  streams: 'SLUICE_STREAMS',
  ledgerRetentionMs: 'SLUICE_LEDGER_RETENTION_MS',
  /** `false`: the coordinator does not wait for batch boundaries (ingest wakes it after each). */
  coordinatorWaits: 'SLUICE_COORDINATOR_WAITS',
});

/** Set by Lambda in every function's environment: the function's own name. */
const OWN_NAME_ENV = 'AWS_LAMBDA_FUNCTION_NAME';
/** Set by Lambda in every function's environment: the function's memory, MiB. */
const MEMORY_ENV = 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE';

/**
 * Reads the runtime configuration a deployment put into the environment, once per process. The
 * function's own name (a stateful phase restarts its own next task) comes from Lambda's
 * `AWS_LAMBDA_FUNCTION_NAME`, since a deployment cannot write a function's name into itself.
 *
 * @example
 * const config = configFromEnv(process.env);
 */
export function configFromEnv(env: NodeJS.ProcessEnv): RuntimeConfig {
  const bucket = env[CONFIG_ENV.bucket];
  const table = env[CONFIG_ENV.table];
  if (!bucket) throw new ConfigError(`${CONFIG_ENV.bucket} is not set`);
  if (!table) throw new ConfigError(`${CONFIG_ENV.table} is not set`);
  let functions: Record<string, string> = {};
  const rawFunctions = env[CONFIG_ENV.functions];
  if (rawFunctions) {
    try {
      functions = JSON.parse(rawFunctions) as Record<string, string>;
    } catch (error) {
      throw new ConfigError(`${CONFIG_ENV.functions} is not JSON: ${(error as Error).message}`);
    }
  }
  const self = env[CONFIG_ENV.function];
  const ownName = env[OWN_NAME_ENV];
  if (self && ownName && functions[self] === undefined) functions = { ...functions, [self]: ownName };
  const sweepAfterMs = Number(env[CONFIG_ENV.sweepAfterMs] ?? 5 * 60_000);
  if (!Number.isFinite(sweepAfterMs) || sweepAfterMs <= 0) {
    throw new ConfigError(`${CONFIG_ENV.sweepAfterMs} must be a positive number of milliseconds`);
  }
  const rawRetention = env[CONFIG_ENV.ledgerRetentionMs];
  const ledgerRetentionMs = rawRetention === undefined ? undefined : Number(rawRetention);
  const retentionValid =
    ledgerRetentionMs === undefined ||
    (rawRetention?.trim() !== '' && Number.isFinite(ledgerRetentionMs) && ledgerRetentionMs >= 0);
  if (!retentionValid) {
    throw new ConfigError(`${CONFIG_ENV.ledgerRetentionMs} must be a number of milliseconds, 0 or more`);
  }
  let streams: Record<string, string> | undefined;
  const rawStreams = env[CONFIG_ENV.streams];
  if (rawStreams) {
    try {
      // Either { deployed: source } or [[deployed, source], ...] (what the construct writes).
      const parsed = JSON.parse(rawStreams) as Record<string, string> | [string, string][];
      streams = Array.isArray(parsed) ? Object.fromEntries(parsed) : parsed;
    } catch (error) {
      throw new ConfigError(`${CONFIG_ENV.streams} is not JSON: ${(error as Error).message}`);
    }
  }
  const rawWaits = env[CONFIG_ENV.coordinatorWaits];
  if (rawWaits !== undefined && rawWaits !== 'true' && rawWaits !== 'false') {
    throw new ConfigError(`${CONFIG_ENV.coordinatorWaits} must be true or false`);
  }
  const memoryMb = Number(env[MEMORY_ENV]);
  return Object.freeze({
    ...(rawWaits === 'false' ? { coordinatorWaits: false } : {}),
    ...(Number.isFinite(memoryMb) && memoryMb > 0 ? { memoryMb } : {}),
    bucket,
    table,
    functions: Object.freeze(functions),
    sweepAfterMs,
    ...(streams ? { streams: Object.freeze(streams) } : {}),
    ...(ledgerRetentionMs === undefined ? {} : { ledgerRetentionMs }),
  });
}

/** Starts tasks: Lambda's asynchronous invoke on AWS, the local invoker locally. */
export interface Invoker {
  invoke(fn: StageId, event: TaskEvent): Promise<void>;
  /** Starts a coordinator invocation with a tick (ingest waking a sleeping coordinator). */
  wake(tick: TickEvent): Promise<void>;
}

/** The time, in epoch milliseconds: the system clock on AWS, a manual clock in tests. */
export interface Clock {
  now(): number;
}

/** Structured log lines; Powertools' Logger fits this shape. */
export interface RuntimeLog {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

/** A finished batch's figures, as the runtime reports them. */
export interface BatchCompletion {
  readonly batch: BatchId;
  readonly inputRecords: number;
  readonly outputRecords: number;
  readonly deadLetters: number;
  /** From sealing to completion, ms. */
  readonly processingMs: number;
  /** From the batch time to sealing, ms. */
  readonly schedulingDelayMs: number;
  readonly inputBytes: number;
  /** From the batch time to completion, ms. */
  readonly totalDelayMs: number;
  /** How long sealing took, ms. */
  readonly sealMs: number;
  /** Lambda GB-seconds of the batch's ingest, sealing pass and tasks. */
  readonly gbSeconds: number;
  /** The same's cost at list prices, US dollars. */
  readonly costUsd: number;
  /** Keys of every stateful stage's state after the batch (0 without state). */
  readonly stateKeys: number;
  /** Encoded bytes of the same. */
  readonly stateBytes: number;
  /** Event-time pipelines: the batch time less the watermark the batch ran with, ms. */
  readonly watermarkLagMs?: number;
}

/**
 * What the runtime reports, as values, while it works: Lambda turns them into CloudWatch metrics
 * (`lib/runtime/lambda.ts`); locally they are dropped unless a test listens.
 */
export interface RuntimeMetrics {
  batchComplete(completion: BatchCompletion): void;
  batchFailed(failure: { readonly batch: BatchId }): void;
}

/** Everything an executor needs, built once per process (per cold start on Lambda). */
export interface RuntimeContext {
  readonly pipeline: AnyPipeline;
  readonly plan: Plan;
  readonly config: RuntimeConfig;
  readonly ledger: Ledger;
  readonly objects: ObjectStore;
  /** Keyed state of stateful stages, in chunks in the ledger table. */
  readonly state: StateStore;
  readonly invoker: Invoker;
  readonly clock: Clock;
  readonly log: RuntimeLog;
  readonly metrics: RuntimeMetrics;
  /** Meters the requests of each invocation, which its task report carries. */
  readonly meter?: UsageMeter;
  /** Where the `print` sink writes: standard output on AWS (the log), a collector locally. */
  readonly print: (text: string) => void;
}

/** What `createRuntimeContext` takes besides the pipeline. */
export interface RuntimeDeps {
  readonly config: RuntimeConfig;
  readonly clients: Pick<AwsClients, 's3' | 'dynamo'>;
  readonly invoker: Invoker;
  readonly clock?: Clock;
  readonly log?: RuntimeLog;
  readonly metrics?: RuntimeMetrics;
  readonly meter?: UsageMeter;
  readonly print?: (text: string) => void;
}

const systemClock: Clock = Object.freeze({ now: () => Date.now() });
const silentLog: RuntimeLog = Object.freeze({ info() {}, warn() {}, error() {} });
const noMetrics: RuntimeMetrics = Object.freeze({ batchComplete() {}, batchFailed() {} });

/**
 * Binds a pipeline to its resources and services. The Lambda adapters and the local runtime both
 * build one of these and call the same executors with it.
 *
 * @example
 * const ctx = createRuntimeContext(pipeline, { config, clients, invoker: new LambdaInvoker(clients.lambda, config) });
 */
export function createRuntimeContext(pipeline: AnyPipeline, deps: RuntimeDeps): RuntimeContext {
  return Object.freeze({
    pipeline,
    plan: planPipeline(pipeline),
    config: deps.config,
    ledger: new Ledger(deps.clients.dynamo, deps.config.table),
    objects: new ObjectStore(deps.clients.s3, deps.config.bucket),
    state: new StateStore(deps.clients.dynamo, deps.config.table),
    invoker: deps.invoker,
    clock: deps.clock ?? systemClock,
    log: deps.log ?? silentLog,
    metrics: deps.metrics ?? noMetrics,
    ...(deps.meter ? { meter: deps.meter } : {}),
    print: deps.print ?? ((text: string) => void process.stdout.write(`${text}\n`)),
  });
}
