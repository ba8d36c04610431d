import { afterEach, expect, it } from 'vitest';
import type { Pair } from 'sluice';
import { testPipeline, type TestPipeline } from 'sluice/testing';
import wordcount from '../src/pipeline.js';

// testPipeline runs the real runtime on the embedded emulator, driven by a manual clock.
let run: TestPipeline<string, Pair<string, number>> | undefined;
afterEach(async () => {
  await run?.close();
});

it('counts words over the last three batches', async () => {
  run = testPipeline(wordcount);

  const first = await run.push(['to be or not to be']).advance();
  const second = await run.push(['to see']).advance();

  expect(new Map(first.records)).toEqual(
    new Map([
      ['to', 2],
      ['be', 2],
      ['or', 1],
      ['not', 1],
    ]),
  );
  expect(new Map(second.records).get('to')).toBe(3);
  expect(new Map(second.records).get('see')).toBe(1);
});

it('forgets words once their batches leave the window', async () => {
  run = testPipeline(wordcount);

  await run.push(['spark']).advance();
  await run.push([]).advance();
  await run.push([]).advance();
  const fourth = await run.push(['lambda']).advance();

  expect(new Map(fourth.records)).toEqual(new Map([['lambda', 1]]));
});
