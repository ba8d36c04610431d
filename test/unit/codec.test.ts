import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../../lib/encoding/bytes';
import { UnencodableValueError } from '../../lib/encoding/value';
import { decodeValue, encodeValue, hasProtoKey, plainValue, specialNumber } from './support';

describe('value codec: round trip', () => {
  it('decodes every supported value to a strictly equal value (property)', () => {
    fc.assert(
      fc.property(plainValue, (value) => {
        expect(decodeValue(encodeValue(value))).toStrictEqual(value);
      }),
      { numRuns: 500 },
    );
  });

  it('re-encodes a decoded value to the same bytes (property)', () => {
    fc.assert(
      fc.property(plainValue, (value) => {
        const bytes = encodeValue(value);
        expect(encodeValue(decodeValue(bytes)).equals(bytes)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips arbitrary JSON values with unicode strings (property)', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ stringUnit: 'binary' }).filter((v) => !hasProtoKey(v)),
        (value) => {
          expect(decodeValue(encodeValue(value))).toStrictEqual(value);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round-trips fc.anything() restricted to the supported types (property)', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: true,
          withBoxedValues: false,
          withNullPrototype: false,
          stringUnit: 'binary',
          maxDepth: 3,
          key: fc.string().filter((k) => k !== '__proto__'),
        }),
        (value) => {
          expect(decodeValue(encodeValue(value))).toStrictEqual(value);
        },
      ),
      { numRuns: 300 },
    );
  });

  it.each([
    ['-0', -0],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER],
    ['MIN_SAFE_INTEGER', Number.MIN_SAFE_INTEGER],
    ['2^53 (not safe)', 2 ** 53],
    ['-(2^53 + 2)', -(2 ** 53 + 2)],
    ['MIN_VALUE', Number.MIN_VALUE],
    ['MAX_VALUE', Number.MAX_VALUE],
    ['0.1', 0.1],
    ['-1.5e-300', -1.5e-300],
  ])('keeps the number %s exact (Object.is)', (_name, value) => {
    expect(Object.is(decodeValue(encodeValue(value)), value)).toBe(true);
  });

  it('keeps every special number exact inside arrays (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(specialNumber, fc.double(), fc.integer())), (numbers) => {
        const decoded = decodeValue(encodeValue(numbers)) as number[];
        expect(decoded.length).toBe(numbers.length);
        decoded.forEach((n, i) => expect(Object.is(n, numbers[i])).toBe(true));
      }),
    );
  });

  it('encodes safe integers as varints, not as 9-byte floats', () => {
    expect(encodeValue(5).length).toBe(2);
    expect(encodeValue(-5).length).toBe(2);
    expect(encodeValue(0.5).length).toBe(9);
  });

  it('keeps undefined apart from null', () => {
    expect(decodeValue(encodeValue(undefined))).toBeUndefined();
    expect(decodeValue(encodeValue(null))).toBeNull();
  });

  it('keeps object properties whose value is undefined', () => {
    const decoded = decodeValue(encodeValue({ a: undefined, b: 1 })) as Record<string, unknown>;

    expect(Object.keys(decoded)).toEqual(['a', 'b']);
  });

  it('keeps object key order', () => {
    const decoded = decodeValue(encodeValue({ z: 1, a: 2, m: 3 })) as Record<string, unknown>;

    expect(Object.keys(decoded)).toEqual(['z', 'a', 'm']);
  });

  it('round-trips bigints beyond the safe-integer range', () => {
    const big = -(2n ** 200n) + 7n;

    expect(decodeValue(encodeValue(big))).toBe(big);
  });

  it('decodes a Buffer as a Uint8Array with the same bytes', () => {
    const decoded = decodeValue(encodeValue(Buffer.from([1, 2, 255])));

    expect(decoded).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(decoded)).toBe(false);
    expect([...(decoded as Uint8Array)]).toEqual([1, 2, 255]);
  });

  it('decodes a null-prototype object as a plain object with the same entries', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, b: 'x' });

    const decoded = decodeValue(encodeValue(bare));

    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(decoded).toEqual({ a: 1, b: 'x' });
  });

  it.each([
    ['astral', '😀𝄞 a𠜎'],
    ['combining', 'e\u0301'],
    ['NUL', 'a\u0000b'],
    ['42 units (short path)', 'é'.repeat(42)],
    ['43 units (long path)', 'é'.repeat(43)],
    ['long astral', '😀'.repeat(5000)],
  ])('round-trips a %s string', (_name, text) => {
    expect(decodeValue(encodeValue(text))).toBe(text);
  });

  // A lone surrogate has no UTF-8 form. JSON input can carry one ("\ud800"), and JSON output keeps it,
  // so the shuffle must either carry it exactly or refuse it: silently turning distinct keys into
  // U+FFFD would merge them in the reduce phase.
  it.each([
    ['high', '\ud800'],
    ['low inside text', 'a\udc00b'],
    ['long (varint-length path)', `${'x'.repeat(50)}\ud83d`],
  ])('never silently alters a string with a lone %s surrogate', (_name, text) => {
    let decoded: unknown;
    try {
      decoded = decodeValue(encodeValue(text));
    } catch (error) {
      expect(error).toBeInstanceOf(UnencodableValueError);
      return;
    }
    expect(decoded).toBe(text);
  });

  // JSON.parse makes an own "__proto__" property; decoding must not turn it into a prototype.
  it('keeps an own "__proto__" key as data', () => {
    const value = JSON.parse('{"__proto__":{"polluted":true},"b":2}') as Record<string, unknown>;

    const decoded = decodeValue(encodeValue(value)) as Record<string, unknown>;

    expect(Object.keys(decoded)).toEqual(['__proto__', 'b']);
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
  });
});

