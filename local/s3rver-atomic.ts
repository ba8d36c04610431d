import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** The part of s3rver's filesystem store that writes an object's bytes. */
interface ContentStore {
  putContent(objectPath: string, content: Buffer | Readable): Promise<[number, string]>;
}

/**
 * Makes s3rver's object writes atomic, as S3's are. Its store truncates the object's file and then
 * writes it (and, for a body in memory, answers before the bytes are on disk), so a GET that meets
 * a PUT of the same key reads a short object: a ranged GET then fails with `InvalidRange`, which on
 * S3 can only mean a corrupt object. Duplicate deliveries overwrite keys with the same bytes while
 * others read them, so the emulator must not show what S3 never shows. The new bytes go to a
 * temporary file that is renamed over the object: readers see the old object or the new one, whole.
 *
 * @example
 * makeObjectWritesAtomic((s3rver as unknown as { store: unknown }).store);
 */
export function makeObjectWritesAtomic(store: unknown): void {
  const target = store as ContentStore;
  target.putContent = async (objectPath, content) => {
    const temporary = `${objectPath}.${randomBytes(6).toString('hex')}.part`;
    const md5 = createHash('md5');
    let size = 0;
    try {
      if (Buffer.isBuffer(content)) {
        md5.update(content);
        size = content.length;
        await pipeline(function* () {
          yield content;
        }, createWriteStream(temporary));
      } else {
        const count = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            md5.update(chunk);
            size += chunk.length;
            callback(null, chunk);
          },
        });
        await pipeline(content, count, createWriteStream(temporary));
      }
      await rename(temporary, objectPath);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    return [size, md5.digest('hex')];
  };
}
