import { describe, expect, it } from 'vitest';
import {
  classifyFailure,
  ConfigError,
  describeError,
  InvalidInputError,
  NotReadyError,
  PipelineDefinitionError,
  PlanMismatchError,
  RecordFailedError,
  RetryableError,
  RetryBudgetExhaustedError,
  SluiceError,
  isRetryable,
  type FailureClass,
} from '../../lib/errors';
import { batchId, partitionId, shardId, stageId, taskId } from '../../lib/ids';

describe('ids', () => {
  it.each([[0], [-1], [1.5], [Number.NaN], [2 ** 53]])('batchId rejects %d', (n) => {
    expect(() => batchId(n)).toThrow(RangeError);
  });

  it('batchId accepts 1', () => {
    expect(batchId(1)).toBe(1);
  });

  it.each([[-1], [0.5], [Number.POSITIVE_INFINITY]])('partitionId and taskId reject %d', (n) => {
    expect(() => partitionId(n)).toThrow(RangeError);
    expect(() => taskId(n)).toThrow(RangeError);
  });

  it('partitionId and taskId accept 0', () => {
    expect(partitionId(0)).toBe(0);
    expect(taskId(0)).toBe(0);
  });

  it.each([['tokenize'], ['a'], ['word-count-2'], [`a${'b'.repeat(39)}`]])("stageId accepts '%s'", (id) => {
    expect(stageId(id)).toBe(id);
  });

  it.each([[''], ['-a'], ['A'], ['a.b'], [`a${'b'.repeat(40)}`]])("stageId rejects '%s'", (id) => {
    expect(() => stageId(id)).toThrow(RangeError);
  });

  it('shardId rejects the empty string', () => {
    expect(() => shardId('')).toThrow(RangeError);
  });
});

describe('errors', () => {
  it.each<[string, SluiceError, boolean]>([
    ['PipelineDefinitionError', new PipelineDefinitionError('x'), false],
    ['InvalidInputError', new InvalidInputError('x'), false],
    ['PlanMismatchError', new PlanMismatchError('x'), false],
    ['RecordFailedError', new RecordFailedError('x', {}), false],
    ['ConfigError', new ConfigError('x'), false],
    ['NotReadyError', new NotReadyError('x'), true],
  ])('%s is a named SluiceError with retryable=%s and a hint', (name, error, retryable) => {
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(name);
    expect(error.retryable).toBe(retryable);
    expect(error.hint.length).toBeGreaterThan(0);
    expect(isRetryable(error)).toBe(retryable);
  });

  it('keeps scope and cause', () => {
    const cause = new Error('root');
    const error = new InvalidInputError('x', { stage: stageId('s') }, cause);

    expect(error.scope).toEqual({ stage: 's' });
    expect(error.cause).toBe(cause);
  });

  it('has no cause property when none is given', () => {
    expect('cause' in new NotReadyError('x')).toBe(false);
  });

  it('treats unknown errors as permanent, never as retryable', () => {
    expect(isRetryable(new Error('socket hang up'))).toBe(false);
    expect(isRetryable(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
    expect(isRetryable('text')).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
  });
});

/** An error as the AWS SDK shapes a service exception. */
function awsError(name: string, status: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} from AWS`), {
    name,
    $metadata: { httpStatusCode: status },
    ...extra,
  });
}

describe('classifyFailure', () => {
  it.each<[string, unknown, FailureClass]>([
    ['DynamoDB throttling', awsError('ProvisionedThroughputExceededException', 400), 'transient'],
    ['a throttled Lambda invoke', awsError('TooManyRequestsException', 429), 'transient'],
    ['S3 slow down', awsError('SlowDown', 503), 'transient'],
    ['a 500 of any name', awsError('SomethingBroke', 500), 'transient'],
    ['a 502 from a proxy', awsError('Unknown', 502), 'transient'],
    [
      'an SDK-marked retryable error',
      awsError('Weird', 400, { $retryable: { throttling: false } }),
      'transient',
    ],
    ['a reset connection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'transient'],
    ['a request timeout', Object.assign(new Error('timed out'), { name: 'TimeoutError' }), 'transient'],
    ['a function being updated', awsError('ResourceConflictException', 409), 'transient'],
    ['access denied', awsError('AccessDeniedException', 400), 'permanent'],
    ['an item over 400 KB', awsError('ValidationException', 400), 'permanent'],
    ['a missing function', awsError('ResourceNotFoundException', 404), 'permanent'],
    ['a range past the end', awsError('InvalidRange', 416), 'permanent'],
    ['501 not implemented', awsError('NotImplemented', 501), 'permanent'],
    ['a TypeError in user code', new TypeError('x is not a function'), 'permanent'],
    ['a thrown string', 'boom', 'permanent'],
    ['null', null, 'permanent'],
    ['a NotReadyError', new NotReadyError('manifest not found'), 'transient'],
    ['an ordering wait', new NotReadyError('state not applied', {}, { waiting: true }), 'waiting'],
    ["a user's RetryableError", new RetryableError('API unavailable'), 'transient'],
    ['a RecordFailedError', new RecordFailedError('x', {}), 'permanent'],
    ['a used-up budget', new RetryBudgetExhaustedError('x'), 'permanent'],
  ])('%s is %s', (_name, error, expected) => {
    // Act
    const kind = classifyFailure(error);

    // Assert
    expect(kind).toBe(expected);
    expect(isRetryable(error)).toBe(expected !== 'permanent');
  });

  it('describes an error in one line, with the hint of a SluiceError', () => {
    expect(describeError(new TypeError('x is undefined'))).toBe('TypeError: x is undefined');
    expect(describeError(new ConfigError('SLUICE_TABLE is not set'))).toMatch(
      /^ConfigError: SLUICE_TABLE is not set \(Deploy with/,
    );
    expect(describeError(42)).toBe('42');
  });
});
