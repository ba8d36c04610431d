import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StateTable } from '../../lib/state/table';

const entries = fc.uniqueArray(
  fc.tuple(
    fc.oneof(fc.string(), fc.integer(), fc.tuple(fc.string(), fc.nat())),
    fc.oneof(fc.integer(), fc.string(), fc.array(fc.double({ noNaN: true }), { maxLength: 4 })),
  ),
  { selector: ([key]) => JSON.stringify(key), maxLength: 300 },
);

describe('StateTable', () => {
  it('encodes what it loaded to the bytes it loaded, chunk by chunk (so the stored bytes say what changed)', () => {
    fc.assert(
      fc.property(entries, fc.integer({ min: 1, max: 16 }), (pairs, chunks) => {
        // Arrange
        const written = new StateTable();
        for (const [key, value] of pairs) written.set(key, value);
        const stored = written.encode(chunks);
        const loaded = new StateTable();

        // Act
        for (const body of stored.bodies) loaded.load(body);
        const again = loaded.encode(stored.chunks);

        // Assert
        expect(again.chunks).toBe(stored.chunks);
        expect(again.bodies.map((b) => b.toString('hex'))).toEqual(
          stored.bodies.map((b) => b.toString('hex')),
        );
      }),
      { numRuns: 200 },
    );
  });
});
