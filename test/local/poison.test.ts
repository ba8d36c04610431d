import { describe, expect, it } from 'vitest';
import {
  branch,
  combineByKey,
  eventTimeWindow,
  foreachBatch,
  join,
  json,
  kinesis,
  map,
  mapWithState,
  pipeline,
  reduceByKeyAndWindow,
  RetryableError,
  transform,
  updateStateByKey,
  type AnyStage,
  type EventWindow,
  type OnBatchFailure,
  type Pair,
} from '../../lib';
import { batchId, taskId } from '../../lib/ids';
import { handleTask } from '../../lib/runtime/tasks';
import type { DeadLetter } from '../../lib/runtime/datapath';
import { testPipeline, type BatchResult, type TestPipeline } from '../../local/testing';
import { closeAfterEach } from '../support/runs';

/**
 * Poison: inputs and user code that break things in every way we know, through every kind of
 * pipeline. Each run must end (complete, or failed with its reason, within a bound) and reconcile:
 * every input record is in an output or in a dead letter, and the records that were not poison
 * give exactly what a clean run of the same records gives.
 */

/** One input record: an id (to find it again), a key, and what is wrong with it, if anything. */
interface Rec {
  readonly id: number;
  readonly k: string;
  readonly p?: Poison;
  /** Event time, for the event-time pipeline. */
  readonly t?: number;
}

type Poison =
  | 'date-key'
  | 'surrogate-key'
  | 'set-value'
  | 'circular'
  | 'throw'
  | 'merge'
  | 'nan'
  | 'map-output'
  | 'fn-output'
  | 'key-boom'
  | 'big-state'
  | 'set-state';

const source = kinesis({ stream: 'records', decode: json<Rec>() });
const track = closeAfterEach();

/** Batches of records: `valid` per batch plus the poison given for each batch. */
function batchesOf(
  batches: number,
  perBatch: number,
  poison: readonly (readonly Poison[])[],
  keys = 7,
): Rec[][] {
  let id = 0;
  return Array.from({ length: batches }, (_, b) => [
    ...Array.from({ length: perBatch }, () => ({ id: id++, k: `w${id % keys}` })),
    ...(poison[b] ?? []).map((p) => ({ id: id++, k: `w${id % keys}`, p })),
  ]);
}

/** The ids a record-level dead letter stands for (its record, or its bytes if it did not decode). */
function recordId(letter: DeadLetter): number | undefined {
  const record = letter.record as Partial<Rec> | undefined;
  if (record && typeof record.id === 'number') return record.id;
  if (letter.data) {
    const match = /"id":\s*(\d+)/.exec(Buffer.from(letter.data, 'base64').toString('utf8'));
    if (match) return Number(match[1]);
  }
  return undefined;
}

async function allLetters<T, O>(
  t: TestPipeline<T, O>,
  results: readonly BatchResult[],
): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  for (const result of results) letters.push(...(await t.deadLetters(result.batch)));
  return letters;
}

/** Output pairs of the given batches, keyed per batch, in a canonical order. */
function pairsOf(results: readonly BatchResult[], keep: (key: string) => boolean = () => true): string[][] {
  return results.map((r) =>
    (r.records as Pair<string, unknown>[])
      .filter(([k]) => typeof k === 'string' && keep(k))
      .map((pair) => JSON.stringify(pair))
      .sort(),
  );
}

async function runAll<O>(t: TestPipeline<Rec, O>, batches: readonly Rec[][]): Promise<BatchResult<O>[]> {
  const results: BatchResult<O>[] = [];
  for (const batch of batches) results.push(await t.push(batch).advance());
  return results;
}

// ---------------------------------------------------------------------------------------------
// Record-level poison in a stateless keyed pipeline: map side, shuffle, reduce-side merge, output.

