/**
 * Two hosts on an in-memory wire with a virtual clock, each the real thing (EtherType dispatch,
 * ARP, IPv4, ICMP, TCP), optionally with faults on the wire. No root needed; every run is
 * deterministic for a seed.
 */
import { createHash } from 'node:crypto';
import { Arp } from '@tapstack/arp';
import { IcmpLayer } from '@tapstack/icmp';
import { Ipv4Cidr, Ipv4Layer } from '@tapstack/ipv4';
import { EtherTypeDispatcher, FaultInjector, MacAddress, MemoryLink, VirtualClock, ipv4, seededRandom, type FaultOptions, type Link } from '@tapstack/link';
import { TcpLayer, type TcpLayerOptions } from '../src/index.ts';
import type { TcpSocket } from '../src/socket.ts';

export interface Host {
  ipv4: Ipv4Layer;
  icmp: IcmpLayer;
  tcp: TcpLayer;
  link: Link;
  close(): void;
}

export const IP_A = ipv4('10.0.0.1');
export const IP_B = ipv4('10.0.0.2');

function host(link: Link, cidr: string, clock: VirtualClock, seed: number, tcp: Partial<TcpLayerOptions>): Host {
  const address = Ipv4Cidr.parse(cidr);
  const random = seededRandom(seed);
  const dispatcher = new EtherTypeDispatcher(link);
  const arp = new Arp({ dispatcher, clock, addresses: [address.address], random, announce: false, broadcasts: [address.broadcast] });
  const ip = new Ipv4Layer({ dispatcher, resolver: arp, clock, address, random });
  const icmp = new IcmpLayer({ ipv4: ip, clock });
  const layer = new TcpLayer({ ipv4: ip, icmp, clock, random, secret: new Uint8Array(32).fill(seed), ...tcp });
  return {
    ipv4: ip,
    icmp,
    tcp: layer,
    link,
    close() {
      layer.close();
      icmp.close();
      ip.close();
      arp.close();
      link.close();
    },
  };
}

export interface Pair {
  clock: VirtualClock;
  a: Host;
  b: Host;
  faultsA?: FaultInjector;
  close(): void;
}

/** Host A (10.0.0.1) and host B (10.0.0.2); faults, when given, act on A's link in both directions. */
export function pair(options: { faults?: FaultOptions; latencyMs?: number; tcp?: Partial<TcpLayerOptions> } = {}): Pair {
  const clock = new VirtualClock();
  const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: options.latencyMs ?? 1, macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')] });
  const faultsA = options.faults ? new FaultInjector(wireA, options.faults) : undefined;
  const a = host(faultsA ?? wireA, '10.0.0.1/24', clock, 1, options.tcp ?? {});
  const b = host(wireB, '10.0.0.2/24', clock, 2, options.tcp ?? {});
  return {
    clock,
    a,
    b,
    ...(faultsA ? { faultsA } : {}),
    close() {
      a.close();
      b.close();
    },
  };
}

/** Runs the virtual clock in steps until `done()` or `limitMs` of virtual time passed; returns the time taken. */
export async function runUntil(clock: VirtualClock, done: () => boolean, limitMs = 600_000, stepMs = 1): Promise<number> {
  const start = clock.now();
  while (!done()) {
    if (clock.now() - start > limitMs) throw new Error(`not done after ${limitMs} ms of virtual time`);
    clock.advance(stepMs);
    // let stream callbacks and microtasks run
    await new Promise<void>((r) => setImmediate(r));
  }
  return clock.now() - start;
}

export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Collects what a socket reads until its end. */
export function collect(socket: TcpSocket): { chunks: Buffer[]; ended: boolean; error?: Error; bytes(): Buffer } {
  const state: { chunks: Buffer[]; ended: boolean; error?: Error; bytes(): Buffer } = {
    chunks: [],
    ended: false,
    bytes: () => Buffer.concat(state.chunks),
  };
  socket.on('data', (c: Buffer) => state.chunks.push(c));
  socket.on('end', () => (state.ended = true));
  socket.on('error', (e) => (state.error = e));
  return state;
}
