import { describe, expect, it } from 'vitest';
import { filter, kinesis, pipeline, reduceByKeyAndWindow, transform, type AnyPipeline } from '../../lib';
import { utf8 } from '../../lib/dsl/source';
import { batchId } from '../../lib/ids';
import { LocalRuntime } from '../../local/runtime';
import { generateLines, toCountMap } from '../support/corpus';
import { emulatorForFile, sealWithoutRunning } from '../support/runs';

const source = kinesis({ stream: 'lines', decode: utf8 });
const words = transform<string, string, number>('words', (line, emit) => {
  for (const word of line.split(' ')) if (word) emit(word, 1);
});
const counts = (length: '30s' | '60s') =>
  reduceByKeyAndWindow<string, number>('count', (a, b) => a + b, { length, slide: '10s' });

/** Version 1; version 2 adds a record-level stage (compatible); version 3 changes the window. */
const v1 = pipeline({ name: 'upgraded', batchInterval: '10s', source, stages: [words, counts('30s')] });
const v2 = pipeline({
  name: 'upgraded',
  batchInterval: '10s',
  source,
  stages: [filter<string>('non-empty', (line) => line.length > 0), words, counts('30s')],
});
const v3 = pipeline({ name: 'upgraded', batchInterval: '10s', source, stages: [words, counts('60s')] });

describe('a deployment of new code while a batch is in flight', () => {
  const endpoint = emulatorForFile();

  it('runs a batch sealed under the earlier plan with the new code when the change rolls forward', async () => {
    // Arrange: version 1 completes a batch and seals the next, then version 2 takes over
    const lines = [generateLines(40, 1, 100), generateLines(30, 2, 100)];
    const first = await LocalRuntime.start(v1, { endpoint: endpoint(), run: 'forward' });
    const [one] = await first.push(lines[0] ?? []).then(() => first.advance());
    await first.push(lines[1] ?? []);
    await sealWithoutRunning(first, v1 as AnyPipeline);
    await first.stop();

    // Act
    const second = await LocalRuntime.start(v2, { endpoint: endpoint(), run: 'forward' });
    await second.settle();
    const two = await second.result(batchId(2));
    const three = await second.advance();
    await second.stop();

    // Assert: no batch failed, and the window counts both batches as one version would
    expect(one?.status).toBe('complete');
    expect(two.status).toBe('complete');
    expect(two.inputRecords).toBe(30);
    expect(three.map((b) => b.status)).toEqual(['complete']);
    const expected = new Map<string, number>();
    for (const line of lines.flat()) {
      for (const word of line.split(' ')) if (word) expected.set(word, (expected.get(word) ?? 0) + 1);
    }
    expect(toCountMap(two.records)).toEqual(expected);
  });

  it('fails a batch sealed under a plan the new code cannot run, saying what changed', async () => {
    // Arrange
    const first = await LocalRuntime.start(v1, { endpoint: endpoint(), run: 'breaking' });
    await first.push(['a b']).then(() => first.advance());
    await first.push(['c d']);
    await sealWithoutRunning(first, v1 as AnyPipeline);
    await first.stop();

    // Act
    const second = await LocalRuntime.start(v3, { endpoint: endpoint(), run: 'breaking' });
    await second.settle();
    const two = await second.result(batchId(2));
    await second.stop();

    // Assert
    expect(two.status).toBe('failed');
    expect(two.failure).toMatch(/keyed stage 'count' changed \(window\)/);
  });
});
