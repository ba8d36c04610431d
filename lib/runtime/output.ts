import { UnencodableValueError } from '../encoding/value';
import { partitionId } from '../ids';
import { outputKey } from '../storage/keys';
import type { BatchItem } from '../storage/ledger';
import type { ObjectStore } from '../storage/objects';

/** One partition's output of a batch. */
export interface PartitionOutput {
  readonly partition: number;
  readonly records: readonly unknown[];
}

function replacer(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  // A Buffer's own toJSON has run by now; the holder still has the raw bytes.
  const raw = (this as Record<string, unknown>)[key];
  if (raw instanceof Uint8Array) return Buffer.from(raw).toString('base64');
  return value;
}

/**
 * The JSON replacer of output records: what JSON would silently change is refused instead. A Map
 * or Set would become `{}`, a Date a string, a function or a symbol would vanish, NaN and Infinity
 * would become `null`. Bigints are written as strings and bytes as base64 (documented), and
 * `undefined` as `null` in arrays (the missing side of an outer join).
 */
function strict(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  if (typeof raw === 'bigint') return raw.toString();
  if (raw instanceof Uint8Array) return Buffer.from(raw).toString('base64');
  if (typeof raw === 'number' && !Number.isFinite(raw)) {
    throw new UnencodableValueError(`cannot write ${raw} as JSON`);
  }
  if (typeof raw === 'function' || typeof raw === 'symbol') {
    throw new UnencodableValueError(`cannot write a ${typeof raw} as JSON`);
  }
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const proto = Object.getPrototypeOf(raw) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      const name = (raw as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      throw new UnencodableValueError(
        `cannot write a ${name} as JSON: output records must be plain data (strings, numbers, booleans, bigints, null, arrays, plain objects, bytes)`,
      );
    }
  }
  return value;
}

/**
 * One output record as a line of JSON, or an `UnencodableValueError` for a record JSON would
 * change (see `strict`); a circular record is refused too.
 *
 * @example
 * toJsonLine(['spark', 3]); // '["spark",3]'
 * toJsonLine(['avg', NaN]); // throws UnencodableValueError
 */
export function toJsonLine(record: unknown): string {
  try {
    return JSON.stringify(record, strict) ?? 'null';
  } catch (error) {
    if (error instanceof UnencodableValueError) throw error;
    throw new UnencodableValueError(`cannot write the record as JSON: ${(error as Error).message}`);
  }
}

/**
 * Output records (or dead letters) as JSON Lines (bigints as strings, bytes as base64). For output
 * the runtime encodes record by record with `toJsonLine`, refusing what JSON would change.
 *
 * @example
 * toJsonLines([['spark', 3]]); // '["spark",3]\n'
 */
export function toJsonLines(records: readonly unknown[]): Buffer {
  let text = '';
  for (const record of records) text += `${JSON.stringify(record, replacer) ?? 'null'}\n`;
  return Buffer.from(text, 'utf8');
}

/** Parses JSON Lines. */
export function fromJsonLines(body: Uint8Array): unknown[] {
  const text = Buffer.from(body).toString('utf8');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as unknown);
}

/**
 * Reads a completed batch's output objects, partition by partition; with `limit`, stops once it
 * has that many records.
 *
 * @example
 * const parts = await readBatchOutput(objects, 'output', item);
 */
export async function readBatchOutput(
  objects: ObjectStore,
  prefix: string,
  item: BatchItem,
  limit = Number.POSITIVE_INFINITY,
): Promise<PartitionOutput[]> {
  const result: PartitionOutput[] = [];
  let total = 0;
  for (const partition of item.summary?.outputPartitions ?? []) {
    if (total >= limit) break;
    const records = fromJsonLines(await objects.get(outputKey(prefix, item.batch, partitionId(partition))));
    result.push({ partition, records });
    total += records.length;
  }
  return result;
}

/** Renders a record the way Scala prints it: tuples as `(a,b)`. */
export function formatRecord(record: unknown): string {
  if (Array.isArray(record) && record.length === 2)
    return `(${formatRecord(record[0])},${formatRecord(record[1])})`;
  if (Array.isArray(record)) return `[${record.map(formatRecord).join(',')}]`;
  if (typeof record === 'string' || typeof record === 'bigint') return String(record);
  return JSON.stringify(record, replacer) ?? String(record);
}

/** What the header of a printed batch says. */
export interface BatchHeader {
  readonly batch: number;
  /** Batch time, epoch milliseconds. */
  readonly time: number;
  readonly inputRecords: number;
  readonly outputRecords: number;
  readonly deadLetters: number;
  readonly processingMs?: number;
}

/**
 * Formats a batch like Spark's `DStream.print()`: a header with the batch time, the record count
 * and the processing time, then the first `top` records, then `...` if there were more.
 *
 * @example
 * console.log(formatBatch(header, await readBatchOutput(objects, 'output', item, 10), 10));
 */
export function formatBatch(header: BatchHeader, output: readonly PartitionOutput[], top = 10): string {
  const rule = '-------------------------------------------';
  const processing = header.processingMs === undefined ? '' : `, processed in ${header.processingMs} ms`;
  const dead = header.deadLetters > 0 ? `, ${header.deadLetters} dead-lettered` : '';
  const lines = [
    rule,
    `Time: ${header.time} ms (batch ${header.batch}: ${header.inputRecords} records in, ${header.outputRecords} out${dead}${processing})`,
    rule,
  ];
  const records = output.flatMap((p) => p.records);
  for (const record of records.slice(0, top)) lines.push(formatRecord(record));
  if (Math.max(header.outputRecords, records.length) > top) lines.push('...');
  lines.push('');
  return lines.join('\n');
}
