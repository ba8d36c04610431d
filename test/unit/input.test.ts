import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_RECORD_BYTES, readRecords, unreadableReason, type ReadRecordsOptions } from '../../local/input';

interface Read {
  readonly chunks: Buffer[][];
  readonly refused: [line: number, bytes: number][];
}

async function read(pieces: readonly Buffer[], options: Partial<ReadRecordsOptions> = {}): Promise<Read> {
  const refused: [number, number][] = [];
  const chunks: Buffer[][] = [];
  const input = Readable.from(pieces);
  for await (const chunk of readRecords(input, {
    chunk: 1000,
    onRefused: (line, bytes) => refused.push([line, bytes]),
    ...options,
  })) {
    chunks.push(chunk);
  }
  return { chunks, refused };
}

/** The input cut at `at`: the two halves, without an empty piece. */
function splitAt(input: Buffer, at: number): Buffer[] {
  return [input.subarray(0, at), input.subarray(at)].filter((piece) => piece.length > 0);
}

/** The input one byte per read. */
function bytewise(input: Buffer): Buffer[] {
  return [...input].map((byte) => Buffer.from([byte]));
}

/** Every way the tests cut an input into reads: whole, at each byte position, and byte by byte. */
function cuts(input: Buffer): { label: string; pieces: Buffer[] }[] {
  const all = [
    { label: 'whole', pieces: [input] },
    { label: 'bytewise', pieces: bytewise(input) },
  ];
  for (let at = 1; at < input.length; at++) all.push({ label: `split at ${at}`, pieces: splitAt(input, at) });
  return all;
}

const b = (text: string): Buffer => Buffer.from(text, 'latin1');

/** Records as Latin-1 text: one character per byte, so any bytes compare exactly and read plainly. */
const bytes = (records: readonly Buffer[]): string[] => records.map((record) => record.toString('latin1'));

describe('readRecords', () => {
  it.each([
    { name: 'CRLF ends a line', input: b('a b\r\ncd\r\n'), records: [b('a b'), b('cd')] },
    { name: 'LF ends a line', input: b('a b\ncd\n'), records: [b('a b'), b('cd')] },
    { name: 'a lone CR is data', input: b('a\rb\n\rc\r\r\n'), records: [b('a\rb'), b('\rc\r')] },
    { name: 'a CR at the end of the input is data', input: b('x\r'), records: [b('x\r')] },
    {
      name: 'empty lines are records',
      input: b('\n\nx\n\r\n\n'),
      records: [b(''), b(''), b('x'), b(''), b('')],
    },
    { name: 'a last line without a line end', input: b('one\ntwo'), records: [b('one'), b('two')] },
    { name: 'a line end alone', input: b('\n'), records: [b('')] },
    { name: 'no input', input: b(''), records: [] },
    {
      name: 'invalid UTF-8 as it is',
      input: Buffer.from([0x63, 0x61, 0x66, 0xc3, 0x0a, 0xff, 0xfe, 0x0d, 0x0a, 0xe2, 0x82, 0x0d]),
      records: [
        Buffer.from([0x63, 0x61, 0x66, 0xc3]),
        Buffer.from([0xff, 0xfe]),
        Buffer.from([0xe2, 0x82, 0x0d]),
      ],
    },
  ])('$name, however the input is cut into reads', async ({ input, records }) => {
    for (const { label, pieces } of cuts(input)) {
      const { chunks, refused } = await read(pieces);

      expect(bytes(chunks.flat()), label).toEqual(bytes(records));
      expect(
        chunks.flat().every((record) => Buffer.isBuffer(record)),
        label,
      ).toBe(true);
      expect(refused, label).toEqual([]);
    }
  });

  it('joins a line longer than a read from many reads', async () => {
    const long = Buffer.alloc(300_000, 'a');
    const input = Buffer.concat([b('first\n'), long, b('\r\nlast')]);
    const pieces: Buffer[] = [];
    for (let at = 0; at < input.length; at += 4_096) pieces.push(input.subarray(at, at + 4_096));

    const { chunks, refused } = await read(pieces);

    expect(bytes(chunks.flat())).toEqual(bytes([b('first'), long, b('last')]));
    expect(refused).toEqual([]);
  });

  it('refuses a line over the limit with its line number and size, and reads on', async () => {
    // Limit 8: a ninth byte may be the CR of a CRLF (line 4), or data (lines 5 to 7).
    const input = b('ok\n0123456789\r\n\nfits1234\r\nabcdefgh\rX\nabcdefghi\nover1234\r\r\nend');

    for (const { label, pieces } of cuts(input)) {
      const { chunks, refused } = await read(pieces, { maxBytes: 8 });

      expect(bytes(chunks.flat()), label).toEqual(['ok', '', 'fits1234', 'end']);
      expect(refused, label).toEqual([
        [2, 10],
        [5, 10],
        [6, 9],
        [7, 9],
      ]);
    }
  });

  it("holds Kinesis's record limit: the largest line is sent, one byte more is refused", async () => {
    const largest = Buffer.alloc(MAX_RECORD_BYTES, 'x');
    const over = Buffer.alloc(MAX_RECORD_BYTES + 1, 'y');
    const input = Buffer.concat([largest, b('\r\n'), over, b('\nafter\n'), over]);
    const pieces: Buffer[] = [];
    for (let at = 0; at < input.length; at += 65_536) pieces.push(input.subarray(at, at + 65_536));

    const { chunks, refused } = await read(pieces);

    expect(chunks.flat().map((record) => record.length)).toEqual([MAX_RECORD_BYTES, 5]);
    expect(chunks.flat()[0]?.equals(largest)).toBe(true);
    expect(refused).toEqual([
      [2, MAX_RECORD_BYTES + 1],
      [4, MAX_RECORD_BYTES + 1],
    ]);
  });

  it('yields full chunks of records, empty lines included, and the rest at the end', async () => {
    const input = b('a\n\nb\r\nc\n\n');

    for (const { label, pieces } of cuts(input)) {
      const { chunks } = await read(pieces, { chunk: 2 });

      expect(chunks.map(bytes), label).toEqual([['a', ''], ['b', 'c'], ['']]);
    }
  });

  it('eager: yields what each read completed without waiting for a full chunk', async () => {
    const { chunks } = await read([b('a\nb'), b('\nc\nd\ne\n'), b('f')], { chunk: 2, eager: true });

    expect(chunks.map(bytes)).toEqual([['a'], ['b', 'c'], ['d', 'e'], ['f']]);
  });

  it('refuses a stream that yields text, whose bytes are already lost', async () => {
    const records = readRecords(Readable.from(['text\n']), { chunk: 1, onRefused: () => {} });

    await expect(records.next()).rejects.toThrow(/without an encoding/);
  });

  it('refuses a chunk size that is not a positive whole number', async () => {
    const records = readRecords(Readable.from([b('a\n')]), { chunk: 0, onRefused: () => {} });

    await expect(records.next()).rejects.toThrow(RangeError);
  });
});

describe('unreadableReason', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-input-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('says why a path cannot be read as input, and nothing when it can', () => {
    const file = path.join(dir, 'lines.txt');
    writeFileSync(file, 'a\n');

    expect(unreadableReason(file)).toBeUndefined();
    expect(unreadableReason(path.join(dir, 'missing.txt'))).toBe('no such file');
    expect(unreadableReason(path.join(file, 'below-a-file.txt'))).toBe('no such file');
    expect(unreadableReason(dir)).toBe('it is a directory');
  });
});
