import { describe, expectTypeOf, it } from 'vitest';
import {
  aggregateByKey,
  branch,
  cogroup,
  combineByKey,
  countByValue,
  countByValueAndWindow,
  eventTimeWindow,
  fullOuterJoin,
  groupByKey,
  groupByKeyAndWindow,
  join,
  kinesis,
  leftOuterJoin,
  map,
  mapWithState,
  reduce,
  reduceByKey,
  reduceByKeyAndWindow,
  reduceByWindow,
  rightOuterJoin,
  updateStateByKey,
  utf8,
  window,
  type Combiner,
  type Encodable,
  type Pair,
  type StageId,
  type WideStage,
} from '../../lib';

// Every `@ts-expect-error` below marks a call whose arguments are otherwise well typed: the only
// error on the line is the `Encodable` constraint (removing the constraint makes the directive
// unused, which fails the type check).

/** A class instance with a method: it would be dead-lettered at run time. */
class Counter {
  n = 0;
  add(): void {
    this.n++;
  }
}

/** An interface (no index signature) with optional fields. */
interface Session {
  readonly user: string;
  started: number;
  pages?: string[];
  referrer?: string | null;
}

type Shape = { kind: 'circle'; r: number } | { kind: 'square'; side: number };
type Order = { items: { sku: string; qty: number }[] }[];
type Tree = { value: number; children: Tree[] };
type WithCallback = { n: number; format: (n: number) => string };

/** Turns `Date` values into a number before the shuffle. */
const latest: Combiner<Date, number> = {
  create: (d) => d.getTime(),
  mergeValue: (c, d) => Math.max(c, d.getTime()),
  mergeCombiners: Math.max,
};
const windowed = { length: '1m', slide: '10s' } as const;
const lines = kinesis({ stream: 'lines', decode: utf8 });
const names = branch({ source: lines, stages: [map<string, Pair<string, string>>('n', (s) => [s, s])] });
const dated = branch({
  source: lines,
  stages: [map<string, Pair<string, Date>>('d', (s) => [s, new Date(s)])],
});
const datedKeys = branch({
  source: lines,
  stages: [map<string, Pair<Date, string>>('k', (s) => [new Date(s), s])],
});

