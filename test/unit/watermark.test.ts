import { describe, expect, it } from 'vitest';
import { foldBatches, highOfTasks, raiseHigh, watermarkOf } from '../../lib/watermark';

describe('raiseHigh', () => {
  it.each([
    [null, 5, 5],
    [7, 5, 7],
    [5, 7, 7],
    [5, null, 5],
    [5, undefined, 5],
    [null, null, null],
  ])('raises %s by %s to %s', (high, seen, expected) => {
    // Act
    const raised = raiseHigh(high, seen);

    // Assert
    expect(raised).toBe(expected);
  });
});

describe('highOfTasks', () => {
  it('is the highest reported high, ignoring tasks that saw no event time', () => {
    // Act
    const high = highOfTasks([{ eventTimeHigh: 3 }, {}, { eventTimeHigh: 9 }, { eventTimeHigh: 4 }]);

    // Assert
    expect(high).toBe(9);
  });

  it('is null when no task saw an event time', () => {
    expect(highOfTasks([{}, {}])).toBeNull();
  });
});

describe('foldBatches', () => {
  it('extends the fold over following batches in order', () => {
    // Arrange
    const batches = [
      { batch: 2, status: 'complete', eventTimeHigh: 12 },
      { batch: 3, status: 'sealed', eventTimeHigh: 11 },
    ];

    // Act
    const fold = foldBatches({ high: 10, through: 1 }, batches, 5);

    // Assert
    expect(fold).toEqual({ high: 12, through: 3 });
  });

  it('stops at the first batch whose event-time phase has not started', () => {
    // Arrange
    const batches = [
      { batch: 1, status: 'complete', eventTimeHigh: 4 },
      { batch: 2, status: 'sealed' },
      { batch: 3, status: 'complete', eventTimeHigh: 99 },
    ];

    // Act
    const fold = foldBatches(undefined, batches, 4);

    // Assert
    expect(fold).toEqual({ high: 4, through: 1 });
  });

  it('passes over skipped batches without taking their high', () => {
    // Arrange
    const batches = [
      { batch: 1, status: 'skipped', eventTimeHigh: 99 },
      { batch: 2, status: 'skipping' },
      { batch: 3, status: 'complete', eventTimeHigh: 5 },
    ];

    // Act
    const fold = foldBatches(undefined, batches, 4);

    // Assert
    expect(fold).toEqual({ high: 5, through: 3 });
  });

  it('never folds the batch being sealed or one after it, nor across a gap', () => {
    // Arrange
    const batches = [
      { batch: 1, status: 'complete', eventTimeHigh: 1 },
      { batch: 3, status: 'complete', eventTimeHigh: 3 },
    ];

    // Act
    const gap = foldBatches(undefined, batches, 9);
    const sealing = foldBatches(undefined, batches, 1);

    // Assert
    expect(gap).toEqual({ high: 1, through: 1 });
    expect(sealing).toEqual({ high: null, through: 0 });
  });
});

describe('watermarkOf', () => {
  it('is the sealed high minus the lateness', () => {
    expect(watermarkOf(60_000, 10_000)).toBe(50_000);
  });

  it('is -Infinity before any event time', () => {
    expect(watermarkOf(null, 10_000)).toBe(-Infinity);
    expect(watermarkOf(undefined, 0)).toBe(-Infinity);
  });
});
