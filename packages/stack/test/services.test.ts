/**
 * The services of `tapstack up` on an in-memory stack: what they answer, and what they refuse
 * to answer without an exception anywhere (issue: a UDP echo from source port 0 used to throw
 * inside the receive handler, once per datagram).
 */
import { describe, expect, it, vi } from 'vitest';
import { EtherType, MacAddress, MemoryLink, VirtualClock, ipv4 } from '@tapstack/link';
import { Ipv4Repr } from '@tapstack/ipv4';
import { buildUdpDatagram } from '@tapstack/udp';
import { TcpSocket } from '@tapstack/tcp';
import { createStack } from '../src/stack.ts';
import { httpServer, patternChunk, udpEcho } from '../src/services.ts';

function datagramFrame(to: MacAddress, from: MacAddress, source: string, destination: string, sourcePort: number, destinationPort: number): Uint8Array {
  const udp = buildUdpDatagram(sourcePort, destinationPort, new TextEncoder().encode('echo?'), ipv4(source), ipv4(destination));
  const frame = new Uint8Array(14 + 20 + udp.length);
  frame.set(to.bytes, 0);
  frame.set(from.bytes, 6);
  frame[12] = EtherType.IPV4 >>> 8;
  frame[13] = EtherType.IPV4 & 0xff;
  Ipv4Repr.emit({ source: ipv4(source), destination: ipv4(destination), protocol: 17, ttl: 64, identification: 1, dscp: 0, ecn: 0, dontFragment: false, moreFragments: false, fragmentOffset: 0, options: new Uint8Array(0), payloadLength: udp.length }, frame, 14);
  frame.set(udp, 34);
  return frame;
}

