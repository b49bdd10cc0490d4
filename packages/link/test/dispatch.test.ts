import { beforeEach, describe, expect, it } from 'vitest';
import { EtherTypeDispatcher } from '../src/dispatch.ts';
import { buildEthernetFrame, EtherType } from '../src/ethernet.ts';
import { MacAddress } from '../src/mac.ts';
import { MemoryLink, settle } from '../src/memory.ts';

const US = MacAddress.parse('02:00:00:00:0a:01');
const PEER = MacAddress.parse('02:00:00:00:0b:02');
const OTHER = MacAddress.parse('02:00:00:00:0c:03');
const MDNS = MacAddress.parse('01:00:5e:00:00:fb');

function frameTo(destination: MacAddress, etherType: number, payload = new Uint8Array(46)): Uint8Array {
  return buildEthernetFrame({ destination, source: PEER, etherType }, payload);
}

describe('EtherTypeDispatcher', () => {
  let link: MemoryLink;
  let peer: MemoryLink;
  let dispatcher: EtherTypeDispatcher;
  let ipv4: Uint8Array[];
  beforeEach(() => {
    [link, peer] = MemoryLink.pair({ macs: [US, PEER] });
    dispatcher = new EtherTypeDispatcher(link);
    ipv4 = [];
    dispatcher.register(EtherType.IPV4, (f) => ipv4.push(f));
  });

  it('refuses a second handler for the same EtherType, and invalid EtherTypes', () => {
    expect(() => dispatcher.register(EtherType.IPV4, () => {})).toThrow(/0x0800 already has a handler/);
    expect(() => dispatcher.register(0x05dc, () => {})).toThrow(RangeError); // an 802.3 length, not a type
    expect(() => dispatcher.register(0x10000, () => {})).toThrow(RangeError);
    dispatcher.unregister(EtherType.IPV4);
    expect(() => dispatcher.register(EtherType.IPV4, () => {})).not.toThrow();
  });

  it('hands frames for our MAC and broadcast to the handler, whole and still valid afterwards', () => {
    const unicast = frameTo(US, EtherType.IPV4);
    const broadcast = frameTo(MacAddress.BROADCAST, EtherType.IPV4);
    dispatcher.input(unicast);
    dispatcher.input(broadcast);
    expect(ipv4).toEqual([unicast, broadcast]);
    expect(ipv4[0]!.length).toBe(60);
    expect(dispatcher.counters.get('rx_delivered')).toBe(2);
  });

  it('drops and counts each reason: runt, not for us, unjoined multicast, unknown EtherType', () => {
    dispatcher.input(new Uint8Array(0));
    dispatcher.input(new Uint8Array(13));
    dispatcher.input(frameTo(OTHER, EtherType.IPV4));
    dispatcher.input(frameTo(MDNS, EtherType.IPV4));
    dispatcher.input(frameTo(US, EtherType.IPV6));
    dispatcher.input(frameTo(US, 0x0042)); // an 802.3 length field: no handler can exist
    expect(ipv4).toEqual([]);
    expect(dispatcher.counters.snapshot()).toEqual({
      rx_delivered: 0,
      rx_runt: 2,
      rx_not_for_us: 1,
      rx_multicast_not_joined: 1,
      rx_unknown_ethertype: 2,
      rx_handler_error: 0,
    });
  });

  it('accepts a multicast group once joined, and not after leaving it', () => {
    expect(() => dispatcher.joinMulticast(US)).toThrow(/not a multicast/);
    dispatcher.joinMulticast(MDNS);
    dispatcher.input(frameTo(MDNS, EtherType.IPV4));
    expect(ipv4.length).toBe(1);
    dispatcher.leaveMulticast(MDNS);
    dispatcher.input(frameTo(MDNS, EtherType.IPV4));
    expect(ipv4.length).toBe(1);
    expect(dispatcher.counters.get('rx_multicast_not_joined')).toBe(1);
  });

  it('counts joins of a multicast MAC: it is left when the last user leaves', () => {
    const SOLICITED = MacAddress.parse('33:33:ff:00:00:02');
    dispatcher.joinMulticast(SOLICITED); // fe80::..:2's solicited-node group
    dispatcher.joinMulticast(SOLICITED); // fd00:10::2's: the same MAC
    expect(dispatcher.multicastGroups.map(String)).toEqual(['33:33:ff:00:00:02']);
    dispatcher.leaveMulticast(SOLICITED);
    dispatcher.input(frameTo(SOLICITED, EtherType.IPV4));
    expect(ipv4.length).toBe(1);
    dispatcher.leaveMulticast(SOLICITED);
    dispatcher.input(frameTo(SOLICITED, EtherType.IPV4));
    expect(ipv4.length).toBe(1);
    expect(dispatcher.counters.get('rx_multicast_not_joined')).toBe(1);
    expect(dispatcher.multicastGroups).toEqual([]);
  });

  it('in promiscuous mode takes unicast frames for other hosts too', () => {
    const [l] = MemoryLink.pair({ macs: [US, PEER] });
    const d = new EtherTypeDispatcher(l, { promiscuous: true });
    const got: Uint8Array[] = [];
    d.register(EtherType.IPV4, (f) => got.push(f));
    d.input(frameTo(OTHER, EtherType.IPV4));
    expect(got.length).toBe(1);
  });

  it('survives a handler that throws, counting it', () => {
    dispatcher.register(EtherType.ARP, () => {
      throw new Error('bug in a layer above');
    });
    expect(() => dispatcher.input(frameTo(US, EtherType.ARP))).not.toThrow();
    expect(dispatcher.counters.get('rx_handler_error')).toBe(1);
    dispatcher.input(frameTo(US, EtherType.IPV4)); // still working
    expect(ipv4.length).toBe(1);
  });

  it('receives from the link and sends on it, tracing both directions when asked', async () => {
    const lines: string[] = [];
    const [a, b] = MemoryLink.pair({ macs: [US, PEER] });
    const d = new EtherTypeDispatcher(a, { trace: (l) => lines.push(l) });
    const got: Uint8Array[] = [];
    d.register(EtherType.ARP, (f) => got.push(f));
    const fromPeer: Uint8Array[] = [];
    b.setReceiver((frames) => fromPeer.push(...frames));
    b.send(frameTo(US, EtherType.ARP, new Uint8Array(28)));
    expect(d.send(buildEthernetFrame({ destination: PEER, source: US, etherType: EtherType.IPV4 }, new Uint8Array(20)))).toBe(true);
    await settle(a, b);
    expect(got.length).toBe(1);
    expect(fromPeer.length).toBe(1);
    expect(lines).toEqual([
      'out 02:00:00:00:0a:01 > 02:00:00:00:0b:02, IPv4, length 34',
      'in  02:00:00:00:0b:02 > 02:00:00:00:0a:01, ARP, length 42',
    ]);
    void peer;
  });

  it('after each received batch runs the end-of-batch listeners in order, then flushes the link once', async () => {
    const [a, b] = MemoryLink.pair({ macs: [US, PEER] });
    const order: string[] = [];
    const flush = a.flush.bind(a);
    a.flush = () => {
      order.push('flush');
      flush();
    };
    const d = new EtherTypeDispatcher(a);
    d.register(EtherType.IPV4, () => order.push('frame'));
    d.onBatchEnd(() => order.push('first'));
    d.onBatchEnd(() => {
      throw new Error('bug in a listener');
    });
    d.onBatchEnd(() => order.push('third'));
    b.send(frameTo(US, EtherType.IPV4));
    b.send(frameTo(US, EtherType.IPV4));
    await settle(a, b);
    // MemoryLink delivers what was sent in one run as one batch
    expect(order).toEqual(['frame', 'frame', 'first', 'third', 'flush']);
    expect(d.counters.get('rx_handler_error')).toBe(1);
    // input() of a single frame is not a batch: no listener, no flush
    d.input(frameTo(US, EtherType.IPV4));
    expect(order.length).toBe(6);
  });
});
