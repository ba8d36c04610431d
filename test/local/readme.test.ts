import { expect, it } from 'vitest';
import { testPipeline } from 'sluice/testing';
import wordcount from '../../examples/wordcount/pipeline';

// The README's example of testing a pipeline, as written there: it must keep working.
it('counts words per batch', async () => {
  const t = testPipeline(wordcount, { shards: 2 });
  const batch = await t.push(['to be or not to be']).advance();
  expect(new Map(batch.records)).toEqual(
    new Map([
      ['to', 2],
      ['be', 2],
      ['or', 1],
      ['not', 1],
    ]),
  );
  expect((await t.push(['x']).advance()).inputRecords).toBe(1);
  await t.close();
});
