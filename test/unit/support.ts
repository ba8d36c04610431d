import { DATA_FORMATS } from '../../lib/encoding/formats';
import fc from 'fast-check';
import { ByteReader, ByteWriter } from '../../lib/encoding/bytes';
import { readValue, writeValue } from '../../lib/encoding/value';
import type { SegmentItem } from '../../lib/batch';
import { formatBlocks, type SegmentBlock } from '../../lib/encoding/segment';
import { shardId } from '../../lib/ids';

/** Encodes one value with the shuffle codec. */
export function encodeValue(value: unknown): Buffer {
  const writer = new ByteWriter(16);
  writeValue(writer, value);
  return writer.toBuffer();
}

/** Decodes one value and checks that it used up the whole buffer. */
export function decodeValue(buffer: Buffer): unknown {
  const reader = new ByteReader(buffer);
  const value = readValue(reader);
  if (!reader.done) throw new Error(`trailing bytes after offset ${reader.offset}`);
  return value;
}

/** True when some plain object inside `value` has an own `__proto__` key. */
export function hasProtoKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasProtoKey);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return (
      Object.prototype.hasOwnProperty.call(value, '__proto__') ||
      Object.values(value as Record<string, unknown>).some(hasProtoKey)
    );
  }
  return false;
}

/** Object keys; `__proto__` is left to a dedicated test. */
export const objectKey = fc.string({ unit: 'binary', maxLength: 8 }).filter((k) => k !== '__proto__');

/** Notable numbers: signed zero, NaN, infinities, safe-integer and float extremes. */
export const specialNumber = fc.constantFrom(
  0,
  -0,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 1,
  -(Number.MAX_SAFE_INTEGER + 1),
  Number.MIN_VALUE,
  -Number.MIN_VALUE,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.EPSILON,
  0.1,
  2 ** 31,
  2 ** 32,
  -(2 ** 32),
);

/** Every kind of value the shuffle codec supports, nested. Strings cross the 42-unit short-string path. */
export const plainValue: fc.Arbitrary<unknown> = fc.letrec<{ leaf: unknown; value: unknown }>((tie) => ({
  leaf: fc.oneof(
    fc.constant(null),
    fc.constant(undefined),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double(),
    specialNumber,
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.bigInt(),
    fc.uint8Array({ maxLength: 20 }),
  ),
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(objectKey, tie('value'), { maxKeys: 5, noNullPrototype: true }),
  ),
})).value;

/** A segment item as ingest would register it, from block sizes and record counts. */
export function segmentItem(
  key: string,
  blocks: readonly { readonly bytes: number; readonly records: number }[],
  shard = 'shardId-000000000000',
): SegmentItem {
  let offset = 0;
  const list: SegmentBlock[] = [];
  for (const block of blocks) {
    list.push({ offset, records: block.records });
    offset += block.bytes;
  }
  return {
    shard: shardId(shard),
    firstSeq: '1',
    lastSeq: '2',
    key,
    records: blocks.reduce((n, b) => n + b.records, 0),
    bytes: offset,
    blocks: formatBlocks(list),
    format: DATA_FORMATS.segment,
  };
}
