import { batchId } from '../lib/ids';
import { parseManifest } from '../lib/manifest';
import { manifestKey } from '../lib/storage/keys';
import type { ObjectStore } from '../lib/storage/objects';

/**
 * One end of a range of batches, as an operator names it: a batch number, or a time (an ISO time or
 * epoch milliseconds) that stands for the batches whose interval ends then or later (`--from`) or
 * then or earlier (`--to`).
 *
 * @example
 * const from: BatchOrTime = { batch: 3 };
 * const to: BatchOrTime = { time: Date.parse('2026-12-02T00:00Z') };
 */
export type BatchOrTime = { readonly batch: number } | { readonly time: number };

/**
 * The smallest whole number read as epoch milliseconds rather than a batch number: 10^11 ms is in
 * 1973, and no pipeline seals that many batches (a 100 ms interval would take three centuries).
 */
const EPOCH_MS_FROM = 1e11;

/**
 * Reads one end of a range: a whole number is a batch number (epoch milliseconds from 10^11 on),
 * anything else a time `Date.parse` reads. A `RangeError` says what it is not.
 *
 * @example
 * parseBatchOrTime('42'); // { batch: 42 }
 * parseBatchOrTime('2026-12-01T00:00Z'); // { time: 1796083200000 }
 * parseBatchOrTime('1796083200000'); // { time: 1796083200000 }
 */
export function parseBatchOrTime(value: string): BatchOrTime {
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (Number.isSafeInteger(n)) return n >= EPOCH_MS_FROM ? { time: n } : { batch: n };
  }
  const time = Date.parse(value);
  if (Number.isNaN(time)) {
    throw new RangeError(
      `'${value}' is neither a batch number nor a time such as 2026-12-01T00:00Z or epoch milliseconds`,
    );
  }
  return { time };
}

/**
 * Whether a batch is within a range whose ends are batch numbers or times, both ends included; an
 * absent end does not bound it.
 *
 * @example
 * inBatchRange({ batch: 4, time: t }, { batch: 2 }, { time: t }); // true
 */
export function inBatchRange(
  item: { readonly batch: number; readonly time: number },
  from: BatchOrTime | undefined,
  to: BatchOrTime | undefined,
): boolean {
  const after = (bound: BatchOrTime): boolean =>
    'batch' in bound ? item.batch >= bound.batch : item.time >= bound.time;
  const before = (bound: BatchOrTime): boolean =>
    'batch' in bound ? item.batch <= bound.batch : item.time <= bound.time;
  return (from === undefined || after(from)) && (to === undefined || before(to));
}

/**
 * The batches a range names among the sealed ones, 1..`last`: `from`..`to` as numbers, found
 * from batch times (`timeOf`, the sealed manifests' times, which only grow) with a binary search,
 * so a few manifests are read, not every batch's. An absent end is 1 or `last`; the numbers are
 * as named, so `from` may be past `last` or `to` before `from` (the caller says what is wrong).
 *
 * @example
 * const { from, to } = await batchRange(120, timeOf, { time: Date.parse('2026-12-01T00:00Z') }, undefined);
 */
export async function batchRange(
  last: number,
  timeOf: (batch: number) => Promise<number>,
  from: BatchOrTime | undefined,
  to: BatchOrTime | undefined,
): Promise<{ readonly from: number; readonly to: number }> {
  const first =
    from === undefined
      ? 1
      : 'batch' in from
        ? from.batch
        : await firstWhere(last, async (batch) =>
            inBatchRange({ batch, time: await timeOf(batch) }, from, undefined),
          );
  const final =
    to === undefined
      ? last
      : 'batch' in to
        ? to.batch
        : (await firstWhere(
            last,
            async (batch) => !inBatchRange({ batch, time: await timeOf(batch) }, undefined, to),
          )) - 1;
  return { from: first, to: final };
}

/**
 * The first batch in 1..last for which `holds` is true (last + 1 if none), where it is false up
 * to some batch and true after.
 */
async function firstWhere(last: number, holds: (batch: number) => Promise<boolean>): Promise<number> {
  let low = 1;
  let high = last + 1;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    if (await holds(middle)) high = middle;
    else low = middle + 1;
  }
  return low;
}

/**
 * Batch times as the sealed manifests in a bucket say, for `batchRange`. A manifest the bucket no
 * longer keeps counts as before any time: manifests expire oldest first (by age, and batch numbers
 * grow with it), so the search stays right over a history longer than their retention.
 *
 * @example
 * const range = await batchRange(last, sealedBatchTimes(ctx.objects), flags.from, flags.to);
 */
export function sealedBatchTimes(objects: ObjectStore): (batch: number) => Promise<number> {
  return async (batch) => {
    const body = await objects.getIfExists(manifestKey(batchId(batch)));
    return body ? parseManifest(body).time : Number.NEGATIVE_INFINITY;
  };
}