/** A record's pair: its key with 1, or whatever its poison says. */
const pairs = transform<Rec, string, number>('pairs', (r, emit) => {
  const bad = emit as unknown as (key: unknown, value: unknown) => void;
  switch (r.p) {
    case 'date-key':
      bad(new Date(r.id), 1);
      break;
    case 'surrogate-key':
      emit(`\ud800${r.id}`, 1);
      break;
    case 'set-value':
      bad(`set-${r.id}`, new Set([r.id]));
      break;
    case 'circular': {
      const loop: { id: number; self?: unknown } = { id: r.id };
      loop.self = loop;
      bad(`circ-${r.id}`, loop);
      break;
    }
    case 'throw':
      throw new Error(`poison record ${r.id}`);
    case 'merge':
      // Weighted so that a reduce-side merge of two of them is recognisable (and refused).
      emit('merge-boom', 1000);
      break;
    case 'nan':
      emit(`nan-${r.id}`, 1);
      break;
    case 'map-output':
      emit(`map-${r.id}`, 1);
      break;
    case 'fn-output':
      emit(`fn-${r.id}`, 1);
      break;
    default:
      emit(r.k, 1);
      break;
  }
});
const counts = combineByKey<string, number, number>('counts', {
  create: (v) => v,
  mergeValue: (c, v) => c + v,
  mergeCombiners: (a, b) => {
    if (a >= 1000 && b >= 1000) throw new Error('merge-boom cannot be merged');
    return a + b;
  },
});
/** Output records JSON would change: NaN, a Map, a function. */
const shaped = map<Pair<string, number>, Pair<string, unknown>>('shaped', ([k, c]) => {
  if (k.startsWith('nan-')) return [k, Number.NaN];
  if (k.startsWith('map-')) return [k, new Map([[k, c]])];
  if (k.startsWith('fn-')) return [k, () => c];
  return [k, c];
});

const RECORD_POISON: readonly Poison[] = [
  'date-key',
  'surrogate-key',
  'set-value',
  'circular',
  'throw',
  'nan',
  'map-output',
  'fn-output',
];

describe.each([
  { shards: 1, partitions: 1, faults: {} },
  { shards: 2, partitions: 3, faults: { duplicate: true } },
  { shards: 3, partitions: 2, faults: { crash: 0.2, seed: 11 } },
])(
  'record-level poison in a stateless keyed pipeline ($shards shards, $partitions partitions, faults $faults)',
  ({ shards, partitions, faults }) => {
    it('dead-letters each poison record with its reason and reconciles every record', async () => {
      // Arrange
      const p = pipeline({ name: 'poison', batchInterval: '1s', source, stages: [pairs, counts, shaped] });
      const t = track(
        testPipeline(p, { shards, faults, settings: { partitions, tasks: { max: 4, targetBytes: 1 } } }),
      );
      const batches = batchesOf(3, 40, [RECORD_POISON, ['merge', 'merge', 'merge', 'merge'], RECORD_POISON]);
      const undecodable = Buffer.from('{"id": 9999, "k": ');

      // Act
      const results = await runAll(t, batches.slice(0, 2));
      results.push(
        await t
          .pushRaw([undecodable])
          .push(batches[2] ?? [])
          .advance(),
      );
      const letters = await allLetters(t, results);

      // Assert: every batch completes.
      expect(results.map((r) => r.status)).toEqual(['complete', 'complete', 'complete']);
      // Valid records: exactly the counts of an independent count.
      results.forEach((result, b) => {
        const expected = new Map<string, number>();
        for (const r of batches[b] ?? []) if (!r.p) expected.set(r.k, (expected.get(r.k) ?? 0) + 1);
        const got = new Map((result.records as Pair<string, number>[]).filter(([k]) => /^w\d+$/.test(k)));
        expect(got).toEqual(expected);
      });
      // Record-level poison: each such record is in exactly one dead letter, with a reason.
      const poisoned = batches.flat().filter((r) => r.p && r.p !== 'merge');
      const byRecord = new Map<number, DeadLetter>();
      for (const letter of letters) {
        const id = recordId(letter);
        const key = typeof letter.key === 'string' ? letter.key : undefined;
        const outputId = key ? Number(/^(?:nan|map|fn)-(\d+)$/.exec(key)?.[1]) : Number.NaN;
        const outputRecord = Array.isArray(letter.record)
          ? Number(/-(\d+)$/.exec(String(letter.record[0]))?.[1])
          : NaN;
        const found = id ?? (Number.isNaN(outputId) ? outputRecord : outputId);
        if (Number.isInteger(found)) {
          expect(byRecord.has(found), `record ${found} dead-lettered twice`).toBe(false);
          byRecord.set(found, letter);
        }
      }
      for (const record of poisoned) {
        const letter = byRecord.get(record.id);
        expect(letter, `poison ${String(record.p)} (record ${record.id}) has no dead letter`).toBeDefined();
        expect(letter?.reason.length).toBeGreaterThan(0);
      }
      expect(byRecord.get(9999)?.kind).toBe('decode');
      const kindOf = (p: Poison): string | undefined =>
        byRecord.get(poisoned.find((r) => r.p === p)?.id ?? -1)?.kind;
      expect(kindOf('date-key')).toBe('encode');
      expect(kindOf('surrogate-key')).toBe('encode');
      expect(kindOf('set-value')).toBe('encode');
      expect(kindOf('circular')).toBe('encode');
      expect(kindOf('throw')).toBe('stage');
      expect(kindOf('nan')).toBe('encode');
      expect(kindOf('map-output')).toBe('encode');
      expect(kindOf('fn-output')).toBe('encode');
      // No valid record was dead-lettered.
      for (const record of batches.flat()) if (!record.p) expect(byRecord.has(record.id)).toBe(false);
      // The merge poison: in the output, or in a dead letter with all its values, never lost.
      const mergeOut = (results[1]?.records as Pair<string, number>[]).find(([k]) => k === 'merge-boom');
      const mergeLetter = letters.find((l) => l.key === 'merge-boom');
      const merged =
        (mergeOut?.[1] ?? 0) +
        ((mergeLetter?.values as number[] | undefined) ?? []).reduce((a, b) => a + b, 0);
      expect(merged).toBe(4 * 1000);
      expect(results.reduce((n, r) => n + r.inputRecords, 0)).toBe(batches.flat().length + 1);
    });
  },
);

