import type { BatchId, PartitionId, StageId, TaskId } from './ids';

/** Where in a run an error happened; every field is optional because not every step has all of them. */
export interface ErrorScope {
  readonly batch?: BatchId;
  readonly stage?: StageId;
  readonly partition?: PartitionId;
  readonly task?: TaskId;
}

/**
 * The base of every error sluice throws. It says where it happened, whether trying again can help,
 * and what to do next.
 *
 * @example
 * try { await run(); } catch (e) {
 *   if (e instanceof SluiceError && !e.retryable) console.error(e.hint);
 * }
 */
export class SluiceError extends Error {
  override readonly name: string = 'SluiceError';
  /** True when the same invocation may succeed if run again (throttling, a missing prerequisite). */
  readonly retryable: boolean;
  /** What the operator or author should do about it. */
  readonly hint: string;
  readonly scope: ErrorScope;

  constructor(
    message: string,
    options: { retryable: boolean; hint: string; scope?: ErrorScope; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable;
    this.hint = options.hint;
    this.scope = options.scope ?? {};
  }
}

/**
 * A pipeline definition is invalid (bad id, durations, wiring that types could not catch).
 *
 * @example
 * throw new PipelineDefinitionError("batchInterval '0s' must be positive");
 */
export class PipelineDefinitionError extends SluiceError {
  override readonly name = 'PipelineDefinitionError';
  constructor(message: string, scope?: ErrorScope) {
    super(message, { retryable: false, hint: 'Fix the pipeline definition and deploy again.', scope });
  }
}

/**
 * External input (an event, a manifest, configuration) does not have the expected shape.
 *
 * @example
 * throw new InvalidInputError('task event without a batch', {});
 */
export class InvalidInputError extends SluiceError {
  override readonly name = 'InvalidInputError';
  constructor(message: string, scope?: ErrorScope, cause?: unknown) {
    super(message, {
      retryable: false,
      hint: 'Check what invoked the function; events are produced by the sluice coordinator and ingest.',
      scope,
      cause,
    });
  }
}

/**
 * The runtime and the deployed pipeline disagree (a manifest sealed by another version of the plan).
 *
 * @example
 * throw new PlanMismatchError('manifest plan has stage count, bundle has sum', { batch });
 */
export class PlanMismatchError extends SluiceError {
  override readonly name = 'PlanMismatchError';
  constructor(message: string, scope?: ErrorScope) {
    super(message, {
      retryable: false,
      hint: 'A batch sealed under one plan is being run by a bundle whose plan breaks it: redeploy the earlier plan until the batch is done, or skip it (sluice batches skip); planLock refuses such changes before they are deployed.',
      scope,
    });
  }
}

/**
 * Persisted data (a state head, a segment, a ledger item) is in a format this code does not read:
 * it was written by another version of sluice, or it is not sluice's.
 *
 * @example
 * throw new DataFormatError('the state of state#count#0 is in sluice.chunk@2; this code reads sluice.chunk@1');
 */
export class DataFormatError extends SluiceError {
  override readonly name = 'DataFormatError';
  constructor(message: string, scope?: ErrorScope) {
    super(message, {
      retryable: false,
      hint: 'Run the version of sluice that wrote this data until it is drained, or migrate it; data is never reinterpreted.',
      scope,
    });
  }
}

/**
 * A record could not be decoded or user code threw on it, and the pipeline says `onError: 'fail'`.
 *
 * @example
 * throw new RecordFailedError('JSON.parse: Unexpected token', { batch, stage, task });
 */
export class RecordFailedError extends SluiceError {
  override readonly name = 'RecordFailedError';
  constructor(message: string, scope: ErrorScope, cause?: unknown) {
    super(message, {
      retryable: false,
      hint: "Fix the input or the stage code; or set onError: 'deadLetter' to route such records to the dead-letter prefix and go on.",
      scope,
      cause,
    });
  }
}

/**
 * Something a step needs is not there yet (an object not yet visible, a previous step not reported).
 * Retrying later is the remedy; the coordinator's sweep re-drives it if retries run out. `waiting`
 * marks the waits the design expects (batch n+1 of a stateful partition waiting for batch n): they
 * do not use up the step's retry budget, since the step itself is not failing.
 *
 * @example
 * throw new NotReadyError('manifest for batch 4 not found', { batch });
 */
export class NotReadyError extends SluiceError {
  override readonly name = 'NotReadyError';
  /** An ordering wait: retried without counting against the retry budget. */
  readonly waiting: boolean;
  constructor(message: string, scope?: ErrorScope, options: { readonly waiting?: boolean } = {}) {
    super(message, {
      retryable: true,
      hint: 'Transient: the invocation is retried, and the coordinator sweep re-drives stuck batches.',
      scope,
    });
    this.waiting = options.waiting === true;
  }
}

/**
 * Thrown by user code (a `foreachBatch` sink, a decoder, a stage) to say that trying again may
 * succeed: the step is retried within the pipeline's retry budget. Any other error a user function
 * throws is taken as permanent: the record is dead-lettered, or the batch fails.
 *
 * @example
 * foreachBatch('to-api', async (records) => {
 *   const response = await fetch(url, { method: 'POST', body: JSON.stringify(records) });
 *   if (response.status === 503) throw new RetryableError('the API is unavailable');
 * });
 */
export class RetryableError extends SluiceError {
  override readonly name: string = 'RetryableError';
  constructor(message: string, options: { readonly cause?: unknown; readonly scope?: ErrorScope } = {}) {
    super(message, {
      retryable: true,
      hint: 'Transient by its own account: retried within the retry budget, then the batch fails.',
      ...options,
    });
  }
}

/**
 * A step kept failing with transient errors (or kept not finishing) until its retry budget ran out:
 * its batch fails with this as the reason, and the pipeline's `onBatchFailure` policy applies.
 *
 * @example
 * throw new RetryBudgetExhaustedError('task 3 of phase 1 failed 10 times in 15 min', { batch, task });
 */
export class RetryBudgetExhaustedError extends SluiceError {
  override readonly name = 'RetryBudgetExhaustedError';
  constructor(message: string, scope?: ErrorScope, cause?: unknown) {
    super(message, {
      retryable: false,
      hint:
        'Find the cause in the last error; when it is fixed, retry the batch (or skip it). ' +
        "The budget is the pipeline's `retry` option (attempts and duration).",
      scope,
      cause,
    });
  }
}

/**
 * A keyed stage's state for one key grew past what one DynamoDB item can hold. The key is refused
 * (its state goes to the dead-letter prefix as `state`) rather than failing the partition.
 *
 * @example
 * throw new StateTooLargeError('state of key "user-1" is 512 KiB, over 350 KiB', { stage, partition });
 */
export class StateTooLargeError extends SluiceError {
  override readonly name = 'StateTooLargeError';
  constructor(message: string, scope?: ErrorScope) {
    super(message, {
      retryable: false,
      hint: 'Keep less per key (a summary instead of every value), or give the key a finer grain.',
      scope,
    });
  }
}

/**
 * A reduce partition would hold more than its function's memory budget: its shuffle input or its
 * state, decoded, would not fit. Refused before it is decoded, so the function fails with this
 * rather than running out of memory; the batch fails with the reason.
 *
 * @example
 * throw new MemoryBudgetError('state of count/3 would take ~900 MiB, over the 464 MiB budget', { stage, partition });
 */
export class MemoryBudgetError extends SluiceError {
  override readonly name = 'MemoryBudgetError';
  constructor(message: string, scope?: ErrorScope) {
    super(message, {
      retryable: false,
      hint: "Give the stage more partitions (its `partitions`, deployed with `allowRescale`), or its tasks more memory (the construct's `taskMemorySize`), then retry the batch.",
      scope,
    });
  }
}

/**
 * Configuration (environment of a function, CLI flags) is missing or wrong.
 *
 * @example
 * throw new ConfigError('SLUICE_BUCKET is not set');
 */
export class ConfigError extends SluiceError {
  override readonly name = 'ConfigError';
  constructor(message: string) {
    super(message, {
      retryable: false,
      hint: 'Deploy with the SluicePipeline construct, or run through `sluice local`, which set this.',
    });
  }
}

/**
 * How a failure is treated: `transient` failures are retried within the retry budget; `waiting` ones
 * (the ordering waits the design expects) are retried without using it up; `permanent` ones fail
 * the step at once, since running the same code on the same input again gives the same error.
 */
export type FailureClass = 'transient' | 'waiting' | 'permanent';

/** AWS error names (and codes) that mean "slow down" or "try again": throttling, 5xx, timeouts. */
const TRANSIENT_NAMES: ReadonlySet<string> = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'LimitExceededException',
  'KMSThrottlingException',
  'EC2ThrottledException',
  'TransactionInProgressException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'ServiceException',
  'InternalServerError',
  'InternalServerException',
  'InternalFailure',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'PriorRequestNotComplete',
  'ResourceNotReadyException',
  'ResourceConflictException',
]);

