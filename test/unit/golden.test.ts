import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pipeline, reduceByKey, s3Jsonl, kinesis, transform, utf8, type AnyPipeline } from '../../lib';
import { ByteReader, ByteWriter } from '../../lib/encoding/bytes';
import { DATA_FORMATS } from '../../lib/encoding/formats';
import { hashKey, mapKey, partitionOf } from '../../lib/encoding/key';
import { decodeSegment, encodeSegment } from '../../lib/encoding/segment';
import { decodeRun, encodeShuffle } from '../../lib/encoding/shuffle';
import { readValue, writeValue } from '../../lib/encoding/value';
import { parseManifest, serializeManifest, type Manifest } from '../../lib/manifest';
import { planPipeline } from '../../lib/plan';
import { chunkOf, StateTable } from '../../lib/state/table';
import { batchId } from '../../lib/ids';

/**
 * Golden bytes: every persisted format, pinned to the bytes the current format version writes.
 * Data written by one deployment is read by the next, so a change here is a format change: bump
 * its version in `lib/encoding/formats.ts` (and teach readers the old one, or migrate), then
 * update the vector. Each vector is also decoded, so the reader is pinned as well as the writer.
 */

/** The manifest vector is a file: it is what S3 holds, byte for byte (prettier leaves it alone). */
const GOLDEN_MANIFEST = join(__dirname, '..', 'golden', 'manifest@1.json');
const GOLDEN_RESCALING_MANIFEST = join(__dirname, '..', 'golden', 'manifest@1-rescaling.json');

describe('format versions', () => {
  it('are the ones these vectors pin', () => {
    expect(DATA_FORMATS).toEqual({
      segment: 'sluice.segment@1',
      shuffle: 'sluice.shuffle@1',
      chunk: 'sluice.chunk@1',
    });
  });
});

describe('value encoding (shuffle pairs and state entries)', () => {
  const values: unknown[] = [
    null,
    undefined,
    true,
    false,
    0,
    300,
    -1,
    1.5,
    2 ** 53 - 1,
    'héllo',
    12345678901234567890n,
    [1, 'a'],
    { a: 1, b: [true] },
    new Uint8Array([1, 2, 255]),
  ];
  const golden =
    '00010302040004ac02050106000000000000f83f04ffffffffffffff0f070668c3a96c6c6f0a143132333435363738' +
    '3930313233343536373839300802040107016109020161040101620801030b030102ff';

  it('writes the golden bytes', () => {
    // Arrange
    const writer = new ByteWriter();

    // Act
    for (const value of values) writeValue(writer, value);

    // Assert
    expect(writer.toBuffer().toString('hex')).toBe(golden);
  });

  it('reads the golden bytes back', () => {
    // Arrange
    const reader = new ByteReader(Buffer.from(golden, 'hex'));

    // Act
    const read: unknown[] = [];
    while (!reader.done) read.push(readValue(reader));

    // Assert
    expect(read).toEqual(values);
  });
});

describe(`segments (${DATA_FORMATS.segment})`, () => {
  const records = [
    {
      seq: '49590338271490256608559692538361571095921575989136588898',
      arrivedAt: 1_700_000_000_000,
      data: Buffer.from('the quick'),
    },
    {
      seq: '49590338271490256608559692538361571095921575989136588899',
      arrivedAt: 1_700_000_000_123,
      data: Buffer.from('brown fox'),
    },
  ];
  const golden =
    '3834393539303333383237313439303235363630383535393639323533383336313537313039353932313537353938' +
    '39313336353838383938' +
    '80d095ffbc310974686520717569636b' +
    '3834393539303333383237313439303235363630383535393639323533383336313537313039353932313537353938' +
    '39313336353838383939' +
    'fbd095ffbc310962726f776e20666f78';

  it('writes the golden bytes and blocks', () => {
    // Act
    const { body, blocks } = encodeSegment(records, 40);

    // Assert
    expect(body.toString('hex')).toBe(golden);
    expect(blocks).toEqual([
      { offset: 0, records: 1 },
      { offset: 73, records: 1 },
    ]);
  });

  it('reads the golden bytes back, from the start and from a block', () => {
    // Arrange
    const body = Buffer.from(golden, 'hex');

    // Act
    const all = [...decodeSegment(body)];
    const second = [...decodeSegment(body, 73)];

    // Assert
    expect(all.map((r) => [r.seq, r.arrivedAt, Buffer.from(r.data).toString()])).toEqual(
      records.map((r) => [r.seq, r.arrivedAt, r.data.toString()]),
    );
    expect(second.map((r) => r.seq)).toEqual([records[1]?.seq]);
  });
});

describe(`shuffle files (${DATA_FORMATS.shuffle})`, () => {
  const runs: [unknown, unknown][][] = [
    [['a', 2]],
    [],
    [
      ['b', 1],
      [
        ['k', 60000],
        [3, 'x'],
      ],
    ],
  ];
  const golden = '07016104020701620401080207016b04e0d40308020403070178';

  it('writes the golden bytes and run index', () => {
    // Act
    const { body, index } = encodeShuffle(runs);

    // Assert
    expect(body.toString('hex')).toBe(golden);
    expect(index).toEqual([0, 5, 5, 26]);
  });

  it('reads each partition run back from its byte range', () => {
    // Arrange
    const body = Buffer.from(golden, 'hex');
    const index = [0, 5, 5, 26];

    // Act
    const read = runs.map((_run, p) => {
      const pairs: [unknown, unknown][] = [];
      decodeRun(body, index[p] ?? 0, index[p + 1] ?? 0, (k, v) => pairs.push([k, v]));
      return pairs;
    });

    // Assert
    expect(read).toEqual(runs);
  });
});

