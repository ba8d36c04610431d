/**
 * The versions of the binary formats sluice persists, in one place. Each is named the way every
 * persisted kind is: `sluice.<thing>@<version>`. A change to how any of them encodes bytes must
 * bump its version here (the golden-byte tests in `test/unit/golden.test.ts` fail until it does),
 * and the version is recorded where the bytes are found from:
 *
 * - `segment`: on every segment's ledger item, checked by the coordinator before it seals one;
 * - `shuffle`: in the plan's fingerprint, so a task never reads shuffle files of another format;
 * - `chunk`: on every state head, checked before a partition's chunks are read.
 *
 * @example
 * if (head.format !== DATA_FORMATS.chunk) throw new DataFormatError(`state in ${head.format}`);
 */
export const DATA_FORMATS = Object.freeze({
  /** Input segments: records as (sequence number, arrival time, bytes), in blocks. */
  segment: 'sluice.segment@1',
  /** Shuffle files: per reduce partition, a run of (key, value) pairs in the value encoding. */
  shuffle: 'sluice.shuffle@1',
  /** State chunks: (key, value) entries in the value encoding. */
  chunk: 'sluice.chunk@1',
} as const);

/** The format names this code reads and writes. */
export type DataFormats = typeof DATA_FORMATS;
