/**
 * Two stacks talking TCP over an in-memory wire on a virtual clock: the handshake, data both ways,
 * closes, and then the same under loss, reordering and duplication over many seeds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TcpSocket } from '../src/socket.ts';
import { collect, IP_B, pair, pattern, runUntil, sha256, type Pair } from './support.ts';

let pairs: Pair[] = [];
afterEach(() => {
  for (const p of pairs.splice(0)) p.close();
});

function echoServer(p: Pair, port: number): void {
  p.b.tcp.createServer((socket) => socket.pipe(socket)).listen(port);
}

describe('TCP between two stacks on a clean wire', () => {
  it('connects, echoes, half-closes, and both sides reach CLOSED with no timer left after TIME-WAIT', async () => {
    const p = pair();
    pairs.push(p);
    echoServer(p, 7);
    const client = p.a.tcp.connect({ host: IP_B, port: 7 });
    const got = collect(client);
    let connected = false;
    client.on('connect', () => (connected = true));
    await runUntil(p.clock, () => connected);
    client.end('hello, tcp\n');
    await runUntil(p.clock, () => got.ended);
    expect(got.bytes().toString()).toBe('hello, tcp\n');
    expect(p.a.tcp.counters.get('ActiveOpens')).toBe(1);
    expect(p.b.tcp.counters.get('PassiveOpens')).toBe(1);
    // the client closed first, so it waits in TIME-WAIT for 60 s; the server is gone at once
    await runUntil(p.clock, () => p.b.tcp.connectionCount === 0, 5_000);
    expect(p.a.tcp.show()).toContain('TIME-WAIT');
    p.clock.advance(60_000);
    expect(p.a.tcp.connectionCount).toBe(0);
  });

  it('a connect to a port nobody listens on fails with ECONNREFUSED (the RST of RFC 9293 3.10.7.1)', async () => {
    const p = pair();
    pairs.push(p);
    const client = p.a.tcp.connect({ host: IP_B, port: 81 });
    const got = collect(client);
    await runUntil(p.clock, () => got.error !== undefined);
    expect((got.error as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(p.b.tcp.counters.get('OutRsts')).toBe(1);
    expect(p.a.tcp.counters.get('AttemptFails')).toBe(1);
  });

  it("maxConnections (as Node's net.Server): the connection past it is dropped and closed, the others are served", async () => {
    const p = pair();
    pairs.push(p);
    const server = p.b.tcp.createServer((s) => s.pipe(s));
    server.maxConnections = 2;
    const drops: unknown[] = [];
    server.on('drop', (info) => drops.push(info));
    server.listen(7);
    const clients = [0, 1, 2].map(() => p.a.tcp.connect({ host: IP_B, port: 7 }));
    const got = clients.map((c) => collect(c));
    await runUntil(p.clock, () => drops.length === 1 && got[2]!.ended, 10_000);
    for (const c of clients.slice(0, 2)) c.end('served\n');
    await runUntil(p.clock, () => got[0]!.ended && got[1]!.ended, 10_000);
    expect(got.map((g) => g.bytes().toString())).toEqual(['served\n', 'served\n', '']);
    expect(server.connections).toBe(0);
  });

  it('moves 1 MiB each way at once, byte for byte', async () => {
    const p = pair();
    pairs.push(p);
    const up = pattern(1 << 20, 1);
    const down = pattern(1 << 20, 2);
    let serverGot: ReturnType<typeof collect> | undefined;
    p.b.tcp
      .createServer((socket: TcpSocket) => {
        serverGot = collect(socket);
        socket.end(down);
      })
      .listen(9);
    const client = p.a.tcp.connect({ host: IP_B, port: 9 });
    const clientGot = collect(client);
    client.end(up);
    const took = await runUntil(p.clock, () => clientGot.ended && serverGot?.ended === true, 120_000, 5);
    expect(sha256(clientGot.bytes())).toBe(sha256(down));
    expect(sha256(serverGot!.bytes())).toBe(sha256(up));
    expect(p.a.tcp.counters.get('RetransSegs')).toBe(0);
    expect(took).toBeLessThan(10_000);
  });
});

/** One bulk exchange under faults: 1 MiB each way (or `size`), checked by hash, then a clean close on both sides. */
async function exchangeUnderFaults(seed: number, faults: { drop?: number; reorder?: number; duplicate?: number; corrupt?: number }, size: number): Promise<Pair> {
  const p = pair({ faults: { ...faults, seed } });
  pairs.push(p);
  const up = pattern(size, seed);
  const down = pattern(size, seed + 1000);
  let serverGot: ReturnType<typeof collect> | undefined;
  let serverClosed = false;
  p.b.tcp
    .createServer((socket: TcpSocket) => {
      serverGot = collect(socket);
      socket.on('close', () => (serverClosed = true));
      socket.end(down);
    })
    .listen(9);
  const client = p.a.tcp.connect({ host: IP_B, port: 9 });
  const clientGot = collect(client);
  let clientClosed = false;
  client.on('close', () => (clientClosed = true));
  client.end(up);
  await runUntil(p.clock, () => clientClosed && serverClosed, 1_800_000, 10);
  expect(clientGot.error, `seed ${seed}: client error`).toBeUndefined();
  expect(serverGot?.error, `seed ${seed}: server error`).toBeUndefined();
  expect(sha256(clientGot.bytes()), `seed ${seed}: down`).toBe(sha256(down));
  expect(sha256(serverGot!.bytes()), `seed ${seed}: up`).toBe(sha256(up));
  // TIME-WAIT ends, nothing is left: no connection, and once the stacks close, no timer on the clock
  p.clock.advance(61_000);
  await runUntil(p.clock, () => p.a.tcp.connectionCount === 0 && p.b.tcp.connectionCount === 0, 200_000, 100);
  p.close();
  expect(p.clock.pending, `seed ${seed}: timers left`).toBe(0);
  return p;
}

