import { GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { NotReadyError, type ErrorScope } from '../errors';

/** S3 access for one bucket: whole and ranged reads, deterministic overwriting writes. */
export class ObjectStore {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  /**
   * Writes an object. Keys are deterministic and bodies byte-identical on replay, so an
   * overwrite is harmless and no conditional PUT is needed.
   */
  async put(key: string, body: Uint8Array, contentType = 'application/octet-stream'): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }),
    );
  }

  /** Reads a whole object; a missing one is `NotReadyError` (its writer may not have finished). */
  async get(key: string, scope?: ErrorScope): Promise<Buffer> {
    return this.read(key, undefined, scope);
  }

  /** Reads bytes `[start, end)` of an object with one ranged GET. */
  async getRange(key: string, start: number, end: number, scope?: ErrorScope): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    return this.read(key, `bytes=${start}-${end - 1}`, scope);
  }

  /** Reads a whole object, or `undefined` when there is none. */
  async getIfExists(key: string): Promise<Buffer | undefined> {
    try {
      return await this.read(key, undefined);
    } catch (error) {
      if (error instanceof NotReadyError) return undefined;
      throw error;
    }
  }

  private async read(key: string, range: string | undefined, scope?: ErrorScope): Promise<Buffer> {
    try {
      const response = await this.s3.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(range ? { Range: range } : {}) }),
      );
      if (!response.Body) throw new NotReadyError(`s3://${this.bucket}/${key} has no body`, scope);
      return Buffer.from(await response.Body.transformToByteArray());
    } catch (error) {
      if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') {
        throw new NotReadyError(`s3://${this.bucket}/${key} does not exist yet`, scope);
      }
      throw error;
    }
  }
}
