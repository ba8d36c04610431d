/**
 * The compile-time side of `writeValue`: which types the value encoding can carry between
 * functions or keep as state. Keyed stages constrain their key, value, combiner and state types
 * with it (`K extends Encodable<K>`), so a `Set` combiner or a `Date` key is a compile error
 * instead of a dead-lettered record at run time.
 */

/** What the encoding writes whole, kept as it is (a branded string or number stays branded). */
type Scalar = string | number | boolean | bigint | null | undefined;

/** Any function or constructor: never data, wherever it sits. */
type Callable = ((...args: never[]) => unknown) | (abstract new (...args: never[]) => unknown);

/**
 * `Error` and its subclasses: structurally an `Error` is only strings (`name`, `message`,
 * `stack?`), so the mapped type below would let it through, but at run time it is a class
 * instance and refused. A plain record that merely has `name` and `message` is not caught, as
 * nothing declares a `stack` key on it.
 */
type IsErrorInstance<T> = T extends Error ? ('stack' extends keyof T ? true : false) : false;

/**
 * One member of a union (the conditional distributes over `T`), checked against the rules of
 * `writeValue` in `./value`.
 */
type EncodableMember<T> = T extends Scalar
  ? T
  : // `Buffer` is a `Uint8Array` too; both are written as bytes.
    T extends Uint8Array
    ? T
    : T extends Callable
      ? never
      : // Homomorphic over a type parameter, so tuples stay tuples (with their optional and rest
        // elements) and readonly arrays stay readonly.
        T extends readonly unknown[]
        ? { [I in keyof T]: Encodable<T[I]> }
        : T extends object
          ? IsErrorInstance<T> extends true
            ? never
            : // A mapped type over the keys rather than `Record<string, ...>`: an interface has no
              // index signature, so it would not be assignable to one. Methods (of `Map`, `Set`,
              // `Date`, `RegExp`, `Promise`, any class with methods) become `never`, which the
              // instance is then not assignable to. Optional and readonly modifiers are kept.
              { [P in keyof T]: Encodable<T[P]> }
          : // `symbol`; also `void`, which promises no value at all.
            never;

/**
 * `T` itself when every part of it can be encoded between functions and kept as state, and
 * `never` at each part that cannot. Use it as an F-bounded constraint, `T extends Encodable<T>`,
 * on a type parameter whose values cross the shuffle or the state store; keyed stages do.
 *
 * Encodable: `string` (the encoding refuses lone surrogates at run time, which no type can
 * express), `number`, `boolean`, `bigint`, `null`, `undefined`, `Uint8Array` and `Buffer`,
 * arrays, readonly arrays and tuples of encodable types, type aliases and interfaces of plain data
 * (optional properties included), and unions of these. Not encodable: functions anywhere,
 * `symbol`, and class instances with methods (`Map`, `Set`, `WeakMap`, `Date`, `RegExp`,
 * `Promise`, ...) or deriving from `Error`.
 *
 * `unknown` and `any` stay as they are: they are what inference and generic code fall back to,
 * and there the run-time check (per record, dead-lettered as `encode`) is what remains. So is it
 * for what the type system cannot see: a class instance with no methods, a property of type `{}`
 * or `object`, or a value whose type lies.
 *
 * @example
 * interface Visit { page: string; ms?: number; tags: readonly string[] }
 * type A = Encodable<Visit>; // Visit
 * type B = Encodable<Map<string, number>>; // an object type with `never` methods: Map is not assignable to it
 * function keyed<K extends Encodable<K>>(key: K): K { return key; }
 * keyed<[string, bigint]>(['a', 1n]); // compiles
 * // keyed<Date>(new Date()); // compile error: Date does not satisfy the constraint
 */
export type Encodable<T> =
  // Copying `T` into `U` through `infer` is what lets `T extends Encodable<T>` be a constraint:
  // a conditional type that checks `T` itself would need the constraint of `T` to find its own,
  // and the compiler refuses that as a circular constraint. `U` has no constraint to look up.
  [T] extends [infer U] ? Checked<U> : never;

/** `any` and `unknown` as they are; anything else member by member. */
type Checked<T> = 0 extends 1 & T
  ? T // `any`: `1 & T` is only wider than `0` when `T` is `any`.
  : unknown extends T
    ? T // `unknown` (and `{} | null | undefined`, which is the same set of values).
    : EncodableMember<T>;