describe(`state chunks (${DATA_FORMATS.chunk}) and key routing`, () => {
  const golden = [
    '0802070873656e736f722d3104e0d40308020402060000000000c04440',
    '07056170706c6504030704706561720901016e0401',
  ];

  it('writes the golden chunks', () => {
    // Arrange
    const table = new StateTable();
    table.set('apple', 3);
    table.set(['sensor-1', 60000], [2, 41.5]);
    table.set('pear', { n: 1 });

    // Act
    const { chunks, bodies } = table.encode(2);

    // Assert
    expect(chunks).toBe(2);
    expect(bodies.map((b) => b.toString('hex'))).toEqual(golden);
  });

  it('reads the golden chunks back', () => {
    // Arrange
    const table = new StateTable();

    // Act
    for (const chunk of golden) table.load(Buffer.from(chunk, 'hex'));

    // Assert
    expect([...table.values()]).toEqual([
      { key: ['sensor-1', 60000], value: [2, 41.5] },
      { key: 'apple', value: 3 },
      { key: 'pear', value: { n: 1 } },
    ]);
  });

  // Keys are routed to reduce partitions and state chunks by hash: a change would strand every
  // key's state in a partition or chunk its new owner never reads.
  it.each([
    ['apple', 'apple', 0, 1, 2305576842],
    ['pear', 'pear', 2, 11, 2763243215],
    ['42', 42, 5, 13, 538032017],
    ['[sensor-1, 60000]', ['sensor-1', 60000], 3, 2, 3364723583],
    ['null', null, 4, 10, 3976654246],
    ['12345678901234567890n', 12345678901234567890n, 4, 15, 3836133278],
  ])('routes key %s to the same partition and chunk', (_label, key, partition, chunk, hash) => {
    // Act
    const k = mapKey(key);

    // Assert
    expect(partitionOf(k, 7)).toBe(partition);
    expect(chunkOf(k, 16)).toBe(chunk);
    expect(hashKey(k, 0)).toBe(hash);
  });
});

describe('the plan and the manifest (sluice.plan@1, sluice.manifest@1)', () => {
  const counts = pipeline({
    name: 'golden',
    batchInterval: '10s',
    partitions: 3,
    source: kinesis({ stream: 'lines', decode: utf8 }),
    stages: [
      transform<string, string, number>('tokenize', (line, emit) => {
        for (const w of line.split(' ')) emit(w, 1);
      }),
      reduceByKey<string, number>('count', (a, b) => a + b),
    ],
    sinks: [s3Jsonl({ prefix: 'out' })],
  }) as AnyPipeline;

  it('fingerprints the plan and each stage stably', () => {
    // Act
    const spec = planPipeline(counts).spec;

    // Assert
    expect({ fingerprint: spec.fingerprint, stages: spec.stages }).toEqual({
      fingerprint: 'b818f6c0f639c716',
      stages: { tokenize: 'fd70f646d80f3c4d', count: 'e845ecaee1ca27c0' },
    });
  });

  it('serializes a manifest to the golden JSON and parses it back', () => {
    // Arrange
    const manifest: Manifest = {
      kind: 'sluice.manifest@1',
      pipeline: 'golden',
      batch: batchId(7),
      time: 1_700_000_070_000,
      plan: planPipeline(counts).spec,
      previousCursors: {},
      cursors: { 'lines/shardId-000000000000': { segmentStart: '0001', lastSeq: '12' } },
      records: 2,
      bytes: 40,
      tasks: [
        [{ segment: 'input/s/0001', shard: 'lines/shardId-000000000000', start: 0, end: 40, records: 2 }],
      ],
    };

    // Act
    const body = serializeManifest(manifest);

    // Assert
    expect(body.toString('utf8')).toBe(readFileSync(GOLDEN_MANIFEST, 'utf8'));
    expect(parseManifest(body)).toEqual(manifest);
  });

  it('keeps the state layouts of a rescaling batch in the golden JSON', () => {
    // Arrange
    const manifest: Manifest = {
      kind: 'sluice.manifest@1',
      pipeline: 'golden',
      batch: batchId(12),
      time: 1_700_000_120_000,
      plan: planPipeline(counts).spec,
      previousCursors: {},
      cursors: {},
      records: 0,
      bytes: 0,
      tasks: [],
      layouts: { totals: { partitions: 8, since: 12, previous: { partitions: 4, since: 1 } } },
    };

    // Act
    const body = serializeManifest(manifest);

    // Assert
    expect(body.toString('utf8')).toBe(readFileSync(GOLDEN_RESCALING_MANIFEST, 'utf8'));
    expect(parseManifest(body)).toEqual(manifest);
  });
});
