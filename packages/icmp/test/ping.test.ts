import { ipv4 } from '@tapstack/link';
import { describe, expect, it } from 'vitest';
import { formatPingError, formatPingReply, formatPingSummary, type PingSummary } from '../src/ping.ts';
import { rttStatistics } from '../src/ping-session.ts';

const base: PingSummary = {
  target: ipv4('10.0.0.1'),
  transmitted: 5,
  received: 5,
  duplicates: 0,
  corrupted: 0,
  errors: 0,
  lossPercent: 0,
  timeMs: 4005.4,
  rtt: { minMs: 0.041, avgMs: 0.063, maxMs: 0.092, mdevMs: 0.017 },
  replies: [],
  errorList: [],
};

describe('ping output, iputils style', () => {
  it('prints the summary like ping does', () => {
    expect(formatPingSummary(base)).toBe(
      '--- 10.0.0.1 ping statistics ---\n' +
        '5 packets transmitted, 5 received, 0% packet loss, time 4005ms\n' +
        'rtt min/avg/max/mdev = 0.041/0.063/0.092/0.017 ms',
    );
  });

  it('prints loss with %g, duplicates and errors, and no rtt line without replies', () => {
    expect(formatPingSummary({ ...base, transmitted: 3, received: 2, duplicates: 1, lossPercent: 100 / 3 }).split('\n')[1]).toBe(
      '3 packets transmitted, 2 received, +1 duplicates, 33.3333% packet loss, time 4005ms',
    );
    expect(formatPingSummary({ ...base, received: 0, errors: 5, lossPercent: 100, rtt: undefined })).toBe(
      '--- 10.0.0.1 ping statistics ---\n5 packets transmitted, 0 received, +5 errors, 100% packet loss, time 4005ms',
    );
  });

  it('computes min/avg/max/mdev as iputils does', () => {
    // rtts 1, 2, 3, 4: avg 2.5, mean of squares 7.5, mdev sqrt(7.5 - 6.25) = 1.118...
    const s = rttStatistics([1, 2, 3, 4])!;
    expect([s.minMs, s.avgMs, s.maxMs]).toEqual([1, 2.5, 4]);
    expect(s.mdevMs).toBeCloseTo(Math.sqrt(1.25), 12);
    expect(rttStatistics([])).toBeUndefined();
  });

  it('prints replies and errors like ping', () => {
    const reply = { from: ipv4('10.0.0.1'), sequence: 1, bytes: 64, ttl: 64, rttMs: 0.0523, duplicate: false, corrupted: false };
    expect(formatPingReply(reply)).toBe('64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.052 ms');
    expect(formatPingReply({ ...reply, rttMs: 12.345, duplicate: true })).toBe('64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=12.3 ms (DUP!)');
    expect(formatPingError({ sequence: 2, from: ipv4('10.0.0.2'), message: 'Destination Host Unreachable' })).toBe(
      'From 10.0.0.2 icmp_seq=2 Destination Host Unreachable',
    );
  });
});