describe('Encodable', () => {
  it('keeps unknown and any as they are', () => {
    expectTypeOf<Encodable<unknown>>().toEqualTypeOf<unknown>();
    // `JSON.parse` gives `any`, without writing it here.
    expectTypeOf<Encodable<ReturnType<typeof JSON.parse>>>().toBeAny();
    expectTypeOf<Encodable<{ a: unknown; b: unknown[] }>>().toEqualTypeOf<{ a: unknown; b: unknown[] }>();
  });

  it('maps plain data to itself', () => {
    expectTypeOf<Encodable<string>>().toEqualTypeOf<string>();
    expectTypeOf<Encodable<StageId>>().toEqualTypeOf<StageId>();
    expectTypeOf<Encodable<'a' | 1 | 2n | true | null | undefined>>().toEqualTypeOf<
      'a' | 1 | 2n | true | null | undefined
    >();
    expectTypeOf<Encodable<Uint8Array>>().toEqualTypeOf<Uint8Array>();
    expectTypeOf<Encodable<Buffer>>().toEqualTypeOf<Buffer>();
    expectTypeOf<Encodable<readonly [string, number?]>>().toEqualTypeOf<readonly [string, number?]>();
    expectTypeOf<Encodable<Session>>().toEqualTypeOf<Session>();
    expectTypeOf<Encodable<Shape>>().toEqualTypeOf<Shape>();
    expectTypeOf<Encodable<Order>>().toEqualTypeOf<Order>();
    expectTypeOf<Tree>().toExtend<Encodable<Tree>>();
    expectTypeOf<Encodable<never>>().toBeNever();
  });

  it('puts never where a part cannot be encoded', () => {
    expectTypeOf<Encodable<symbol>>().toBeNever();
    expectTypeOf<Encodable<() => void>>().toBeNever();
    expectTypeOf<Encodable<typeof Counter>>().toBeNever();
    expectTypeOf<Encodable<Error>>().toBeNever();
    expectTypeOf<Encodable<TypeError>>().toBeNever();
    expectTypeOf<Encodable<WithCallback>>().toEqualTypeOf<{ n: number; format: never }>();
    expectTypeOf<Encodable<[string, symbol]>>().toEqualTypeOf<[string, never]>();
    expectTypeOf<Encodable<string | (() => void)>>().toEqualTypeOf<string>();
    expectTypeOf<Encodable<Counter>>().toEqualTypeOf<{ n: number; add: never }>();
  });

  it('is not a supertype of what cannot be encoded', () => {
    expectTypeOf<Map<string, number>>().not.toExtend<Encodable<Map<string, number>>>();
    expectTypeOf<Set<string>>().not.toExtend<Encodable<Set<string>>>();
    expectTypeOf<WeakMap<object, number>>().not.toExtend<Encodable<WeakMap<object, number>>>();
    expectTypeOf<Date>().not.toExtend<Encodable<Date>>();
    expectTypeOf<RegExp>().not.toExtend<Encodable<RegExp>>();
    expectTypeOf<Promise<number>>().not.toExtend<Encodable<Promise<number>>>();
    expectTypeOf<Counter>().not.toExtend<Encodable<Counter>>();
    expectTypeOf<{ at?: Date }>().not.toExtend<Encodable<{ at?: Date }>>();
    expectTypeOf<string | Set<string>>().not.toExtend<Encodable<string | Set<string>>>();
  });

  it('can constrain generic code, which then calls keyed stages', () => {
    const grouped = <K extends Encodable<K>>(id: string) => groupByKey<K, number>(id);
    expectTypeOf(grouped<[string, number]>('g')).toEqualTypeOf<
      WideStage<Pair<[string, number], number>, Pair<[string, number], number[]>>
    >();
  });
});

