import { ByteReader, ByteWriter } from '../encoding/bytes';
import { hashKey, mapKey, type MapKey } from '../encoding/key';
import { readValue, UnencodableValueError, writeValue } from '../encoding/value';
import { StateTooLargeError } from '../errors';
import { LIMITS } from '../limits';

/** One key's state: the record key as the user gave it, and the state value. */
export interface StateEntry {
  readonly key: unknown;
  value: unknown;
}

/**
 * Encoded chunks above this size are split (the chunk count doubles). DynamoDB items may hold
 * 400 KB; smaller chunks also mean fewer bytes rewritten when a few keys change, since a write
 * costs one unit per KB.
 */
export const CHUNK_SPLIT_BYTES = 64 * 1024;

/** The chunk of a key among `chunks`: hash bits independent of those that chose its partition. */
export function chunkOf(key: MapKey, chunks: number): number {
  if (chunks === 1) return 0;
  return hashKey(key, 0x9dc5811c) % chunks;
}

/**
 * The state of one reduce partition of one stateful stage, in memory while a batch is applied:
 * an insertion-ordered map (so encoding is deterministic) split into chunks by key hash.
 */
export class StateTable {
  private readonly entries = new Map<MapKey, StateEntry>();
  /** Keys set or deleted since `trackChanges` (with the key as given), when changes are tracked. */
  private changed: Map<MapKey, unknown> | undefined;

  get size(): number {
    return this.entries.size;
  }

  get(key: unknown): StateEntry | undefined {
    return this.entries.get(mapKey(key));
  }

  set(key: unknown, value: unknown): void {
    const k = mapKey(key);
    const entry = this.entries.get(k);
    if (entry) {
      // A primitive set to what it was is no change (running totals of keys without new values).
      if (Object.is(entry.value, value) && (typeof value !== 'object' || value === null)) return;
      entry.value = value;
    } else this.entries.set(k, { key, value });
    this.changed?.set(k, key);
  }

  delete(key: unknown): void {
    const k = mapKey(key);
    if (this.entries.delete(k)) this.changed?.set(k, key);
  }

  /** From now on, remembers which keys are set or deleted (`encodeChanges`). */
  trackChanges(): void {
    this.changed = new Map();
  }

  /** Keys set or deleted since `trackChanges`. */
  get changes(): number {
    return this.changed?.size ?? 0;
  }

  /**
   * Encodes the keys set or deleted since `trackChanges`, in the order first changed: a set key
   * with its value, a deleted one with `undefined` (no state value is undefined), in parts of about
   * `partBytes`; or nothing once they reach `bound` bytes (an empty list when nothing changed). A
   * set key whose value cannot be kept is refused as `encode` refuses it (taken out, handed to
   * `onRefused`) and written as deleted.
   */
  encodeChanges(
    partBytes: number,
    bound: number,
    onRefused?: (key: unknown, value: unknown, error: Error) => void,
  ): Buffer[] | undefined {
    const parts: Buffer[] = [];
    let writer = new ByteWriter(1024);
    let bytes = 0;
    for (const [k, key] of this.changed ?? []) {
      const entry = this.entries.get(k);
      const before = writer.length;
      const refusal = entry ? writeEntry(writer, entry) : undefined;
      if (refusal) {
        if (!onRefused) throw refusal;
        this.entries.delete(k);
        onRefused(key, entry?.value, refusal);
      }
      if (!entry || refusal) {
        writeValue(writer, key);
        writeValue(writer, undefined);
      }
      bytes += writer.length - before;
      if (bytes >= bound) return undefined;
      if (writer.length >= partBytes) {
        parts.push(writer.toBuffer());
        writer = new ByteWriter(1024);
      }
    }
    if (writer.length > 0) parts.push(writer.toBuffer());
    return parts;
  }

  /** Applies encoded changes (`encodeChanges`): sets, and deletes where the value is `undefined`. */
  applyChanges(part: Uint8Array): void {
    forEachPair(part, (key, value) => {
      const k = mapKey(key);
      const entry = this.entries.get(k);
      if (value === undefined) this.entries.delete(k);
      else if (entry) entry.value = value;
      else this.entries.set(k, { key, value });
    });
  }

