import { ipv4, type Ipv4Address } from '@tapstack/link';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { echoOptions, type EchoOptionsContext } from '../src/echo-options.ts';

const US = ipv4('10.0.0.2');
const ctx: EchoOptionsContext = { address: US, isLocal: (a: Ipv4Address) => a === US, timestamp: () => 0x01020304 };
const bytes = (...b: number[]) => Uint8Array.from(b);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const echoed = (o: Uint8Array) => {
  const r = echoOptions(o, ctx);
  if (!r.ok) throw new Error(r.reason);
  return hex(r.options);
};

describe('echoOptions (Linux ip_options_compile + ip_options_echo)', () => {
  it('record route: our address on receipt and again on the reply, as ping -R shows', () => {
    // ping -R: 39-byte RR with the sender's 10.0.0.1 in slot 1 (pointer 8), then END.
    const rr = new Uint8Array(40);
    rr.set([7, 39, 8, 10, 0, 0, 1]);
    expect(echoed(rr)).toBe(`0727100a0000010a0000020a000002${'00'.repeat(24)}00`);
  });

  it('record route with one slot left: filled on receipt, copied unchanged on the reply', () => {
    expect(echoed(bytes(1, 7, 7, 4, 0, 0, 0, 0))).toBe('070708' + '0a000002' + '00'); // 7 bytes, padded with one END
  });

  it('timestamp only, with addresses, and prespecified (only our entry gets a time)', () => {
    expect(echoed(bytes(68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0))).toBe('440c0d000102030401020304');
    const tsa = new Uint8Array(20);
    tsa.set([68, 20, 5, 1]);
    // two 8-byte entries, both ours (receipt, reply): pointer 21, full
    expect(echoed(tsa)).toBe('44141501' + '0a00000201020304' + '0a00000201020304');
    // prespecified: 10.0.0.2 (ours) then 10.0.0.9 (not ours): only the first gets a time.
    const pre = bytes(68, 20, 5, 3, 10, 0, 0, 2, 0, 0, 0, 0, 10, 0, 0, 9, 0, 0, 0, 0);
    expect(echoed(pre)).toBe('44140d030a000002010203040a00000900000000');
  });

  it('a full timestamp option has its overflow counted on receipt', () => {
    expect(echoed(bytes(68, 8, 9, 0x20, 0, 0, 0, 1))).toBe('4408093000000001');
    expect(echoOptions(bytes(68, 8, 9, 0xf0, 0, 0, 0, 1), ctx)).toEqual({ ok: false, reason: 'bad_options' });
  });

  it('echoes only RR and TS, RR first, padded with END to a multiple of 4', () => {
    // NOP, router alert, TS (one slot), RR (one slot)
    const o = bytes(1, 148, 4, 0, 0, 68, 8, 5, 0, 0, 0, 0, 0, 7, 7, 4, 0, 0, 0, 0);
    expect(echoed(o)).toBe('0707080a0000024408090001020304' + '00');
    expect(echoed(bytes(1, 1, 1, 0))).toBe(''); // nothing to echo
  });

  it('drops source-routed requests, malformed options, and replies with no room for our entry', () => {
    expect(echoOptions(bytes(131, 7, 4, 10, 0, 0, 9, 0), ctx)).toEqual({ ok: false, reason: 'source_route' });
    expect(echoOptions(bytes(7, 9, 3, 0, 0, 0, 0, 0), ctx)).toEqual({ ok: false, reason: 'bad_options' }); // pointer < 4
    expect(echoOptions(bytes(7, 12, 4, 0), ctx)).toEqual({ ok: false, reason: 'bad_options' }); // longer than the options
    expect(echoOptions(bytes(7, 3, 4, 7, 3, 4, 0, 0), ctx)).toEqual({ ok: false, reason: 'bad_options' }); // two RR
    // RR of 9 bytes: one slot filled on receipt, 2 bytes left: Linux gives up on the reply
    expect(echoOptions(bytes(7, 9, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0), ctx)).toEqual({ ok: false, reason: 'no_room' });
  });

  it('never throws and never returns more than 40 bytes, a multiple of 4 (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.uint8Array({ minLength: 40, maxLength: 40 }), (words, raw) => {
        const r = echoOptions(raw.subarray(0, words * 4), ctx);
        return !r.ok || (r.options.length % 4 === 0 && r.options.length <= 40);
      }),
      { numRuns: 2000 },
    );
  });
});
