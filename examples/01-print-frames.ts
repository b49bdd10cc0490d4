/**
 * Example 01: print every frame that arrives on tap0, one tcpdump-like line each.
 *
 * The stack's view of the wire: open a TAP device, give the kernel's side an address, and
 * watch what the kernel sends down the virtual cable. Nothing answers yet (that is chapter 02),
 * so a ping from the kernel shows up as ARP requests, asked again every second.
 *
 * Run it inside a network namespace of its own (root shell):
 *
 *   ip netns add demo
 *   ip netns exec demo npx tsx examples/01-print-frames.ts
 *
 * and in a second root shell make the kernel talk:
 *
 *   ip netns exec demo ping -c 3 10.0.0.2
 *
 * Ctrl-C closes the device and prints the counters; `ip netns del demo` removes the namespace.
 * Options: --name tap0 (device), --host 10.0.0.1/24 (kernel side), --count N (stop after N frames).
 * DEBUG=tapstack:link also logs the device's own trace.
 */
import { readdirSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EtherType, EthernetFrame, TapDevice, formatEthernet, formatIpv4, readIpv4 } from '@tapstack/link';

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'tap0' },
    host: { type: 'string', default: '10.0.0.1/24' },
    count: { type: 'string' },
  },
});

// Safety: configuring a device in the machine's own namespace could clash with real networks,
// so insist on running inside a named one (what `ip netns identify` checks).
const namespace = currentNamedNamespace();
if (namespace === undefined) {
  console.error('Run this inside a network namespace of its own, as root:');
  console.error('  ip netns add demo');
  console.error('  ip netns exec demo npx tsx examples/01-print-frames.ts');
  process.exit(2);
}
if (!values.host!.startsWith('10.0.0.')) {
  console.error('--host must be in 10.0.0.0/24 (the examples use nothing else)');
  process.exit(2);
}

const tap = TapDevice.open({ name: values.name! });
tap.configureHost({ address: values.host! });
console.error(`listening on ${tap.ifname}: kernel side ${values.host} (${tap.hostMac}), stack side ${tap.mac}, mtu ${tap.mtu}`);
console.error(`try, in another shell: ip netns exec ${namespace} ping -c 3 10.0.0.2`);

process.once('SIGINT', () => tap.close());
process.once('SIGTERM', () => tap.close());

const limit = values.count === undefined ? Infinity : Number(values.count);
let seen = 0;
for await (const frame of tap.frames()) {
  console.log(`${time()} ${formatEthernet(frame)}${describe(frame)}`);
  if (++seen >= limit) break;
}
tap.close();
console.error(`\n${seen} frames`);
console.error(tap.counters.format());
console.error(tap.tapCounters.format());

/** The name under /run/netns of the namespace we run in, if it has one. */
function currentNamedNamespace(): string | undefined {
  const self = statSync('/proc/self/ns/net');
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return undefined;
  }
  return names.find((name) => {
    const other = statSync(`/run/netns/${name}`, { throwIfNoEntry: false });
    return other !== undefined && other.ino === self.ino && other.dev === self.dev;
  });
}

/** HH:MM:SS.uuuuuu, like tcpdump. */
function time(): string {
  const micros = Math.round((performance.timeOrigin + performance.now()) * 1000);
  const d = new Date(Math.floor(micros / 1000));
  const hms = d.toTimeString().slice(0, 8);
  return `${hms}.${String(micros % 1_000_000).padStart(6, '0')}`;
}

/** A few words about what the frame carries, read by hand: the ARP and IPv4 codecs live in the layers above. */
function describe(frame: Uint8Array): string {
  const checked = EthernetFrame.check(frame);
  if (!checked.ok) return '';
  const eth = checked.value;
  const p = eth.payload;
  if (eth.etherType === EtherType.ARP && p.length >= 28 && p[4] === 6 && p[5] === 4) {
    const op = (p[6]! << 8) | p[7]!;
    const sender = formatIpv4(readIpv4(p, 14));
    const target = formatIpv4(readIpv4(p, 24));
    if (op === 1) return `: Request who-has ${target} tell ${sender}`;
    if (op === 2) return `: Reply ${sender} is-at ${eth.source}`;
    return `: operation ${op}`;
  }
  if (eth.etherType === EtherType.IPV4 && p.length >= 20) {
    const protocol = p[9]!;
    const name = protocol === 1 ? 'ICMP' : protocol === 6 ? 'TCP' : protocol === 17 ? 'UDP' : `protocol ${protocol}`;
    return `: ${formatIpv4(readIpv4(p, 12))} > ${formatIpv4(readIpv4(p, 16))}: ${name}`;
  }
  return '';
}
