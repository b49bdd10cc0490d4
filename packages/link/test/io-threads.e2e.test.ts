/**
 * The addon's I/O threads (TapOptions.ioThreads) against the real kernel: two TAP devices joined
 * by a bridge inside a network namespace of this file, so that what one device's writer thread
 * writes comes back through the other device's reader thread. Numbered frames both ways at once
 * catch a frame reordered, lost or counted twice in the hand-off between JavaScript and the threads;
 * a process that closes both devices in the middle of a flood must neither crash nor hang.
 * No IP is used at all: frames carry a local experimental EtherType (IEEE 802 0x88B5).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns, requireE2eCapabilities } from '../../../test/support/netns.ts';
import { runTsSnippet } from '../../../test/support/subprocess.ts';
import { MacAddress } from '../src/mac.ts';
import { TapDevice } from '../src/tap.ts';

const LOCAL_EXPERIMENTAL = 0x88b5;
const FRAMES = 100_000;
/**
 * Frames a sender may have out before the other side has read them: below the bridge port's
 * queue towards the reader (txqueuelen 1000), so the kernel never drops one and any gap is ours.
 */
const WINDOW = 256;

/** Frame `seq` of direction `tag`: a length that varies with seq (60..1514) and bytes that say who it is. */
function numberedFrame(from: MacAddress, to: MacAddress, tag: number, seq: number): Uint8Array {
  const length = 60 + ((seq * 37) % 1455);
  const frame = new Uint8Array(length).fill(seq & 0xff);
  to.writeTo(frame, 0);
  from.writeTo(frame, 6);
  const v = new DataView(frame.buffer);
  v.setUint16(12, LOCAL_EXPERIMENTAL);
  v.setUint8(14, tag);
  v.setUint32(15, seq);
  return frame;
}

/** The checks a receiver makes on each frame of its direction: the next number, its length, its bytes. */
class Expecting {
  next = 0;
  problems: string[] = [];
  constructor(readonly tag: number) {}
  take(frame: Uint8Array): boolean {
    if (frame.length < 19 || frame[12] !== 0x88 || frame[13] !== 0xb5 || frame[14] !== this.tag) return false;
    const seq = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(15);
    const length = 60 + ((seq * 37) % 1455);
    if (seq !== this.next && this.problems.length < 5) this.problems.push(`expected frame ${this.next}, got ${seq}`);
    if (frame.length !== length && this.problems.length < 5) this.problems.push(`frame ${seq}: ${frame.length} bytes, sent ${length}`);
    if (frame[length - 1] !== (seq & 0xff) && this.problems.length < 5) this.problems.push(`frame ${seq}: last byte changed`);
    this.next = seq + 1;
    return true;
  }
}

