import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatBatch,
  formatRecord,
  fromJsonLines,
  toJsonLines,
  type BatchHeader,
  type PartitionOutput,
} from '../../lib/runtime/output';

const header: BatchHeader = {
  batch: 7,
  time: 1_700_000_010_000,
  inputRecords: 12,
  outputRecords: 3,
  deadLetters: 0,
};

function outputOf(...partitions: unknown[][]): PartitionOutput[] {
  return partitions.map((records, partition) => ({ partition, records }));
}

describe('toJsonLines / fromJsonLines', () => {
  it('round-trips JSON values, one per line (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue({ stringUnit: 'binary', maxDepth: 3 }), { maxLength: 10 }),
        (records) => {
          // JSON has no -0: it comes back as 0.
          expect(fromJsonLines(toJsonLines(records))).toEqual(JSON.parse(JSON.stringify(records)));
        },
      ),
    );
  });

  it('writes one line per record, each ending in a newline', () => {
    const text = toJsonLines([['spark', 3], { a: 'line\nbreak' }]).toString('utf8');

    expect(text).toBe('["spark",3]\n{"a":"line\\nbreak"}\n');
  });

  it('writes bigints as strings', () => {
    expect(fromJsonLines(toJsonLines([[10n ** 30n, 1n]]))).toEqual([
      ['1000000000000000000000000000000', '1'],
    ]);
  });

  it('writes bytes as base64', () => {
    expect(fromJsonLines(toJsonLines([{ data: new Uint8Array([104, 105]) }]))).toEqual([{ data: 'aGk=' }]);
  });

  // A Buffer is a Uint8Array, but its toJSON runs before the replacer and turns it into
  // {"type":"Buffer","data":[...]} instead of base64.
  it('writes a Buffer as base64 like any other bytes', () => {
    expect(fromJsonLines(toJsonLines([{ data: Buffer.from('hi') }]))).toEqual([{ data: 'aGk=' }]);
  });

  it('writes a record JSON cannot represent (undefined) as null, keeping the line count', () => {
    expect(fromJsonLines(toJsonLines([undefined, 1]))).toEqual([null, 1]);
  });

  it('writes nothing for no records', () => {
    expect(toJsonLines([]).length).toBe(0);
    expect(fromJsonLines(new Uint8Array())).toEqual([]);
  });

  it('skips empty lines, including a missing final newline', () => {
    expect(fromJsonLines(Buffer.from('1\n\n2'))).toEqual([1, 2]);
  });

  it('throws on a line that is not JSON', () => {
    expect(() => fromJsonLines(Buffer.from('1\n{x\n'))).toThrow(SyntaxError);
  });
});

describe('formatRecord', () => {
  it.each<[unknown, string]>([
    [['spark', 3], '(spark,3)'],
    [[['a', 1], 2], '((a,1),2)'],
    [['k', [1, 2, 3]], '(k,[1,2,3])'],
    [[1, 2, 3], '[1,2,3]'],
    [[], '[]'],
    ['plain', 'plain'],
    [42, '42'],
    [null, 'null'],
    [{ a: 1 }, '{"a":1}'],
    [['k', { a: [1] }], '(k,{"a":[1]})'],
    [undefined, 'undefined'],
  ])('prints %j as %s', (record, text) => {
    expect(formatRecord(record)).toBe(text);
  });

  it('prints bigints inside objects as strings rather than throwing', () => {
    expect(formatRecord({ n: 5n })).toBe('{"n":"5"}');
  });
});

describe('formatBatch', () => {
  it('puts time, batch and counts in the header', () => {
    const text = formatBatch(header, outputOf(['a', 'b', 'c']), 10);

    expect(text.split('\n')[1]).toBe('Time: 1700000010000 ms (batch 7: 12 records in, 3 out)');
  });

  it('adds dead letters and processing time to the header when present', () => {
    const text = formatBatch({ ...header, deadLetters: 2, processingMs: 35 }, [], 10);

    expect(text).toContain('3 out, 2 dead-lettered, processed in 35 ms)');
  });

  it('frames the header with rules and prints one record per line', () => {
    const lines = formatBatch(header, outputOf([['a', 1]], [['b', 2]]), 10).split('\n');

    expect(lines[0]).toMatch(/^-+$/);
    expect(lines[2]).toBe(lines[0]);
    expect(lines.slice(3)).toEqual(['(a,1)', '(b,2)', '']);
  });

  it("prints the first `top` records across partitions and '...' when there are more", () => {
    const text = formatBatch({ ...header, outputRecords: 5 }, outputOf(['r1', 'r2'], ['r3', 'r4', 'r5']), 3);

    expect(text.split('\n').slice(3)).toEqual(['r1', 'r2', 'r3', '...', '']);
  });

  it("prints no '...' when there are exactly `top` records", () => {
    const text = formatBatch(header, outputOf(['r1', 'r2', 'r3']), 3);

    expect(text).not.toContain('...');
  });

  it("prints '...' when the header counts more records than were read", () => {
    const text = formatBatch({ ...header, outputRecords: 100 }, outputOf(['r1', 'r2']), 2);

    expect(text.split('\n').slice(3)).toEqual(['r1', 'r2', '...', '']);
  });

  it('prints only the header for an empty batch', () => {
    const text = formatBatch({ ...header, outputRecords: 0 }, [], 10);

    expect(text.split('\n')).toHaveLength(4);
    expect(text).not.toContain('...');
  });
});
