import { describe, expect, it } from 'vitest';
import { eventTimeWindow, json, kinesis, map, pipeline, type EventWindow, type Pair } from '../../lib';
import { testPipeline } from '../../local/testing';
import { closeAfterEach } from '../support/runs';

interface Reading {
  readonly sensor: string;
  readonly celsius: number;
  readonly at: number;
}

const source = kinesis({ stream: 'readings', decode: json<Reading>() });
const bySensor = map<Reading, Pair<string, Reading>>('by-sensor', (r) => [r.sensor, r]);
const average = {
  create: (r: Reading): [number, number] => [r.celsius, 1],
  add: ([s, n]: [number, number], r: Reading): [number, number] => [s + r.celsius, n + 1],
  merge: ([s1, n1]: [number, number], [s2, n2]: [number, number]): [number, number] => [s1 + s2, n1 + n2],
  result: ([s, n]: [number, number]): number => s / n,
};

/** Minute m plus s seconds, in ms. */
const at = (m: number, s = 0): number => m * 60_000 + s * 1_000;

function build(mode: 'final' | 'update', lateness: `${number}s`, slide?: `${number}m`) {
  const stage = eventTimeWindow<string, Reading, [number, number], number>('per-minute', {
    timestamp: ([, r]) => r.at,
    length: slide ? '2m' : '1m',
    ...(slide ? { slide } : {}),
    lateness,
    aggregate: average,
    mode,
  });
  return pipeline({ name: 'event-time', batchInterval: '10s', source, stages: [bySensor, stage] });
}

const track = closeAfterEach();

function windows(records: readonly Pair<string, EventWindow<number>>[]): string[] {
  return records
    .map(([k, w]) => `${k} ${w.start / 60_000}-${w.end / 60_000} ${w.value} ${w.final ? 'final' : 'open'}`)
    .sort();
}

describe('event-time windows with a watermark', () => {
  it('outputs each window once, when the watermark (max event time - lateness) passes its end', async () => {
    const t = testPipeline(build('final', '30s'), { settings: { partitions: 2 } });
    track(t);

    const b1 = await t
      .push([
        { sensor: 'a', celsius: 10, at: at(0, 10) },
        { sensor: 'a', celsius: 20, at: at(0, 50) },
      ])
      .advance();
    const b2 = await t
      .push([
        { sensor: 'a', celsius: 30, at: at(1, 20) },
        { sensor: 'b', celsius: 5, at: at(0, 40) },
      ])
      .advance();
    const b3 = await t.push([{ sensor: 'a', celsius: 40, at: at(1, 40) }]).advance();
    const b4 = await t.push([{ sensor: 'b', celsius: 7, at: at(2, 45) }]).advance();
    const b5 = await t.advance();

    // Watermarks: b1 none; b2 sealed after b1 (max 0:50 - 30s = 0:20); b3 after b2 (1:20 - 30s = 0:50);
    // b4 after b3 (1:40 - 30s = 1:10): minute 0 closes; b5 after b4 (2:45 - 30s = 2:15): minute 1 closes.
    expect(windows(b1.records)).toEqual([]);
    expect(windows(b2.records)).toEqual([]);
    expect(windows(b3.records)).toEqual([]);
    expect(windows(b4.records)).toEqual(['a 0-1 15 final', 'b 0-1 5 final']);
    expect(windows(b5.records)).toEqual(['a 1-2 35 final']);
  });

  it('starts on an idle stream: quiet empty batches do not hold the watermark back', async () => {
    // Arrange: three empty batches first (the state is empty: they are quiet)
    const t = track(testPipeline(build('final', '30s'), { settings: { partitions: 2 } }));
    const idle = [await t.advance(), await t.advance(), await t.advance()];

    // Act
    await t.push([{ sensor: 'a', celsius: 10, at: at(0, 10) }]).advance();
    await t.push([{ sensor: 'a', celsius: 30, at: at(1, 40) }]).advance();
    const closing = await t.advance();

    // Assert: the quiet batches ran nothing; the watermark (1:40 - 30s) closes minute 0.
    expect(idle.slice(1).map((b) => b.progress?.phases[1]?.tasks)).toEqual([0, 0]);
    expect(windows(closing.records)).toEqual(['a 0-1 10 final']);
  });

  it('sends records whose windows have closed to the dead-letter prefix as late, and counts them', async () => {
    const t = testPipeline(build('final', '0s'));
    track(t);
    await t.push([{ sensor: 'a', celsius: 1, at: at(5) }]).advance();

    const batch = await t
      .push([
        { sensor: 'a', celsius: 99, at: at(3, 30) },
        { sensor: 'a', celsius: 2, at: at(5, 1) },
      ])
      .advance();
    const letters = await t.deadLetters(batch.batch);

    expect(batch.deadLetters).toBe(1);
    expect(letters).toEqual([
      expect.objectContaining({
        kind: 'late',
        stage: 'per-minute',
        record: { sensor: 'a', celsius: 99, at: at(3, 30) },
      }),
    ]);
    expect(letters[0]?.reason).toMatch(/behind the watermark/);
  });

  it('in update mode also outputs windows as they change, then once more as final', async () => {
    const t = testPipeline(build('update', '0s'));
    track(t);

    const b1 = await t.push([{ sensor: 'a', celsius: 10, at: at(0, 10) }]).advance();
    const b2 = await t.push([{ sensor: 'a', celsius: 20, at: at(0, 20) }]).advance();
    const b3 = await t.push([{ sensor: 'a', celsius: 0, at: at(1, 5) }]).advance();
    const b4 = await t.advance();

    expect(windows(b1.records)).toEqual(['a 0-1 10 open']);
    expect(windows(b2.records)).toEqual(['a 0-1 15 open']);
    expect(windows(b3.records)).toEqual(['a 1-2 0 open']);
    expect(windows(b4.records)).toEqual(['a 0-1 15 final']);
  });

  it('puts a record in every sliding window that holds it', async () => {
    const t = testPipeline(build('final', '0s', '1m'));
    track(t);

    await t.push([{ sensor: 'a', celsius: 10, at: at(1, 30) }]).advance();
    await t.push([{ sensor: 'a', celsius: 30, at: at(2, 30) }]).advance();
    const b3 = await t.push([{ sensor: 'a', celsius: 0, at: at(9) }]).advance();
    const b4 = await t.advance();

    expect(windows(b3.records)).toEqual(['a 0-2 10 final']);
    expect(windows(b4.records)).toEqual(['a 1-3 20 final', 'a 2-4 30 final']);
  });
});
