import { ByteReader, ByteWriter } from './bytes';
import { readValue, UnencodableValueError, writeValue } from './value';

/**
 * One shuffle file per task: for each reduce partition in order, a run of (key, value) pairs.
 * `index[p]` and `index[p + 1]` bound partition p's run, so a reducer reads just its run with one
 * ranged GET. An empty run takes no bytes.
 */
export interface EncodedShuffle {
  readonly body: Buffer;
  readonly index: readonly number[];
}

/**
 * Encodes per-partition runs. Each run is an iterable of [key, value] (a combiner when combining
 * map-side, a raw value otherwise); order is kept, so equal input gives equal bytes.
 *
 * @example
 * const { body, index } = encodeShuffle([[['a', 2]], [], [['b', 1]]]);
 */
export function encodeShuffle(
  runs: readonly Iterable<readonly [unknown, unknown]>[],
  onRefused?: (key: unknown, value: unknown, error: UnencodableValueError) => void,
): EncodedShuffle {
  const writer = new ByteWriter();
  const index: number[] = [0];
  for (const run of runs) {
    for (const [key, value] of run) writePair(writer, key, value, onRefused);
    index.push(writer.length);
  }
  return { body: writer.toBuffer(), index };
}

/**
 * Appends one (key, value) pair of a run. A pair that cannot be encoded is left out whole (its
 * bytes so far dropped) and handed to `onRefused` to dead-letter; without it the task fails.
 *
 * @example
 * writePair(writer, 'spark', 3);
 */
export function writePair(
  writer: ByteWriter,
  key: unknown,
  value: unknown,
  onRefused?: (key: unknown, value: unknown, error: UnencodableValueError) => void,
): void {
  const start = writer.length;
  try {
    writeValue(writer, key);
    writeValue(writer, value);
  } catch (error) {
    if (!(error instanceof UnencodableValueError) || !onRefused) throw error;
    writer.truncate(start);
    onRefused(key, value, error);
  }
}

/**
 * Calls `onPair` for every (key, value) in a run.
 *
 * @example
 * decodeRun(body, 0, body.length, (k, v) => merged.set(k, v));
 */
export function decodeRun(
  body: Buffer,
  start: number,
  end: number,
  onPair: (key: unknown, value: unknown) => void,
): number {
  const reader = new ByteReader(body, start, end);
  let pairs = 0;
  while (!reader.done) {
    const key = readValue(reader);
    onPair(key, readValue(reader));
    pairs++;
  }
  return pairs;
}
