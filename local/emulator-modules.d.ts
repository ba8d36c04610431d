// Minimal shapes of the CommonJS emulators that local/emulator.ts uses; none of them ships types.

declare module 'dynalite' {
  import type { Server } from 'node:http';

  namespace dynalite {
    interface Options {
      /** Milliseconds a table stays CREATING. @default 500 */
      readonly createTableMs?: number;
      /** @default 500 */
      readonly deleteTableMs?: number;
      /** @default 500 */
      readonly updateTableMs?: number;
      /** LevelDB directory; in memory when unset. */
      readonly path?: string;
    }
  }

  /** Returns an http.Server that is not yet listening; its close() also closes the store. */
  function dynalite(options?: dynalite.Options): Server;
  export = dynalite;
}

declare module 'kinesalite' {
  import type { Server } from 'node:http';

  namespace kinesalite {
    interface Options {
      /** @default 500 */
      readonly createStreamMs?: number;
      /** @default 500 */
      readonly deleteStreamMs?: number;
      /** @default 500 */
      readonly updateStreamMs?: number;
      /** Open shards allowed across all streams. @default 10 */
      readonly shardLimit?: number;
      /** LevelDB directory; in memory when unset. */
      readonly path?: string;
    }
  }

  /** Returns an http.Server that is not yet listening; its close() also closes the store. */
  function kinesalite(options?: kinesalite.Options): Server;
  export = kinesalite;
}

declare module '@20minutes/s3rver' {
  import type { Server } from 'node:http';
  import type { AddressInfo } from 'node:net';

  namespace S3rver {
    interface Options {
      readonly port?: number;
      readonly address?: string;
      readonly silent?: boolean;
      /** Where buckets and objects are stored as files. */
      readonly directory?: string;
      readonly resetOnClose?: boolean;
      readonly allowMismatchedSignatures?: boolean;
      readonly configureBuckets?: readonly { readonly name: string }[];
    }
  }

  class S3rver {
    constructor(options?: S3rver.Options);
    /** Set once run() has resolved. */
    readonly httpServer?: Server;
    run(): Promise<AddressInfo | string | null>;
    close(): Promise<void>;
  }
  export = S3rver;
}
