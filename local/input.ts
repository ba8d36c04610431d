import { accessSync, constants, statSync } from 'node:fs';
import { LIMITS } from '../lib/limits';

const LF = 0x0a;
const CR = 0x0d;

/**
 * The longest line `sluice local run` sends as a record, in bytes. Kinesis counts the data and the
 * partition key together against its record limit; the local runtime's partition keys are short
 * decimal counters, which the 256 bytes left over hold with room to spare.
 *
 * @example
 * if (line.length > MAX_RECORD_BYTES) refuse(line);
 */
export const MAX_RECORD_BYTES = LIMITS.kinesisRecordBytes - 256;

/**
 * How `readRecords` groups and limits records.
 *
 * @example
 * const options: ReadRecordsOptions = { chunk: 500, onRefused: (line, bytes) => warn(line, bytes) };
 */
export interface ReadRecordsOptions {
  /** Records per yielded chunk; every chunk is this full except the last (and, with `eager`, a read's last). */
  readonly chunk: number;
  /** The longest record in bytes; a longer line is refused, not yielded. @default MAX_RECORD_BYTES */
  readonly maxBytes?: number;
  /**
   * Told of every line longer than `maxBytes`: its 1-based line number and its length in bytes,
   * line end excluded. Reading goes on with the next line. Required, so that no caller drops a
   * line without a word.
   */
  readonly onRefused: (line: number, bytes: number) => void;
  /**
   * Yield the records of each read as soon as it is read, rather than wait for a full chunk: for
   * input that arrives slowly (a terminal, a pipe) and should reach the stream as it comes.
   * @default false
   */
  readonly eager?: boolean;
}

/**
 * Splits a byte stream into records, one per line, and yields them in chunks. A record is the
 * line's bytes as they are, so that the pipeline's decoder, not this reader, decides what is valid
 * (invalid UTF-8 reaches a `utf8` source and is dead-lettered there). LF ends a line and CRLF is
 * one line end; a CR anywhere else is data. An empty line is an empty record; a final line without
 * a line end is a record, and a line end at the very end of the input adds none. The input is read
 * as it streams: a line is held only while it could still be a record, so a line over the limit
 * costs no more memory than the limit.
 *
 * @example
 * const input = createReadStream('lines.txt'); // no encoding: bytes, not text
 * for await (const records of readRecords(input, { chunk: 500, onRefused: (n, size) => warn(n, size) })) {
 *   await run.pushRaw(records);
 * }
 */
export async function* readRecords(
  input: AsyncIterable<Uint8Array | string>,
  options: ReadRecordsOptions,
): AsyncGenerator<Buffer[]> {
  const { chunk, maxBytes = MAX_RECORD_BYTES, onRefused, eager = false } = options;
  if (!Number.isSafeInteger(chunk) || chunk < 1) {
    throw new RangeError(`chunk must be a positive whole number, got ${chunk}`);
  }
  let records: Buffer[] = [];
  // The current line: its bytes while it may still be a record, its length so far (counting a
  // final CR that may turn out to be half of a CRLF), and its last byte.
  let pieces: Buffer[] = [];
  let length = 0;
  let last = -1;
  let line = 1;

  const append = (part: Buffer): void => {
    length += part.length;
    last = part[part.length - 1] ?? last;
    // One byte over the limit may still be the CR of a CRLF; past that, the line is refused
    // whatever comes, and only its length is kept.
    if (length <= maxBytes + 1) pieces.push(part);
    else pieces = [];
  };
  const endLine = (lineEnd: 'LF' | 'EOF'): void => {
    const size = lineEnd === 'LF' && last === CR ? length - 1 : length;
    if (size > maxBytes) onRefused(line, size);
    else {
      const bytes = pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, length);
      records.push(size === length ? bytes : bytes.subarray(0, size));
    }
    pieces = [];
    length = 0;
    last = -1;
    line++;
  };

  for await (const data of input) {
    if (typeof data === 'string') {
      throw new TypeError('the input stream yields text: read it without an encoding, as bytes');
    }
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    for (let start = 0; start < bytes.length;) {
      const lf = bytes.indexOf(LF, start);
      const end = lf === -1 ? bytes.length : lf;
      if (end > start) append(bytes.subarray(start, end));
      if (lf === -1) break;
      endLine('LF');
      start = lf + 1;
      if (records.length >= chunk) {
        yield records;
        records = [];
      }
    }
    if (eager && records.length > 0) {
      yield records;
      records = [];
    }
  }
  if (length > 0) endLine('EOF');
  if (records.length > 0) yield records;
}

/**
 * Why a file cannot be read as input, in a few words, or `undefined` when it can. Checked before a
 * run starts, so that a mistyped name costs no emulator start-up.
 *
 * @example
 * unreadableReason('no/such/file.txt'); // 'no such file'
 * unreadableReason('examples'); // 'it is a directory'
 */
export function unreadableReason(file: string): string | undefined {
  try {
    if (statSync(file).isDirectory()) return 'it is a directory';
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'no such file';
    if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
    return error instanceof Error ? error.message : String(error);
  }
}
