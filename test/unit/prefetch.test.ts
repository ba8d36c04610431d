import { describe, expect, it } from 'vitest';
import { fetchInOrder } from '../../lib/runtime/prefetch';

/** A fetch whose results the test releases in any order, counting how many are in flight. */
function controlledFetch(): {
  fetch: (n: number) => Promise<string>;
  release: (n: number) => void;
  fail: (n: number) => void;
  inFlight: () => number;
  maxInFlight: () => number;
  started: number[];
} {
  const waiting = new Map<number, { resolve: (v: string) => void; reject: (e: Error) => void }>();
  const started: number[] = [];
  let flying = 0;
  let most = 0;
  return {
    fetch: (n) =>
      new Promise<string>((resolve, reject) => {
        started.push(n);
        flying++;
        most = Math.max(most, flying);
        waiting.set(n, {
          resolve: (v) => {
            flying--;
            resolve(v);
          },
          reject: (e) => {
            flying--;
            reject(e);
          },
        });
      }),
    release: (n) => waiting.get(n)?.resolve(`body ${n}`),
    fail: (n) => waiting.get(n)?.reject(new Error(`GET ${n} failed`)),
    inFlight: () => flying,
    maxInFlight: () => most,
    started,
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('fetchInOrder', () => {
  it('consumes bodies in the given order whatever order the fetches return in', async () => {
    // Arrange
    const control = controlledFetch();
    const consumed: string[] = [];

    // Act
    const done = fetchInOrder([0, 1, 2, 3, 4], 2, control.fetch, (n, body) => consumed.push(`${n}:${body}`));
    for (const n of [2, 1, 0, 4, 3]) {
      await tick();
      control.release(n);
    }
    for (let i = 0; i < 10; i++) {
      await tick();
      for (const n of [0, 1, 2, 3, 4]) control.release(n);
    }
    await done;

    // Assert
    expect(consumed).toEqual(['0:body 0', '1:body 1', '2:body 2', '3:body 3', '4:body 4']);
  });

  it('keeps at most `ahead` fetches in flight beyond the one being consumed', async () => {
    // Arrange
    const control = controlledFetch();

    // Act
    const done = fetchInOrder([0, 1, 2, 3, 4, 5, 6], 2, control.fetch, () => undefined);
    for (let i = 0; i < 20; i++) {
      await tick();
      for (const n of control.started) control.release(n);
    }
    await done;

    // Assert
    expect(control.maxInFlight()).toBe(3);
    expect(control.started).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('reports a failed fetch at its turn, after the bodies before it were consumed', async () => {
    // Arrange
    const control = controlledFetch();
    const consumed: number[] = [];

    // Act
    const done = fetchInOrder([0, 1, 2], 2, control.fetch, (n) => consumed.push(n));
    await tick();
    control.fail(1);
    control.release(0);
    control.release(2);

    // Assert
    await expect(done).rejects.toThrow('GET 1 failed');
    expect(consumed).toEqual([0]);
  });

  it('does nothing for no items', async () => {
    // Arrange
    const control = controlledFetch();

    // Act
    await fetchInOrder([], 3, control.fetch, () => undefined);

    // Assert
    expect(control.started).toEqual([]);
  });
});