describe('keyed stages refuse what cannot be encoded', () => {
  it('refuses each kind of unencodable type', () => {
    // @ts-expect-error a Date key
    reduceByKey<Date, number>('r', (a, b) => a + b);
    // @ts-expect-error a Set combiner
    combineByKey<string, number, Set<number>>('c', {
      create: (v) => new Set([v]),
      mergeValue: (c, v) => c.add(v),
      mergeCombiners: (a, b) => new Set([...a, ...b]),
    });
    // @ts-expect-error a Map state
    updateStateByKey<string, number, Map<string, number>>('u', (_values, state) => state);
    // @ts-expect-error a WeakMap state
    updateStateByKey<string, number, WeakMap<object, number>>('u', (_values, state) => state);
    // @ts-expect-error a function value
    groupByKey<string, () => number>('g');
    // @ts-expect-error a function nested in an object
    reduceByKey<string, WithCallback>('r', (a, b) => ({ n: a.n + b.n, format: a.format }));
    // @ts-expect-error a symbol record
    countByValue<symbol>('s');
    // @ts-expect-error a RegExp record
    countByValue<RegExp>('patterns');
    // @ts-expect-error a Promise accumulator
    aggregateByKey<string, number, Promise<number>>(
      'a',
      Promise.resolve(0),
      async (acc, v) => (await acc) + v,
      async (a, b) => (await a) + (await b),
    );
    // @ts-expect-error an Error value
    groupByKey<string, Error>('errors');
    // @ts-expect-error a class instance with methods
    reduce<Counter>('r', (a) => a);
    // @ts-expect-error a union with one unencodable member
    groupByKey<string, string | Set<string>>('g');
    // @ts-expect-error an optional Date field
    groupByKey<{ at?: Date }, number>('g');
  });

  it('refuses an unencodable key on every keyed stage', () => {
    // @ts-expect-error a Date key
    groupByKey<Date, number>('g');
    // @ts-expect-error a Date key
    combineByKey<Date, number, number>('c', {
      create: (v) => v,
      mergeValue: (c, v) => c + v,
      mergeCombiners: (a, b) => a + b,
    });
    // @ts-expect-error a Date key
    aggregateByKey<Date, number, number>(
      'a',
      0,
      (acc, v) => acc + v,
      (a, b) => a + b,
    );
    // @ts-expect-error a Date key
    countByValue<Date>('c');
    // @ts-expect-error a Date key
    updateStateByKey<Date, number, number>('u', (values) => values.length);
    // @ts-expect-error a Date key
    mapWithState<Date, number, number, number>('m', (_key, value) => value);
    // @ts-expect-error a Date key
    mapWithState<Date, number, number, number>('m', (_key, value) => value, { snapshots: true });
    // @ts-expect-error a Date key
    reduceByKeyAndWindow<Date, number>('r', (a, b) => a + b, windowed);
    // @ts-expect-error a Date key
    groupByKeyAndWindow<Date, number>('g', windowed);
    // @ts-expect-error a Date key
    countByValueAndWindow<Date>('c', windowed);
    // @ts-expect-error a Date key
    window<Date>('w', windowed);
    // @ts-expect-error a Date key
    eventTimeWindow<Date, number, number, number>('e', {
      timestamp: ([k]) => k,
      length: '1m',
      aggregate: { create: (v) => v, add: (a, v) => a + v, merge: (a, b) => a + b, result: (a) => a },
    });
    // @ts-expect-error a Date key
    join<Date, number, string>('j', datedKeys);
    // @ts-expect-error a Date key
    leftOuterJoin<Date, number, string>('j', datedKeys);
    // @ts-expect-error a Date key
    rightOuterJoin<Date, number, string>('j', datedKeys);
    // @ts-expect-error a Date key
    fullOuterJoin<Date, number, string>('j', datedKeys);
    // @ts-expect-error a Date key
    cogroup<Date, number, string>('j', datedKeys);
  });

  it('refuses an unencodable value, combiner, accumulator or state where it crosses', () => {
    combineByKey<string, Date, number>('c', latest, {
      // @ts-expect-error without map-side combining the values cross the shuffle
      mapSideCombine: false,
    });
    // @ts-expect-error values cross the shuffle before the state function
    updateStateByKey<string, Date, number>('u', (values) => values.length);
    // @ts-expect-error values cross the shuffle before the state function
    mapWithState<string, Date, number, number>('m', (_key, value) => value?.getTime());
    // @ts-expect-error a Set state, with snapshots
    mapWithState<string, number, Set<number>, number>('m', (_key, value) => value, { snapshots: true });
    // @ts-expect-error a Set state
    mapWithState<string, number, Set<number>, number>('m', (_key, value) => value);
    // @ts-expect-error Date values cross the shuffle
    reduceByKeyAndWindow<string, Date>('r', (a, b) => (a > b ? a : b), windowed);
    // @ts-expect-error Date values cross the shuffle
    groupByKeyAndWindow<string, Date>('g', windowed);
    // @ts-expect-error Date records cross the shuffle
    reduceByWindow<Date>('r', (a, b) => (a > b ? a : b), windowed);
    // @ts-expect-error a Set accumulator
    eventTimeWindow<string, number, Set<number>, number>('e', {
      timestamp: () => 0,
      length: '1m',
      aggregate: {
        create: (v) => new Set([v]),
        add: (a, v) => a.add(v),
        merge: (a, b) => new Set([...a, ...b]),
        result: (a) => a.size,
      },
    });
    // @ts-expect-error this side's values
    join<string, Date, string>('j', names);
    // @ts-expect-error the other side's values
    join<string, number, Date>('j', dated);
    // @ts-expect-error Date values on the other side
    leftOuterJoin<string, number, Date>('j', dated);
    // @ts-expect-error Date values on the other side
    rightOuterJoin<string, number, Date>('j', dated);
    // @ts-expect-error Date values on the other side
    fullOuterJoin<string, number, Date>('j', dated);
    // @ts-expect-error Date values on the other side
    cogroup<string, number, Date>('j', dated);
  });
});

