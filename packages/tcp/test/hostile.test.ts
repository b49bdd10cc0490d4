/**
 * Hostile TCP input against a stack on an in-memory wire (virtual clock): the other end forges
 * frames by hand. Whatever arrives, the stack must not crash, must keep its memory bounded, must
 * count every drop by its reason, and must go on serving genuine clients.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Ipv4Repr } from '@tapstack/ipv4';
import { EtherType, ipv4, type Ipv4Address } from '@tapstack/link';
import { NO_OPTIONS, TcpFlag, TcpRepr } from '../src/header.ts';
import type { TcpSocket } from '../src/socket.ts';
import { collect, IP_A, IP_B, pair, runUntil, type Pair } from './support.ts';

let pairs: Pair[] = [];
afterEach(() => {
  for (const p of pairs.splice(0)) p.close();
});

/** A whole Ethernet frame from A's MAC to B's, carrying one TCP segment from `source` (which may be forged). */
function frame(p: Pair, source: Ipv4Address, repr: Partial<TcpRepr> & { flags: number }, payload = new Uint8Array(0), destination: Ipv4Address = IP_B): Uint8Array {
  const full: TcpRepr = { sourcePort: 40000, destinationPort: 80, seq: 1, ack: 0, window: 65535, urgentPointer: 0, options: NO_OPTIONS, ...repr };
  const tcpLength = TcpRepr.bufferLength(full, payload.length);
  const out = new Uint8Array(14 + 20 + tcpLength);
  out.set(destination === IP_B ? p.b.link.mac.bytes : new Uint8Array(6).fill(0xff), 0);
  out.set(p.a.link.mac.bytes, 6);
  out[12] = EtherType.IPV4 >>> 8;
  out[13] = EtherType.IPV4 & 0xff;
  Ipv4Repr.emit(
    { source, destination, protocol: 6, ttl: 64, identification: 1, dscp: 0, ecn: 0, dontFragment: true, moreFragments: false, fragmentOffset: 0, options: new Uint8Array(0), payloadLength: tcpLength },
    out,
    14,
  );
  TcpRepr.emit(full, payload, out, source, destination, 34);
  return out;
}

/** An echo server on B. */
function serve(p: Pair, port = 80): void {
  p.b.tcp
    .createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    })
    .listen(port);
}

/** An echo server on B and a client on A, connected (both ends established). */
async function connectedEcho(p: Pair): Promise<{ c: TcpSocket; got: ReturnType<typeof collect> }> {
  serve(p);
  const c = p.a.tcp.connect({ host: IP_B, port: 80 });
  const got = collect(c);
  let connected = false;
  c.on('connect', () => (connected = true));
  await runUntil(p.clock, () => connected && p.b.tcp.connectionCount === 1);
  return { c, got };
}

/** A genuine client on host A: connects, sends a line, expects it back. */
async function genuineEcho(p: Pair, port = 80): Promise<string> {
  const c = p.a.tcp.connect({ host: IP_B, port });
  const got = collect(c);
  c.end('still here\n');
  await runUntil(p.clock, () => got.ended || got.error !== undefined, 120_000, 5);
  if (got.error) throw got.error;
  return got.bytes().toString();
}

