import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import { generateLines } from '../support/corpus';
import { expectExactWordCounts, runOnWallClock } from '../support/wallclock';

/**
 * The same runtime against a second, independent emulator: moto's server (S3, DynamoDB and Kinesis
 * on one endpoint, as LocalStack offers them), so no test depends on one emulator's quirks. moto
 * answers some concurrent requests with HTTP 500 (two PUTs of one key, a query racing a write):
 * the runtime's retries of transient failures absorb them, as they would a real 5xx.
 */
const moto = spawnSync('python3', ['-c', 'import moto.server'], { stdio: 'ignore' }).status === 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function waitFor(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(!moto)('against moto (a second AWS emulator)', () => {
  let server: ChildProcess | undefined;
  let endpoint = '';

  beforeAll(async () => {
    const port = await freePort();
    server = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
      stdio: 'ignore',
    });
    endpoint = `http://127.0.0.1:${port}`;
    await waitFor(`${endpoint}/moto-api/`, 30_000);
  }, 40_000);

  afterAll(() => {
    server?.kill('SIGTERM');
  });

  it('a wall-clock run at a 500 ms interval finishes with exact counts', async () => {
    // Arrange
    const lines = generateLines(2_000, 8);

    // Act
    const run = await runOnWallClock(wordcount as never, lines, { batchInterval: '500ms', endpoint });

    // Assert
    expectExactWordCounts(run, lines);
  });
});
