/**
 * Hostile IPv6 input against a whole stack (createStack with IPv6 on: the IPv6 layer, ICMPv6,
 * NDP on the shared neighbour table, UDP on both families). hostile-input.test.ts does this for
 * IPv4 with an auditor of every answer; this file feeds the Linux-written IPv6 captures
 * (packages/ipv6/test/fixtures) mutated, cut short and replayed as a flood of first fragments, and
 * checks what must hold whatever arrives: no exception reaches a handler, nothing over the MTU goes
 * out, reassembly and the NDP table stay inside their documented bounds, and everything is gone
 * once the timeouts have run.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_IPV6_REASSEMBLY_LIMITS } from '@tapstack/ipv6';
import { MacAddress, MemoryLink, VirtualClock, seededRandom } from '@tapstack/link';
import { DEFAULT_NEIGHBOUR_PARAMS } from '@tapstack/neighbour';
import { allIpv6Frames, ipv6FixtureFrames } from '../../ipv6/test/fixtures.ts';
import { createStack } from '../src/stack.ts';

// The captures were taken between 02:00:00:00:0a:01 (fd00:10::1) and 02:00:00:00:0b:02 (fd00:10::2):
// the stack takes the second one's place, so the kernel's frames to it are frames to us.
const PEER_MAC = MacAddress.parse('02:00:00:00:0a:01');
const STACK_MAC = MacAddress.parse('02:00:00:00:0b:02');
const MAX_FRAME = 1514;

describe('hostile IPv6 input against a whole stack', () => {
  it('mutated, truncated and flooded Linux IPv6 frames: no exception, bounded memory, nothing left after the timeouts', () => {
    const clock = new VirtualClock();
    const [attacker, ours] = MemoryLink.pair({ macs: [PEER_MAC, STACK_MAC], clock, latencyMs: 0 });
    const stack = createStack({ link: ours, ip: '10.0.0.2/24', clock, random: seededRandom(3), trace: () => {}, ipv6: { addresses: ['fd00:10::2/64'] } });
    const echo = stack.udp.bind(7);
    echo.on('message', (data, from) => echo.reply(data, from));
    stack.start();
    let wireFrames = 0;
    const oversized: number[] = [];
    attacker.setReceiver((frames) => {
      for (const f of frames) {
        wireFrames++;
        if (f.length > MAX_FRAME) oversized.push(f.length);
      }
    });
    clock.advance(5_000); // DAD, router solicitations, MLD reports
    const ipv6 = stack.ipv6!;
    const ndp = stack.ndp!;

    const checkBounds = (): void => {
      expect(stack.dispatcher.counters.get('rx_handler_error'), 'dispatcher caught an exception').toBe(0);
      expect(ipv6.counters.get('rx_handler_error'), 'IPv6 caught an exception of a protocol handler').toBe(0);
      expect(ipv6.reassembly.bytesHeld, 'reassembly bytes').toBeLessThanOrEqual(DEFAULT_IPV6_REASSEMBLY_LIMITS.highWaterBytes);
      expect(ipv6.reassembly.datagramsInFlight, 'packets in reassembly').toBeLessThanOrEqual(DEFAULT_IPV6_REASSEMBLY_LIMITS.maxDatagrams);
      expect(ndp.table.size, 'NDP entries').toBeLessThanOrEqual(DEFAULT_NEIGHBOUR_PARAMS.gcThresh3);
      expect(oversized, 'frames over the MTU on the wire').toEqual([]);
    };

    const originals = allIpv6Frames().map((f) => f.frame);
    const r = seededRandom(0x6b6);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    for (let round = 0; round < 400; round++) {
      const batch: Uint8Array[] = [];
      for (let i = 0; i < 64; i++) {
        const frame = new Uint8Array(pick(originals));
        frame.set(STACK_MAC.bytes, 0);
        const kind = r();
        if (kind < 0.6) {
          // flip one to four bytes past the Ethernet header (headers, options, lengths, checksums)
          const flips = 1 + Math.floor(r() * 4);
          for (let k = 0; k < flips; k++) {
            const at = 14 + Math.floor(r() * (frame.length - 14));
            frame[at] = frame[at]! ^ (1 + Math.floor(r() * 255));
          }
          batch.push(frame);
        } else if (kind < 0.85) {
          batch.push(frame.subarray(0, 14 + Math.floor(r() * (frame.length - 14))));
        } else {
          batch.push(frame);
        }
      }
      for (const f of batch) attacker.send(f);
      clock.advance(20);
      if (round % 20 === 0) checkBounds();
    }
    checkBounds();

    // A flood of first fragments, each with an identification of its own: every one opens a
    // reassembly that never completes (the kernel's ping -s 4000, fragment header at byte 54).
    const firstFragment = ipv6FixtureFrames('linux-ipv6-ping-4000.pcap')
      .map((f) => f.frame)
      .find((f) => f[20] === 44 && f[56] === 0 && (f[57]! & 0xf8) === 0 && (f[57]! & 1) === 1);
    expect(firstFragment, 'a first fragment in the ping -s 4000 capture').toBeDefined();
    for (let id = 0; id < 6_000; id++) {
      const f = new Uint8Array(firstFragment!);
      f.set(STACK_MAC.bytes, 0);
      new DataView(f.buffer).setUint32(58, 0x10000 + id);
      attacker.send(f);
      if (id % 500 === 0) {
        clock.advance(1);
        checkBounds();
      }
    }
    clock.advance(1);
    checkBounds();

    // The run reached the paths it claims to test.
    expect(ipv6.counters.get('reasm_evicted'), stack.counters()).toBeGreaterThan(0);
    expect(ndp.counters.get('rx_invalid') + ndp.counters.get('rx_bad_hop_limit')).toBeGreaterThan(0);
    expect(stack.icmpv6!.counters.get('tx_echo_replies')).toBeGreaterThan(0);
    expect(wireFrames).toBeGreaterThan(0);

    // Every reassembly times out (60 s) and is gone; closing leaves no timer behind.
    for (let i = 0; i < 70; i++) clock.advance(1_000);
    checkBounds();
    expect(ipv6.reassembly.bytesHeld, 'reassembly memory after the timeout').toBe(0);
    expect(ipv6.reassembly.datagramsInFlight).toBe(0);
    stack.close();
    attacker.close();
    expect(clock.pending, 'timers left on the clock after close()').toBe(0);
  }, 120_000);
});