/** Node and undici error codes of a connection that broke or never came up. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

interface ErrorLike {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly $retryable?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: unknown };
}

/**
 * Classifies any thrown value. Total: sluice's own errors say what they are; AWS throttling, 5xx
 * and timeouts and broken connections are transient; everything else (a user function's
 * `TypeError`, an `AccessDenied`, a `ValidationException`) is permanent.
 *
 * @example
 * classifyFailure(new NotReadyError('state not applied', scope, { waiting: true })); // 'waiting'
 * classifyFailure(new TypeError('x is undefined')); // 'permanent'
 */
export function classifyFailure(error: unknown): FailureClass {
  if (error instanceof NotReadyError && error.waiting) return 'waiting';
  if (error instanceof SluiceError) return error.retryable ? 'transient' : 'permanent';
  if (typeof error !== 'object' || error === null) return 'permanent';
  const e = error as ErrorLike;
  // The SDK marks what its own retry strategy would retry; by the time it reaches us those retries
  // are used up, but another attempt later may still succeed.
  if (e.$retryable) return 'transient';
  if (typeof e.name === 'string' && TRANSIENT_NAMES.has(e.name)) return 'transient';
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return 'transient';
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status === 429 || (status >= 500 && status !== 501))) return 'transient';
  return 'permanent';
}

