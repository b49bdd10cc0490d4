/**
 * ARP, IPv4, ICMP and UDP on one TAP device, composed by hand as createStack does (this package
 * cannot use createStack: @tapstack/stack depends on it). Shared by the end-to-end test and the
 * echo benchmark, which both run an echo service in our stack against the kernel's tools.
 */
import { Arp } from '@tapstack/arp';
import { IcmpLayer } from '@tapstack/icmp';
import { Ipv4Cidr, Ipv4Layer } from '@tapstack/ipv4';
import { EtherTypeDispatcher, SystemClock, type TapDevice } from '@tapstack/link';
import { UdpLayer, type UdpSocket } from '../../src/index.ts';

export interface HandWiredStack {
  readonly udp: UdpLayer;
  readonly icmp: IcmpLayer;
  /** Closes every layer, then the TAP device. */
  close(): void;
}

/** Wires the layers on `tap` with our address `cidr` (e.g. '10.0.0.2/24') and announces it. */
export function startHandWiredStack(tap: TapDevice, cidr: string): HandWiredStack {
  const clock = new SystemClock();
  const address = Ipv4Cidr.parse(cidr);
  const dispatcher = new EtherTypeDispatcher(tap);
  const arp = new Arp({ dispatcher, clock, addresses: [address.address], broadcasts: [address.broadcast] });
  const ipv4 = new Ipv4Layer({ dispatcher, resolver: arp, clock, address });
  const icmp = new IcmpLayer({ ipv4, clock });
  const udp = new UdpLayer({ ipv4, icmp });
  arp.start();
  return {
    udp,
    icmp,
    close() {
      udp.close();
      icmp.close();
      ipv4.close();
      arp.close();
      tap.close();
    },
  };
}

/** Binds `port` and sends every datagram that arrives there back to its sender. */
export function serveUdpEcho(udp: UdpLayer, port: number): UdpSocket {
  const echo = udp.bind(port);
  echo.on('message', (data, from) => {
    echo.send(data, from.port, from.address);
  });
  return echo;
}
