import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeSegment,
  encodeSegment,
  formatBlocks,
  padSeq,
  parseBlocks,
  type InputRecord,
  type SegmentBlock,
} from '../../lib/encoding/segment';

const seq = fc.bigInt({ min: 0n, max: 10n ** 56n }).map(String);
const record: fc.Arbitrary<InputRecord> = fc.record({
  seq,
  arrivedAt: fc.integer({ min: 0, max: 2 ** 45 }),
  data: fc.uint8Array({ maxLength: 300 }),
});
const records = fc.array(record, { maxLength: 60 });
const blockTarget = fc.integer({ min: 1, max: 2_000 });

/** Blocks with increasing offsets, as `encodeSegment` makes them. */
const blockList: fc.Arbitrary<SegmentBlock[]> = fc
  .array(
    fc.record({ gap: fc.integer({ min: 1, max: 2 ** 40 }), records: fc.integer({ min: 1, max: 1e6 }) }),
    {
      maxLength: 40,
    },
  )
  .map((parts) => {
    let offset = 0;
    return parts.map(({ gap, records: n }, i) => {
      if (i > 0) offset += gap;
      return { offset, records: n };
    });
  });

function plain(list: Iterable<InputRecord>): { seq: string; arrivedAt: number; data: number[] }[] {
  return [...list].map((r) => ({ seq: r.seq, arrivedAt: r.arrivedAt, data: [...r.data] }));
}

function blockRanges(blocks: readonly SegmentBlock[], bodyLength: number): [number, number, number][] {
  return blocks.map((b, i) => [b.offset, blocks[i + 1]?.offset ?? bodyLength, b.records]);
}

describe('encodeSegment / decodeSegment', () => {
  it('decodes the whole body back to the records, in order (property)', () => {
    fc.assert(
      fc.property(records, blockTarget, (input, target) => {
        const { body } = encodeSegment(input, target);
        expect(plain(decodeSegment(body))).toEqual(plain(input));
      }),
    );
  });

  it('decodes each block range to exactly its record count, and the blocks to all records (property)', () => {
    fc.assert(
      fc.property(records, blockTarget, (input, target) => {
        const { body, blocks } = encodeSegment(input, target);
        const decoded: InputRecord[] = [];
        for (const [start, end, count] of blockRanges(blocks, body.length)) {
          const inBlock = [...decodeSegment(body, start, end)];
          expect(inBlock.length).toBe(count);
          decoded.push(...inBlock);
        }
        expect(plain(decoded)).toEqual(plain(input));
      }),
    );
  });

  it('starts the first block at 0 with strictly increasing offsets (property)', () => {
    fc.assert(
      fc.property(records, blockTarget, (input, target) => {
        const { blocks } = encodeSegment(input, target);
        if (input.length > 0) expect(blocks[0]?.offset).toBe(0);
        for (let i = 1; i < blocks.length; i++) {
          expect(blocks[i]?.offset).toBeGreaterThan(blocks[i - 1]?.offset ?? Infinity);
        }
      }),
    );
  });

  it('fills every block but the last to at least the target size (property)', () => {
    fc.assert(
      fc.property(records, blockTarget, (input, target) => {
        const { body, blocks } = encodeSegment(input, target);
        for (const [start, end] of blockRanges(blocks, body.length).slice(0, -1)) {
          expect(end - start).toBeGreaterThanOrEqual(target);
        }
      }),
    );
  });

  it('keeps a single record larger than the target in one block', () => {
    const big: InputRecord = { seq: '1', arrivedAt: 0, data: new Uint8Array(10_000) };

    const { blocks } = encodeSegment([big], 100);

    expect(blocks).toEqual([{ offset: 0, records: 1 }]);
  });

  it('splits at the default 8 KiB target', () => {
    const input = Array.from({ length: 100 }, (_, i) => ({
      seq: String(i),
      arrivedAt: i,
      data: new Uint8Array(1000),
    }));

    const { blocks } = encodeSegment(input);

    expect(blocks.length).toBeGreaterThan(5);
    expect(blocks.reduce((n, b) => n + b.records, 0)).toBe(100);
  });

  it('gives an empty body and no blocks for no records', () => {
    const { body, blocks } = encodeSegment([]);

    expect(body.length).toBe(0);
    expect(blocks).toEqual([]);
    expect([...decodeSegment(body)]).toEqual([]);
  });

  it('throws RangeError when a range ends inside a record', () => {
    const { body } = encodeSegment([{ seq: '12345', arrivedAt: 1, data: new Uint8Array(10) }]);

    expect(() => [...decodeSegment(body, 0, body.length - 1)]).toThrow(RangeError);
  });
});

describe('formatBlocks / parseBlocks', () => {
  it('round-trips any increasing block list (property)', () => {
    fc.assert(
      fc.property(blockList, (blocks) => {
        expect(parseBlocks(formatBlocks(blocks))).toEqual(blocks);
      }),
    );
  });

  it('round-trips what encodeSegment produces (property)', () => {
    fc.assert(
      fc.property(records, blockTarget, (input, target) => {
        const { blocks } = encodeSegment(input, target);
        expect(parseBlocks(formatBlocks(blocks))).toEqual(blocks);
      }),
    );
  });

  // Pinned: the ledger stores this text, so its format must not change.
  it('writes base-36 offset deltas and record counts', () => {
    const blocks = [
      { offset: 0, records: 10 },
      { offset: 8200, records: 3 },
      { offset: 8236, records: 36 },
    ];

    expect(formatBlocks(blocks)).toBe('0.a,6bs.3,10.10');
  });

  it('maps no blocks to the empty string and back', () => {
    expect(formatBlocks([])).toBe('');
    expect(parseBlocks('')).toEqual([]);
  });

  it.each([['x'], ['1'], ['1.'], ['.1'], ['1.2,'], ['1.!'], ['1.2,,3.4']])(
    "rejects the malformed list '%s' with RangeError",
    (text) => {
      expect(() => parseBlocks(text)).toThrow(RangeError);
    },
  );
});

describe('padSeq', () => {
  const digits = fc.bigInt({ min: 0n, max: 10n ** 64n - 1n }).map(String);

  it('makes string order equal numeric order (property)', () => {
    fc.assert(
      fc.property(digits, digits, (a, b) => {
        const byNumber = Math.sign(Number(BigInt(a) - BigInt(b)));
        const pa = padSeq(a);
        const pb = padSeq(b);
        const byString = pa < pb ? -1 : pa > pb ? 1 : 0;
        expect(byString).toBe(byNumber);
      }),
    );
  });

  it('pads to 64 characters and keeps the number (property)', () => {
    fc.assert(
      fc.property(digits, (s) => {
        const padded = padSeq(s);
        expect(padded).toHaveLength(64);
        expect(BigInt(padded)).toBe(BigInt(s));
      }),
    );
  });

  it('pads a real Kinesis sequence number', () => {
    const s = '49590338271490256608559692538361571095921575989136588898';

    expect(padSeq(s)).toBe(`00000000${s}`);
  });

  it.each([[''], ['-1'], ['1.5'], ['12a'], [' 1'], ['1'.repeat(65)]])(
    "rejects '%s' with RangeError",
    (text) => {
      expect(() => padSeq(text)).toThrow(RangeError);
    },
  );
});
