/**
 * The two ways docs/extending.md shows to add a layer, checked on two stacks on an in-memory
 * wire: a protocol on its own EtherType (dispatcher.register) and one on its own IP protocol
 * number (ipv4.register + ipv4.send). Also: what happens before anyone registers (counted drop,
 * or ICMP protocol unreachable), and that a second registration throws.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ETHERNET_HEADER_LENGTH, LinkWrapper, MacAddress, MemoryLink, formatIpv4, ipv4, settle, type Ipv4Address } from '@tapstack/link';
import { createStack, type Stack } from '../src/stack.ts';

const stacks: Stack[] = [];
afterEach(() => {
  for (const s of stacks.splice(0)) s.close();
});

function pair(): { a: Stack; b: Stack; wires: [MemoryLink, MemoryLink] } {
  const wires = MemoryLink.pair({ macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')] });
  const a = createStack({ link: wires[0], ip: '10.0.0.1/24', arp: { announce: false } });
  const b = createStack({ link: wires[1], ip: '10.0.0.2/24', arp: { announce: false } });
  stacks.push(a, b);
  return { a, b, wires };
}

describe('a layer on its own EtherType (0x88b5)', () => {
  it('frames reach the registered handler whole; before registration they are counted as unknown', async () => {
    const { a, b, wires } = pair();
    const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + 5);
    frame.set(b.link.mac.bytes, 0);
    frame.set(a.link.mac.bytes, 6);
    frame.set([0x88, 0xb5, 1, 2, 3, 4, 5], 12);

    a.dispatcher.send(frame);
    await settle(...wires);
    expect(b.dispatcher.counters.get('rx_unknown_ethertype')).toBe(1);

    const received: Uint8Array[] = [];
    b.dispatcher.register(0x88b5, (f) => received.push(f));
    a.dispatcher.send(frame);
    await settle(...wires);
    expect(received).toHaveLength(1);
    expect([...received[0]!]).toEqual([...frame]);
    expect(() => b.dispatcher.register(0x88b5, () => {})).toThrow(/already has a handler/);
    expect(() => b.dispatcher.register(0x0806, () => {})).toThrow(/already has a handler/); // ARP's
  });
});

describe('a layer on its own IP protocol number (253)', () => {
  it('unregistered: ICMP protocol unreachable; registered: the handler gets the payload, ARP and routing come free', async () => {
    const { a, b, wires } = pair();
    const errors: string[] = [];
    a.icmp.onError((e) => errors.push(`${e.kind} code ${e.code} from ${formatIpv4(e.from)}`));

    // Nobody on B speaks 253 yet: B answers with destination unreachable, code 2.
    expect(a.ipv4.send({ destination: ipv4('10.0.0.2'), protocol: 253, payload: Uint8Array.of(1) })).toBe('queued'); // waits for ARP
    await settle(...wires);
    expect(b.ipv4.counters.get('rx_unknown_protocol')).toBe(1);
    expect(errors).toEqual(['destination-unreachable code 2 from 10.0.0.2']);

    const got: { from: Ipv4Address; payload: number[] }[] = [];
    b.ipv4.register(253, (packet) => {
      const payload = packet.payload;
      got.push({ from: packet.source, payload: [...payload] });
      // answer: the same bytes, reversed, back to the sender
      b.ipv4.send({ destination: packet.source, protocol: 253, payload: Uint8Array.from(payload).reverse() });
    });
    const answers: number[][] = [];
    a.ipv4.register(253, (packet) => answers.push([...packet.payload]));

    expect(a.ipv4.send({ destination: ipv4('10.0.0.2'), protocol: 253, payload: Uint8Array.of(1, 2, 3) })).toBe('sent'); // ARP resolved now
    await settle(...wires);
    expect(got).toEqual([{ from: ipv4('10.0.0.1'), payload: [1, 2, 3] }]);
    expect(answers).toEqual([[3, 2, 1]]);
    expect(() => b.ipv4.register(253, () => {})).toThrow(/already has a handler/);
    expect(() => b.ipv4.register(1, () => {})).toThrow(/already has a handler/); // ICMP's
  });
});

describe('middleware on the Link', () => {
  class Counting extends LinkWrapper {
    seen = 0;
    override send(frame: Uint8Array): boolean {
      this.seen++;
      return super.send(frame);
    }
    protected override receive(frames: readonly Uint8Array[]): void {
      this.seen += frames.length;
      this.deliverUp(frames);
    }
  }

  it('a LinkWrapper sees every frame both ways and the stack above works as before', async () => {
    const wires = MemoryLink.pair();
    const counting = new Counting(wires[0]);
    const a = createStack({ link: counting, ip: '10.0.0.1/24', arp: { announce: false } });
    const b = createStack({ link: wires[1], ip: '10.0.0.2/24', arp: { announce: false } });
    stacks.push(a, b);
    const keepAlive = setInterval(() => {}, 1000);
    const summary = await a.icmp.ping(b.address, { count: 2, intervalMs: 10, timeoutMs: 500 });
    clearInterval(keepAlive);
    expect(summary.received).toBe(2);
    // ARP request + reply, two echo requests + two replies
    expect(counting.seen).toBe(6);
    expect(counting.seen).toBe(wires[0].counters.get('tx_frames') + wires[0].counters.get('rx_frames'));
  });
});
