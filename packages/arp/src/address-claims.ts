/**
 * Our own addresses on the link, as RFC 5227 ("IPv4 Address Conflict Detection") handles them:
 * probe for an address before using it (when asked), announce it once it is ours, notice when
 * another host claims it, and defend it, at most once per DEFEND_INTERVAL.
 *
 * ARP's responder hands every received packet that involves one of our addresses here
 * (`conflict`); the rest of ARP only asks which addresses are `active` (ours, in use) and which
 * `tentative` (still being probed). Timings are RFC 5227's, on the injected clock.
 */
import debugFactory from 'debug';
import { MacAddress, formatIpv4, type Clock, type Ipv4Address, type Timer } from '@tapstack/link';
import type { ArpRepr } from './packet.ts';

const log = debugFactory('tapstack:arp');

/** RFC 5227 section 1.1 timing constants, in milliseconds. */
export const Rfc5227 = {
  PROBE_WAIT: 1_000,
  PROBE_NUM: 3,
  PROBE_MIN: 1_000,
  PROBE_MAX: 2_000,
  ANNOUNCE_WAIT: 2_000,
  ANNOUNCE_NUM: 2,
  ANNOUNCE_INTERVAL: 2_000,
  DEFEND_INTERVAL: 10_000,
} as const;

export interface ArpStartResult {
  /** Addresses that RFC 5227 probing found in use by another host; they are not used. */
  readonly inUse: Ipv4Address[];
}

export type ConflictListener = (address: Ipv4Address, claimedBy: MacAddress) => void;


/** What the claims need from ARP: the clock, its MAC, a way to send a packet, its counters. */
export interface ClaimsHost {
  readonly clock: Clock;
  readonly random: () => number;
  readonly mac: MacAddress;
  /** Sends one ARP packet to `destination`; false when the link refused it. */
  send(destination: MacAddress, repr: ArpRepr): boolean;
  count(name: 'tx_dad_probes' | 'tx_announcements' | 'tx_defends' | 'rx_conflicts' | 'dad_conflicts' | 'conflicts_not_defended'): void;
}

export class AddressClaims {
  /** Our addresses in use. */
  readonly active = new Set<Ipv4Address>();
  /** Addresses still being probed (not used yet). */
  readonly tentative = new Set<Ipv4Address>();
  private readonly conflictedWhileProbing = new Set<Ipv4Address>();
  private readonly lastDefendAt = new Map<Ipv4Address, number>();
  private readonly listeners: ConflictListener[] = [];
  private readonly timers = new Set<Timer>();
  private readonly probe: boolean;
  private readonly announce: boolean;
  private started = false;
  private closed = false;

  constructor(
    private readonly host: ClaimsHost,
    options: { addresses: readonly Ipv4Address[]; probe: boolean; announce: boolean },
  ) {
    this.probe = options.probe;
    this.announce = options.announce;
    for (const ip of options.addresses) (this.probe ? this.tentative : this.active).add(ip);
  }

  onConflict(listener: ConflictListener): void {
    this.listeners.push(listener);
  }

  /** Someone else claims `address` (RFC 5227 2.1.1 while probing, 2.4 once in use). */
  conflict(address: Ipv4Address, claimedBy: MacAddress): void {
    this.host.count('rx_conflicts');
    log('address conflict: %s is claimed by %s', formatIpv4(address), claimedBy.toString());
    for (const l of this.listeners) {
      try {
        l(address, claimedBy);
      } catch (err) {
        log('conflict listener threw: %O', err);
      }
    }
    if (this.tentative.has(address)) {
      // Still probing: the address is someone else's; we must not use it (RFC 5227 2.1.1).
      this.host.count('dad_conflicts');
      this.conflictedWhileProbing.add(address);
      return;
    }
    // In use: defend with one announcement, at most once per DEFEND_INTERVAL (RFC 5227 2.4 (b)/(c)).
    const now = this.host.clock.now();
    const last = this.lastDefendAt.get(address);
    if (last !== undefined && now - last < Rfc5227.DEFEND_INTERVAL) {
      this.host.count('conflicts_not_defended');
      return;
    }
    this.lastDefendAt.set(address, now);
    if (this.sendAnnouncement(address)) this.host.count('tx_defends');
  }


