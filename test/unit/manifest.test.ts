import { describe, expect, it } from 'vitest';
import { pipeline, type AnyPipeline } from '../../lib/dsl/pipeline';
import { reduceByKey } from '../../lib/dsl/reduce';
import { kinesis, utf8 } from '../../lib/dsl/source';
import { transform } from '../../lib/dsl/transform';
import { InvalidInputError } from '../../lib/errors';
import { batchId } from '../../lib/ids';
import { parseManifest, serializeManifest, type Manifest } from '../../lib/manifest';
import { planPipeline } from '../../lib/plan';

const wordcount = pipeline({
  name: 'wordcount',
  batchInterval: '10s',
  source: kinesis({ stream: 'lines', decode: utf8 }),
  stages: [
    transform<string, string, number>('tokenize', (line, emit) => emit(line, 1)),
    reduceByKey<string, number>('count', (a, b) => a + b),
  ],
}) as unknown as AnyPipeline;

function manifest(): Manifest {
  return {
    kind: 'sluice.manifest@1',
    pipeline: 'wordcount',
    batch: batchId(3),
    time: 1_700_000_030_000,
    plan: planPipeline(wordcount).spec,
    previousCursors: { 'shardId-0': { segmentStart: '0'.repeat(63) + '1', lastSeq: '5' } },
    cursors: { 'shardId-0': { segmentStart: '0'.repeat(62) + '10', lastSeq: '12' } },
    records: 7,
    bytes: 420,
    tasks: [
      [{ segment: 'in/a', shard: 'shardId-0', start: 0, end: 200, records: 3, afterSeq: '5' }],
      [{ segment: 'in/b', shard: 'shardId-0', start: 0, end: 220, records: 4 }],
    ],
  };
}

/** The serialized manifest with one field replaced, as bytes. */
function tampered(change: (raw: Record<string, unknown>) => void): Buffer {
  const raw = JSON.parse(serializeManifest(manifest()).toString('utf8')) as Record<string, unknown>;
  change(raw);
  return Buffer.from(JSON.stringify(raw));
}

describe('serializeManifest / parseManifest', () => {
  it('round-trips a manifest', () => {
    expect(parseManifest(serializeManifest(manifest()))).toEqual(manifest());
  });

  it('gives byte-identical output for equal manifests', () => {
    expect(serializeManifest(manifest()).equals(serializeManifest(manifest()))).toBe(true);
  });

  it('ends with a newline', () => {
    expect(serializeManifest(manifest()).toString('utf8').endsWith('}\n')).toBe(true);
  });

  it('accepts a manifest read as a Uint8Array', () => {
    const bytes = new Uint8Array(serializeManifest(manifest()));

    expect(parseManifest(bytes).batch).toBe(3);
  });

  it('throws InvalidInputError for bytes that are not JSON', () => {
    expect(() => parseManifest(Buffer.from('{"kind":'))).toThrow(InvalidInputError);
  });

  it.each([
    ['another kind', (r: Record<string, unknown>) => (r.kind = 'sluice.manifest/v2')],
    ['batch 0', (r: Record<string, unknown>) => (r.batch = 0)],
    ['a fractional time', (r: Record<string, unknown>) => (r.time = 1.5)],
    ['no tasks', (r: Record<string, unknown>) => delete r.tasks],
    ['a plan of another kind', (r: Record<string, unknown>) => (r.plan = { kind: 'x' })],
    ['negative bytes', (r: Record<string, unknown>) => (r.bytes = -1)],
    ['a cursor without lastSeq', (r: Record<string, unknown>) => (r.cursors = { s: { segmentStart: 'x' } })],
    [
      'a slice with a string start',
      (r: Record<string, unknown>) =>
        (r.tasks = [[{ segment: 'a', shard: 's', start: '0', end: 1, records: 1 }]]),
    ],
    [
      'a slice with negative records',
      (r: Record<string, unknown>) =>
        (r.tasks = [[{ segment: 'a', shard: 's', start: 0, end: 1, records: -1 }]]),
    ],
    ['tasks that are not lists', (r: Record<string, unknown>) => (r.tasks = [{}])],
  ])('throws InvalidInputError for %s', (_name, change) => {
    expect(() => parseManifest(tampered(change))).toThrow(InvalidInputError);
  });

  it('reports the malformed field in the message', () => {
    expect(() => parseManifest(tampered((r) => (r.records = 'many')))).toThrow(/records/);
  });

  it('accepts the untampered serialized manifest (control)', () => {
    expect(() => parseManifest(tampered(() => undefined))).not.toThrow();
  });
});
