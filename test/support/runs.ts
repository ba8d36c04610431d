import { afterAll, afterEach, beforeAll } from 'vitest';
import type { AnyPipeline } from '../../lib';
import type { BatchId } from '../../lib/ids';
import { createRuntimeContext } from '../../lib/runtime/context';
import { coordinate } from '../../lib/runtime/coordinator';
import { startEmulator, type Emulator } from '../../local/emulator';
import type { LocalRuntime } from '../../local/runtime';
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

/**
 * Seals the next batch of a run with a version's coordinator and starts none of its tasks: a batch
 * in flight when another version is deployed. Returns the batch it sealed.
 */
export async function sealWithoutRunning<T, Out>(
  run: LocalRuntime<T, Out>,
  sealing: AnyPipeline,
): Promise<BatchId> {
  await run.ingestPending();
  const ctx = createRuntimeContext(sealing, {
    config: { bucket: run.resources.bucket, table: run.resources.table, functions: {}, sweepAfterMs: 60_000 },
    clients: run.clients,
    invoker: { invoke: () => Promise.resolve(), wake: () => Promise.resolve() },
    clock: { now: () => run.now() + sealing.batchIntervalMs },
  });
  const { sealed } = await coordinate(ctx);
  const [batch] = sealed;
  if (sealed.length !== 1 || batch === undefined) throw new Error(`sealed ${sealed.length} batches, not 1`);
  return batch;
}

/**
 * One embedded emulator for a test file: started before its tests, stopped after them. Returns
 * its endpoint, for named runs (`LocalRuntime.start(p, { endpoint, run })`) that outlive a runtime.
 */
export function emulatorForFile(): () => string {
  let emulator: Emulator | undefined;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
  }, 60_000);
  afterAll(async () => {
    await emulator?.stop();
  });
  return () => {
    if (!emulator) throw new Error('the emulator starts before the tests');
    return emulator.endpoint;
  };
}
