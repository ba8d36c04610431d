import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../lib/errors';
import { parseKinesisEvent, parseTaskEvent, parseTickEvent } from '../../lib/runtime/events';
import { parseFaults, type FaultOptions } from '../../local/faults';

const task = { kind: 'sluice.task@1', pipeline: 'wc', batch: 3, phase: 1, task: 2 };

const kinesisRecord = {
  eventID: 'shardId-000000000000:4959',
  eventSourceARN: 'arn:aws:kinesis:eu-west-1:123456789012:stream/lines',
  kinesis: {
    sequenceNumber: '49590338271490256608559692538361571095921575989136588898',
    data: Buffer.from('hello').toString('base64'),
    partitionKey: 'pk',
    approximateArrivalTimestamp: 1_700_000_000.123,
  },
};

describe('parseTaskEvent', () => {
  it('accepts a valid task event', () => {
    expect(parseTaskEvent(task)).toEqual(task);
  });

  it('accepts phase 0 and task 0', () => {
    expect(parseTaskEvent({ ...task, phase: 0, task: 0 })).toMatchObject({ phase: 0, task: 0 });
  });

  it('drops unknown fields', () => {
    expect(parseTaskEvent({ ...task, extra: true })).not.toHaveProperty('extra');
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['a string', JSON.stringify(task)],
    ['another kind', { ...task, kind: 'sluice.task/v2' }],
    ['batch 0', { ...task, batch: 0 }],
    ['a fractional batch', { ...task, batch: 1.5 }],
    ['a string batch', { ...task, batch: '3' }],
    ['a negative phase', { ...task, phase: -1 }],
    ['a negative task', { ...task, task: -1 }],
    ['no pipeline', { kind: task.kind, batch: 1, phase: 0, task: 0 }],
    ['no task', { kind: task.kind, pipeline: 'wc', batch: 1, phase: 0 }],
  ])('rejects %s with InvalidInputError', (_name, raw) => {
    expect(() => parseTaskEvent(raw)).toThrow(InvalidInputError);
  });

  it('is not retryable', () => {
    try {
      parseTaskEvent({});
      expect.unreachable();
    } catch (error) {
      expect((error as InvalidInputError).retryable).toBe(false);
    }
  });
});

describe('parseTickEvent', () => {
  it("keeps a tick's own fields, and refuses another pipeline's or a malformed one", () => {
    const tick = { kind: 'sluice.tick@1', pipeline: 'wc' };

    expect(parseTickEvent({ ...tick, extra: 1 }, 'wc')).toEqual(tick);
    expect(parseTickEvent({ ...tick, stuckBefore: 5, sweep: false }, 'wc')).toEqual({
      ...tick,
      stuckBefore: 5,
      sweep: false,
    });
    expect(() => parseTickEvent({ ...tick, sweep: 'no' }, 'wc')).toThrow(/not a coordinator tick/);
    expect(() => parseTickEvent(tick, 'other')).toThrow(/a tick for pipeline 'wc' reached 'other'/);
  });
});

describe('parseKinesisEvent', () => {
  it('accepts a valid event', () => {
    const event = { Records: [kinesisRecord, kinesisRecord] };

    expect(parseKinesisEvent(event)).toEqual(event);
  });

  it('accepts an event with no records', () => {
    expect(parseKinesisEvent({ Records: [] })).toEqual({ Records: [] });
  });

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['no Records', {}],
    ['Records that is not a list', { Records: kinesisRecord }],
    [
      'a non-numeric sequence number',
      { Records: [{ ...kinesisRecord, kinesis: { ...kinesisRecord.kinesis, sequenceNumber: '49a' } }] },
    ],
    [
      'an empty sequence number',
      { Records: [{ ...kinesisRecord, kinesis: { ...kinesisRecord.kinesis, sequenceNumber: '' } }] },
    ],
    [
      'a string arrival timestamp',
      {
        Records: [
          { ...kinesisRecord, kinesis: { ...kinesisRecord.kinesis, approximateArrivalTimestamp: '1' } },
        ],
      },
    ],
    [
      'a record without data',
      { Records: [{ ...kinesisRecord, kinesis: { ...kinesisRecord.kinesis, data: 1 } }] },
    ],
    ['a record without eventSourceARN', { Records: [{ eventID: 'x', kinesis: kinesisRecord.kinesis }] }],
  ])('rejects %s with InvalidInputError', (_name, raw) => {
    expect(() => parseKinesisEvent(raw)).toThrow(InvalidInputError);
  });
});

describe('parseFaults', () => {
  it.each<[string, FaultOptions]>([
    ['duplicate', { duplicate: true }],
    ['crash=0.2', { crash: 0.2 }],
    ['crash', { crash: 0.1 }],
    ['latency=40', { latencyMs: 40 }],
    ['duplicate, crash=0.5, latency=0', { duplicate: true, crash: 0.5, latencyMs: 0 }],
    ['', {}],
  ])("reads '%s'", (text, expected) => {
    expect(parseFaults(text)).toEqual(expected);
  });

  it.each([['crash=2'], ['crash=-1'], ['latency=abc'], ['latency=60001'], ['slow']])(
    "refuses '%s' with a RangeError that says what is allowed",
    (text) => {
      expect(() => parseFaults(text)).toThrow(RangeError);
    },
  );
});
