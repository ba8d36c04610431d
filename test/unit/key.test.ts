import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mapKey, partitionOf } from '../../lib/encoding/key';
import { objectKey, plainValue } from './support';

/** Rebuilds plain objects with their keys in reverse insertion order, recursively. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  const entries = Object.entries(value as Record<string, unknown>).reverse();
  return Object.fromEntries(entries.map(([k, v]) => [k, reverseKeys(v)]));
}

/** 32-bit FNV-1a over UTF-16 code units, then murmur3's fmix32, computed with BigInt as an oracle. */
function referenceHash(text: string): number {
  const mask = 0xffffffffn;
  let hash = 0x811c9dc5n;
  for (let i = 0; i < text.length; i++) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * 0x01000193n) & mask;
  }
  hash ^= hash >> 16n;
  hash = (hash * 0x85ebca6bn) & mask;
  hash ^= hash >> 13n;
  hash = (hash * 0xc2b2ae35n) & mask;
  hash ^= hash >> 16n;
  return Number(hash);
}

describe('mapKey', () => {
  it.each([['word'], [''], [0], [1.5], [true], [null], [undefined], [10n]])(
    'uses the primitive %s as the Map key itself',
    (key) => {
      expect(mapKey(key)).toBe(key);
    },
  );

  it('gives equal keys for objects that differ only in key order', () => {
    expect(mapKey({ a: 1, b: [2, { c: 3, d: 4 }] })).toBe(mapKey({ b: [2, { d: 4, c: 3 }], a: 1 }));
  });

  it('gives equal keys for structurally equal composites regardless of key order (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(objectKey, plainValue, { maxKeys: 6, noNullPrototype: true }), (key) => {
        expect(mapKey(reverseKeys(key))).toBe(mapKey(key));
        expect(mapKey(structuredClone(key))).toBe(mapKey(key));
      }),
      { numRuns: 200 },
    );
  });

  it('gives equal keys for equal tuples built separately', () => {
    expect(mapKey(['a', 1, [true, null]])).toBe(mapKey(['a', 1, [true, null]]));
  });

  it('keeps 1, "1", true and 1n apart, alone and inside tuples', () => {
    const keys = [1, '1', true, 1n, [1], ['1'], [true], [1n]].map(mapKey);

    expect(new Set(keys).size).toBe(keys.length);
  });

  it('keeps a tuple apart from an object with index keys', () => {
    expect(mapKey([1, 2])).not.toBe(mapKey({ 0: 1, 1: 2 }));
  });

  it('keeps nested tuples apart from flat ones', () => {
    expect(mapKey([['a', 'b']])).not.toBe(mapKey(['a', 'b']));
  });

  it('keeps byte keys with different contents apart and equal contents together', () => {
    expect(mapKey([new Uint8Array([1, 2])])).toBe(mapKey([new Uint8Array([1, 2])]));
    expect(mapKey([new Uint8Array([1, 2])])).not.toBe(mapKey([new Uint8Array([2, 1])]));
  });

  it('maps distinct primitive values to distinct Map keys apart from SameValueZero (property)', () => {
    const primitive = fc.oneof(fc.string(), fc.double(), fc.boolean(), fc.bigInt(), fc.constant(null));
    fc.assert(
      fc.property(primitive, primitive, (a, b) => {
        const same = a === b || (Number.isNaN(a) && Number.isNaN(b));
        expect(new Map([[mapKey(a), 1]]).has(mapKey(b))).toBe(same);
      }),
    );
  });

  // Composite keys are canonical JSON, where NaN and ±Infinity become "null": [NaN], [Infinity]
  // and [null] then meet in one reduce entry and their values are merged.
  it('keeps composite keys holding NaN, Infinity and null apart', () => {
    const keys = [[null], [Number.NaN], [Number.POSITIVE_INFINITY], [Number.NEGATIVE_INFINITY]].map(mapKey);

    expect(new Set(keys).size).toBe(4);
  });

  // Composite keys are '\u0000' + canonical JSON in the same key space as string keys.
  it('keeps a string key apart from a composite key whose encoding it spells', () => {
    expect(mapKey('\u0000["a"]')).not.toBe(mapKey(['a']));
  });

  // undefined, bigint and bytes inside composites are spelled as {"$undefined":1}, {"$bigint":..}, ...
  it('keeps undefined and bigint inside a key apart from objects that spell their encoding', () => {
    expect(mapKey([undefined])).not.toBe(mapKey([{ $undefined: 1 }]));
    expect(mapKey([5n])).not.toBe(mapKey([{ $bigint: '5' }]));
  });
});

describe('partitionOf', () => {
  it('is an integer in [0, partitions) (property)', () => {
    fc.assert(
      fc.property(plainValue, fc.integer({ min: 1, max: 10_000 }), (key, partitions) => {
        const p = partitionOf(mapKey(key), partitions);
        expect(Number.isInteger(p)).toBe(true);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThan(partitions);
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic for structurally equal keys (property)', () => {
    fc.assert(
      fc.property(plainValue, fc.integer({ min: 2, max: 64 }), (key, partitions) => {
        expect(partitionOf(mapKey(structuredClone(key)), partitions)).toBe(
          partitionOf(mapKey(key), partitions),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('puts every key in partition 0 when there is one partition', () => {
    expect(['a', 'b', 7, null].map((k) => partitionOf(mapKey(k), 1))).toEqual([0, 0, 0, 0]);
  });

  it('puts 0 and -0 in the same partition, as a Map puts them in the same entry', () => {
    expect(partitionOf(mapKey(-0), 16)).toBe(partitionOf(mapKey(0), 16));
  });

  it('is FNV-1a 32 finished with the murmur3 mixer, per a BigInt reference (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.integer({ min: 2, max: 100_000 }), (key, partitions) => {
        expect(partitionOf(key, partitions)).toBe(referenceHash(key) % partitions);
      }),
    );
  });

  it('hashes non-string primitives by type and text', () => {
    expect(partitionOf(7, 1000)).toBe(referenceHash('number:7') % 1000);
    expect(partitionOf(true, 1000)).toBe(referenceHash('boolean:true') % 1000);
  });

  // Pinned: a different hash would move keys, and their state, to other partitions.
  it.each([
    ['spark', 4, 2],
    ['spark', 16, 10],
    ['spark', 10_000, 6570],
    ['hello', 16, 14],
    ['', 16, 11],
    ['world', 7, 0],
    [1, 16, 9],
    [true, 16, 2],
    [null, 16, 5],
    [['a', 1], 16, 13],
    [{ b: 2, a: 1 }, 16, 5],
  ])('keeps %j with %d partitions in partition %d', (key, partitions, expected) => {
    expect(partitionOf(mapKey(key), partitions)).toBe(expected);
  });

  it.each([
    ['word keys', (i: number): unknown => `word-${i}`],
    ['integer keys', (i: number): unknown => i],
    ['tuple keys', (i: number): unknown => ['user', i]],
  ])('spreads 100k %s evenly over 16 partitions (chi-square)', (_name, keyOf) => {
    const partitions = 16;
    const n = 100_000;
    const counts = new Array<number>(partitions).fill(0);
    for (let i = 0; i < n; i++) {
      const p = partitionOf(mapKey(keyOf(i)), partitions);
      counts[p] = (counts[p] ?? 0) + 1;
    }
    const expected = n / partitions;
    const chiSquare = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);

    // 15 degrees of freedom: mean 15; 60 is far beyond the 99.999th percentile (about 46).
    expect(chiSquare).toBeLessThan(60);
  });
});
