import { ByteReader, ByteWriter } from '../encoding/bytes';
import { hashKey, mapKey, type MapKey } from '../encoding/key';
import { readValue, writeValue } from '../encoding/value';

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

  get size(): number {
    return this.entries.size;
  }

  get(key: unknown): StateEntry | undefined {
    return this.entries.get(mapKey(key));
  }

  set(key: unknown, value: unknown): void {
    const k = mapKey(key);
    const entry = this.entries.get(k);
    if (entry) entry.value = value;
    else this.entries.set(k, { key, value });
  }

  delete(key: unknown): void {
    this.entries.delete(mapKey(key));
  }

  /** Every entry, in a fixed order (chunk order as loaded, then keys in the order first set). */
  values(): IterableIterator<StateEntry> {
    return this.entries.values();
  }

  /** Adds the entries of an encoded chunk. */
  load(chunk: Uint8Array): void {
    const buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const reader = new ByteReader(buffer);
    while (!reader.done) {
      const key = readValue(reader);
      this.entries.set(mapKey(key), { key, value: readValue(reader) });
    }
  }

  /**
   * Encodes the entries into `chunks` chunks, doubling the count until none is over the split
   * size. Empty chunks encode to zero bytes.
   */
  encode(chunks: number): { chunks: number; bodies: Buffer[] } {
    let count = chunks;
    for (;;) {
      const writers = Array.from({ length: count }, () => new ByteWriter(1024));
      for (const [k, entry] of this.entries) {
        const writer = writers[chunkOf(k, count)] as ByteWriter;
        writeValue(writer, entry.key);
        writeValue(writer, entry.value);
      }
      const bodies = writers.map((w) => w.toBuffer());
      if (bodies.every((b) => b.length <= CHUNK_SPLIT_BYTES) || count >= 4096)
        return { chunks: count, bodies };
      count *= 2;
    }
  }
}
