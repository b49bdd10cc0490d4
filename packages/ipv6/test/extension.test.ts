import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv6, type Ipv6Address } from '@tapstack/link';
import { concat, hex } from '../../../test/support/fixtures.ts';
import { routerAlertHopByHop, Ipv6OptionsHeaderRepr, walkExtensionHeaders, type ExtensionWalkResult } from '../src/extension.ts';
import { IpNextHeader, Ipv6Packet, Ipv6Repr } from '../src/header.ts';
import { allIpv6Frames } from './fixtures.ts';

const A = ipv6('fd00:10::1');
const B = ipv6('fd00:10::2');
/** An 8-byte ICMPv6 echo request with no data, standing in for any upper layer. */
const ECHO = hex('8000 0000 0001 0001');

function packet(nextHeader: number, payload: Uint8Array, destination: Ipv6Address = B): Ipv6Packet {
  return new Ipv6Packet(Ipv6Repr.build({ source: A, destination, nextHeader, hopLimit: 64, trafficClass: 0, flowLabel: 0 }, payload));
}
function walk(nextHeader: number, payload: Uint8Array, destination?: Ipv6Address): ExtensionWalkResult {
  return walkExtensionHeaders(packet(nextHeader, payload, destination));
}
/** A destination options (or hop-by-hop) header of 8 bytes: next header, length 0, then six bytes of options. */
const options8 = (next: number, six: string) => hex(`${next.toString(16).padStart(2, '0')} 00 ${six}`);

describe('walkExtensionHeaders (RFC 8200 4)', () => {
  it('goes straight to the upper layer when there are no extension headers', () => {
    expect(walk(58, ECHO)).toEqual({ kind: 'upper-layer', nextHeader: 58, offset: 40, nextHeaderFieldOffset: 6, headers: [], routerAlert: undefined });
  });

  it("steps over the kernel's MLD hop-by-hop header (router alert 0, PadN) to ICMPv6 at 48", () => {
    expect(routerAlertHopByHop()).toEqual(hex('3a00 0502 0000 0100'));
    const r = walk(0, concat(routerAlertHopByHop(), ECHO), ipv6('ff02::16'));
    expect(r).toEqual({ kind: 'upper-layer', nextHeader: 58, offset: 48, nextHeaderFieldOffset: 40, headers: [{ type: 0, offset: 40, length: 8 }], routerAlert: 0 });
  });

  it('walks hop-by-hop, destination options, routing with no segments left, destination options, in order', () => {
    const chain = concat(
      options8(60, '01 04 00 00 00 00'), // HBH: PadN
      options8(43, '01 04 00 00 00 00'), // DST: PadN
      hex('3c 00 04 00 00000000'), // routing type 4, segments left 0: ignored
      hex('3a 01 3e 08 00000000 00000000 01 02 0000'), // DST of 16 bytes: a skippable option, PadN
      ECHO,
    );
    const r = walk(0, chain);
    expect(r.kind).toBe('upper-layer');
    if (r.kind !== 'upper-layer') return;
    expect(r.offset).toBe(40 + 8 + 8 + 8 + 16);
    expect(r.nextHeaderFieldOffset).toBe(64);
    expect(r.headers.map((h) => h.type)).toEqual([0, 60, 43, 60]);
  });

  it('a hop-by-hop header after the first place: parameter problem code 1 at the field that named it', () => {
    const r = walk(60, concat(options8(0, '01 04 00 00 00 00'), options8(58, '01 04 00 00 00 00'), ECHO));
    expect(r).toEqual({ kind: 'error', reason: 'hop_by_hop_not_first', parameterProblem: { code: 1, pointer: 40 } });
  });

  it('an unknown next header: parameter problem code 1 pointing at the next-header field that named it', () => {
    expect(walk(253, ECHO)).toEqual({ kind: 'error', reason: 'unknown_next_header', parameterProblem: { code: 1, pointer: 6 } });
    expect(walk(60, concat(options8(200, '01 04 00 00 00 00'), ECHO))).toEqual({
      kind: 'error',
      reason: 'unknown_next_header',
      parameterProblem: { code: 1, pointer: 40 },
    });
    // What counts as an upper layer is the caller's: UDP without a UDP layer is unknown too.
    expect(walkExtensionHeaders(packet(17, ECHO), { isUpperLayer: (n) => n === 58 })).toMatchObject({ parameterProblem: { code: 1, pointer: 6 } });
  });

  it('a routing header with segments left and a type we do not process: code 0 at the routing type (type 0 included, RFC 5095)', () => {
    for (const type of [0, 2, 4]) {
      const r = walk(43, concat(hex(`3a 00 0${type} 01 00000000`), ECHO));
      expect(r).toEqual({ kind: 'error', reason: 'unknown_routing_type', parameterProblem: { code: 0, pointer: 42 } });
    }
  });

  it('acts on unknown options by their two top bits (RFC 8200 4.2)', () => {
    const withOption = (type: number, destination?: Ipv6Address) => walk(60, concat(options8(58, `${type.toString(16)} 00 01 02 00 00`), ECHO), destination);
    expect(withOption(0x3e).kind).toBe('upper-layer'); // 00: skip
    expect(withOption(0x7e)).toEqual({ kind: 'error', reason: 'unknown_option_discard', parameterProblem: undefined }); // 01
    expect(withOption(0xbe)).toEqual({ kind: 'error', reason: 'unknown_option', parameterProblem: { code: 2, pointer: 42 } }); // 10
    expect(withOption(0xbe, ipv6('ff02::1'))).toEqual({ kind: 'error', reason: 'unknown_option', parameterProblem: { code: 2, pointer: 42 } });
    expect(withOption(0xfe)).toEqual({ kind: 'error', reason: 'unknown_option', parameterProblem: { code: 2, pointer: 42 } }); // 11, unicast
    expect(withOption(0xfe, ipv6('ff02::1'))).toEqual({ kind: 'error', reason: 'unknown_option', parameterProblem: undefined }); // 11, multicast
    // The pointer is the option's own offset, after Pad1s.
    expect(walk(60, concat(options8(58, '00 00 be 00 00 00'), ECHO))).toMatchObject({ parameterProblem: { code: 2, pointer: 44 } });
  });

  it('refuses options running past their header and runs of padding longer than 7 bytes', () => {
    expect(walk(60, concat(options8(58, '3e 05 00 00 00 00'), ECHO))).toEqual({ kind: 'error', reason: 'bad_option_length', parameterProblem: undefined });
    expect(walk(60, concat(hex('3a 01 01 0c 00000000 00000000 00000000'), ECHO))).toEqual({ kind: 'error', reason: 'too_much_padding', parameterProblem: undefined });
    expect(walk(60, concat(options8(58, '00 00 00 00 00 00'), ECHO)).kind).toBe('upper-layer'); // 6 Pad1: fine
  });

  it('stops at a real fragment, and steps over an atomic one (RFC 6946)', () => {
    expect(walk(44, concat(hex('3a 00 0001 12345678'), ECHO))).toEqual({ kind: 'fragment', offset: 40, nextHeaderFieldOffset: 6, headers: [{ type: 44, offset: 40, length: 8 }], routerAlert: undefined });
    expect(walk(44, concat(hex('3a 00 00a8 12345678'), ECHO)).kind).toBe('fragment'); // offset 21 * 8
    const atomic = walk(44, concat(hex('3a 00 0000 12345678'), ECHO));
    expect(atomic).toMatchObject({ kind: 'upper-layer', nextHeader: 58, offset: 48 });
  });

  it('next header 59: nothing follows', () => {
    expect(walk(59, ECHO)).toEqual({ kind: 'no-next-header', offset: 40, headers: [] });
  });

  it('truncated headers and long chains are dropped without a message', () => {
    expect(walk(60, hex('3a 00 01'))).toEqual({ kind: 'error', reason: 'truncated_header', parameterProblem: undefined });
    expect(walk(60, hex('3a 01 01 04 00 00 00 00'))).toEqual({ kind: 'error', reason: 'truncated_header', parameterProblem: undefined });
    const chain = concat(...Array.from({ length: 20 }, () => options8(60, '01 04 00 00 00 00')), ECHO);
    expect(walk(60, chain)).toEqual({ kind: 'error', reason: 'too_many_headers', parameterProblem: undefined });
  });

  it('never throws on random chains (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 43, 44, 59, 60, 58, 17, 6, 250), fc.uint8Array({ maxLength: 120 }), fc.boolean(), (next, payload, multicast) => {
        const r = walk(next, payload, multicast ? ipv6('ff02::1') : B);
        expect(['upper-layer', 'fragment', 'no-next-header', 'error']).toContain(r.kind);
        if (r.kind === 'upper-layer') expect(r.offset).toBeLessThanOrEqual(40 + payload.length);
      }),
    );
  });

  it('walks every frame of the Linux captures: upper layer or fragment, never an error', () => {
    const kinds = new Map<string, number>();
    for (const f of allIpv6Frames()) {
      const r = walkExtensionHeaders(new Ipv6Packet(f.packet));
      kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
      expect(r.kind, `${f.file} #${f.index}`).not.toBe('error');
      if (r.kind === 'upper-layer' && f.packet[6] === 0) expect(r.routerAlert).toBe(0);
    }
    expect(kinds.get('fragment')).toBe(6);
    // and every truncation of them is refused or walked, without throwing
    for (const f of allIpv6Frames()) {
      for (let n = 40; n < f.packet.length; n += 3) {
        const view = new Ipv6Packet(f.packet.subarray(0, n));
        expect(() => walkExtensionHeaders(view)).not.toThrow();
      }
    }
  });
});

