/**
 * A 48-bit IEEE 802 MAC address. A value type: the six bytes are copied in and never change.
 * Formatted only when printed (`toString()` gives `02:00:00:00:0a:01`).
 */
export class MacAddress {
  static readonly LENGTH = 6;
  static readonly BROADCAST = new MacAddress(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
  static readonly ZERO = new MacAddress(new Uint8Array(6));

  /** The six bytes, in wire order. Do not modify. */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** Copies six bytes starting at `offset` into a new address. */
  static fromBytes(buffer: Uint8Array, offset = 0): MacAddress {
    if (offset < 0 || offset + 6 > buffer.length) {
      throw new RangeError(`MacAddress.fromBytes: need 6 bytes at offset ${offset}, buffer has ${buffer.length}`);
    }
    // A copy, also when `buffer` is a Node Buffer (whose slice() shares memory).
    return new MacAddress(new Uint8Array(buffer.subarray(offset, offset + 6)));
  }

  /** Parses `aa:bb:cc:dd:ee:ff` (or with `-`). Throws on anything else: this is for user input. */
  static parse(text: string): MacAddress {
    const parts = text.trim().split(/[:-]/);
    if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
      throw new Error(`invalid MAC address "${text}": expected six hex bytes like 02:00:00:00:0a:01`);
    }
    return new MacAddress(new Uint8Array(parts.map((p) => parseInt(p, 16))));
  }

  /**
   * A random unicast, locally administered address (the 0x02 bit set, the 0x01 bit clear), the
   * kind Linux gives a TAP device. `random` defaults to Math.random; pass a seeded one in tests.
   */
  static randomLocal(random: () => number = Math.random): MacAddress {
    const b = new Uint8Array(6);
    for (let i = 0; i < 6; i++) b[i] = Math.floor(random() * 256) & 0xff;
    b[0] = (b[0]! & 0xfc) | 0x02;
    return new MacAddress(b);
  }

  /** True for ff:ff:ff:ff:ff:ff. */
  get isBroadcast(): boolean {
    const b = this.bytes;
    return (b[0]! & b[1]! & b[2]! & b[3]! & b[4]! & b[5]!) === 0xff;
  }

  /** True when the group bit (least significant bit of the first byte) is set; broadcast is one. */
  get isMulticast(): boolean {
    return (this.bytes[0]! & 0x01) === 1;
  }

  get isUnicast(): boolean {
    return !this.isMulticast;
  }

  /** True when the U/L bit (0x02 of the first byte) is set. */
  get isLocallyAdministered(): boolean {
    return (this.bytes[0]! & 0x02) === 2;
  }

  get isZero(): boolean {
    const b = this.bytes;
    return (b[0]! | b[1]! | b[2]! | b[3]! | b[4]! | b[5]!) === 0;
  }

  equals(other: MacAddress): boolean {
    return MacAddress.equalsAt(other, this.bytes, 0);
  }

  /** Compares with six bytes inside a buffer without allocating (hot path). */
  static equalsAt(mac: MacAddress, buffer: Uint8Array, offset: number): boolean {
    const a = mac.bytes;
    return (
      a[0] === buffer[offset] &&
      a[1] === buffer[offset + 1] &&
      a[2] === buffer[offset + 2] &&
      a[3] === buffer[offset + 3] &&
      a[4] === buffer[offset + 4] &&
      a[5] === buffer[offset + 5]
    );
  }

  /** Writes the six bytes into `buffer` at `offset` (throws RangeError when they do not fit). */
  writeTo(buffer: Uint8Array, offset: number): void {
    if (!(offset >= 0 && offset + 6 <= buffer.length)) {
      throw new RangeError(`MacAddress.writeTo: need 6 bytes at offset ${offset}, buffer has ${buffer.length}`);
    }
    // Six stores: cheaper than TypedArray.set for six bytes (it runs on every frame sent).
    const a = this.bytes;
    buffer[offset] = a[0]!;
    buffer[offset + 1] = a[1]!;
    buffer[offset + 2] = a[2]!;
    buffer[offset + 3] = a[3]!;
    buffer[offset + 4] = a[4]!;
    buffer[offset + 5] = a[5]!;
  }

  toString(): string {
    let s = '';
    for (let i = 0; i < 6; i++) {
      if (i > 0) s += ':';
      s += this.bytes[i]!.toString(16).padStart(2, '0');
    }
    return s;
  }

  toJSON(): string {
    return this.toString();
  }
}
