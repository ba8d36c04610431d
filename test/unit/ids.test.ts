import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  InvalidInputError,
  NotReadyError,
  PipelineDefinitionError,
  PlanMismatchError,
  RecordFailedError,
  SluiceError,
  isRetryable,
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

  it('treats errors other than SluiceError as retryable', () => {
    expect(isRetryable(new Error('socket hang up'))).toBe(true);
    expect(isRetryable('text')).toBe(true);
  });
});
