import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryLink, settle } from '../src/memory.ts';
import { MemoryPcapSink, PcapFormatError, PcapWriter, readPcap, withCapture } from '../src/pcap.ts';
import { FIXTURE_DIR, hex } from '../../../test/support/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'tapstack-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('PcapWriter', () => {
  it('writes the classic libpcap header: LE magic, 2.4, snaplen, LINKTYPE_ETHERNET', () => {
    const sink = new MemoryPcapSink();
    new PcapWriter(sink);
    expect(sink.bytes()).toEqual(hex('d4c3b2a1 0200 0400 00000000 00000000 00000400 01000000'));
  });

  it('writes each record as ts_sec, ts_usec, incl_len, orig_len, then the frame', () => {
    const sink = new MemoryPcapSink();
    const writer = new PcapWriter(sink);
    writer.write(new Uint8Array([0xaa, 0xbb, 0xcc]), 1_700_000_000_123_456);
    expect(sink.bytes().subarray(24)).toEqual(hex('00f15365 40e20100 03000000 03000000 aabbcc'));
    expect(writer.records).toBe(1);
  });

  it('round-trips through readPcap: frames, lengths and microsecond timestamps (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 1600 }), fc.integer({ min: 0, max: 4_000_000_000 * 1e6 })), { maxLength: 20 }),
        (records) => {
          const sink = new MemoryPcapSink();
          const writer = new PcapWriter(sink);
          for (const [frame, ts] of records) writer.write(frame, ts);
          const back = readPcap(sink.bytes());
          expect(back.map((r) => r.frame)).toEqual(records.map(([f]) => f));
          expect(back.map((r) => r.timestampUs)).toEqual(records.map(([, ts]) => ts));
          expect(back.map((r) => r.originalLength)).toEqual(records.map(([f]) => f.length));
        },
      ),
    );
  });

  it('cuts frames at the snap length but keeps the length on the wire', () => {
    const sink = new MemoryPcapSink();
    const writer = new PcapWriter(sink, { snapLength: 10 });
    writer.write(new Uint8Array(100).fill(1), 5);
    const [r] = readPcap(sink.bytes());
    expect(r!.frame.length).toBe(10);
    expect(r!.originalLength).toBe(100);
  });

  it('writes a batch with one timestamp, and takes the time from `now` when none is given', () => {
    const sink = new MemoryPcapSink();
    const writer = new PcapWriter(sink, { now: () => 42_000_001 });
    writer.writeBatch([new Uint8Array([1]), new Uint8Array([2, 2])]);
    writer.write(new Uint8Array([3]));
    expect(readPcap(sink.bytes()).map((r) => [r.timestampUs, r.frame.length])).toEqual([
      [42_000_001, 1],
      [42_000_001, 2],
      [42_000_001, 1],
    ]);
  });

  it('writes to a file and writes nothing after close', () => {
    const file = join(dir, 'a.pcap');
    const writer = new PcapWriter(file);
    writer.write(new Uint8Array(42), 1);
    writer.close();
    writer.write(new Uint8Array(42), 2);
    const back = readPcap(readFileSync(file));
    expect(back.length).toBe(1);
  });
});

describe('readPcap', () => {
  it('reads the kernel fixtures (tcpdump -w files)', () => {
    const records = readPcap(readFileSync(join(FIXTURE_DIR, 'linux-arp-and-ping.pcap')));
    expect(records.length).toBe(6);
    expect(records[0]!.frame.length).toBe(42);
    // tshark -T fields -e frame.time_epoch says 1795300066.610696 for the first frame
    expect(records[0]!.timestampUs).toBe(1795300066610696);
  });

  it('reads big-endian and nanosecond files too', () => {
    // header + one record, big-endian, nanosecond magic
    const be = hex('a1b23c4d 0002 0004 00000000 00000000 0000ffff 00000001  00000002 000f4240 00000002 00000002 abcd');
    const [r] = readPcap(be);
    expect(r!.timestampUs).toBe(2_001_000);
    expect(r!.frame).toEqual(new Uint8Array([0xab, 0xcd]));
  });

  it('refuses what it cannot read, saying why', () => {
    expect(() => readPcap(new Uint8Array(10))).toThrow(PcapFormatError);
    expect(() => readPcap(hex('0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff'))).toThrow(/pcapng/);
    expect(() => readPcap(new Uint8Array(24))).toThrow(/magic/);
    expect(() => readPcap(hex('d4c3b2a1 0200 0400 00000000 00000000 00000400 71000000'))).toThrow(/link type 113/);
    const good = new MemoryPcapSink();
    new PcapWriter(good).write(new Uint8Array(50), 0);
    const bytes = good.bytes();
    expect(() => readPcap(bytes.subarray(0, bytes.length - 1))).toThrow(/file ends/);
    expect(() => readPcap(bytes.subarray(0, 30))).toThrow(/cut short/);
  });
});

describe('withCapture', () => {
  it('records every frame in and out, and closes the file with the link', async () => {
    const [a, b] = MemoryLink.pair();
    const sink = new MemoryPcapSink();
    let t = 0;
    const capture = withCapture(a, new PcapWriter(sink, { now: () => ++t }));
    const got: Uint8Array[] = [];
    capture.setReceiver((frames) => got.push(...frames));
    const out1 = new Uint8Array(60).fill(1);
    const in1 = new Uint8Array(60).fill(2);
    const tooBig = new Uint8Array(a.mtu + 15);
    expect(capture.send(out1)).toBe(true);
    expect(capture.send(tooBig)).toBe(false); // refused by the link: not recorded
    b.send(in1);
    await settle(a, b);
    expect(got).toEqual([in1]);
    const records = readPcap(sink.bytes());
    expect(records.map((r) => r.frame)).toEqual([out1, in1]);
    capture.close();
    expect(capture.writer.closed).toBe(true);
  });
});

describe('a capture that cannot be written', () => {
  it('stops capturing at the first write error, says so once, counts it, and the frames keep flowing', async () => {
    // A sink that fails like a full disk after 200 bytes.
    let written = 0;
    const failing = {
      write(chunk: Uint8Array): void {
        if (written + chunk.length > 200) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        written += chunk.length;
      },
      close(): void {},
    };
    const [a, b] = MemoryLink.pair();
    const errors: string[] = [];
    const captured = withCapture(a, new PcapWriter(failing), { onError: (e) => errors.push(e.message) });
    const received: Uint8Array[] = [];
    b.setReceiver((frames) => received.push(...frames));
    const got: Uint8Array[] = [];
    captured.setReceiver((frames) => got.push(...frames));
    for (let i = 0; i < 20; i++) expect(captured.send(new Uint8Array(60).fill(i))).toBe(true);
    for (let i = 0; i < 20; i++) b.send(new Uint8Array(60).fill(100 + i));
    await settle();
    expect(received.length).toBe(20);
    expect(got.length).toBe(20);
    expect(errors).toEqual(['ENOSPC: no space left on device, write']);
    expect(captured.capturing).toBe(false);
    expect(captured.counters.get('capture_write_failed')).toBe(1);
  });
});