describe('keyed stages accept plain data', () => {
  it('accepts an interface with optional fields as key and as state', () => {
    const sessions = updateStateByKey<string, string, Session>('s', (pages, state) => ({
      user: state?.user ?? '',
      started: state?.started ?? 0,
      pages: [...(state?.pages ?? []), ...pages],
    }));
    expectTypeOf(sessions).toEqualTypeOf<WideStage<Pair<string, string>, Pair<string, Session>>>();
    const perSession = reduceByKey<Session, number>('r', (a, b) => a + b);
    expectTypeOf(perSession).toEqualTypeOf<WideStage<Pair<Session, number>, Pair<Session, number>>>();
  });

  it('accepts readonly tuples, nested arrays of objects, bytes, bigints and unions', () => {
    expectTypeOf(reduceByKey<readonly [string, number], bigint>('r', (a, b) => a + b)).toEqualTypeOf<
      WideStage<Pair<readonly [string, number], bigint>, Pair<readonly [string, number], bigint>>
    >();
    expectTypeOf(groupByKey<string, Order>('orders')).toEqualTypeOf<
      WideStage<Pair<string, Order>, Pair<string, Order[]>>
    >();
    expectTypeOf(groupByKey<Uint8Array, Buffer>('blobs')).toEqualTypeOf<
      WideStage<Pair<Uint8Array, Buffer>, Pair<Uint8Array, Buffer[]>>
    >();
    expectTypeOf(countByValue<Shape | string | null>('shapes')).toEqualTypeOf<
      WideStage<Shape | string | null, Pair<Shape | string | null, number>>
    >();
    expectTypeOf(reduce<Tree>('r', (a) => a)).toEqualTypeOf<WideStage<Tree, Tree>>();
  });

  it('accepts an unencodable value that is combined before the shuffle', () => {
    expectTypeOf(combineByKey<string, Date, number>('c', latest)).toEqualTypeOf<
      WideStage<Pair<string, Date>, Pair<string, number>>
    >();
    combineByKey<string, Date, number>('c', latest, { mapSideCombine: true, partitions: 4 });
    const days = aggregateByKey<string, Date, number[]>(
      'a',
      [],
      (acc, d) => [...acc, d.getDay()],
      (a, b) => [...a, ...b],
    );
    expectTypeOf(days).toEqualTypeOf<WideStage<Pair<string, Date>, Pair<string, number[]>>>();
    const perMinute = eventTimeWindow<string, Date, number, Date>('e', {
      timestamp: ([, at]) => at,
      length: '1m',
      aggregate: { create: () => 1, add: (n) => n + 1, merge: (a, b) => a + b, result: (n) => new Date(n) },
    });
    expectTypeOf(perMinute).toExtend<WideStage<Pair<string, Date>, unknown>>();
    // What the mapWithState function returns is only output.
    const stamped = mapWithState<string, number, number, Date>('m', (_key, value) => new Date(value ?? 0));
    expectTypeOf(stamped).toEqualTypeOf<WideStage<Pair<string, number>, Date>>();
  });

  it('keeps inference, which falls back to unknown', () => {
    expectTypeOf(reduceByKey('r', (a) => a)).toEqualTypeOf<
      WideStage<Pair<unknown, unknown>, Pair<unknown, unknown>>
    >();
    expectTypeOf(
      aggregateByKey(
        'a',
        { seen: [0] },
        (acc) => acc,
        (a) => a,
      ),
    ).toEqualTypeOf<WideStage<Pair<unknown, unknown>, Pair<unknown, { seen: number[] }>>>();
    expectTypeOf(
      mapWithState('m', (key: string, value: number | undefined) => [key, value], { snapshots: true }),
    ).toEqualTypeOf<WideStage<Pair<string, number>, Pair<string, unknown>>>();
    expectTypeOf(join('j', names)).toEqualTypeOf<
      WideStage<Pair<string, unknown>, Pair<string, [unknown, string]>>
    >();
  });
});
