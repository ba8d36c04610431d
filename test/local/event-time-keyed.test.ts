import { describe, expect, it } from 'vitest';
import { eventTimeWindow, json, kinesis, map, pipeline, type EventWindow, type Pair } from '../../lib';
import type { BatchProgress } from '../../lib/runtime/batch-progress';
import { stageId } from '../../lib/ids';
import type { StatePartition } from '../../lib/storage/state-store';
import type { FaultOptions } from '../../local/faults';
import { testPipeline } from '../../local/testing';
import { closeAfterEach } from '../support/runs';

/**
 * Event-time windows in the keyed state layout: thousands of windows stay open while each batch
 * opens and closes a few. A batch reads the windows its records fall in and those the time index
 * says the watermark has closed, not every open window; the outputs are an independent model's,
 * under duplicates and crashes.
 */

interface Reading {
  readonly sensor: string;
  readonly celsius: number;
  readonly at: number;
}

const MINUTE = 60_000;
const LATENESS_MINUTES = 30;
const PARTITIONS = 2;
const SENSORS = 4000;
const SPARSE_BATCHES = 26;

const source = kinesis({ stream: 'readings', decode: json<Reading>() });
const bySensor = map<Reading, Pair<string, Reading>>('by-sensor', (r) => [r.sensor, r]);
const perMinute = eventTimeWindow<string, Reading, number, number>('per-minute', {
  timestamp: ([, r]) => r.at,
  length: '1m',
  lateness: `${LATENESS_MINUTES}m`,
  aggregate: {
    create: (r) => r.celsius,
    add: (sum, r) => sum + r.celsius,
    merge: (a, b) => a + b,
    result: (sum) => sum,
  },
  partitions: PARTITIONS,
});
const build = () =>
  pipeline({ name: 'event-keyed', batchInterval: '10s', source, stages: [bySensor, perMinute] });

const sensor = (i: number): string => `s${String(i).padStart(4, '0')}`;

/**
 * Batch 1 opens a window at minute 100 for every sensor. Sparse batch k opens ten windows at
 * minute 71 + k and one at minute 101 + k, which moves the watermark a minute a batch and so
 * closes the ten windows two batches before it; empty batches now and then. A last batch at
 * minute 200 closes them all.
 */
function input(): Reading[][] {
  const batches: Reading[][] = [
    Array.from({ length: SENSORS }, (_, i) => ({
      sensor: sensor(i),
      celsius: i % 7,
      at: 100 * MINUTE + 5_000,
    })),
  ];
  for (let k = 1; k <= SPARSE_BATCHES; k++) {
    const batch = Array.from({ length: 10 }, (_, i) => ({
      sensor: sensor((k * 10 + i) % SENSORS),
      celsius: k + i,
      at: (71 + k) * MINUTE + i * 1_000,
    }));
    batch.push({ sensor: 'clock', celsius: 1, at: (101 + k) * MINUTE });
    batches.push(batch);
    // Two empty batches now and then: the first closes windows (the fold takes in the last
    // batch's high), the second has nothing to do.
    if (k % 8 === 0) batches.push([], []);
  }
  batches.push([{ sensor: 'clock', celsius: 1, at: 200 * MINUTE }], []);
  return batches;
}

/**
 * The model: batch n runs with the watermark of the batches before it (max event time less the
 * lateness); a record all of whose window ended at or before it is late; a window is output once,
 * at the first batch whose watermark is at or past its end.
 */
function model(batches: readonly (readonly Reading[])[]): string[][] {
  const open = new Map<string, { sensor: string; start: number; sum: number }>();
  let high = -Infinity;
  return batches.map((batch) => {
    const watermark = high - LATENESS_MINUTES * MINUTE;
    for (const r of batch) {
      const start = Math.floor(r.at / MINUTE) * MINUTE;
      if (start + MINUTE <= watermark) continue;
      const id = `${r.sensor}@${start}`;
      const window = open.get(id) ?? { sensor: r.sensor, start, sum: 0 };
      window.sum += r.celsius;
      open.set(id, window);
    }
    const out: string[] = [];
    for (const [id, w] of open) {
      if (w.start + MINUTE > watermark) continue;
      out.push(`${w.sensor} ${w.start / MINUTE} ${w.sum}`);
      open.delete(id);
    }
    for (const r of batch) high = Math.max(high, r.at);
    return out.sort();
  });
}

function shown(records: readonly Pair<string, EventWindow<number>>[]): string[] {
  return records
    .map(([k, w]) => {
      expect(w.final).toBe(true);
      return `${k} ${w.start / MINUTE} ${w.value}`;
    })
    .sort();
}

const faults: readonly { readonly name: string; readonly faults?: FaultOptions }[] = [
  { name: 'no faults' },
  { name: 'every invocation delivered twice', faults: { duplicate: true } },
  { name: 'crashes', faults: { crash: 0.15, seed: 11 } },
];

describe.each(faults)('event-time windows in the keyed layout, $name', ({ faults: injected }) => {
  const track = closeAfterEach();

  it('closes windows from the time index as the watermark passes them: the model outputs, sparse batches read little', async () => {
    // Arrange
    const batches = input();
    const expected = model(batches);
    const t = track(testPipeline(build(), injected ? { faults: injected } : {}));

    // Act
    const outputs: string[][] = [];
    const progress: BatchProgress[] = [];
    for (const batch of batches) {
      const result = await t.push(batch).advance();
      expect(result.status, `batch ${result.batch}: ${result.failure ?? ''}`).toBe('complete');
      outputs.push(shown(result.records));
      if (result.progress) progress.push(result.progress);
    }

    // Assert: the model's windows, batch by batch, none late; the big close at the end.
    expect(outputs).toEqual(expected);
    // An empty batch runs its event-time partitions only when the watermark closes a window in
    // it (the model outputs some); otherwise it is quiet.
    const ranAt = progress.map((p) => (p.phases[1]?.tasks ?? 0) > 0);
    const mustRun = batches.map((batch, i) => batch.length > 0 || (expected[i]?.length ?? 0) > 0);
    expect(ranAt).toEqual(mustRun);
    expect(mustRun.filter((run) => !run).length).toBeGreaterThanOrEqual(3);
    expect(expected.at(-1)?.length).toBeGreaterThan(SENSORS);
    expect(progress.reduce((sum, p) => sum + p.deadLetters, 0)).toBe(0);
    // By the last sparse batches the state is keyed: thousands of windows open, a batch that
    // opens eleven and closes ten reads and writes a few dozen chunks.
    const lastSparse = progress.at(-4)?.state[0];
    expect(lastSparse?.keys).toBeGreaterThan(SENSORS);
    expect(lastSparse?.chunks).toBeGreaterThan(200);
    expect(lastSparse?.chunksRead).toBeLessThanOrEqual(45);
    expect(lastSparse?.chunksWritten).toBeLessThanOrEqual(45);
    const ctx = (await t.local()).context('per-minute');
    const heads = await Promise.all(
      Array.from({ length: PARTITIONS }, (_, partition) => {
        const ref: StatePartition = { stage: stageId('per-minute'), partition, since: 1 };
        return ctx.state.head(ref);
      }),
    );
    expect(heads.map((head) => head.kind)).toEqual(Array(PARTITIONS).fill('sluice.state/keyed@1'));
  }, 300_000);
});