describe('Ipv6OptionsHeaderRepr', () => {
  it("parses the kernel's hop-by-hop header and emits it back with the same padding", () => {
    const kernel = hex('3a00 0502 0000 0100');
    const r = Ipv6OptionsHeaderRepr.parse(kernel);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.nextHeader).toBe(IpNextHeader.ICMPV6);
    expect(r.value.options).toEqual([{ type: 5, data: new Uint8Array([0, 0]) }]);
    const out = new Uint8Array(Ipv6OptionsHeaderRepr.bufferLength(r.value));
    Ipv6OptionsHeaderRepr.emit(r.value, out);
    expect(out).toEqual(kernel);
  });

  it('pads with a Pad1 when one byte is left, and round-trips (property)', () => {
    const one = { nextHeader: 58, options: [{ type: 0x3e, data: new Uint8Array(3) }] };
    const out = new Uint8Array(Ipv6OptionsHeaderRepr.bufferLength(one));
    Ipv6OptionsHeaderRepr.emit(one, out);
    expect(out).toEqual(hex('3a00 3e03 0000 0000')); // 2 + 5 = 7 bytes, then a Pad1 (0)
    fc.assert(
      fc.property(fc.array(fc.record({ type: fc.integer({ min: 2, max: 255 }), data: fc.uint8Array({ maxLength: 20 }) }), { maxLength: 5 }), (options) => {
        const repr = { nextHeader: 17, options };
        const bytes = new Uint8Array(Ipv6OptionsHeaderRepr.bufferLength(repr));
        Ipv6OptionsHeaderRepr.emit(repr, bytes);
        expect(bytes.length % 8).toBe(0);
        expect(Ipv6OptionsHeaderRepr.parse(bytes)).toEqual({ ok: true, value: repr });
      }),
    );
  });
});