describe('value codec: unencodable values', () => {
  class Point {
    constructor(readonly x: number) {}
  }

  it.each([
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a Date', new Date(0)],
    ['a Map', new Map([[1, 2]])],
    ['a Set', new Set([1])],
    ['a RegExp', /x/],
    ['a class instance', new Point(1)],
    ['an Int16Array', new Int16Array(2)],
    ['a boxed string', Object('s') as unknown],
    ['a Date nested in an array', [1, [new Date(0)]]],
    ['a function nested in an object', { a: { b: () => 1 } }],
  ])('throws UnencodableValueError for %s', (_name, value) => {
    expect(() => encodeValue(value)).toThrow(UnencodableValueError);
  });

  it('names the offending class in the message', () => {
    expect(() => encodeValue(new Map())).toThrow(/Map/);
  });

  it('is a TypeError named UnencodableValueError', () => {
    const error = new UnencodableValueError('x');

    expect(error).toBeInstanceOf(TypeError);
    expect(error.name).toBe('UnencodableValueError');
  });
});

describe('varints', () => {
  const varint = (value: number): Buffer => {
    const writer = new ByteWriter(1);
    writer.varint(value);
    return writer.toBuffer();
  };

  it.each([
    [0, 1],
    [2 ** 7 - 1, 1],
    [2 ** 7, 2],
    [2 ** 14 - 1, 2],
    [2 ** 14, 3],
    [2 ** 21, 4],
    [2 ** 28, 5],
    [2 ** 31 - 1, 5],
    [2 ** 31, 5],
    [2 ** 32 - 1, 5],
    [2 ** 32, 5],
    [2 ** 35, 6],
    [2 ** 49, 8],
    [2 ** 53 - 1, 8],
  ])('writes %d in %d bytes and reads it back', (value, bytes) => {
    const encoded = varint(value);

    expect(encoded.length).toBe(bytes);
    expect(new ByteReader(encoded).varint()).toBe(value);
  });

  it('uses LEB128 byte order (low 7 bits first)', () => {
    expect([...varint(300)]).toEqual([0xac, 0x02]);
  });

  it('round-trips any safe non-negative integer (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (value) => {
        expect(new ByteReader(varint(value)).varint()).toBe(value);
      }),
    );
  });

  it.each([2 ** 7, 2 ** 14, 2 ** 31, 2 ** 32, 2 ** 53 - 1])('round-trips ±%d as a value', (value) => {
    expect(decodeValue(encodeValue(value))).toBe(value);
    expect(decodeValue(encodeValue(-value))).toBe(-value);
  });

  it('rejects a varint longer than a safe integer with RangeError', () => {
    const endless = Buffer.alloc(12, 0xff);

    expect(() => new ByteReader(endless).varint()).toThrow(RangeError);
  });

  it('grows the writer past its initial size', () => {
    const writer = new ByteWriter(1);
    for (let i = 0; i < 1000; i++) writer.varint(2 ** 53 - 1);

    const reader = new ByteReader(writer.toBuffer());
    for (let i = 0; i < 1000; i++) expect(reader.varint()).toBe(2 ** 53 - 1);
    expect(reader.done).toBe(true);
  });
});

describe('truncated input', () => {
  it('throws RangeError when any strict prefix of an encoded value is read (property)', () => {
    fc.assert(
      fc.property(
        plainValue.map((value) => encodeValue(value)),
        fc.nat(),
        (bytes, n) => {
          const cut = n % bytes.length;
          expect(() => decodeValue(bytes.subarray(0, cut))).toThrow(RangeError);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('throws RangeError for an unknown tag', () => {
    expect(() => decodeValue(Buffer.from([200]))).toThrow(RangeError);
  });

  it('throws RangeError for a string whose length runs past the end', () => {
    const reader = new ByteReader(Buffer.from([5, 0x61, 0x62]));

    expect(() => reader.string()).toThrow(RangeError);
  });

  it('respects the reader end bound inside a larger buffer', () => {
    const writer = new ByteWriter();
    writer.string('hello');
    const bytes = writer.toBuffer();
    const padded = Buffer.concat([bytes, Buffer.from('trailing')]);

    expect(new ByteReader(padded, 0, bytes.length).string()).toBe('hello');
    expect(() => new ByteReader(padded, 0, bytes.length - 1).string()).toThrow(RangeError);
  });
});
