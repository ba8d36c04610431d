// zod's core: works for classic and mini schemas alike, and keeps bundles free of the full library.
import { safeParse, type $ZodType, type output } from 'zod/v4/core';
import { PipelineDefinitionError } from '../errors';

/**
 * Turns the bytes of one stream record into a typed record. Decoding runs in the transform task,
 * so a record that fails to decode goes to the dead-letter prefix with its batch and position.
 */
export interface Decoder<T> {
  /** Recorded in the manifest so a plan says how its input is read. */
  readonly name: string;
  readonly decode: (bytes: Uint8Array) => T;
  /** The inverse, used by `testPipeline(...).push()` and `sluice local run` to write records. */
  readonly encode: (record: T) => Uint8Array;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();

/**
 * Records are UTF-8 text; invalid UTF-8 is a decode error.
 *
 * @example
 * kinesis({ stream: 'lines', decode: utf8 })
 */
export const utf8: Decoder<string> = Object.freeze({
  name: 'utf8',
  decode: (bytes: Uint8Array) => textDecoder.decode(bytes),
  encode: (record: string) => textEncoder.encode(record),
});

/**
 * Records are JSON documents. The type is the author's claim and is not checked: use `schema()`
 * to validate.
 *
 * @example
 * kinesis({ stream: 'events', decode: json<{ user: string }>() })
 */
export function json<T = unknown>(): Decoder<T> {
  return Object.freeze({
    name: 'json',
    decode: (bytes: Uint8Array) => JSON.parse(textDecoder.decode(bytes)) as T,
    encode: (record: T) => textEncoder.encode(JSON.stringify(record)),
  });
}

/**
 * Records are JSON documents validated by a zod schema (from `zod` or, for smaller function
 * bundles, `zod/mini`); a record that does not match is a decode error, with zod's message and the
 * path as the reason.
 *
 * @example
 * const Reading = z.object({ sensor: z.string(), celsius: z.number() });
 * kinesis({ stream: 'readings', decode: schema(Reading) })
 */
export function schema<S extends $ZodType>(zodSchema: S): Decoder<output<S>> {
  type T = output<S>;
  return Object.freeze({
    name: 'zod',
    decode: (bytes: Uint8Array) => {
      const parsed = safeParse(zodSchema, JSON.parse(textDecoder.decode(bytes)));
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
        throw new TypeError(`schema: ${issue?.message ?? 'invalid record'}${where}`);
      }
      return parsed.data;
    },
    encode: (record: T) => textEncoder.encode(JSON.stringify(record)),
  });
}

/** Spec of a source, as serialized into the sealed manifest. */
export interface SourceSpec {
  readonly kind: 'sluice.source/kinesis@1';
  readonly stream: string;
  readonly decoder: string;
}

/** Where a pipeline's records come from. */
export interface Source<T> {
  readonly spec: SourceSpec;
  readonly decoder: Decoder<T>;
}

/** Options of the Kinesis source. */
export interface KinesisSourceOptions<T> {
  /** The stream's name. The construct creates it unless told to use an existing one. */
  readonly stream: string;
  /** How record bytes become records. */
  readonly decode: Decoder<T>;
}

/**
 * A Kinesis data stream source. Records are written ahead to S3 input segments by the ingest
 * function, as Spark's receivers write ahead, so replays stay exact after the stream's retention.
 *
 * @example
 * source: kinesis({ stream: 'lines', decode: utf8 })
 */
export function kinesis<T>(options: KinesisSourceOptions<T>): Source<T> {
  if (!/^[a-zA-Z0-9_.-]{1,128}$/.test(options.stream)) {
    throw new PipelineDefinitionError(`'${options.stream}' is not a valid Kinesis stream name`);
  }
  return Object.freeze({
    spec: Object.freeze({
      kind: 'sluice.source/kinesis@1',
      stream: options.stream,
      decoder: options.decode.name,
    }),
    decoder: options.decode,
  });
}