  /** Every entry, in a fixed order (chunk order as loaded, then keys in the order first set). */
  values(): IterableIterator<StateEntry> {
    return this.entries.values();
  }

  /** Adds the entries of an encoded chunk. */
  load(chunk: Uint8Array): void {
    forEachPair(chunk, (key, value) => this.entries.set(mapKey(key), { key, value }));
  }

  /**
   * Encodes the entries into `chunks` chunks without splitting (the keyed layout's chunk count is
   * the head's): the bodies of the chunks in `only` (every chunk an entry falls in, when not
   * given), empty ones included. Refuses entries as `encode` does.
   */
  encodeChunks(
    chunks: number,
    only?: ReadonlySet<number>,
    onRefused?: (key: unknown, value: unknown, error: Error) => void,
  ): Map<number, Buffer> {
    const writers = new Map<number, ByteWriter>();
    for (const chunk of only ?? []) writers.set(chunk, new ByteWriter(256));
    for (const [k, entry] of this.entries) {
      const chunk = chunkOf(k, chunks);
      let writer = writers.get(chunk);
      if (!writer) {
        if (only) continue;
        writer = new ByteWriter(256);
        writers.set(chunk, writer);
      }
      const refusal = writeEntry(writer, entry);
      if (!refusal) continue;
      if (!onRefused) throw refusal;
      this.entries.delete(k);
      onRefused(entry.key, entry.value, refusal);
    }
    return new Map([...writers].map(([chunk, writer]) => [chunk, writer.toBuffer()]));
  }

  /**
   * Encodes the entries into `chunks` chunks, doubling the count until no chunk of more than one
   * key is over the split size. Empty chunks encode to zero bytes. A key whose encoded state is
   * over `LIMITS.stateEntryBytes` (it could never fit in an item) or cannot be encoded at all is
   * taken out of the table and handed to `onRefused`, never written.
   */
  encode(
    chunks: number,
    onRefused?: (key: unknown, value: unknown, error: Error) => void,
  ): { chunks: number; bodies: Buffer[] } {
    let count = chunks;
    for (;;) {
      const writers = Array.from({ length: count }, () => new ByteWriter(1024));
      const keys = new Array<number>(count).fill(0);
      for (const [k, entry] of this.entries) {
        const chunk = chunkOf(k, count);
        const refusal = writeEntry(writers[chunk] as ByteWriter, entry);
        if (refusal) {
          if (!onRefused) throw refusal;
          this.entries.delete(k);
          onRefused(entry.key, entry.value, refusal);
          continue;
        }
        keys[chunk] = (keys[chunk] ?? 0) + 1;
      }
      const bodies = writers.map((w) => w.toBuffer());
      // A chunk of one key cannot be split further, however large (it is within the entry limit).
      const over = bodies.some((b, i) => b.length > CHUNK_SPLIT_BYTES && (keys[i] ?? 0) > 1);
      if (!over || count >= 4096) return { chunks: count, bodies };
      count *= 2;
    }
  }
}

/** Calls `onPair` with every (key, value) encoded in `bytes`, in order. */
function forEachPair(bytes: Uint8Array, onPair: (key: unknown, value: unknown) => void): void {
  const reader = new ByteReader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  while (!reader.done) {
    const key = readValue(reader);
    onPair(key, readValue(reader));
  }
}

/**
 * Appends one entry, or leaves the writer as it was and returns why it cannot be kept: over
 * `LIMITS.stateEntryBytes` (it could never fit in an item) or not encodable at all.
 */
function writeEntry(writer: ByteWriter, entry: StateEntry): Error | undefined {
  const start = writer.length;
  let refusal: Error | undefined;
  try {
    writeValue(writer, entry.key);
    writeValue(writer, entry.value);
    const bytes = writer.length - start;
    if (bytes > LIMITS.stateEntryBytes) {
      refusal = new StateTooLargeError(
        `the state of one key is ${bytes} bytes encoded, over the ${LIMITS.stateEntryBytes}-byte limit of one state item`,
      );
    }
  } catch (error) {
    if (!(error instanceof UnencodableValueError)) throw error;
    refusal = error;
  }
  if (refusal) writer.truncate(start);
  return refusal;
}