/**
 * True for errors worth retrying: sluice's own retryable errors, AWS throttling, 5xx responses,
 * timeouts and broken connections. Unknown errors are not.
 *
 * @example
 * if (!isRetryable(err)) await markFailed(err);
 */
export function isRetryable(error: unknown): boolean {
  return classifyFailure(error) !== 'permanent';
}

/**
 * One line that says what an error is: its name and message, and for sluice's errors the hint.
 *
 * @example
 * describeError(new TypeError('x is undefined')); // 'TypeError: x is undefined'
 */
export function describeError(error: unknown): string {
  if (error instanceof SluiceError) return `${error.name}: ${error.message} (${error.hint})`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * An optional package that a feature needs (the emulator for local runs and tests, esbuild for
 * deploys, tsx for TypeScript pipelines on the command line) is not installed in the project.
 *
 * @example
 * throw new MissingPackageError('local runs', { dynalite: '4.0.0' });
 */
export class MissingPackageError extends SluiceError {
  override readonly name = 'MissingPackageError';
  /** The missing packages and the versions sluice is tested with. */
  readonly packages: Readonly<Record<string, string>>;
  constructor(feature: string, packages: Readonly<Record<string, string>>, cause?: unknown) {
    const specs = Object.entries(packages).map(([name, version]) => `${name}@${version}`);
    super(`${feature} need ${Object.keys(packages).join(', ')}, which this project does not have`, {
      retryable: false,
      hint: `Install ${specs.length === 1 ? 'it' : 'them'} beside sluice: npm i -D ${specs.join(' ')}`,
      cause,
    });
    this.packages = packages;
  }
}
