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
  if (typeof key === 'string') return key.charCodeAt(0) === 0 ? COMPOSITE + canonical(key) : key;
  if (key === null || typeof key !== 'object') return key as MapKey;
  return COMPOSITE + canonical(key);
}

/**
 * A canonical text of a value, tagged by type so that no two distinct keys share it: strings are
 * quoted, numbers keep NaN and Infinity, and bigint, undefined and bytes have forms no object has.
 */
function canonical(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Object.is(value, -0) ? '0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return 'undefined';
    default:
      break;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value instanceof Uint8Array) return `<${Buffer.from(value).toString('base64')}>`;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(object[k])}`).join(',')}}`;
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
  return hashKey(key, 0x811c9dc5) % partitions;
}

/**
 * The merge pass of a key among `passes`, when a reduce partition's input is merged in several
 * passes (each keeps its own share of the keys): hash bits independent of those that chose its
 * partition and its state chunk.
 *
 * @example
 * passOf('spark', 3); // 0, 1 or 2, the same on every machine
 */
export function passOf(key: MapKey, passes: number): number {
  if (passes === 1) return 0;
  return hashKey(key, 0xc5811c9d) % passes;
}

/**
 * A stable 32-bit hash of a map key: FNV-1a over its text from the given offset basis, finished
 * with murmur3's mixer. Different bases give independent hashes (partitions, state chunks).
 *
 * @example
 * hashKey('spark', 0x811c9dc5);
 */
export function hashKey(key: MapKey, basis: number): number {
  const text = typeof key === 'string' ? key : `${typeof key}:${String(key)}`;
  let hash = basis;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
