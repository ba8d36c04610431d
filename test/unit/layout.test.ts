import { describe, expect, it } from 'vitest';
import {
  kinesis,
  pipeline,
  reduceByKey,
  transform,
  updateStateByKey,
  utf8,
  type AnyPipeline,
} from '../../lib';
import { planPipeline, sealedPartitions, sealedPhase } from '../../lib/plan';
import { nextLayouts, originalLayouts, sealedLayout, statefulPartitions } from '../../lib/state/layout';
import { LEDGER_ITEM_KEYS } from '../../lib/storage/ledger/items';

const words = transform<string, string, number>('words', (line, emit) => {
  for (const word of line.split(' ')) if (word) emit(word, 1);
});
const plan = (partitions: number) =>
  planPipeline(
    pipeline({
      name: 'layouts',
      batchInterval: '10s',
      source: kinesis({ stream: 'lines', decode: utf8 }),
      partitions: 2,
      stages: [
        words,
        updateStateByKey<string, number, number>('totals', (values, state) => (state ?? 0) + values.length, {
          partitions,
        }),
        reduceByKey<string, number>('sum', (a, b) => a + b),
      ],
    }) as AnyPipeline,
  );

describe('state layouts', () => {
  it('names the partitions of the stateful stages only', () => {
    // Act
    const partitions = statefulPartitions(plan(4).spec);

    // Assert
    expect(partitions).toEqual({ totals: 4 });
  });

  it('keeps a layout while the count stays, and starts one that re-hashes the old when it changes', () => {
    // Arrange
    const first = nextLayouts({ totals: 4 }, {}, 1);

    // Act
    const same = nextLayouts({ totals: 4 }, first, 9);
    const rescaled = nextLayouts({ totals: 8 }, same, 10);
    const after = nextLayouts({ totals: 8 }, rescaled, 11);
    const back = nextLayouts({ totals: 4 }, after, 20);

    // Assert
    expect(first).toEqual({ totals: { partitions: 4, since: 1 } });
    expect(same).toEqual(first);
    expect(rescaled).toEqual({ totals: { partitions: 8, since: 10, previous: { partitions: 4, since: 1 } } });
    expect(after).toEqual({ totals: { partitions: 8, since: 10 } });
    expect(back).toEqual({ totals: { partitions: 4, since: 20, previous: { partitions: 8, since: 10 } } });
  });

  it('keeps each layout in its own items, the first where state always was', () => {
    // Act
    const keys = [1, 10, 20].map((since) => LEDGER_ITEM_KEYS.statePk('totals', 3, since));

    // Assert
    expect(keys).toEqual(['state#totals#3', 'state#totals#from-10#3', 'state#totals#from-20#3']);
  });

  it('runs a sealed batch with the partitions it was sealed with, whatever the bundle says', () => {
    // Arrange
    const sealed = { plan: plan(4).spec, layouts: originalLayouts(plan(4).spec) };
    const bundled = plan(8);
    const phase = bundled.phases[1];

    // Act
    const partitions = phase ? sealedPartitions(sealed, phase.spec) : undefined;
    const running = sealedPhase(phase, sealed);
    const layout = phase ? sealedLayout({ plan: plan(4).spec }, phase.spec) : undefined;

    // Assert
    expect(partitions).toBe(4);
    expect(running?.spec.partitions).toBe(4);
    expect(phase?.spec.partitions).toBe(8);
    expect(layout).toEqual({ partitions: 4, since: 1 });
    expect(sealedPhase(bundled.phases[0], sealed)).toBe(bundled.phases[0]);
  });
});
