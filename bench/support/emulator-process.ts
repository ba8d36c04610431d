/**
 * The emulator in a process of its own, for the benches: dynalite, kinesalite and s3rver then use
 * neither the bench's event loop (a function's duration is its own work and its waits, not the
 * emulator's) nor its memory (the bench's resident memory is the functions' and the harness's).
 * Started by `startEmulatorProcess` (./emulator.ts); it says its endpoint over IPC and stops when
 * asked or when its parent goes.
 */
import { startEmulator } from '../../local/emulator';

async function main(): Promise<void> {
  const emulator = await startEmulator();
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void emulator.stop().finally(() => process.exit(0));
  };
  process.on('message', stop);
  process.on('disconnect', stop);
  process.send?.({ endpoint: emulator.endpoint });
}

void main();