describe('hostile TCP input', () => {
  it('a SYN flood from 5000 forged sources: bounded half-open state, SYN cookies past the backlog, genuine clients still served, all state gone after the SYN-ACK retries', async () => {
    const p = pair({ tcp: { synBacklog: 128 } });
    pairs.push(p);
    serve(p);
    let maxConnections = 0;
    for (let i = 0; i < 5000; i++) {
      const source = ipv4(`10.0.0.${3 + (i % 250)}`);
      p.a.link.send(frame(p, source, { sourcePort: 1024 + i, seq: i * 7919, flags: TcpFlag.SYN, options: { mss: 1460 } }));
      if (i % 100 === 0) {
        p.clock.advance(1);
        await new Promise<void>((r) => setImmediate(r));
        maxConnections = Math.max(maxConnections, p.b.tcp.connectionCount);
      }
    }
    p.clock.advance(5);
    expect(maxConnections).toBeLessThanOrEqual(128);
    expect(p.b.tcp.counters.get('SyncookiesSent')).toBeGreaterThan(4000);
    // A real client completes its handshake through a cookie while the queue is full.
    expect(await genuineEcho(p)).toBe('still here\n');
    expect(p.b.tcp.counters.get('SyncookiesRecv')).toBeGreaterThanOrEqual(1);
    // The forged half-open connections give up after their SYN-ACK retries (about 63 s).
    p.clock.advance(70_000);
    await runUntil(p.clock, () => p.b.tcp.connectionCount === 0, 200_000, 1000);
  });

  it('an ACK flood at a listener creates nothing: a RST each (cookies fail), no connection', async () => {
    const p = pair();
    pairs.push(p);
    serve(p);
    for (let i = 0; i < 2000; i++) p.a.link.send(frame(p, IP_A, { sourcePort: 2000 + i, seq: i, ack: i * 104729, flags: TcpFlag.ACK }));
    await runUntil(p.clock, () => p.b.tcp.counters.get('OutRsts') >= 2000, 10_000);
    expect(p.b.tcp.connectionCount).toBe(0);
    expect(p.b.tcp.counters.get('SyncookiesFailed')).toBe(2000);
  });

  it('a RST and SYN flood at an established connection: it survives, challenge ACKs stay within the limits', async () => {
    const p = pair();
    pairs.push(p);
    const { c, got } = await connectedEcho(p);
    const port = c.localPort!;
    const outBefore = p.b.tcp.counters.get('OutSegs');
    for (let i = 0; i < 5000; i++) {
      p.a.link.send(frame(p, IP_A, { sourcePort: port, seq: (i * 2654435761) >>> 0, flags: i % 2 ? TcpFlag.RST : TcpFlag.SYN }));
    }
    await runUntil(p.clock, () => true);
    p.clock.advance(10);
    // per connection: at most one challenge ACK per 500 ms (tcp_invalid_ratelimit)
    expect(p.b.tcp.counters.get('OutSegs') - outBefore).toBeLessThanOrEqual(2);
    c.end('after the flood\n');
    await runUntil(p.clock, () => got.ended, 10_000);
    expect(got.bytes().toString()).toBe('after the flood\n');
  });

  it('bad checksums, data offsets and option lists are dropped and counted by reason, never answered', async () => {
    const p = pair();
    pairs.push(p);
    serve(p);
    const bad = frame(p, IP_A, { flags: TcpFlag.SYN, options: { mss: 1460 } });
    bad[34 + 16] = bad[34 + 16]! ^ 0xff; // checksum
    p.a.link.send(bad);
    const offset = frame(p, IP_A, { flags: TcpFlag.SYN });
    offset[34 + 12] = 0x40; // 16 bytes
    p.a.link.send(offset);
    const options = frame(p, IP_A, { flags: TcpFlag.SYN, options: { mss: 1460 } });
    options[34 + 21] = 0; // MSS option of length 0
    p.a.link.send(options);
    await runUntil(p.clock, () => p.b.tcp.counters.get('InErrs') === 3, 1000);
    expect(p.b.tcp.counters.get('InCsumErrors')).toBe(1);
    expect(p.b.tcp.counters.get('rx_bad_data_offset')).toBe(1);
    expect(p.b.tcp.counters.get('rx_bad_option_length')).toBe(1);
    expect(p.b.tcp.counters.get('OutSegs')).toBe(0);
  });

  it('a segment to a broadcast address gets no answer (RFC 1122 4.2.3.10)', async () => {
    const p = pair();
    pairs.push(p);
    // a SYN to 10.0.0.255 in a broadcast frame, to a closed port: a unicast one would get a RST
    p.a.link.send(frame(p, IP_A, { flags: TcpFlag.SYN, destinationPort: 81 }, undefined, ipv4('10.0.0.255')));
    await runUntil(p.clock, () => true);
    p.clock.advance(10);
    expect(p.b.tcp.counters.get('OutRsts')).toBe(0);
    // IPv4 keeps it from TCP: TCP does not take broadcasts (and would drop them, rx_not_unicast)
    expect(p.b.ipv4.counters.get('rx_group_unwanted')).toBe(1);
  });

  it('a receiver that keeps its window at zero forever: persist probes, bounded memory, and the data goes once it opens', async () => {
    const p = pair({ tcp: { params: { receiveBufferBytes: 16 * 1024 } } });
    pairs.push(p);
    let server: TcpSocket | undefined;
    p.b.tcp.createServer((s) => (server = s)).listen(80);
    const c = p.a.tcp.connect({ host: IP_B, port: 80 });
    c.on('error', () => {}); // the stack closes under it at the end
    const chunk = new Uint8Array(64 * 1024);
    let writes = 0;
    let drained = true;
    c.on('drain', () => (drained = true));
    // the server never reads: pause it as soon as it exists
    await runUntil(p.clock, () => server !== undefined);
    server!.pause();
    server!.on('error', () => {});
    for (let t = 0; t < 600; t++) {
      if (drained && writes < 1000) {
        writes++;
        drained = c.write(chunk);
      }
      p.clock.advance(1000);
      await new Promise<void>((r) => setImmediate(r));
    }
    // ten minutes of virtual time: the sender's buffer stayed bounded, probes went on
    const info = p.a.tcp.show();
    expect(info).toContain('ESTABLISHED');
    expect(p.a.tcp.counters.get('TCPWinProbe')).toBeGreaterThan(5);
    expect(writes).toBeLessThan(20);
    // the receiver reads at last: everything written arrives
    let received = 0;
    let ended = false;
    server!.on('data', (d: Buffer) => (received += d.length));
    server!.on('end', () => (ended = true));
    server!.resume();
    c.end();
    await runUntil(p.clock, () => ended, 600_000, 10);
    expect(received).toBe(writes * chunk.length);
  });

  it('a peer that swallows every segment but still answers ARP: the sender gives up with ETIMEDOUT and forgets the connection', async () => {
    const p = pair();
    pairs.push(p);
    const { c, got } = await connectedEcho(p);
    // B's IPv4 keeps answering ARP and ICMP, but TCP segments now fall into a hole
    p.b.ipv4.unregister(6);
    p.b.ipv4.register(6, () => {});
    c.write('anyone there?');
    await runUntil(p.clock, () => got.error !== undefined, 2_000_000, 1000);
    expect((got.error as NodeJS.ErrnoException).code).toBe('ETIMEDOUT');
    expect(p.a.tcp.counters.get('TCPAbortOnTimeout')).toBe(1);
    expect(p.a.tcp.counters.get('RetransSegs')).toBe(15);
    expect(p.a.tcp.connectionCount).toBe(0);
  });

  it('an ICMP protocol unreachable answer to our SYN refuses the connection (ECONNREFUSED), as Linux', async () => {
    const p = pair();
    pairs.push(p);
    p.b.tcp.close(); // B has no TCP at all: its IPv4 answers protocol unreachable
    const c = p.a.tcp.connect({ host: IP_B, port: 80 });
    const got = collect(c);
    await runUntil(p.clock, () => got.error !== undefined, 10_000);
    expect((got.error as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(p.a.tcp.counters.get('rx_icmp_errors')).toBe(1);
  });

  it('a peer that vanishes: the sender retransmits, ARP fails, and it gives up with EHOSTUNREACH (Linux reports the soft error) and forgets the connection', async () => {
    const p = pair({ faults: { drop: 0 } });
    pairs.push(p);
    const { c, got } = await connectedEcho(p);
    p.b.close(); // B vanishes without a word
    c.write('anyone there?');
    await runUntil(p.clock, () => got.error !== undefined, 2_000_000, 1000);
    expect((got.error as NodeJS.ErrnoException).code).toBe('EHOSTUNREACH');
    expect(p.a.tcp.connectionCount).toBe(0);
  });
});

