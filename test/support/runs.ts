import { afterEach } from 'vitest';
import type { TestPipeline } from '../../local/testing';

/**
 * Closes every test pipeline a test opened, after the test, so emulators never outlive it.
 * Call once per file; pass each new pipeline through the returned function.
 */
export function closeAfterEach(): <T, O>(t: TestPipeline<T, O>) => TestPipeline<T, O> {
  let open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    const closing = open;
    open = [];
    await Promise.all(closing.map((t) => t.close()));
  });
  return (t) => {
    open.push(t);
    return t;
  };
}
