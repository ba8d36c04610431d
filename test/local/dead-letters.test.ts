import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { kinesis, map, pipeline, reduceByKey, schema, transform, utf8, type Pair } from '../../lib';
import { testPipeline } from '../../local/testing';
import { closeAfterEach } from '../support/runs';

const Reading = z.object({ sensor: z.string(), celsius: z.number() });
const readings = kinesis({ stream: 'readings', decode: schema(Reading) });
const bySensor = map<z.infer<typeof Reading>, Pair<string, number>>('by-sensor', (r) => [
  r.sensor,
  r.celsius,
]);
const total = reduceByKey<string, number>('total', (a, b) => a + b);

const track = closeAfterEach();

const bytes = (text: string): Uint8Array => Buffer.from(text, 'utf8');

describe('records that cannot be processed', () => {
  it('sends a record that fails to decode to the dead-letter prefix with reason, batch and position', async () => {
    const p = pipeline({ name: 'decode', batchInterval: '1s', source: readings, stages: [bySensor, total] });
    const t = track(testPipeline(p, { shards: 2 }));

    const batch = await t
      .pushRaw([
        bytes('{"sensor":"a","celsius":1}'),
        bytes('not json'),
        bytes('{"sensor":"b","celsius":"hot"}'),
        bytes('{"sensor":"a","celsius":2}'),
      ])
      .advance();
    const letters = await t.deadLetters(batch.batch);

    expect(batch.status).toBe('complete');
    expect(batch.deadLetters).toBe(2);
    expect(new Map(batch.records)).toEqual(new Map([['a', 3]]));
    expect(letters).toHaveLength(2);
    for (const letter of letters) {
      expect(letter).toMatchObject({ batch: batch.batch, phase: 0, kind: 'decode', stage: 'source:zod' });
      expect(letter.seq).toMatch(/^\d+$/);
      expect(letter.shard).toMatch(/^readings\/shardId-/);
      expect(letter.segment).toMatch(/^segments\/readings\/shardId-/);
    }
    const reasons = letters.map((l) => l.reason).sort();
    expect(reasons[0]).toMatch(/JSON/);
    expect(reasons[1]).toMatch(/celsius/);
    const data = letters.map((l) => Buffer.from(l.data ?? '', 'base64').toString('utf8')).sort();
    expect(data).toEqual(['not json', '{"sensor":"b","celsius":"hot"}']);
  });

  it('sends a record that throws in stage code to the dead-letter prefix, naming the stage, and keeps none of its output', async () => {
    const picky = transform<string, string, number>('picky', (line, emit) => {
      for (const word of line.split(' ')) {
        emit(word, 1);
        if (word === 'boom') throw new Error('cannot take boom');
      }
    });
    const count = reduceByKey<string, number>('count', (a, b) => a + b);
    const p = pipeline({
      name: 'throws',
      batchInterval: '1s',
      source: kinesis({ stream: 'l', decode: utf8 }),
      stages: [picky, count],
    });
    const t = track(testPipeline(p));

    const batch = await t.push(['a b', 'a boom c', 'b']).advance();
    const letters = await t.deadLetters(batch.batch);

    expect(new Map(batch.records)).toEqual(
      new Map([
        ['a', 1],
        ['b', 2],
      ]),
    );
    expect(letters).toEqual([
      expect.objectContaining({
        kind: 'stage',
        stage: 'picky',
        reason: 'Error: cannot take boom',
        record: 'a boom c',
      }),
    ]);
  });

  it("fails the batch instead when the pipeline says onError: 'fail'", async () => {
    const p = pipeline({
      name: 'strict',
      batchInterval: '1s',
      source: readings,
      stages: [bySensor, total],
      onError: 'fail',
    });
    const t = track(testPipeline(p));

    const batch = await t.pushRaw([bytes('{"sensor":"a","celsius":1}'), bytes('{oops')]).advance();

    expect(batch.status).toBe('failed');
    expect(batch.failure).toMatch(/decode error in source:zod/);
    expect(batch.records).toEqual([]);
  });
});

describe.each([
  ['no faults', {}],
  ['every invocation delivered twice', { duplicate: true }],
  ['crashes between writes', { crash: 0.3, seed: 5 }],
])('a batch summary under %s', (_name, faults) => {
  it('counts every task once: dead letters and outputs match what was written', async () => {
    // Arrange
    const picky = transform<string, string, number>('picky', (line, emit) => {
      if (line.includes('boom')) throw new Error('cannot take boom');
      for (const word of line.split(' ')) emit(word, 1);
    });
    const count = reduceByKey<string, number>('count', (a, b) => a + b, { partitions: 3 });
    const p = pipeline({
      name: 'counted',
      batchInterval: '1s',
      source: kinesis({ stream: 'l', decode: utf8 }),
      stages: [picky, count],
    });
    const t = track(testPipeline(p, { shards: 2, faults }));
    const lines = ['a b', 'boom 1', 'c d e', 'boom 2', 'a', 'f g', 'boom 3'];

    // Act
    const batch = await t.push(lines).advance();
    const letters = await t.deadLetters(batch.batch);

    // Assert
    expect(batch.status).toBe('complete');
    expect(batch.deadLetters).toBe(3);
    expect(letters).toHaveLength(3);
    expect(batch.outputRecords).toBe(7);
    expect(batch.records).toHaveLength(7);
    expect(batch.outputs.length).toBeGreaterThan(0);
  });
});
