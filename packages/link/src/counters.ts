/**
 * Named counters for one layer, like the kernel's /proc/net/stat files. Every drop path has its
 * own name (`rx_bad_checksum`, `rx_not_for_us`, ...), so tests and people can see why a frame was
 * dropped, not only that it was.
 */
export class Counters<Name extends string = string> {
  private readonly values = new Map<Name, number>();

  constructor(
    /** The layer these belong to, used as a prefix when printed: `arp.rx_bad_hlen`. */
    readonly layer: string,
    names: readonly Name[] = [],
  ) {
    for (const n of names) this.values.set(n, 0);
  }

  inc(name: Name, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
  }

  get(name: Name): number {
    return this.values.get(name) ?? 0;
  }

  /** A plain object of every counter, including those still at zero that were declared. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.values);
  }

  reset(): void {
    for (const k of this.values.keys()) this.values.set(k, 0);
  }

  /** One `layer.name value` line per non-zero counter (all of them with `all`). */
  format(all = false): string {
    const lines: string[] = [];
    for (const [k, v] of this.values) if (all || v !== 0) lines.push(`${this.layer}.${k} ${v}`);
    return lines.join('\n');
  }
}
