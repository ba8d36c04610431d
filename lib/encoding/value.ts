import { ByteReader, ByteWriter } from './bytes';

/**
 * Tags of the compact value encoding used for shuffle data. Records are whatever JSON-like values
 * stages produce; the encoding keeps numbers exact (integers as varints, others as float64) and
 * distinguishes the types JSON would blur (undefined, bigint, bytes). Plain numbers, not an enum:
 * a tag read back is any byte, compared as a number.
 */
const Tag = {
  Null: 0,
  Undefined: 1,
  False: 2,
  True: 3,
  PositiveInt: 4,
  NegativeInt: 5,
  Float: 6,
  String: 7,
  Array: 8,
  Object: 9,
  BigInt: 10,
  Bytes: 11,
} as const;

/**
 * Thrown for a value sluice cannot carry between functions or keep as state: a function, a symbol,
 * a class instance (`Map`, `Set`, `Date`...), a string with a lone surrogate, or a value nested
 * deeper than `MAX_DEPTH` (a circular one). The record, key or state that held it is dead-lettered
 * as `encode`, never silently changed.
 */
export class UnencodableValueError extends TypeError {
  override readonly name = 'UnencodableValueError';
}

const LONE_SURROGATE = 'cannot encode a string with a lone surrogate';

/** How deep arrays and objects may nest; deeper is refused (a circular value never ends). */
export const MAX_DEPTH = 256;

/**
 * Appends one value.
 *
 * @example
 * const w = new ByteWriter(); writeValue(w, ['word', 3]);
 */
export function writeValue(writer: ByteWriter, value: unknown, depth = 0): void {
  switch (typeof value) {
    case 'string':
      // UTF-8 cannot hold a lone surrogate: writing one would silently turn it into U+FFFD and
      // merge distinct keys.
      if (!(value as string & { isWellFormed(): boolean }).isWellFormed()) {
        throw new UnencodableValueError(LONE_SURROGATE);
      }
      writer.u8(Tag.String);
      writer.string(value);
      return;
    case 'number':
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) {
        writer.u8(value >= 0 ? Tag.PositiveInt : Tag.NegativeInt);
        writer.varint(value >= 0 ? value : -value);
      } else {
        writer.u8(Tag.Float);
        writer.f64(value);
      }
      return;
    case 'boolean':
      writer.u8(value ? Tag.True : Tag.False);
      return;
    case 'undefined':
      writer.u8(Tag.Undefined);
      return;
    case 'bigint':
      writer.u8(Tag.BigInt);
      writer.string(value.toString());
      return;
    case 'object':
      if (value === null) {
        writer.u8(Tag.Null);
        return;
      }
      if (depth >= MAX_DEPTH) {
        throw new UnencodableValueError(
          `cannot encode a value nested deeper than ${MAX_DEPTH} levels (is it circular?)`,
        );
      }
      if (Array.isArray(value)) {
        writer.u8(Tag.Array);
        writer.varint(value.length);
        for (const item of value) writeValue(writer, item, depth + 1);
      } else if (value instanceof Uint8Array) {
        writer.u8(Tag.Bytes);
        writer.bytes(value);
      } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
        const keys = Object.keys(value);
        writer.u8(Tag.Object);
        writer.varint(keys.length);
        for (const key of keys) {
          if (!(key as string & { isWellFormed(): boolean }).isWellFormed()) {
            throw new UnencodableValueError('cannot encode a property name with a lone surrogate');
          }
          writer.string(key);
          writeValue(writer, (value as Record<string, unknown>)[key], depth + 1);
        }
      } else {
        throw new UnencodableValueError(
          `cannot encode a ${(value as { constructor?: { name?: string } }).constructor?.name ?? 'object'}: ` +
            'stages must produce plain data (strings, numbers, booleans, bigints, null, arrays, plain objects, bytes)',
        );
      }
      return;
    default:
      throw new UnencodableValueError(`cannot encode a ${typeof value}: stages must produce plain data`);
  }
}

let scratch = new ByteWriter(4 * 1024);

/**
 * Why a value cannot be encoded, or `undefined` if it can: the same rules as `writeValue`, since it
 * is `writeValue` into a scratch buffer. Primitives, nearly every key and value on the data path,
 * cost a `typeof` (and a string its well-formedness check).
 *
 * @example
 * unencodable(new Map()); // 'cannot encode a Map: stages must produce plain data (...)'
 */
export function unencodable(value: unknown): string | undefined {
  switch (typeof value) {
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return undefined;
    case 'string':
      return (value as string & { isWellFormed(): boolean }).isWellFormed() ? undefined : LONE_SURROGATE;
    default:
      if (value === null) return undefined;
  }
  scratch.reset();
  try {
    writeValue(scratch, value);
    return undefined;
  } catch (error) {
    if (error instanceof UnencodableValueError) return error.message;
    throw error;
  } finally {
    // A large value checked once must not keep a large buffer alive for the life of the process.
    if (scratch.length > 1024 * 1024) scratch = new ByteWriter(4 * 1024);
  }
}

/**
 * Reads one value written by `writeValue`.
 *
 * @example
 * const value = readValue(new ByteReader(buffer));
 */
export function readValue(reader: ByteReader): unknown {
  const tag = reader.u8();
  switch (tag) {
    case Tag.String:
      return reader.string();
    case Tag.PositiveInt:
      return reader.varint();
    case Tag.NegativeInt:
      return -reader.varint();
    case Tag.Float:
      return reader.f64();
    case Tag.Null:
      return null;
    case Tag.Undefined:
      return undefined;
    case Tag.False:
      return false;
    case Tag.True:
      return true;
    case Tag.Array: {
      const length = reader.varint();
      const items = new Array<unknown>(length);
      for (let i = 0; i < length; i++) items[i] = readValue(reader);
      return items;
    }
    case Tag.Object: {
      const length = reader.varint();
      const object: Record<string, unknown> = {};
      for (let i = 0; i < length; i++) {
        const key = reader.string();
        const value = readValue(reader);
        // Assigning '__proto__' would set the prototype instead of keeping the data.
        if (key === '__proto__') {
          Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
        } else {
          object[key] = value;
        }
      }
      return object;
    }
    case Tag.BigInt:
      return BigInt(reader.string());
    case Tag.Bytes:
      return new Uint8Array(reader.bytes());
    default:
      throw new RangeError(`unknown value tag ${tag}`);
  }
}
