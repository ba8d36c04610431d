import { fork } from 'node:child_process';
import path from 'node:path';

/** The embedded emulator, running in a child process. */
export interface EmulatorProcess {
  /** One endpoint for DynamoDB, Kinesis and S3, as `LocalRuntime`'s `endpoint` option takes it. */
  readonly endpoint: string;
  stop(): Promise<void>;
}

/**
 * Starts the embedded emulator (local/emulator.ts) in a child process. The child runs with this
 * process's Node options, so under tsx it loads TypeScript as the bench does.
 *
 * @example
 * const emulator = await startEmulatorProcess();
 * const run = await LocalRuntime.start(pipeline, { endpoint: emulator.endpoint });
 */
export async function startEmulatorProcess(): Promise<EmulatorProcess> {
  const child = fork(path.join(__dirname, 'emulator-process.ts'), [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.once('message', (message) => {
      const { endpoint: said } = message as { endpoint?: unknown };
      if (typeof said === 'string') resolve(said);
      else reject(new Error('the emulator process did not say its endpoint'));
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the emulator process exited (code ${String(code)})`)));
  });
  return {
    endpoint,
    stop: async () => {
      if (child.connected) child.send('stop');
      await exited;
    },
  };
}