describe('the UDP echo service', () => {
  it('answers a normal datagram, and leaves datagrams from port 0, from 0.0.0.0 or from a broadcast or multicast source alone: counted, no exception, no answer', () => {
    const clock = new VirtualClock();
    const [wireA, wireB] = MemoryLink.pair({ macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')], clock, latencyMs: 1 });
    const stack = createStack({ link: wireB, ip: '10.0.0.2/24', clock, arp: { announce: false } });
    udpEcho(stack.udp, 7);
    const answers: Uint8Array[] = [];
    wireA.setReceiver((frames) => {
      for (const f of frames) if (((f[12]! << 8) | f[13]!) === EtherType.IPV4) answers.push(f);
    });
    const us = wireA.mac;
    const them = wireB.mac;
    for (let i = 0; i < 1000; i++) wireA.send(datagramFrame(them, us, '10.0.0.1', '10.0.0.2', 0, 7));
    for (let i = 0; i < 10; i++) wireA.send(datagramFrame(MacAddress.BROADCAST, us, '0.0.0.0', '255.255.255.255', 68, 7));
    // No host has a broadcast or multicast address: IPv4 drops these before UDP (RFC 1122 3.2.1.3).
    for (const source of ['255.255.255.255', '10.0.0.255', '224.0.0.1']) {
      for (let i = 0; i < 100; i++) wireA.send(datagramFrame(them, us, source, '10.0.0.2', 40000, 7));
    }
    clock.advance(10);
    // the fault: one exception per datagram, caught and counted as a handler error
    expect(stack.ipv4.counters.get('rx_handler_error')).toBe(0);
    expect(stack.dispatcher.counters.get('rx_handler_error')).toBe(0);
    expect(stack.udp.counters.get('rx_source_port_zero')).toBe(1000);
    expect(stack.udp.counters.get('rx_source_unspecified')).toBe(10);
    expect(stack.udp.counters.get('tx_unanswerable')).toBe(1010);
    expect(stack.ipv4.counters.get('rx_source_broadcast')).toBe(200);
    expect(stack.ipv4.counters.get('rx_source_multicast')).toBe(100);
    expect(answers).toEqual([]);
    // a normal datagram still gets its echo (after ARP for 10.0.0.1, answered by nobody here: queued)
    wireA.send(datagramFrame(them, us, '10.0.0.1', '10.0.0.2', 40000, 7));
    clock.advance(10);
    expect(stack.udp.counters.get('tx_datagrams')).toBe(1);
    stack.close();
  });
});

describe('the HTTP service', () => {
  it('turns Nagle off on every socket it serves, as a net.Server does for http (noDelay), and answers', async () => {
    const noDelay = vi.spyOn(TcpSocket.prototype, 'setNoDelay');
    const clock = new VirtualClock();
    const [wireA, wireB] = MemoryLink.pair({ macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')], clock, latencyMs: 1 });
    const client = createStack({ link: wireA, ip: '10.0.0.1/24', clock, arp: { announce: false } });
    const server = createStack({ link: wireB, ip: '10.0.0.2/24', clock, arp: { announce: false } });
    httpServer(server.tcp, 80, '10.0.0.2');
    let response = '';
    let ended = false;
    const socket = client.tcp.connect({ host: '10.0.0.2', port: 80 }, () => {
      socket.write('GET /bytes/3000 HTTP/1.1\r\nhost: 10.0.0.2\r\nconnection: close\r\n\r\n');
    });
    socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
    socket.on('end', () => (ended = true));
    for (let i = 0; i < 200 && !ended; i++) {
      clock.advance(1);
      await new Promise((r) => setImmediate(r));
    }
    expect(response).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(response.length - response.indexOf('\r\n\r\n') - 4).toBe(3000);
    // once, on the server's socket (the client never asked)
    expect(noDelay.mock.calls).toEqual([[true]]);
    noDelay.mockRestore();
    socket.destroy();
    client.close();
    server.close();
  });

  it('has the pattern as literal bytes: byte i is i mod 251, from any offset', () => {
    expect([...patternChunk(0, 4)]).toEqual([0, 1, 2, 3]);
    expect([...patternChunk(249, 4)]).toEqual([249, 250, 0, 1]);
    expect([...patternChunk(251 * 1000 + 5, 3)]).toEqual([5, 6, 7]);
    const chunk = patternChunk(123_456, 64 * 1024);
    expect(chunk.length).toBe(64 * 1024);
    for (let i = 0; i < chunk.length; i += 997) expect(chunk[i]).toBe((123_456 + i) % 251);
    expect(() => patternChunk(0, 64 * 1024 + 1)).toThrow(RangeError);
  });

  it('sends /bytes/N whole and in order, many 64 KiB chunks kept by reference in the send buffer', async () => {
    const clock = new VirtualClock();
    const [wireA, wireB] = MemoryLink.pair({ macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')], clock, latencyMs: 1 });
    const client = createStack({ link: wireA, ip: '10.0.0.1/24', clock, arp: { announce: false } });
    const server = createStack({ link: wireB, ip: '10.0.0.2/24', clock, arp: { announce: false } });
    httpServer(server.tcp, 80, '10.0.0.2');
    const total = 300_001;
    const chunks: Buffer[] = [];
    let ended = false;
    const socket = client.tcp.connect({ host: '10.0.0.2', port: 80 }, () => {
      socket.write(`GET /bytes/${total} HTTP/1.1\r\nhost: 10.0.0.2\r\nconnection: close\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)));
    socket.on('end', () => (ended = true));
    for (let i = 0; i < 5000 && !ended; i++) {
      clock.advance(1);
      await new Promise((r) => setImmediate(r));
    }
    const response = Buffer.concat(chunks);
    const bodyStart = response.indexOf('\r\n\r\n') + 4;
    expect(response.subarray(0, bodyStart).toString('latin1')).toMatch(new RegExp(`^HTTP/1\\.1 200 OK\r\n[^]*content-length: ${total}\r\n`));
    const body = response.subarray(bodyStart);
    expect(body.length).toBe(total);
    let wrong = 0;
    for (let i = 0; i < body.length; i++) if (body[i] !== i % 251) wrong++;
    expect(wrong).toBe(0);
    socket.destroy();
    client.close();
    server.close();
  });
});
