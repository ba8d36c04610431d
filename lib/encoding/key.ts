/**
 * Keys of keyed stages may be any plain value. Primitive keys are used as `Map` keys directly
 * (SameValueZero keeps 1 and '1' apart); composite keys (tuples, objects) get a canonical string
 * so that equal structures meet in the same map entry and the same partition.
 */
export type MapKey = string | number | boolean | bigint | null | undefined;

const COMPOSITE = '\u0000';

/**
 * The `Map` key that stands for a record key.
 *
 * @example
 * mapKey(['a', 1]) === mapKey(['a', 1]); // true
 */
export function mapKey(key: unknown): MapKey {
  if (key === null || typeof key !== 'object') return key as MapKey;
  return COMPOSITE + canonicalJson(key);
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return `{"$bigint":"${value.toString()}"}`;
    if (value === undefined) return '{"$undefined":1}';
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value instanceof Uint8Array) return `{"$bytes":"${Buffer.from(value).toString('base64')}"}`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/**
 * The reduce partition of a key: a stable 32-bit FNV-1a hash, finished with murmur3's mixer so
 * that similar keys spread, modulo the partition count. Stable across processes and versions:
 * changing it would move keys between partitions and with them their state.
 *
 * @example
 * partitionOf('spark', 4); // the same number on every machine
 */
export function partitionOf(key: MapKey, partitions: number): number {
  if (partitions === 1) return 0;
  const text = typeof key === 'string' ? key : `${typeof key}:${String(key)}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) % partitions;
}