  /**
   * Probes for tentative addresses (when `probe` is on: RFC 5227 timings on the clock) and
   * announces the addresses (when `announce` is on: ANNOUNCE_NUM gratuitous ARPs,
   * ANNOUNCE_INTERVAL apart). Resolves once every address is either in use by us (first
   * announcement sent) or found taken by someone else.
   */
  start(): Promise<ArpStartResult> {
    if (this.started) return Promise.resolve({ inUse: [...this.conflictedWhileProbing] });
    this.started = true;
    for (const ip of this.active) this.announceSoon(ip);
    const probing = [...this.tentative];
    if (probing.length === 0) return Promise.resolve({ inUse: [] });
    return new Promise((resolve) => {
      let left = probing.length;
      const inUse: Ipv4Address[] = [];
      for (const ip of probing) {
        this.probeAddress(ip, (taken) => {
          if (taken) inUse.push(ip);
          if (--left === 0) resolve({ inUse });
        });
      }
    });
  }

  /** Adds an address; probed (if `probe`) and announced (if `announce`) when started. */
  addAddress(ip: Ipv4Address): void {
    if (this.active.has(ip) || this.tentative.has(ip)) return;
    if (this.probe) {
      this.tentative.add(ip);
      if (this.started) this.probeAddress(ip, () => {});
    } else {
      this.active.add(ip);
      if (this.started) this.announceSoon(ip);
    }
  }

  removeAddress(ip: Ipv4Address): void {
    this.active.delete(ip);
    this.tentative.delete(ip);
    this.lastDefendAt.delete(ip);
  }

  private later(ms: number, callback: () => void): void {
    const timer = this.host.clock.setTimer(ms, () => {
      this.timers.delete(timer);
      if (!this.closed) callback();
    });
    this.timers.add(timer);
  }

  private jitter(minMs: number, maxMs: number): number {
    return minMs + Math.floor(this.host.random() * (maxMs - minMs));
  }

  /** RFC 5227 2.1.1: wait 0-PROBE_WAIT, PROBE_NUM probes PROBE_MIN-PROBE_MAX apart, then ANNOUNCE_WAIT. */
  private probeAddress(ip: Ipv4Address, done: (taken: boolean) => void): void {
    let sent = 0;
    const step = (): void => {
      if (!this.tentative.has(ip)) return done(this.conflictedWhileProbing.has(ip));
      if (this.conflictedWhileProbing.has(ip)) {
        this.tentative.delete(ip);
        log('probe: %s is in use by another host; not using it', formatIpv4(ip));
        return done(true);
      }
      if (sent < Rfc5227.PROBE_NUM) {
        if (
          this.host.send(MacAddress.BROADCAST, {
            operation: 'request',
            senderMac: this.host.mac,
            senderIp: 0 as Ipv4Address,
            targetMac: MacAddress.ZERO,
            targetIp: ip,
          })
        ) {
          this.host.count('tx_dad_probes');
        }
        sent++;
        this.later(
          sent < Rfc5227.PROBE_NUM ? this.jitter(Rfc5227.PROBE_MIN, Rfc5227.PROBE_MAX) : Rfc5227.ANNOUNCE_WAIT,
          step,
        );
        return;
      }
      this.tentative.delete(ip);
      this.active.add(ip);
      log('probe: %s is ours', formatIpv4(ip));
      this.announceSoon(ip);
      done(false);
    };
    this.later(this.jitter(0, Rfc5227.PROBE_WAIT), step);
  }

  /** ANNOUNCE_NUM gratuitous ARPs, ANNOUNCE_INTERVAL apart, the first now (if `announce`). */
  private announceSoon(ip: Ipv4Address): void {
    if (!this.announce) return;
    let sent = 0;
    const step = (): void => {
      if (!this.active.has(ip)) return;
      this.sendAnnouncement(ip);
      if (++sent < Rfc5227.ANNOUNCE_NUM) this.later(Rfc5227.ANNOUNCE_INTERVAL, step);
    };
    step();
  }

  /** A gratuitous ARP request: sender and target IP are the address, target MAC zero, broadcast. */
  private sendAnnouncement(ip: Ipv4Address): boolean {
    const sent = this.host.send(MacAddress.BROADCAST, {
      operation: 'request',
      senderMac: this.host.mac,
      senderIp: ip,
      targetMac: MacAddress.ZERO,
      targetIp: ip,
    });
    if (sent) this.host.count('tx_announcements');
    return sent;
  }

  /** Cancels every probe and announcement timer. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) t.cancel();
    this.timers.clear();
  }
}
