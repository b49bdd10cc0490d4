/**
 * Named counters for one layer, like the kernel's /proc/net/stat files. Every drop path has its
 * own name (`rx_bad_checksum`, `rx_not_for_us`, ...), so tests and people can see why a frame was
 * dropped, not only that it was.
 *
 * Each name has one `Counter` cell. `inc(name)` finds the cell by name (one hash lookup); a hot
 * path that counts every frame asks for the cell once and bumps it directly, which costs no
 * lookup at all:
 *
 *   private readonly rxPackets = this.counters.counter('rx_packets');
 *   ...
 *   this.rxPackets.value++;          // the same counter as counters.inc('rx_packets')
 */

/** One named counter. Its `value` is what `Counters.get(name)` returns. */
export class Counter {
  value = 0;
  constructor(readonly name: string) {}
}

export class Counters<Name extends string = string> {
  private readonly cells = new Map<Name, Counter>();

  constructor(
    /** The layer these belong to, used as a prefix when printed: `arp.rx_bad_hlen`. */
    readonly layer: string,
    names: readonly Name[] = [],
  ) {
    for (const n of names) this.cells.set(n, new Counter(n));
  }

  /** The cell of one counter, for code that counts on every frame (created at 0 if new). */
  counter(name: Name): Counter {
    let cell = this.cells.get(name);
    if (!cell) {
      cell = new Counter(name);
      this.cells.set(name, cell);
    }
    return cell;
  }

  inc(name: Name, by = 1): void {
    const cell = this.cells.get(name);
    if (cell) cell.value += by;
    else this.counter(name).value = by;
  }

  get(name: Name): number {
    return this.cells.get(name)?.value ?? 0;
  }

  /** A plain object of every counter, including those still at zero that were declared. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, c] of this.cells) out[k] = c.value;
    return out;
  }

  reset(): void {
    for (const c of this.cells.values()) c.value = 0;
  }

  /** One `layer.name value` line per non-zero counter (all of them with `all`). */
  format(all = false): string {
    const lines: string[] = [];
    for (const [k, c] of this.cells) if (all || c.value !== 0) lines.push(`${this.layer}.${k} ${c.value}`);
    return lines.join('\n');
  }
}