// ---------------------------------------------------------------------------------------------
// Key-level poison in stateful pipelines: the key's state and values go to one dead letter, the
// key starts over, and every other key is exactly what a run without the poison gives.

interface StatefulKind {
  readonly name: string;
  readonly stages: readonly AnyStage[];
  readonly poison: Poison;
  /** The key the poison hits. */
  readonly key: string;
}

const keyed = transform<Rec, string, number>('keyed', (r, emit) => {
  switch (r.p) {
    case 'key-boom':
      emit('boom', 1000);
      break;
    case 'big-state':
      emit('big', 500);
      break;
    case 'set-state':
      emit('set', 700);
      break;
    default:
      emit(r.k, 1);
      break;
  }
});

const KINDS: readonly StatefulKind[] = [
  {
    name: 'window with inverse',
    stages: [
      keyed,
      reduceByKeyAndWindow<string, number>('window', (a, b) => a + b, {
        length: '2s',
        slide: '1s',
        // Throws when the poison's pane leaves the window: for the poison key only.
        inverse: (a, b) => {
          if (b >= 1000) throw new Error('the inverse cannot take 1000 away');
          return a - b;
        },
        filter: ([, n]) => n > 0,
      }),
    ],
    poison: 'key-boom',
    key: 'boom',
  },
  {
    name: 'updateStateByKey',
    stages: [
      keyed,
      updateStateByKey<string, number, number>('running', (values, total) => {
        if (values.some((v) => v >= 1000)) throw new Error('the update refuses 1000');
        return (total ?? 0) + values.length;
      }),
    ],
    poison: 'key-boom',
    key: 'boom',
  },
  {
    name: 'updateStateByKey with a state too large for an item',
    stages: [
      keyed,
      // Past DynamoDB's item size for the poison key only.
      updateStateByKey<string, number, number | string>('growing', (values, total) =>
        values.includes(500) ? 'x'.repeat(400 * 1024) : Number(total ?? 0) + values.length,
      ),
    ],
    poison: 'big-state',
    key: 'big',
  },
  {
    name: 'updateStateByKey with a state that cannot be encoded',
    stages: [
      keyed,
      // A Set for the poison key only: the state cannot be encoded.
      updateStateByKey<string, number, number>('sets', (values, total) =>
        values.includes(700) ? (new Set(values) as unknown as number) : (total ?? 0) + values.length,
      ),
    ],
    poison: 'set-state',
    key: 'set',
  },
  {
    name: 'mapWithState',
    stages: [
      keyed,
      mapWithState<string, number, number, Pair<string, number>>('sessions', (key, value, state) => {
        if (value !== undefined && value >= 1000) throw new Error('the function refuses 1000');
        const total = (state.exists() ? state.get() : 0) + (value ?? 0);
        state.update(total);
        return [key, total];
      }),
    ],
    poison: 'key-boom',
    key: 'boom',
  },
];

