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
      hint: 'A batch sealed under one plan is being run by a bundle of another: drain the pipeline before changing its stages.',
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
 * Retrying later is the remedy; the coordinator's sweep re-drives it if retries run out.
 *
 * @example
 * throw new NotReadyError('manifest for batch 4 not found', { batch });
 */
export class NotReadyError extends SluiceError {
  override readonly name = 'NotReadyError';
  constructor(message: string, scope?: ErrorScope) {
    super(message, {
      retryable: true,
      hint: 'Transient: the invocation is retried, and the coordinator sweep re-drives stuck batches.',
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
 * True for errors worth retrying: sluice's own retryable errors and AWS throttling or 5xx responses.
 *
 * @example
 * if (!isRetryable(err)) await markFailed(err);
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof SluiceError) return error.retryable;
  // Anything else (SDK faults, network errors, an emulator restarting) is assumed transient:
  // every step is idempotent, so a retry is always safe.
  return true;
}
