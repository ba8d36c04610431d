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
