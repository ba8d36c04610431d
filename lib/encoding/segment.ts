import { ByteReader, ByteWriter } from './bytes';

/** One stream record as the ingest function received it. */
export interface InputRecord {
  /** The Kinesis sequence number: a decimal string, compared as a BigInt. */
  readonly seq: string;
  /** Approximate arrival time at the stream, epoch milliseconds. */
  readonly arrivedAt: number;
  readonly data: Uint8Array;
}

/** A run of whole records inside a segment; tasks read segments block by block with ranged GETs. */
export interface SegmentBlock {
  readonly offset: number;
  readonly records: number;
}

/** Target bytes per block: small enough that a batch of a few hundred KB still splits into tasks. */
export const BLOCK_TARGET_BYTES = 8 * 1024;

/**
 * Encodes records into a segment body (no header: any block's byte range parses on its own) and
 * notes where blocks start.
 *
 * @example
 * const { body, blocks } = encodeSegment(records);
 */
export function encodeSegment(
  records: readonly InputRecord[],
  blockTargetBytes = BLOCK_TARGET_BYTES,
): { body: Buffer; blocks: SegmentBlock[] } {
  const writer = new ByteWriter(Math.max(1024, records.length * 64));
  const blocks: SegmentBlock[] = [];
  let blockStart = 0;
  let inBlock = 0;
  for (const record of records) {
    if (inBlock > 0 && writer.length - blockStart >= blockTargetBytes) {
      blocks.push({ offset: blockStart, records: inBlock });
      blockStart = writer.length;
      inBlock = 0;
    }
    writer.string(record.seq);
    writer.varint(record.arrivedAt);
    writer.bytes(record.data);
    inBlock++;
  }
  if (inBlock > 0) blocks.push({ offset: blockStart, records: inBlock });
  return { body: writer.toBuffer(), blocks };
}

/**
 * Reads the records in `[start, end)` of a segment body.
 *
 * @example
 * for (const r of decodeSegment(body)) console.log(r.seq);
 */
export function* decodeSegment(body: Buffer, start = 0, end = body.length): Generator<InputRecord> {
  const reader = new ByteReader(body, start, end);
  while (!reader.done) {
    const seq = reader.string();
    const arrivedAt = reader.varint();
    const data = reader.bytes();
    yield { seq, arrivedAt, data };
  }
}

/**
 * Blocks as one compact string for the ledger item (`offset.records` pairs, offsets as deltas),
 * because a 6 MB segment has hundreds of them and DynamoDB lists of numbers are bulky.
 *
 * @example
 * parseBlocks(formatBlocks(blocks)); // deep-equals blocks
 */
export function formatBlocks(blocks: readonly SegmentBlock[]): string {
  let previous = 0;
  return blocks
    .map((b) => {
      const text = `${(b.offset - previous).toString(36)}.${b.records.toString(36)}`;
      previous = b.offset;
      return text;
    })
    .join(',');
}

/** Inverse of `formatBlocks`. */
export function parseBlocks(text: string): SegmentBlock[] {
  if (text === '') return [];
  let offset = 0;
  return text.split(',').map((part) => {
    if (!/^[0-9a-z]+\.[0-9a-z]+$/.test(part)) throw new RangeError(`malformed block list near '${part}'`);
    const [delta, records] = part.split('.');
    offset += parseInt(delta ?? '', 36);
    const block = { offset, records: parseInt(records ?? '', 36) };
    if (!Number.isSafeInteger(block.offset) || !Number.isSafeInteger(block.records)) {
      throw new RangeError(`malformed block list near '${part}'`);
    }
    return block;
  });
}

/**
 * Pads a Kinesis sequence number so that string order is numeric order (ledger sort keys).
 *
 * @example
 * padSeq('49590338271490256608559692538361571095921575989136588898');
 */
export function padSeq(seq: string): string {
  if (!/^\d{1,64}$/.test(seq)) throw new RangeError(`'${seq}' is not a sequence number`);
  return seq.padStart(64, '0');
}

/**
 * Walks the records of a segment body in place: one object for all records, and the sequence
 * number and data made only when asked for. Reading a segment is the hot path of every transform
 * task; a generator yielding a fresh object, string and Buffer per record cost a tenth of it.
 *
 * @example
 * const cursor = new SegmentCursor(body, 'lines/shardId-000000000000', key);
 * while (cursor.next()) use(cursor.data);
 */
export class SegmentCursor {
  private position: number;
  private seqStart = 0;
  private seqEnd = 0;
  private dataStart = 0;
  private dataEnd = 0;
  private arrival = 0;

  constructor(
    private readonly body: Buffer,
    readonly shard: string,
    readonly segment: string,
    start = 0,
    private readonly end = body.length,
  ) {
    this.position = start;
  }

  /** Moves to the next record; false at the end. */
  next(): boolean {
    if (this.position >= this.end) return false;
    const seqLength = this.varint();
    this.seqStart = this.position;
    this.seqEnd = this.position += seqLength;
    this.arrival = this.varint();
    const dataLength = this.varint();
    this.dataStart = this.position;
    this.dataEnd = this.position += dataLength;
    if (this.position > this.end) throw new RangeError('truncated segment');
    return true;
  }

  /** The record's sequence number (ASCII digits). */
  get seq(): string {
    return this.body.toString('latin1', this.seqStart, this.seqEnd);
  }

  get arrivedAt(): number {
    return this.arrival;
  }

  /** The record's bytes, a view into the segment body. */
  get data(): Buffer {
    return this.body.subarray(this.dataStart, this.dataEnd);
  }

  private varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (this.position >= this.end) throw new RangeError('truncated segment');
      const byte = this.body[this.position++] as number;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 0x80;
    }
  }
}
