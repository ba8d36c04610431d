import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level: equal data gives equal text whatever the order its
 * keys were set in, so it can be hashed.
 *
 * @example
 * canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }); // '{"a":[2,{"c":4,"d":3}],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) sorted[key] = (v as Record<string, unknown>)[key];
    return sorted;
  });
}

/**
 * A short, stable fingerprint of JSON data: the first 16 hex digits of the SHA-256 of its
 * canonical JSON. Used to compare specs (a sealed plan with a bundle's) without comparing text.
 *
 * @example
 * fingerprint({ kind: 'sluice.stage/map@1', id: 'tokenize' }); // '3f1c…' (16 hex digits)
 */
export function fingerprint(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}
