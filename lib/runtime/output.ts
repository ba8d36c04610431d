import { inspect } from 'node:util';
import { UnencodableValueError } from '../encoding/value';
import { partitionId } from '../ids';
import { outputKey } from '../storage/keys';
import type { BatchItem } from '../batch';
import type { ObjectStore } from '../storage/objects';

/** One partition's output of a batch. */
export interface PartitionOutput {
  readonly partition: number;
  readonly records: readonly unknown[];
}

/**
 * What JSON would change or drop in a value, named (`NaN`, `a Map`, `a function`), or `undefined`
 * for what it keeps: a Map or Set would become `{}`, a Date a string, a function or a symbol would
 * vanish, NaN and Infinity would become `null`.
 */
function changedByJson(raw: unknown): string | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) ? undefined : String(raw);
  if (typeof raw === 'function' || typeof raw === 'symbol') return `a ${typeof raw}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const proto = Object.getPrototypeOf(raw) as unknown;
  if (proto === Object.prototype || proto === null) return undefined;
  return `a ${(raw as { constructor?: { name?: string } }).constructor?.name ?? 'object'}`;
}

/**
 * A JSON replacer: bigints as decimal strings and bytes as base64 (sluice's two documented
 * conversions), and `changed` deciding what becomes of a value JSON would change. `undefined`
 * stays JSON's own: `null` in arrays (the missing side of an outer join), left out of objects.
 */
function replacerWith(
  changed: (raw: unknown, what: string, value: unknown) => unknown,
): (this: unknown, key: string, value: unknown) => unknown {
  return function (this: unknown, key: string, value: unknown): unknown {
    // A Buffer's or a Date's own toJSON has run by now; the holder still has the raw value.
    const raw = (this as Record<string, unknown>)[key];
    if (typeof raw === 'bigint') return raw.toString();
    if (raw instanceof Uint8Array) return Buffer.from(raw).toString('base64');
    const what = changedByJson(raw);
    return what === undefined ? value : changed(raw, what, value);
  };
}

/** `JSON.stringify` typed as it behaves: `undefined` for undefined, a function or a symbol. */
function stringify(value: unknown, replacer: ReturnType<typeof replacerWith>): string | undefined {
  return JSON.stringify(value, replacer);
}

/** For values already plain (dead letters, records read back): JSON as it is, with the conversions. */
const plain = replacerWith((_raw, _what, value) => value);

/** For output records: what JSON would change is refused, never written changed. */
const strict = replacerWith((raw, what) => {
  const plainData =
    typeof raw === 'object'
      ? ': output records must be plain data (strings, numbers, booleans, bigints, null, arrays, plain objects, bytes)'
      : '';
  throw new UnencodableValueError(`cannot write ${what} as JSON${plainData}`);
});

/** For dead letters: what JSON would change is shown as text, so the letter says what it was. */
const described = replacerWith((raw) => inspect(raw, { depth: 2, breakLength: Infinity }));

/**
 * A value as JSON would keep it, for dead letters (never throws). What JSON would change or lose
 * (a Map, a function, NaN) is shown as text instead, so the dead letter says what it was.
 *
 * @example
 * jsonSafe({ avg: NaN, seen: new Set([1]) }); // { avg: 'NaN', seen: 'Set(1) { 1 }' }
 */
export function jsonSafe(value: unknown): unknown {
  try {
    return JSON.parse(stringify(value, described) ?? 'null') as unknown;
  } catch {
    return inspect(value, { depth: 4, breakLength: Infinity });
  }
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
    return stringify(record, strict) ?? 'null';
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
  for (const record of records) text += `${stringify(record, plain) ?? 'null'}\n`;
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
  return stringify(record, plain) ?? String(record);
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
