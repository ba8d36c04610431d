import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRun, encodeShuffle } from '../../lib/encoding/shuffle';
import { plainValue } from './support';

type Run = [unknown, unknown][];

const runs: fc.Arbitrary<Run[]> = fc.array(fc.array(fc.tuple(plainValue, plainValue), { maxLength: 6 }), {
  maxLength: 8,
});

function readRun(body: Buffer, index: readonly number[], partition: number): Run {
  const pairs: Run = [];
  const start = index[partition] ?? 0;
  const end = index[partition + 1] ?? start;
  const count = decodeRun(body, start, end, (key, value) => pairs.push([key, value]));
  expect(count).toBe(pairs.length);
  return pairs;
}

describe('encodeShuffle / decodeRun', () => {
  it("decodes each partition's range to exactly that run, in order (property)", () => {
    fc.assert(
      fc.property(runs, (input) => {
        const { body, index } = encodeShuffle(input);
        input.forEach((run, p) => expect(readRun(body, index, p)).toStrictEqual(run));
      }),
      { numRuns: 100 },
    );
  });

  it('has one index entry per run plus one, from 0 to the body length, non-decreasing (property)', () => {
    fc.assert(
      fc.property(runs, (input) => {
        const { body, index } = encodeShuffle(input);
        expect(index).toHaveLength(input.length + 1);
        expect(index[0]).toBe(0);
        expect(index[index.length - 1]).toBe(body.length);
        for (let i = 1; i < index.length; i++) expect(index[i]).toBeGreaterThanOrEqual(index[i - 1] ?? 0);
      }),
      { numRuns: 100 },
    );
  });

  it('gives an empty run zero bytes (property)', () => {
    fc.assert(
      fc.property(runs, (input) => {
        const { index } = encodeShuffle(input);
        input.forEach((run, p) => {
          const bytes = (index[p + 1] ?? 0) - (index[p] ?? 0);
          if (run.length === 0) expect(bytes).toBe(0);
          else expect(bytes).toBeGreaterThan(0);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('gives an empty body for all-empty runs', () => {
    const { body, index } = encodeShuffle([[], [], []]);

    expect(body.length).toBe(0);
    expect(index).toEqual([0, 0, 0, 0]);
  });

  it('gives equal bytes for equal runs', () => {
    const make = (): Run[] => [[['a', 2]], [], [[['k', 1], { n: 1.5 }]]];

    expect(encodeShuffle(make()).body.equals(encodeShuffle(make()).body)).toBe(true);
  });

  it('accepts runs that are iterables rather than arrays', () => {
    function* run(): Generator<readonly [unknown, unknown]> {
      yield ['x', 1];
      yield ['y', 2];
    }

    const { body, index } = encodeShuffle([run()]);

    expect(readRun(body, index, 0)).toEqual([
      ['x', 1],
      ['y', 2],
    ]);
  });

  it('reads a run from a buffer that holds only that range, as a ranged GET returns it', () => {
    const { body, index } = encodeShuffle([[['a', 1]], [['b', 2]]]);
    const ranged = body.subarray(index[1], index[2]);

    const pairs: Run = [];
    decodeRun(ranged, 0, ranged.length, (k, v) => pairs.push([k, v]));

    expect(pairs).toEqual([['b', 2]]);
  });

  it('returns 0 pairs for an empty range', () => {
    expect(decodeRun(Buffer.alloc(0), 0, 0, () => expect.unreachable())).toBe(0);
  });

  it('throws RangeError when a range ends between a key and its value', () => {
    const { body } = encodeShuffle([[['key', 'value']]]);

    expect(() => decodeRun(body, 0, 5, () => undefined)).toThrow(RangeError);
  });
});
