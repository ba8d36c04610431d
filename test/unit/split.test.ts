import { DATA_FORMATS } from '../../lib/encoding/formats';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeSegment, formatBlocks, parseBlocks } from '../../lib/encoding/segment';
import { shardId } from '../../lib/ids';
import { splitIntoTasks, type Slice, type SplitOptions } from '../../lib/manifest';
import type { SegmentItem } from '../../lib/batch';
import { segmentItem } from './support';

interface FlatBlock {
  readonly segment: string;
  readonly start: number;
  readonly end: number;
  readonly records: number;
}

const segments: fc.Arbitrary<SegmentItem[]> = fc
  .array(
    fc.record({
      shard: fc.integer({ min: 0, max: 3 }),
      blocks: fc.array(
        fc.record({ bytes: fc.integer({ min: 1, max: 20_000 }), records: fc.integer({ min: 1, max: 100 }) }),
        { maxLength: 12 },
      ),
    }),
    { maxLength: 8 },
  )
  .map((list) =>
    list.map((s, i) => segmentItem(`input/seg-${i}`, s.blocks, `shardId-00000000000${s.shard}`)),
  );

const options: fc.Arbitrary<SplitOptions> = fc.record({
  maxTasks: fc.integer({ min: 1, max: 20 }),
  targetBytes: fc.integer({ min: 1, max: 100_000 }),
});

function flatBlocks(list: readonly SegmentItem[]): FlatBlock[] {
  return list.flatMap((segment) => {
    const blocks = parseBlocks(segment.blocks);
    return blocks.map((b, i) => ({
      segment: segment.key,
      start: b.offset,
      end: blocks[i + 1]?.offset ?? segment.bytes,
      records: b.records,
    }));
  });
}

const bytesOf = (task: readonly Slice[]): number => task.reduce((n, s) => n + s.end - s.start, 0);

