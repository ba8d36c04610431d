/**
 * How many ranged GETs a task keeps in flight ahead of the slice or run it is processing: enough
 * to hide a few round trips, few enough that the bodies held stay small.
 *
 * @example
 * await fetchInOrder(slices, GETS_AHEAD, fetch, consume);
 */
export const GETS_AHEAD = 3;

/**
 * Ranged GETs a task makes one after another pay a round trip each; fetching a few ahead while the
 * current one is processed hides most of them. Bodies are consumed strictly in the given order, so
 * what a task computes (and the bytes it writes) does not depend on which GET returns first, and at
 * most `ahead` bodies are held beyond the one being consumed.
 *
 * @example
 * await fetchInOrder(slices, 4, (s) => objects.getRange(s.segment, s.start, s.end, scope), (s, body) =>
 *   runSlice(runner, body, s));
 */
export async function fetchInOrder<T, B>(
  items: readonly T[],
  ahead: number,
  fetch: (item: T) => Promise<B>,
  consume: (item: T, body: B) => void,
): Promise<void> {
  const pending: Promise<B>[] = [];
  let next = 0;
  const fill = (): void => {
    while (next < items.length && pending.length <= ahead) {
      const item = items[next] as T;
      const body = fetch(item);
      // A GET that fails before its turn is reported at its turn; until then it must not count as
      // an unhandled rejection.
      body.catch(() => undefined);
      pending.push(body);
      next++;
    }
  };
  for (let i = 0; i < items.length; i++) {
    fill();
    const body = pending.shift();
    if (body === undefined) break;
    consume(items[i] as T, await body);
  }
}