describe('TapDevice I/O threads (two devices on a bridge, in a namespace)', () => {
  let ns: Netns;
  beforeAll(() => {
    requireE2eCapabilities();
    ns = Netns.create('iothreads');
  });
  afterAll(() => ns?.destroy());

  /** Joins two open devices with a bridge in the namespace (no STP: ports forward at once). */
  function bridge(name: string, ports: TapDevice[]): void {
    ns.exec('ip', ['link', 'add', name, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    for (const port of ports) {
      port.configureHost({ up: true });
      ns.exec('ip', ['link', 'set', port.ifname, 'master', name]);
    }
    ns.exec('ip', ['link', 'set', name, 'up']);
  }

  it('the threads are off unless asked for, with or without the virtio-net header', () => {
    const plain = TapDevice.open({ name: 'tapp', netns: ns.name });
    const vnet = TapDevice.open({ name: 'tapv', netns: ns.name, vnetHeader: true });
    const asked = TapDevice.open({ name: 'tapf', netns: ns.name, vnetHeader: true, ioThreads: true });
    try {
      expect([plain.ioThreads, vnet.ioThreads, asked.ioThreads]).toEqual([false, false, true]);
    } finally {
      for (const device of [plain, vnet, asked]) device.close();
    }
  });

  it.each([true, false])(`carries ${FRAMES.toLocaleString('en')} numbered frames each way at once, in order, none lost or counted twice (ioThreads %s)`, async (ioThreads) => {
    const a = TapDevice.open({ name: 'tapa', netns: ns.name, ioThreads });
    const b = TapDevice.open({ name: 'tapb', netns: ns.name, ioThreads });
    try {
      expect([a.ioThreads, b.ioThreads]).toEqual([ioThreads, ioThreads]);
      bridge('br0', [a, b]);
      const toB = new Expecting(1);
      const toA = new Expecting(2);
      let sentToB = 0;
      let sentToA = 0;
      const pump = (): void => {
        while (sentToB < FRAMES && sentToB - toB.next < WINDOW) a.send(numberedFrame(a.mac, b.mac, 1, sentToB++));
        while (sentToA < FRAMES && sentToA - toA.next < WINDOW) b.send(numberedFrame(b.mac, a.mac, 2, sentToA++));
      };
      const done = new Promise<void>((resolve, reject) => {
        let last = -1;
        const watchdog = setInterval(() => {
          const progress = toA.next + toB.next;
          if (progress === last) {
            clearInterval(watchdog);
            reject(new Error(`stalled at ${toB.next} frames to b, ${toA.next} to a (a tap counters ${JSON.stringify(a.tapCounters.snapshot())})`));
          }
          last = progress;
        }, 3_000);
        const check = (): void => {
          if (toA.next >= FRAMES && toB.next >= FRAMES) {
            clearInterval(watchdog);
            resolve();
          } else {
            pump();
          }
        };
        a.setReceiver((frames) => {
          for (const f of frames) toA.take(f);
          check();
        });
        b.setReceiver((frames) => {
          for (const f of frames) toB.take(f);
          check();
        });
      });
      pump();
      await done;
      expect(toB.problems).toEqual([]);
      expect(toA.problems).toEqual([]);
      expect([toB.next, toA.next]).toEqual([FRAMES, FRAMES]);
      // counted once each: everything we sent, no failed writes, nothing dropped for a full queue
      expect(a.counters.get('tx_frames')).toBe(FRAMES);
      expect(b.counters.get('tx_frames')).toBe(FRAMES);
      for (const d of [a, b]) {
        expect(d.tapCounters.get('tx_write_errors')).toBe(0);
        expect(d.tapCounters.get('tx_dropped_queue_full')).toBe(0);
      }
      // the kernel's side agrees: its tap ports received (from us) at least all of ours
      const stats = JSON.parse(ns.exec('ip', ['-s', '-j', 'link', 'show', 'tapa'])) as { stats64: { rx: { packets: number } } }[];
      expect(stats[0]!.stats64.rx.packets).toBeGreaterThanOrEqual(FRAMES);
    } finally {
      a.close();
      b.close();
      try {
        ns.exec('ip', ['link', 'del', 'br0']);
      } catch {
        // already gone with its ports
      }
    }
  }, 120_000);

  it('close() in the middle of a flood both ways: no crash, no hang, the process exits', async () => {
    const code = `
      import { execFileSync } from 'node:child_process';
      import { TapDevice } from '@tapstack/link';
      const netns = process.env.TAP_NETNS;
      const a = TapDevice.open({ name: 'tapc', netns, ioThreads: true });
      const b = TapDevice.open({ name: 'tapd', netns, ioThreads: true });
      const ip = (...args) => execFileSync('ip', ['-n', netns, ...args]);
      ip('link', 'add', 'br1', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
      for (const d of [a, b]) { d.configureHost({ up: true }); ip('link', 'set', d.ifname, 'master', 'br1'); }
      ip('link', 'set', 'br1', 'up');
      let received = 0;
      a.setReceiver((frames) => (received += frames.length));
      b.setReceiver((frames) => (received += frames.length));
      const frame = (from, to) => { const f = new Uint8Array(1514); to.writeTo(f, 0); from.writeTo(f, 6); f[12] = 0x88; f[13] = 0xb5; return f; };
      const ab = frame(a.mac, b.mac), ba = frame(b.mac, a.mac);
      let flooding = true;
      const flood = () => { if (!flooding) return; for (let i = 0; i < 512; i++) { a.send(ab); b.send(ba); } setImmediate(flood); };
      flood();
      setTimeout(() => {
        flooding = false;
        a.close();
        b.close();
        ip('link', 'del', 'br1');
        console.log(JSON.stringify({ received, sent: a.counters.get('tx_frames') + b.counters.get('tx_frames') }));
      }, 500);
    `;
    const r = await runTsSnippet(code, { timeoutMs: 20_000, env: { ...process.env, TAP_NETNS: ns.name } });
    expect(r.stderr).toBe('');
    expect(r.timedOut).toBe(false);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { received: number; sent: number };
    expect(out.sent).toBeGreaterThan(1000); // it was under load when it closed
    expect(out.received).toBeGreaterThan(0);
    expect(() => execFileSync('ip', ['-n', ns.name, 'link', 'show', 'tapc'], { stdio: 'ignore' })).toThrow();
  }, 60_000);
});