describe('splitIntoTasks', () => {
  it('covers every block exactly once, in order, with matching record counts (property)', () => {
    fc.assert(
      fc.property(segments, options, (list, opts) => {
        const expected = flatBlocks(list);
        let next = 0;
        for (const slice of splitIntoTasks(list, opts).flat()) {
          let at = slice.start;
          let records = 0;
          while (at < slice.end) {
            const block = expected[next++];
            expect(block).toBeDefined();
            expect(block?.segment).toBe(slice.segment);
            expect(block?.start).toBe(at);
            at = block?.end ?? Infinity;
            records += block?.records ?? 0;
          }
          expect(at).toBe(slice.end);
          expect(records).toBe(slice.records);
        }
        expect(next).toBe(expected.length);
      }),
    );
  });

  it('makes no empty task and no empty slice (property)', () => {
    fc.assert(
      fc.property(segments, options, (list, opts) => {
        for (const task of splitIntoTasks(list, opts)) {
          expect(task.length).toBeGreaterThan(0);
          for (const slice of task) {
            expect(slice.end).toBeGreaterThan(slice.start);
            expect(slice.records).toBeGreaterThan(0);
          }
        }
      }),
    );
  });

  it('makes min(maxTasks, blocks, ceil(bytes / targetBytes)) tasks (property)', () => {
    fc.assert(
      fc.property(segments, options, (list, opts) => {
        const blocks = flatBlocks(list);
        const total = blocks.reduce((n, b) => n + b.end - b.start, 0);
        const expected =
          blocks.length === 0
            ? 0
            : Math.min(opts.maxTasks, blocks.length, Math.max(1, Math.ceil(total / opts.targetBytes)));
        expect(splitIntoTasks(list, opts)).toHaveLength(expected);
      }),
    );
  });

  it('gives no task more than its share of bytes plus one block (property)', () => {
    fc.assert(
      fc.property(segments, options, (list, opts) => {
        const blocks = flatBlocks(list);
        const tasks = splitIntoTasks(list, opts);
        if (tasks.length === 0) return;
        const total = blocks.reduce((n, b) => n + b.end - b.start, 0);
        const largest = Math.max(...blocks.map((b) => b.end - b.start));
        for (const task of tasks) expect(bytesOf(task)).toBeLessThanOrEqual(total / tasks.length + largest);
      }),
    );
  });

  it('splits a hot segment of equal blocks into equal tasks', () => {
    const hot = segmentItem(
      'input/hot',
      Array.from({ length: 8 }, () => ({ bytes: 1000, records: 10 })),
    );

    const tasks = splitIntoTasks([hot], { maxTasks: 4, targetBytes: 1 });

    expect(tasks.map(bytesOf)).toEqual([2000, 2000, 2000, 2000]);
    expect(tasks.map((t) => t.length)).toEqual([1, 1, 1, 1]);
  });

  it('merges adjacent blocks of one segment into one slice (property)', () => {
    fc.assert(
      fc.property(segments, options, (list, opts) => {
        for (const task of splitIntoTasks(list, opts)) {
          for (let i = 1; i < task.length; i++) {
            const [a, b] = [task[i - 1], task[i]];
            expect(a?.segment === b?.segment && a?.end === b?.start).toBe(false);
          }
        }
      }),
    );
  });

  it('is deterministic (property)', () => {
    fc.assert(
      fc.property(segments, options, (list, opts) => {
        expect(splitIntoTasks(structuredClone(list), opts)).toEqual(splitIntoTasks(list, opts));
      }),
    );
  });

  it("carries each segment's afterSeq onto its slices only (property)", () => {
    fc.assert(
      fc.property(segments, options, (list, opts) => {
        const after = (s: SegmentItem): string | undefined =>
          Number(s.key.split('-')[1]) % 2 === 0 ? `100${s.key.length}` : undefined;
        for (const slice of splitIntoTasks(list, opts, after).flat()) {
          const segment = list.find((s) => s.key === slice.segment) as SegmentItem;
          const skip = after(segment);
          if (skip === undefined) expect(slice).not.toHaveProperty('afterSeq');
          else expect(slice.afterSeq).toBe(skip);
        }
      }),
    );
  });

  it('sets shard and segment key on each slice', () => {
    const a = segmentItem('input/a', [{ bytes: 10, records: 1 }], 'shardId-1');
    const b = segmentItem('input/b', [{ bytes: 10, records: 1 }], 'shardId-2');

    const tasks = splitIntoTasks([a, b], { maxTasks: 1, targetBytes: 1000 });

    expect(tasks).toEqual([
      [
        { segment: 'input/a', shard: 'shardId-1', start: 0, end: 10, records: 1 },
        { segment: 'input/b', shard: 'shardId-2', start: 0, end: 10, records: 1 },
      ],
    ]);
  });

  it('returns no tasks for no segments or segments without blocks', () => {
    expect(splitIntoTasks([], { maxTasks: 4, targetBytes: 10 })).toEqual([]);
    expect(splitIntoTasks([segmentItem('input/empty', [])], { maxTasks: 4, targetBytes: 10 })).toEqual([]);
  });

  it('splits real encoded segments at their block boundaries', () => {
    const records = Array.from({ length: 200 }, (_, i) => ({
      seq: String(1000 + i),
      arrivedAt: i,
      data: new Uint8Array(100).fill(i % 256),
    }));
    const { body, blocks } = encodeSegment(records, 1024);
    const segment: SegmentItem = {
      shard: shardId('shardId-000000000000'),
      firstSeq: '1000',
      lastSeq: '1199',
      key: 'input/real',
      records: records.length,
      bytes: body.length,
      blocks: formatBlocks(blocks),
      format: DATA_FORMATS.segment,
    };
    const offsets = new Set([...blocks.map((b) => b.offset), body.length]);

    const tasks = splitIntoTasks([segment], { maxTasks: 5, targetBytes: 1 });

    expect(tasks).toHaveLength(5);
    for (const slice of tasks.flat()) {
      expect(offsets.has(slice.start)).toBe(true);
      expect(offsets.has(slice.end)).toBe(true);
    }
    expect(tasks.flat().reduce((n, s) => n + s.records, 0)).toBe(200);
  });
});