describe('TCP between two stacks under loss, reordering and duplication', () => {
  // 100 seeds per scenario (about 25 s on two cores); TCP_SIM_SEEDS=N runs more or fewer. The
  // time limit is generous because the sweep is CPU-bound: on a machine busy with other work it
  // runs several times slower, and a timeout there would say nothing about TCP.
  const SWEEP_TIMEOUT_MS = 180_000;
  const seeds = Array.from({ length: Number(process.env.TCP_SIM_SEEDS ?? 100) }, (_, i) => i + 1);
  for (const drop of [0.01, 0.05, 0.2]) {
    it(`${drop * 100}% loss both ways: 1 MiB each way arrives whole, ${seeds.length} seeds`, async () => {
      for (const seed of seeds) {
        const p = await exchangeUnderFaults(seed, { drop }, 1 << 20);
        expect(p.faultsA!.faultCounters.get('dropped')).toBeGreaterThan(0);
        expect(p.a.tcp.counters.get('RetransSegs') + p.b.tcp.counters.get('RetransSegs')).toBeGreaterThan(0);
      }
    }, SWEEP_TIMEOUT_MS);
  }

  it(`reordering and duplication (10% each) with 2% loss and 1% corruption, 1 MiB each way, ${seeds.length} seeds`, async () => {
    let dsackSent = 0;
    let dsackReceived = 0;
    for (const seed of seeds) {
      const p = await exchangeUnderFaults(seed, { drop: 0.02, reorder: 0.1, duplicate: 0.1, corrupt: 0.01 }, 1 << 20);
      expect(p.faultsA!.faultCounters.get('reordered')).toBeGreaterThan(0);
      expect(p.faultsA!.faultCounters.get('duplicated')).toBeGreaterThan(0);
      dsackSent += p.a.tcp.counters.get('TCPDSACKOldSent') + p.b.tcp.counters.get('TCPDSACKOldSent');
      dsackReceived += p.a.tcp.counters.get('TCPDSACKRecv') + p.b.tcp.counters.get('TCPDSACKRecv');
    }
    // duplicated segments are reported (RFC 2883) and the reports reach the other side
    expect(dsackSent).toBeGreaterThan(0);
    expect(dsackReceived).toBeGreaterThan(0);
  }, SWEEP_TIMEOUT_MS);
});

/** 1 MiB one way (A to B) with `drop` loss both ways; returns goodput in bytes per virtual second. */
async function goodput(seed: number, sack: boolean, drop: number): Promise<number> {
  const p = pair({ faults: { drop, seed }, latencyMs: 5, tcp: { params: { sack } } });
  pairs.push(p);
  const size = 1 << 20;
  const data = pattern(size, seed);
  let got: ReturnType<typeof collect> | undefined;
  p.b.tcp.createServer((socket: TcpSocket) => (got = collect(socket))).listen(9);
  const client = p.a.tcp.connect({ host: IP_B, port: 9 });
  const clientGot = collect(client);
  client.end(data);
  const took = await runUntil(p.clock, () => got?.ended === true, 1_800_000, 5);
  expect(clientGot.error).toBeUndefined();
  expect(sha256(got!.bytes()), `seed ${seed}`).toBe(sha256(data));
  return size / (took / 1000);
}

describe('SACK recovery against the NewReno baseline', () => {
  it('at 5% loss both ways, SACK recovery (RFC 6675, PRR, RACK-TLP) delivers at least as many bytes per virtual second as NewReno on the same 20 seeds', async () => {
    let sack = 0;
    let newReno = 0;
    for (let seed = 1; seed <= 20; seed++) {
      sack += await goodput(seed, true, 0.05);
      newReno += await goodput(seed, false, 0.05);
    }
    // Measured when written (CUBIC, 10 ms RTT): SACK about 1.11 MB/s, NewReno recovery about 0.50 MB/s of virtual time.
    expect(sack).toBeGreaterThanOrEqual(newReno);
  }, 180_000); // CPU-bound, like the sweeps above
});
