import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import type { AwsClients } from '../../lib/aws';
import { ObjectStore } from '../../lib/storage/objects';

/*
 * Objects of a pipeline's bucket, for tests that compare what a replay wrote with what the
 * pipeline wrote: by name relative to where each is, byte for byte.
 */

/** Every object under a prefix of a bucket, by key. */
export async function objectsUnder(
  clients: AwsClients,
  bucket: string,
  prefix: string,
): Promise<Map<string, Buffer>> {
  const store = new ObjectStore(clients.s3, bucket);
  const objects = new Map<string, Buffer>();
  let token: string | undefined;
  do {
    const page = await clients.s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const { Key: key } of page.Contents ?? []) {
      if (key !== undefined) objects.set(key, await store.get(key));
    }
    token = page.NextContinuationToken;
  } while (token);
  return objects;
}

/** The batch a key names (`batch-<n:10>`), or 0. */
function batchOf(key: string): number {
  return Number(/batch-(\d{10})/.exec(key)?.[1] ?? 0);
}

/**
 * What the pipeline itself wrote for batches `from`..`to` (its output and dead letters), by the
 * names a replay gives them under its prefix.
 */
export async function originals(
  clients: AwsClients,
  bucket: string,
  output: string,
  from: number,
  to: number,
): Promise<Map<string, Buffer>> {
  const named = new Map<string, Buffer>();
  for (const [key, body] of await objectsUnder(clients, bucket, output)) {
    if (batchOf(key) >= from && batchOf(key) <= to) named.set(key.slice(output.length), body);
  }
  for (const [key, body] of await objectsUnder(clients, bucket, 'dead-letter/')) {
    if (batchOf(key) >= from && batchOf(key) <= to) named.set(key, body);
  }
  return named;
}

/** What a replay wrote under its prefix, by the names relative to it. */
export async function replayed(
  clients: AwsClients,
  bucket: string,
  prefix: string,
): Promise<Map<string, Buffer>> {
  const named = new Map<string, Buffer>();
  for (const [key, body] of await objectsUnder(clients, bucket, `${prefix}/`)) {
    named.set(key.slice(prefix.length + 1), body);
  }
  return named;
}

/** Two sets of objects are the same: the same names, each with the same bytes. */
export function expectSameObjects(actual: Map<string, Buffer>, expected: Map<string, Buffer>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, body] of expected) {
    expect(actual.get(key)?.equals(body), `${key} differs`).toBe(true);
  }
}
