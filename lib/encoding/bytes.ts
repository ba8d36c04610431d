/**
 * A growable byte buffer with the primitive writes the segment and shuffle formats use.
 * Varints are unsigned LEB128 over safe integers (up to 2^53), done with arithmetic rather than
 * bit operators, which would truncate to 32 bits.
 */
export class ByteWriter {
  private buffer: Buffer;
  private position = 0;

  constructor(initialSize = 64 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialSize);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.position;
  }

  private reserve(bytes: number): void {
    const needed = this.position + bytes;
    if (needed <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < needed) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buffer.copy(grown, 0, 0, this.position);
    this.buffer = grown;
  }

  u8(value: number): void {
    this.reserve(1);
    this.buffer[this.position++] = value;
  }

  varint(value: number): void {
    this.reserve(8);
    let v = value;
    while (v >= 0x80) {
      this.buffer[this.position++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buffer[this.position++] = v;
  }

  f64(value: number): void {
    this.reserve(8);
    this.buffer.writeDoubleLE(value, this.position);
    this.position += 8;
  }

  /** A varint byte length, then the UTF-8 bytes. */
  string(value: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    const max = value.length * 3;
    this.reserve(max + 8);
    if (max < 0x80) {
      // Short strings (most keys): copy ASCII by hand, which beats a native call at this size,
      // and write the length byte after, saving a second pass.
      const start = this.position + 1;
      const buffer = this.buffer;
      let i = 0;
      for (; i < value.length; i++) {
        const code = value.charCodeAt(i);
        if (code >= 0x80) break;
        buffer[start + i] = code;
      }
      const written = i === value.length ? i : buffer.write(value, start, 'utf8');
      buffer[this.position] = written;
      this.position = start + written;
      return;
    }
    const bytes = Buffer.byteLength(value, 'utf8');
    this.varint(bytes);
    this.buffer.write(value, this.position, 'utf8');
    this.position += bytes;
  }

  bytes(value: Uint8Array): void {
    this.varint(value.length);
    this.raw(value);
  }

  raw(value: Uint8Array): void {
    this.reserve(value.length);
    this.buffer.set(value, this.position);
    this.position += value.length;
  }

  /** A copy of what was written (the writer can be reused after `reset`). */
  toBuffer(): Buffer {
    return Buffer.from(this.buffer.subarray(0, this.position));
  }

  reset(): void {
    this.position = 0;
  }

  /** Drops what was written after `length`: a value that failed half-way leaves no bytes behind. */
  truncate(length: number): void {
    if (length < 0 || length > this.position) throw new RangeError(`cannot truncate to ${length}`);
    this.position = length;
  }
}

/** Reads what a `ByteWriter` wrote. Throws `RangeError` on truncated input. */
export class ByteReader {
  private position: number;

  constructor(
    private readonly buffer: Buffer,
    start = 0,
    private readonly end = buffer.length,
  ) {
    this.position = start;
  }

  get offset(): number {
    return this.position;
  }

  get done(): boolean {
    return this.position >= this.end;
  }

  private need(bytes: number): void {
    if (this.position + bytes > this.end) throw new RangeError('truncated data');
  }

  u8(): number {
    this.need(1);
    return this.buffer[this.position++] as number;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      const byte = this.u8();
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 0x80;
      if (scale > 2 ** 56) throw new RangeError('varint too long');
    }
  }

  f64(): number {
    this.need(8);
    const value = this.buffer.readDoubleLE(this.position);
    this.position += 8;
    return value;
  }

  string(): string {
    const length = this.varint();
    this.need(length);
    const value = this.buffer.toString('utf8', this.position, this.position + length);
    this.position += length;
    return value;
  }

  bytes(): Buffer {
    const length = this.varint();
    this.need(length);
    const value = this.buffer.subarray(this.position, this.position + length);
    this.position += length;
    return value;
  }
}
