import { afterAll, beforeAll, describe, it } from 'vitest';
import wordcount from '../../examples/wordcount/pipeline';
import { generateLines } from '../support/corpus';
import { motoAvailable, startMoto, type Moto } from '../support/moto';
import { expectExactWordCounts, runOnWallClock } from '../support/wallclock';

/**
 * The same runtime against a second, independent emulator: moto's server (S3, DynamoDB and Kinesis
 * on one endpoint, as LocalStack offers them), so no test depends on one emulator's quirks. moto
 * answers some concurrent requests with HTTP 500 (two PUTs of one key, a query racing a write):
 * the runtime's retries of transient failures absorb them, as they would a real 5xx.
 */
describe.skipIf(!motoAvailable)('against moto (a second AWS emulator)', () => {
  let moto: Moto | undefined;
  let endpoint = '';

  beforeAll(async () => {
    moto = await startMoto();
    endpoint = moto.endpoint;
  }, 40_000);

  afterAll(async () => {
    await moto?.stop();
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
