/**
 * What an idle connection keeps (docs/performance.md, An idle TCP connection): 10,000 of them are
 * a row of the bench, so what each holds that it does not need is memory times ten thousand.
 */
import { describe, expect, it } from 'vitest';
import { ipv4 } from '@tapstack/link';
import { DEFAULT_TCP_PARAMS, TcpConnection, type TcpParams } from '../src/connection.ts';
import { TcpFlag } from '../src/header.ts';
import { collect, pair, runUntil } from './support.ts';
import { Harness, ISS, PEER_ISS } from './harness.ts';

function connect(h: Harness, params: Partial<TcpParams> | undefined, port: number): TcpConnection {
  return TcpConnection.connect(h, { local: { address: ipv4('10.0.0.2'), port }, remote: { address: ipv4('10.0.0.1'), port: 80 }, iss: ISS, localMss: 1460, ...(params ? { params } : {}) });
}

describe('an idle connection keeps what it needs only', () => {
  it('shares one completed params object with every connection opened with the same settings, and the defaults when given none', () => {
    const h = new Harness();
    const settings: Partial<TcpParams> = { congestionControl: 'newreno', delayedAckMs: 10 };
    const a = connect(h, settings, 40000);
    const b = connect(h, settings, 40001);
    expect(a.params).toBe(b.params);
    expect([a.params.congestionControl, a.params.delayedAckMs, a.params.timeWaitMs]).toEqual(['newreno', 10, DEFAULT_TCP_PARAMS.timeWaitMs]);
    // other settings, other params; none at all, the defaults themselves
    expect(connect(h, { congestionControl: 'newreno' }, 40002).params).not.toBe(a.params);
    expect(connect(h, undefined, 40003).params).toBe(DEFAULT_TCP_PARAMS);
  });

  it("lets the handshake's retransmission deadline go once established and makes no scoreboard; the first data makes both", () => {
    const h = new Harness();
    const c = (h.connection = connect(h, undefined, 40000));
    c.attach(h);
    expect(c['retransmitDeadline']?.armed).toBe(true); // the SYN's
    h.take();
    h.clock.advance(10);
    h.peer(TcpFlag.SYN | TcpFlag.ACK, PEER_ISS, ISS + 1, undefined, { mss: 1000, sackPermitted: true });
    expect(c.state).toBe('ESTABLISHED');
    expect(c['retransmitDeadline']).toBeUndefined();
    expect(c['scoreboardMade']).toBeUndefined(); // nothing sent yet: no SACK scoreboard
    c.write(new Uint8Array(100));
    expect(c['retransmitDeadline']?.armed).toBe(true);
    expect(c['scoreboardMade']).toBeDefined();
  });

  it('two stacks: connections opened and held idle, then data on each, all of it delivered', async () => {
    const p = pair();
    const received: ReturnType<typeof collect>[] = [];
    p.b.tcp.createServer((s) => received.push(collect(s))).listen(9);
    const clients = Array.from({ length: 20 }, () => p.a.tcp.connect({ host: '10.0.0.2', port: 9 }));
    for (const c of clients) c.on('error', () => {}); // ECONNABORTED in TIME-WAIT when the stacks close
    await runUntil(p.clock, () => received.length === 20);
    p.clock.advance(5000); // idle: nothing armed for them to fire
    for (const [i, c] of clients.entries()) c.end(Buffer.from(`connection ${i}`));
    await runUntil(p.clock, () => received.every((r) => r.ended));
    expect(received.map((r) => r.bytes().toString()).sort()).toEqual(clients.map((_, i) => `connection ${i}`).sort());
    p.close();
  });
});