describe.each(KINDS)('key-level poison in a stateful pipeline: $name', (kind) => {
  it('dead-letters the key once, with its state and values, and leaves every other key exact', async () => {
    // Arrange: the same valid records with and without the poison.
    const build = (name: string) =>
      pipeline({
        name,
        batchInterval: '1s',
        source,
        stages: kind.stages as unknown as [typeof keyed],
      });
    const settings = { partitions: 2, tasks: { max: 2, targetBytes: 1 } };
    const poisoned = track(testPipeline(build('poisoned'), { shards: 2, settings }));
    const clean = track(testPipeline(build('clean'), { shards: 2, settings }));
    const batches = batchesOf(5, 20, [[kind.poison], [], [kind.poison]]);
    const valid = batches.map((batch) => batch.filter((r) => !r.p));

    // Act
    const results = await runAll(poisoned, batches);
    const expected = await runAll(clean, valid);
    const letters = (await allLetters(poisoned, results)).filter((l) => l.kind === 'state');

    // Assert: every batch ends complete, and every other key is what the clean run gives.
    expect(results.map((r) => r.status)).toEqual(results.map(() => 'complete'));
    const others = (key: string): boolean => key !== kind.key;
    expect(pairsOf(results, others)).toEqual(pairsOf(expected, others));
    // The poison key went to the dead-letter prefix, as `state`, with a reason.
    expect(letters.length).toBeGreaterThan(0);
    for (const letter of letters) {
      expect(letter.key).toBe(kind.key);
      expect(letter.reason).toMatch(/refuses|cannot|over the|Set/);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Event time: unusable and far-future times are dead-lettered and never move the watermark.

describe('poison event times', () => {
  it('dead-letters times that are not times or are far ahead, and later records are not late', async () => {
    // Arrange: tumbling minutes well before the run's clock; batch 1 also carries bad times.
    const minute = 60_000;
    const t0 = Math.floor(Date.now() / minute) * minute - 10 * minute;
    const byKey = map<Rec, Pair<string, Rec>>('by-key', (r) => [r.k, r]);
    const windows = eventTimeWindow<string, Rec, number, number>('per-minute', {
      timestamp: ([, r]) => r.t as number,
      length: '1m',
      aggregate: { create: () => 1, add: (n) => n + 1, merge: (a, b) => a + b, result: (n) => n },
    });
    const p = pipeline({ name: 'times', batchInterval: '1s', source, stages: [byKey, windows] });
    const t = track(testPipeline(p, { shards: 2, settings: { partitions: 2 } }));
    const valid = (id: number, at: number): Rec => ({ id, k: `s${id % 3}`, t: at });
    const batch1: Rec[] = [
      ...Array.from({ length: 30 }, (_, i) => valid(i, t0 + i * 1_000)),
      { id: 100, k: 's0', t: 1.7e22 },
      { id: 101, k: 's1', t: 2 ** 53 + 10 },
      { id: 102, k: 's2', t: Date.now() + 5 * 60 * minute },
      { id: 103, k: 's0', t: Number.NaN },
      { id: 104, k: 's1', t: 1.5 },
    ];
    const batch2 = Array.from({ length: 30 }, (_, i) => valid(200 + i, t0 + minute + i * 1_000));
    const batch3 = [valid(300, t0 + 3 * minute), { id: 301, k: 's1', t: t0 + 1_000 }];
    const batch4 = [valid(400, t0 + 5 * minute)];
    // Batch n uses the watermark of the batches before it: one more batch closes t0 + 3m.
    const batch5: Rec[] = [];

    // Act
    const results = await runAll(t, [batch1, batch2, batch3, batch4, batch5]);
    const letters = await allLetters(t, results);

    // Assert
    expect(results.map((r) => r.status)).toEqual([
      'complete',
      'complete',
      'complete',
      'complete',
      'complete',
    ]);
    const invalid = letters
      .filter((l) => l.kind === 'invalid-event-time')
      .map(recordId)
      .sort();
    expect(invalid).toEqual([100, 101, 102, 103, 104]);
    // The one truly late record is late; no valid record is, despite the far-future reading.
    expect(letters.filter((l) => l.kind === 'late').map(recordId)).toEqual([301]);
    const finals = results
      .flatMap((r) => r.records as Pair<string, EventWindow<number>>[])
      .filter(([, w]) => w.final);
    const perWindow = new Map<number, number>();
    for (const [, w] of finals) perWindow.set(w.start, (perWindow.get(w.start) ?? 0) + w.value);
    expect(perWindow.get(t0)).toBe(30);
    expect(perWindow.get(t0 + minute)).toBe(30);
    expect(perWindow.get(t0 + 3 * minute)).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// A join: poison on either side is dead-lettered; the valid keys join exactly.

describe('poison in a join', () => {
  it('dead-letters a bad key on the other side and a throwing stage, and joins the rest exactly', async () => {
    // Arrange: both sides branch from the same stream.
    const left = transform<Rec, string, number>('left', (r, emit) => {
      if (r.p === 'throw') throw new Error(`left side refuses ${r.id}`);
      emit(r.k, r.id);
    });
    const rightStage = transform<Rec, string, string>('right', (r, emit) => {
      const bad = emit as unknown as (key: unknown, value: unknown) => void;
      if (r.p === 'date-key') bad(new Date(r.id), 'x');
      else emit(r.k, `r${r.id}`);
    });
    const other = branch({ source, stages: [rightStage] });
    const build = (name: string) =>
      pipeline({
        name,
        batchInterval: '1s',
        source,
        stages: [left, join<string, number, string>('joined', other)],
      });
    const settings = { partitions: 2, tasks: { max: 2, targetBytes: 1 } };
    const poisoned = track(testPipeline(build('jp'), { shards: 2, settings }));
    const clean = track(testPipeline(build('jc'), { shards: 2, settings }));
    const batches = batchesOf(2, 12, [['throw', 'date-key'], ['date-key']], 4);
    const valid = batches.map((batch) => batch.filter((r) => !r.p));

    // Act
    const results = await runAll(poisoned, batches);
    const expected = await runAll(clean, valid);
    const letters = await allLetters(poisoned, results);

    // Assert: the date-key records join on their left side only (their right side is refused),
    // so compare the keys both runs have, and account for each poison record.
    expect(results.map((r) => r.status)).toEqual(['complete', 'complete']);
    const poisonIds = new Set(
      batches
        .flat()
        .filter((r) => r.p)
        .map((r) => r.id),
    );
    const poisonRight = new Set([...poisonIds].map((id) => `r${id}`));
    const withoutPoison = (records: readonly unknown[]) =>
      (records as Pair<string, [number, string]>[])
        .filter(([, [l, r]]) => !poisonIds.has(l) && !poisonRight.has(r))
        .map((pair) => JSON.stringify(pair))
        .sort();
    expect(results.map((r) => withoutPoison(r.records))).toEqual(
      expected.map((r) => withoutPoison(r.records)),
    );
    const ids = letters.map(recordId).sort((a, b) => (a ?? 0) - (b ?? 0));
    expect(ids).toEqual([...poisonIds].sort((a, b) => a - b));
    expect(letters.map((l) => l.kind).sort()).toEqual(['encode', 'encode', 'stage']);
  });
});

// ---------------------------------------------------------------------------------------------
// Batch-level failures: a sink that throws, a stateful pipeline under onError 'fail', a step that
// keeps failing transiently. Each ends the batch failed with its reason; the policy decides what
// comes next, and nothing wedges.

function sinkPipeline(
  onBatchFailure: OnBatchFailure,
  fail: (records: readonly Pair<string, number>[]) => void,
) {
  return pipeline({
    name: `sink-${onBatchFailure}`,
    batchInterval: '1s',
    source,
    onBatchFailure,
    retry: { attempts: 3 },
    stages: [
      keyed,
      combineByKey<string, number, number>('c', {
        create: (v) => v,
        mergeValue: (a, b) => a + b,
        mergeCombiners: (a, b) => a + b,
      }),
    ],
    sinks: [
      foreachBatch<Pair<string, number>>('to-api', (records) => {
        fail(records);
        return Promise.resolve();
      }),
    ],
  });
}

/** A running count under `onError: 'fail'`: a record marked `throw` fails its batch. */
function strictRunningCount(name: string, onBatchFailure: OnBatchFailure) {
  const strict = transform<Rec, string, number>('strict', (r, emit) => {
    if (r.p === 'throw') throw new Error(`record ${r.id} is bad`);
    emit(r.k, 1);
  });
  const running = updateStateByKey<string, number, number>('running', (v, total) => (total ?? 0) + v.length);
  return pipeline({
    name,
    batchInterval: '1s',
    source,
    onError: 'fail',
    onBatchFailure,
    stages: [strict, running],
  });
}

describe('batch-level failures', () => {
  it('halt: a sink that throws fails its batch with the reason; sealing stops until it is skipped', async () => {
    // Arrange
    const p = sinkPipeline('halt', (records) => {
      if (records.some(([k]) => k === 'boom')) throw new TypeError('the API rejected the batch');
    });
    const t = track(testPipeline(p, { shards: 2, settings: { partitions: 2 } }));
    const batches = batchesOf(3, 10, [[], ['key-boom']]);

    // Act
    const first = await t.push(batches[0] ?? []).advance();
    const failed = await t.push(batches[1] ?? []).advance();
    const stuck = t.push(batches[2] ?? []).advance();

    // Assert: the batch fails at once with the reason, and the pipeline halts visibly.
    expect(first.status).toBe('complete');
    expect(failed.status).toBe('failed');
    expect(failed.failure).toMatch(/TypeError: the API rejected the batch/);
    await expect(stuck).rejects.toThrow(/halted by failed batch 2/);
    expect((await t.halted())?.batch).toBe(2);

    // Act: the operator skips it; sealing goes on with the input that waited (batch 3's time has
    // passed, so batch 3 is sealed at once), then the clock moves on to batch 4.
    const skipped = await t.skipBatch(batchId(2), 'the API will not take it');
    const waited = await (await t.local()).result(batchId(3));
    const after = await t.advance();

    // Assert
    expect(skipped.status).toBe('skipped');
    expect(skipped.deadLetters).toBe(skipped.inputRecords);
    const [letter] = await t.deadLetters(batchId(2));
    expect(letter).toMatchObject({
      kind: 'batch',
      batch: 2,
      reason: expect.stringMatching(/API rejected/) as unknown,
    });
    expect(waited.status).toBe('complete');
    expect(waited.inputRecords).toBe(batches[2]?.length);
    expect(after).toMatchObject({ batch: 4, status: 'complete' });
    expect(await t.halted()).toBeUndefined();
  });

  it('halt: a failed batch retried after a fix completes, and sealing goes on', async () => {
    // Arrange: the API rejects batches until it is fixed.
    let fixed = false;
    const p = sinkPipeline('halt', (records) => {
      if (!fixed && records.some(([k]) => k === 'boom')) throw new TypeError('the API rejected the batch');
    });
    const t = track(testPipeline(p, { shards: 2, settings: { partitions: 2 } }));
    const batches = batchesOf(2, 10, [['key-boom']]);
    const failed = await t.push(batches[0] ?? []).advance();

    // Act
    fixed = true;
    const retried = await t.retryBatch(batchId(1));
    const next = await t.push(batches[1] ?? []).advance();

    // Assert: the retried batch has its whole output; the pipeline is no longer halted.
    expect(failed.status).toBe('failed');
    expect(retried.status).toBe('complete');
    expect(retried.failure).toBeUndefined();
    const counts = new Map<string, number>();
    for (const r of batches[0] ?? []) {
      const key = r.p ? 'boom' : r.k;
      counts.set(key, (counts.get(key) ?? 0) + (r.p ? 1000 : 1));
    }
    expect(new Map(retried.records as Pair<string, number>[])).toEqual(counts);
    expect(next.status).toBe('complete');
    expect(await t.halted()).toBeUndefined();
  });

  it('skip: a failed batch is skipped by itself and the next batch runs', async () => {
    // Arrange
    const p = sinkPipeline('skip', (records) => {
      if (records.some(([k]) => k === 'boom')) throw new TypeError('the API rejected the batch');
    });
    const t = track(testPipeline(p, { shards: 2, settings: { partitions: 2 } }));
    const batches = batchesOf(3, 10, [['key-boom'], []]);

    // Act
    const results = await runAll(t, batches);

    // Assert
    expect(results.map((r) => r.status)).toEqual(['skipped', 'complete', 'complete']);
    expect(results[0]?.deadLetters).toBe(batches[0]?.length);
  });

  it('a step that keeps failing transiently fails its batch once the retry budget is used up', async () => {
    // Arrange
    let calls = 0;
    const p = sinkPipeline('halt', () => {
      calls++;
      throw new RetryableError('the API is unavailable');
    });
    const t = track(testPipeline(p, { shards: 1, settings: { partitions: 1 } }));

    // Act
    const result = await t.push(batchesOf(1, 5, [])[0] ?? []).advance();

    // Assert: three attempts (the budget), then the batch fails naming the budget and the cause.
    expect(result.status).toBe('failed');
    expect(result.failure).toMatch(/RetryBudgetExhaustedError: .*3 attempts.*the API is unavailable/);
    expect(calls).toBe(3);
  });

  it.each<OnBatchFailure>(['halt', 'skip'])(
    "onError 'fail' with a stateful stage does not wedge the pipeline (%s)",
    async (onBatchFailure) => {
      // Arrange: a running count that fails its batch on a throwing record.
      const p = strictRunningCount(`strict-${onBatchFailure}`, onBatchFailure);
      const t = track(testPipeline(p, { shards: 2, settings: { partitions: 2 } }));
      const batches = batchesOf(4, 10, [[], ['throw']]);

      // Act
      const results: BatchResult<Pair<string, number>>[] = [await t.push(batches[0] ?? []).advance()];
      results.push(await t.push(batches[1] ?? []).advance());
      if (onBatchFailure === 'halt') {
        expect(results[1]?.status).toBe('failed');
        expect(results[1]?.failure).toMatch(/record \d+ is bad/);
        await t.skipBatch(batchId(2));
      }
      results.push(await t.push(batches[2] ?? []).advance());
      results.push(await t.push(batches[3] ?? []).advance());

      // Assert: the state after batch 4 counts batches 1, 3 and 4; batch 2 was skipped whole.
      expect(results.map((r) => r.status)).toEqual([
        'complete',
        onBatchFailure === 'halt' ? 'failed' : 'skipped',
        'complete',
        'complete',
      ]);
      const expected = new Map<string, number>();
      for (const r of [...(batches[0] ?? []), ...(batches[2] ?? []), ...(batches[3] ?? [])])
        expected.set(r.k, (expected.get(r.k) ?? 0) + 1);
      expect(new Map(results[3]?.records)).toEqual(expected);
    },
  );

  it("a late retry of a failed batch's own task does not fail the skipping of it", async () => {
    // Arrange: batch 2 fails on a bad record; it is being skipped when Lambda retries the task that
    // failed (its asynchronous retries may come minutes later).
    const p = strictRunningCount('late-retry', 'halt');
    const t = track(testPipeline(p, { shards: 1, settings: { partitions: 2 } }));
    const batches = batchesOf(3, 5, [[], ['throw']]);
    await t.push(batches[0] ?? []).advance();
    const failed = await t.push(batches[1] ?? []).advance();
    const run = await t.local();
    const item = await run.ctx.ledger.batches.get(batchId(2));
    await run.ctx.ledger.batches.startSkip(batchId(2), run.now());

    // Act: the late retry fails again, as it must.
    await handleTask(run.context('strict'), {
      kind: 'sluice.task@1',
      pipeline: p.name,
      batch: batchId(2),
      phase: 0,
      task: taskId(item?.failure?.task ?? 0),
    });
    const during = await run.ctx.ledger.batches.get(batchId(2));
    const skipped = await t.skipBatch(batchId(2));
    const after = await t.push(batches[2] ?? []).advance();

    // Assert: the skip goes on and ends; the pipeline runs on.
    expect(failed.status).toBe('failed');
    expect(during?.status).toBe('skipping');
    expect(skipped.status).toBe('skipped');
    expect(after.status).toBe('complete');
  });
});
