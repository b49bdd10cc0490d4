/**
 * The `tapstack` command: argument parsing for its commands (up, ping, connect, get, plot, demo). Parsing is
 * separate from running so tests can check every usage error without a device.
 */
import { accessSync, constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Ipv4Cidr } from '@tapstack/ipv4';
import { Ipv6Cidr } from '@tapstack/ipv6';
import { MacAddress, checkInterfaceName, parseIpv4, parseIpv6WithZone, type Ipv4Address, type Ipv6Address } from '@tapstack/link';
import type { PlotCommand } from './plot/command.ts';

export const USAGE = `usage:
  tapstack up   [--tap NAME] [--ip CIDR] [--ip6 CIDR]... [--no-ipv6] [--host-ip CIDR | --no-host-config]
                [--mac MAC] [--gateway IP] [--netns NAME] [--pcap FILE] [--trace] [--no-vnet-hdr] [--io-threads] [--napi]
                [--udp-echo PORT] [--tcp-echo PORT] [--tcp-discard PORT] [--http PORT]
                [--link-delay MS[/JITTER]] [--link-reorder P[/MS]] [--tcp-log FILE] [--delayed-ack MS]
                [--quickack] [--no-ack-coalescing] [--no-sack-compression]
  tapstack ping TARGET [-6] [-c COUNT] [-s SIZE] [-i INTERVAL] [-W TIMEOUT] [up's device options]
  tapstack connect HOST PORT   like nc: stdin to a TCP connection, the connection to stdout
                       (HOST: 10.0.0.1, fd00:10::1 or fe80::...%tap0)
  tapstack get URL             like curl: fetch http://HOST[:PORT]/PATH over our TCP, body to stdout
                       (an IPv6 HOST in brackets: http://[fd00:10::1]:8000/)
  tapstack plot CAPTURE.pcap [--conn N] [--from S] [--to S] > seq.svg
                       time-sequence graph of each TCP connection in a pcap (ours or any)
  tapstack plot --tcp-log FILE [--conn N] [--from S] [--to S] > cwnd.svg
                       cwnd, ssthresh and srtt over time from an up --tcp-log file
  tapstack demo        two stacks on an in-memory wire, no root needed
  tapstack help

  --tap NAME        TAP device to create (default tap0)
  --ip CIDR         the stack's own address and prefix (default 10.0.0.2/24; an address
                    without a prefix gets /24, and tapstack says so)
  --ip6 CIDR        an IPv6 address of the stack (repeatable; default fd00:10::2/64), used once
                    Duplicate Address Detection passed. The link-local address from the MAC
                    (fe80::...) is always there
  --no-ipv6         IPv4 only: no IPv6 addresses, no Neighbour Discovery
  --host-ip CIDR    address given to the kernel's side of the device (default 10.0.0.1/24; the
                    kernel's side also gets fd00:10::1/64, without DAD, unless --no-ipv6)
  --no-host-config  leave the kernel's side alone (you configure it with ip addr/ip link)
  --mac MAC         the stack's MAC (default: random, locally administered)
  --gateway IP      default gateway, inside the --ip prefix
  --netns NAME      create the device inside this existing network namespace
  --pcap FILE       record every frame in and out to FILE (Wireshark/tshark open it)
  --trace           print one line per frame in and out, with the time like tcpdump -tttt
                    (--trace=rel: seconds since the first line, like tcpdump -ttttt)
  --no-vnet-hdr     plain frames, one Ethernet frame per read() and write(): the slow path the
                    chapters teach first (docs/01-link.md), and what the lwIP comparison uses.
                    The default is the fast path: a virtio-net header on the TAP device, so TCP
                    moves super-frames of up to 64 KB per system call with checksums offloaded
                    (counters tap.rx_gso_frames, tap.tx_gso_frames); if the kernel refuses the
                    header, tapstack says so in one line and runs plain. --vnet-hdr asks for the
                    default explicitly
  --io-threads      give the TAP device's large batches of write(2)s to a writer thread of the
                    addon, beside the JavaScript (small ones, a round trip's, stay on the main
                    thread): the default on plain frames (--no-vnet-hdr), where it lifts bulk
                    transfers; not with the virtio-net header, where it cost (docs/01-link.md).
                    --no-io-threads keeps every system call on the main thread
  --napi            open the TAP device in NAPI mode (IFF_NAPI): the kernel takes each frame we
                    write through its NAPI poll and GRO, which can merge a connection's
                    consecutive segments into one larger packet. Off by default: measured here
                    it cost more CPU per MiB than it saved (docs/01-link.md). --no-napi: off
  --gro-flush-timeout NS  with --napi, the device's gro_flush_timeout (nanoseconds): how long GRO
                    may hold merged segments for more. At 0, the kernel's default, every write is
                    a poll of its own and nothing merges
  --link-delay MS[/JITTER]  hold every frame MS milliseconds each way, plus up to JITTER
                    more (seeded, never reordering), like netem's delay: 10 adds 20 ms of RTT
  --link-reorder P[/MS]  hold back each frame with probability P (0-1, seeded) behind the
                    next one in its direction, both ways, or with /MS for MS milliseconds while
                    later frames pass (netem's reorder): TCP sees late segments and ACKs, and
                    undoes the recoveries they cause (docs/05-tcp.md)
  --udp-echo PORT   (up) run a UDP echo service on PORT: every datagram goes back to its sender
  --tcp-echo PORT   (up) TCP echo (RFC 862) on PORT
  --tcp-discard PORT (up) TCP discard (RFC 863) on PORT: reads and drops
  --http PORT       (up) an HTTP server (Node's http on our TCP): GET / and GET /bytes/N
  --tcp-log FILE    (up, connect, get) one JSON line per TCP connection event (state, RTT
                    sample, cwnd/ssthresh change, retransmission, recovery) to FILE
  --delayed-ack MS  (up, connect, get) how long TCP may hold an ACK for in-order data
                    (default 40, Linux's TCP_DELACK_MIN)
  --quickack        (up, connect, get) never hold an ACK for the delayed-ACK timer (TCP_QUICKACK)
  --no-ack-coalescing (up, connect, get) an ACK per two segments, not one per received batch
  --no-sack-compression (up, connect, get) an ACK for every out-of-order segment, not three
                    and then one per received batch (Linux's tcp_comp_sack_nr)
  --conn N          (plot) draw only connection N, as numbered on stderr (default: all)
  --from S, --to S  (plot) draw only the seconds from --from to --to after each connection's start
  -6                ping over IPv6 (ping; implied by an IPv6 TARGET such as fd00:10::1 or
                    fe80::1%tap0)
  -c COUNT          echo requests to send (ping; default 4)
  -s SIZE           ICMP payload bytes (ping; default 56)
  -i INTERVAL       seconds between requests (ping; default 1)
  -W TIMEOUT        seconds to wait after the last request for missing replies
                    (ping; default 10, ends early once every request is answered)

The counters include TCP's buffer memory (tcp.mem_*); \`mem\` typed while up prints the
process's memory (RSS, heap, ArrayBuffers), and SIGUSR1 prints it after the tables.

While up: type \`neigh\`, \`conns\` or \`stats\` (or send SIGUSR1) to print the neighbour table,
the TCP connections (like ss) and the counters. ping takes up's device options (not its services
or TCP options); connect and get take the device and TCP options (not the services).`;

/** A mistake in the command line: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface DeviceOptions {
  tap: string;
  ip: Ipv4Cidr;
  /** IPv6 on (the default: link-local, DAD, router solicitation) or off (--no-ipv6). */
  ipv6: boolean;
  /** --ip6, in the order given. */
  ip6: Ipv6Cidr[];
  hostIp: Ipv4Cidr | undefined;
  /** The kernel side's IPv6 address (fd00:10::1/64 when the host side is configured and IPv6 is on). */
  hostIp6: Ipv6Cidr | undefined;
  /** --host-ip or --no-host-config was given: the user chose what happens to the host side. */
  hostSideChosen: boolean;
  mac: MacAddress | undefined;
  gateway: Ipv4Address | undefined;
  netns: string | undefined;
  pcap: string | undefined;
  /** Things the parser decided for the user, printed at start (e.g. the prefix it gave --ip). */
  notes: string[];
  /** One line per frame: off, with the wall-clock time, or with the time since the first line. */
  trace: false | 'absolute' | 'relative';
  /**
   * Open the device in virtio-net header mode (TapOptions.vnetHeader): the default, off with
   * --no-vnet-hdr (plain frames). On means "if the kernel allows it": bringUp falls back to plain.
   */
  vnetHeader: boolean;
  /** false with --no-io-threads, true with --io-threads, else the device's default (TapOptions.ioThreads). */
  ioThreads: boolean | undefined;
  /** true with --napi, false with --no-napi, else the default (TapOptions.napi). */
  napi?: boolean | undefined;
  /** --gro-flush-timeout NS: the device's gro_flush_timeout with --napi (undefined: leave it). */
  groFlushTimeoutNs?: number | undefined;
  /** --tcp-log FILE: the TCP connection event log (JSON lines), or undefined. */
  tcpLog: string | undefined;
  /** --link-delay: the link fault injector's delay each way, in ms (none when undefined). */
  linkDelay: { delayMs: number; jitterMs: number } | undefined;
  /** --link-reorder: the fault injector's probability of holding a frame back, and for how long, ms (0: behind the next frame). */
  linkReorder?: { probability: number; holdMs: number } | undefined;
  /** --delayed-ack, --quickack, --no-ack-coalescing, --no-sack-compression: TCP's ACK timing (undefined: the defaults). */
  tcpAcks?: { delayedAckMs?: number; quickAck?: boolean; ackCoalescing?: boolean; sackCompression?: boolean } | undefined;
}

/** The services `up` runs, each on its port. */
export interface Services {
  udpEcho?: number;
  tcpEcho?: number;
  tcpDiscard?: number;
  http?: number;
}

export type Command =
  | { kind: 'up'; device: DeviceOptions; services: Services }
  | { kind: 'connect'; device: DeviceOptions; host: Ipv4Address | Ipv6Address; port: number }
  | { kind: 'get'; device: DeviceOptions; host: Ipv4Address | Ipv6Address; port: number; path: string }
  | {
      kind: 'ping';
      device: DeviceOptions;
      /** An IPv4 address, or an IPv6 one with its zone (`fe80::1%tap0`) if it had one. */
      target: Ipv4Address | { address: Ipv6Address; zone: string | undefined };
      count: number;
      size: number;
      intervalMs: number;
      timeoutMs: number;
    }
  | { kind: 'plot'; plot: PlotCommand }
  | { kind: 'demo' }
  | { kind: 'help'; topic?: HelpTopic };

export type HelpTopic = 'up' | 'ping' | 'connect' | 'get' | 'plot' | 'demo';

/** `tapstack COMMAND --help`: that command's usage lines and the options it takes, from USAGE. */
export function commandHelp(topic: HelpTopic): string {
  const lines = USAGE.split('\n');
  const usage: string[] = [];
  for (let at = 0; at < lines.length; at++) {
    if (!lines[at]!.startsWith(`  tapstack ${topic}`)) continue;
    usage.push(lines[at]!);
    for (let i = at + 1; i < lines.length && /^ {10,}\S/.test(lines[i]!); i++) usage.push(lines[i]!);
  }
  const mine = topic === 'up' ? /^ {2}--(?!conn |from )/ : topic === 'plot' ? /^ {2}--(conn|from) / : topic === 'ping' ? /^ {2}(-[6csiW] |--(tap|ip|ip6|no-ipv6|host-ip|no-host-config|mac|gateway|netns|pcap|trace|vnet-hdr|no-vnet-hdr|no-io-threads|io-threads|napi|no-napi|gro-flush-timeout|link-delay|link-reorder) )/ : topic === 'demo' ? /(?!)/ : /^ {2}--(tap|ip|ip6|no-ipv6|host-ip|no-host-config|mac|gateway|netns|pcap|trace|vnet-hdr|no-vnet-hdr|no-io-threads|io-threads|napi|no-napi|gro-flush-timeout|link-delay|link-reorder|tcp-log|delayed-ack|quickack|no-ack-coalescing|no-sack-compression) /;
  const options: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!mine.test(lines[i]!)) continue;
    options.push(lines[i]!);
    for (let j = i + 1; j < lines.length && /^ {18,}\S/.test(lines[j]!); j++) options.push(lines[j]!);
  }
  return ['usage:', ...usage, ...(options.length ? ['', 'options:', ...options] : [])].join('\n');
}

function ipv6OnDefault(noIpv6: unknown): boolean {
  return noIpv6 !== true;
}

function parseWith<T>(what: string, text: string, parse: (t: string) => T): T {
  try {
    return parse(text);
  } catch (err) {
    throw new UsageError(`${what}: ${(err as Error).message}`);
  }
}

function parseNumber(flag: string, text: string, min: number, max: number, integer: boolean): number {
  const n = Number(text);
  // Decimal only: Number() would also take 0x7, 1e1 and 0b11, which nobody means as a port or count.
  const decimal = integer ? /^\d+$/.test(text) : /^\d+(\.\d+)?$|^\.\d+$/.test(text);
  if (!decimal || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new UsageError(`${flag} ${text}: expected ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
  }
  return n;
}

/** `plot CAPTURE.pcap [--conn N]` or `plot --tcp-log FILE [--conn N]`. */
function parsePlot(args: readonly string[]): PlotCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: { 'tcp-log': { type: 'string' }, conn: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const log = parsed.values['tcp-log'];
  const files = parsed.positionals;
  if (log !== undefined && files.length > 0) throw new UsageError(`plot draws one file: a capture or --tcp-log FILE, not both (got ${files.join(' ')} and --tcp-log ${log})`);
  if (log === undefined && files.length !== 1) throw new UsageError('plot needs one capture file, e.g. tapstack plot run.pcap > seq.svg (or --tcp-log FILE)');
  const conn = parsed.values.conn;
  const { from, to } = parsed.values;
  let timeRange: [number, number] | undefined;
  if (from !== undefined || to !== undefined) {
    const start = from === undefined ? 0 : parseNumber('--from', from, 0, 1e9, false);
    const end = to === undefined ? 1e9 : parseNumber('--to', to, 0, 1e9, false);
    if (end <= start) throw new UsageError(`--from ${from ?? 0} --to ${to}: the end must come after the start`);
    if (to === undefined) throw new UsageError('--from needs --to: give the stretch of time to draw, e.g. --from 0.2 --to 0.4');
    timeRange = [start, end];
  }
  return {
    source: log !== undefined ? { kind: 'tcp-log', path: log } : { kind: 'pcap', path: files[0]! },
    ...(conn !== undefined ? { connection: parseNumber('--conn', conn, 1, 1_000_000, true) } : {}),
    ...(timeRange ? { timeRange } : {}),
  };
}

/** Parses argv (without node and the script). Throws UsageError on any mistake. */
export function parseCommand(argv: readonly string[]): Command {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') return { kind: 'help' };
  if ((command === 'up' || command === 'ping' || command === 'connect' || command === 'get' || command === 'plot' || command === 'demo') && rest.some((a) => a === '--help' || a === '-h')) {
    return { kind: 'help', topic: command };
  }
  if (command === 'plot') return { kind: 'plot', plot: parsePlot(rest) };
  if (command === 'demo') {
    if (rest.length > 0) throw new UsageError(`demo takes no arguments (got ${rest.join(' ')})`);
    return { kind: 'demo' };
  }
  if (command !== 'up' && command !== 'ping' && command !== 'connect' && command !== 'get') throw new UsageError(`unknown command "${command}"`);

  // --trace takes an optional value (--trace=rel), which parseArgs cannot say: split it here.
  let traceMode: 'absolute' | 'relative' | undefined;
  const args = rest.filter((a) => {
    const m = /^--trace=(.*)$/.exec(a);
    if (!m) return true;
    if (m[1] === 'rel' || m[1] === 'relative') traceMode = 'relative';
    else if (m[1] === 'abs' || m[1] === 'absolute') traceMode = 'absolute';
    else throw new UsageError(`--trace=${m[1]}: expected --trace, --trace=abs or --trace=rel`);
    return false;
  });
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: command !== 'up',
      strict: true,
      options: {
        tap: { type: 'string' },
        ip: { type: 'string' },
        ip6: { type: 'string', multiple: true },
        'no-ipv6': { type: 'boolean' },
        'host-ip': { type: 'string' },
        'no-host-config': { type: 'boolean' },
        mac: { type: 'string' },
        gateway: { type: 'string' },
        netns: { type: 'string' },
        pcap: { type: 'string' },
        trace: { type: 'boolean' },
        'vnet-hdr': { type: 'boolean' },
        'no-vnet-hdr': { type: 'boolean' },
        'no-io-threads': { type: 'boolean' },
        'io-threads': { type: 'boolean' },
        napi: { type: 'boolean' },
        'no-napi': { type: 'boolean' },
        'gro-flush-timeout': { type: 'string' },
        'link-delay': { type: 'string' },
        'link-reorder': { type: 'string' },
        ...(command !== 'ping'
          ? { 'tcp-log': { type: 'string' }, 'delayed-ack': { type: 'string' }, quickack: { type: 'boolean' }, 'no-ack-coalescing': { type: 'boolean' }, 'no-sack-compression': { type: 'boolean' } }
          : {}),
        ...(command === 'up'
          ? { 'udp-echo': { type: 'string' }, 'tcp-echo': { type: 'string' }, 'tcp-discard': { type: 'string' }, http: { type: 'string' } }
          : {}),
        ...(command === 'ping'
          ? {
              six: { type: 'boolean', short: '6' },
              count: { type: 'string', short: 'c' },
              size: { type: 'string', short: 's' },
              interval: { type: 'string', short: 'i' },
              timeout: { type: 'string', short: 'W' },
            }
          : {}),
      } as const,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const str = (k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

  if (str('host-ip') !== undefined && v['no-host-config']) {
    throw new UsageError('--host-ip and --no-host-config contradict each other: pick one');
  }
  const tap = str('tap') ?? 'tap0';
  // The same rule TapDevice.open applies, checked here so a bad name is a usage error (exit 2).
  const nameProblem = checkInterfaceName(tap);
  if (nameProblem) throw new UsageError(`--tap ${tap}: a device name is 1-15 letters, digits, '-', '_' or '.' (${nameProblem})`);
  const notes: string[] = [];
  let ipText = str('ip') ?? '10.0.0.2/24';
  if (!ipText.includes('/')) {
    // Without a prefix the stack would be alone on a /32 and reach nobody: /24, said out loud.
    ipText = `${ipText}/24`;
    notes.push(`--ip ${str('ip')} has no prefix length: using ${ipText}`);
  }
  const ip = parseWith('--ip', ipText, (t) => Ipv4Cidr.parse(t));
  const hostIp = v['no-host-config'] ? undefined : parseWith('--host-ip', str('host-ip') ?? '10.0.0.1/24', (t) => Ipv4Cidr.parse(t));
  if (hostIp && hostIp.address === ip.address) {
    throw new UsageError(`--host-ip ${hostIp.toString()} is the stack's own address: give the host side another one`);
  }
  const ipv6On = v['no-ipv6'] !== true;
  // Like --ip's 10.0.0.2/24: without --ip6 the stack takes fd00:10::2/64, beside the host side's fd00:10::1/64.
  const ip6Texts = Array.isArray(v.ip6) ? v.ip6 : ipv6OnDefault(v['no-ipv6']) ? ['fd00:10::2/64'] : [];
  if (!ipv6On && ip6Texts.length > 0) throw new UsageError('--ip6 and --no-ipv6 contradict each other: pick one');
  const ip6 = ip6Texts.map((t) => {
    const cidr = parseWith('--ip6', t.includes('/') ? t : `${t}/64`, (x) => Ipv6Cidr.parse(x));
    if (!t.includes('/')) notes.push(`--ip6 ${t} has no prefix length: using ${cidr.toString()}`);
    const a = cidr.address;
    if (a.isMulticast || a.isUnspecified || a.isLoopback) throw new UsageError(`--ip6 ${t}: a host address must be unicast (not ::, ::1 or ff00::/8)`);
    if (a.isLinkLocal) throw new UsageError(`--ip6 ${t}: the link-local address comes from the MAC; give a global or unique-local one (fd00:10::2/64)`);
    return cidr;
  });
  const hostIp6 = hostIp && ipv6On ? Ipv6Cidr.parse('fd00:10::1/64') : undefined;
  if (hostIp6 && ip6.some((c) => c.address.equals(hostIp6.address))) {
    throw new UsageError(`--ip6 ${hostIp6.address.toString()} is the host side's IPv6 address: give the stack another one (fd00:10::2/64)`);
  }
  const gatewayText = str('gateway');
  const gateway = gatewayText === undefined ? undefined : parseWith('--gateway', gatewayText, parseIpv4);
  if (gateway !== undefined && (gateway === ip.network || (ip.prefixLength <= 30 && gateway === ip.broadcast))) {
    throw new UsageError(`--gateway ${gatewayText} is the ${gateway === ip.network ? 'network' : 'broadcast'} address of ${ip.networkCidr.toString()}, not a host`);
  }
  if (gateway !== undefined && !ip.contains(gateway)) {
    throw new UsageError(`--gateway ${gatewayText} is not inside ${ip.toString()}`);
  }
  const macText = str('mac');
  const mac = macText === undefined ? undefined : parseWith('--mac', macText, (t) => MacAddress.parse(t));
  if (mac && mac.equals(MacAddress.BROADCAST)) throw new UsageError(`--mac ${macText} is the broadcast address; a host needs a unicast MAC`);
  if (mac && mac.isMulticast) throw new UsageError(`--mac ${macText} is a multicast address; a host needs a unicast MAC`);
  if (mac && mac.equals(MacAddress.ZERO)) throw new UsageError(`--mac ${macText} is all zeros; a host needs a unicast MAC`);
  const pcap = str('pcap');
  const tcpLog = str('tcp-log');
  for (const [flag, file] of [['--pcap', pcap], ['--tcp-log', tcpLog]] as const) {
    if (file === undefined) continue;
    const dir = dirname(resolve(file));
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      throw new UsageError(`${flag} ${file}: cannot write in ${dir} (does the directory exist?)`);
    }
  }
  if (pcap !== undefined && tcpLog !== undefined && resolve(pcap) === resolve(tcpLog)) throw new UsageError(`--pcap and --tcp-log name the same file (${pcap}): give each its own`);
  const linkDelayText = str('link-delay');
  let linkDelay: DeviceOptions['linkDelay'];
  if (linkDelayText !== undefined) {
    const [delay, jitter, extra] = linkDelayText.split('/');
    if (extra !== undefined) throw new UsageError(`--link-delay ${linkDelayText}: expected MS or MS/JITTER, e.g. 10 or 10/2`);
    linkDelay = {
      delayMs: parseNumber('--link-delay', delay!, 0, 60_000, false),
      jitterMs: jitter === undefined ? 0 : parseNumber('--link-delay jitter', jitter, 0, 60_000, false),
    };
  }
  if (v['vnet-hdr'] === true && v['no-vnet-hdr'] === true) throw new UsageError('--vnet-hdr and --no-vnet-hdr contradict each other: pick one');
  if (v['io-threads'] === true && v['no-io-threads'] === true) throw new UsageError('--io-threads and --no-io-threads contradict each other: pick one');
  if (v.napi === true && v['no-napi'] === true) throw new UsageError('--napi and --no-napi contradict each other: pick one');
  if (str('gro-flush-timeout') !== undefined && v.napi !== true) {
    throw new UsageError('--gro-flush-timeout sets the TAP device\'s GRO hold in NAPI mode: add --napi');
  }
  const linkReorderText = str('link-reorder');
  let linkReorder: DeviceOptions['linkReorder'];
  if (linkReorderText !== undefined) {
    const [probability, hold, extra] = linkReorderText.split('/');
    if (extra !== undefined) throw new UsageError(`--link-reorder ${linkReorderText}: expected P or P/MS, e.g. 0.01 or 0.01/5`);
    linkReorder = {
      probability: parseNumber('--link-reorder', probability!, 0, 1, false),
      holdMs: hold === undefined ? 0 : parseNumber('--link-reorder hold', hold, 0, 60_000, false),
    };
  }
  const delayedAckText = str('delayed-ack');
  const tcpAcks = {
    ...(delayedAckText !== undefined ? { delayedAckMs: parseNumber('--delayed-ack', delayedAckText, 1, 500, false) } : {}),
    ...(v.quickack === true ? { quickAck: true } : {}),
    ...(v['no-ack-coalescing'] === true ? { ackCoalescing: false } : {}),
    ...(v['no-sack-compression'] === true ? { sackCompression: false } : {}),
  };
  const device: DeviceOptions = {
    tap,
    ip,
    ipv6: ipv6On,
    ip6,
    hostIp,
    hostIp6,
    hostSideChosen: str('host-ip') !== undefined || v['no-host-config'] === true,
    mac,
    gateway,
    netns: str('netns'),
    pcap,
    notes,
    trace: traceMode ?? (v.trace === true ? 'absolute' : false),
    vnetHeader: v['no-vnet-hdr'] !== true,
    ioThreads: v['no-io-threads'] === true ? false : v['io-threads'] === true ? true : undefined,
    napi: v['no-napi'] === true ? false : v.napi === true ? true : undefined,
    groFlushTimeoutNs: str('gro-flush-timeout') === undefined ? undefined : parseNumber('--gro-flush-timeout', str('gro-flush-timeout')!, 0, 1e9, true),
    tcpLog,
    linkDelay,
    ...(linkReorder !== undefined ? { linkReorder } : {}),
    ...(Object.keys(tcpAcks).length > 0 ? { tcpAcks } : {}),
  };
  if (command === 'up') {
    const services: Services = {};
    const port = (flag: string): number | undefined => {
      const text = str(flag);
      return text === undefined ? undefined : parseNumber(`--${flag}`, text, 1, 65535, true);
    };
    const udpEcho = port('udp-echo');
    const tcpEcho = port('tcp-echo');
    const tcpDiscard = port('tcp-discard');
    const httpPort = port('http');
    if (udpEcho !== undefined) services.udpEcho = udpEcho;
    if (tcpEcho !== undefined) services.tcpEcho = tcpEcho;
    if (tcpDiscard !== undefined) services.tcpDiscard = tcpDiscard;
    if (httpPort !== undefined) services.http = httpPort;
    const tcpPorts = [tcpEcho, tcpDiscard, httpPort].filter((p) => p !== undefined);
    if (new Set(tcpPorts).size !== tcpPorts.length) throw new UsageError(`--tcp-echo, --tcp-discard and --http need different ports (got ${tcpPorts.join(', ')})`);
    return { kind: 'up', device, services };
  }
  if (command === 'connect') {
    const positionals = parsed.positionals;
    if (positionals.length !== 2) throw new UsageError('connect needs HOST and PORT, e.g. tapstack connect 10.0.0.1 7');
    const host = tcpHost('connect', positionals[0]!, ipv6On, tap, notes);
    return { kind: 'connect', device, host, port: parseNumber('PORT', positionals[1]!, 1, 65535, true) };
  }
  if (command === 'get') {
    const positionals = parsed.positionals;
    if (positionals.length !== 1) throw new UsageError('get needs one URL, e.g. tapstack get http://10.0.0.1:8000/');
    // RFC 3986 3.2.2: an IPv6 address in a URL is in brackets (a zone as %25tap0, RFC 6874)
    const m = /^http:\/\/([0-9.]+|\[[0-9a-fA-F:.]+(?:%25[^\]]+)?\])(?::([0-9]+))?(\/[^\s]*)?$/.exec(positionals[0]!);
    if (!m) throw new UsageError(`get ${positionals[0]}: expected http://ADDRESS[:PORT]/PATH with an IPv4 address or an [IPv6] one (no names: the stack has no DNS)`);
    const hostText = m[1]!.startsWith('[') ? m[1]!.slice(1, -1).replace('%25', '%') : m[1]!;
    return {
      kind: 'get',
      device,
      host: tcpHost('get', hostText, ipv6On, tap, notes),
      port: m[2] === undefined ? 80 : parseNumber('URL port', m[2], 1, 65535, true),
      path: m[3] ?? '/',
    };
  }

  const positionals = parsed.positionals;
  if (positionals.length !== 1) throw new UsageError('ping needs exactly one TARGET address, e.g. tapstack ping 10.0.0.1');
  const targetText = positionals[0]!;
  const six = v.six === true || targetText.includes(':');
  if (six && !ipv6On) throw new UsageError(`ping ${v.six === true ? '-6' : targetText}: IPv6 is off (--no-ipv6)`);
  const target = six ? parseWith('TARGET', targetText, parseIpv6WithZone) : parseWith('TARGET', targetText, parseIpv4);
  if (typeof target !== 'number' && target.zone !== undefined && target.zone !== tap) {
    throw new UsageError(`ping ${targetText}: the zone names the link; tapstack has one, ${tap}`);
  }
  if (typeof target !== 'number' && target.address.isLinkLocal && target.zone === undefined) {
    notes.push(`ping ${targetText}: a link-local address without %zone; using ${tap}, the only link`);
  }
  return {
    kind: 'ping',
    device,
    target,
    count: parseNumber('-c', str('count') ?? '4', 1, 1_000_000, true),
    // IPv6's largest echo data: 65535 (the payload length field) less the ICMPv6 header (8) and
    // the fragment header (8) a packet that large travels with
    size: parseNumber('-s', str('size') ?? '56', 0, six ? 65519 : 65507, true),
    intervalMs: parseNumber('-i', str('interval') ?? '1', 0.001, 3600, false) * 1000,
    timeoutMs: parseNumber('-W', str('timeout') ?? '10', 0.001, 3600, false) * 1000,
  };
}

/**
 * The HOST of `connect` and `get`: IPv4, or IPv6 (a `:` in it) with an optional `%zone` that must
 * name our one link, as `ping` takes it.
 */
function tcpHost(command: string, text: string, ipv6On: boolean, tap: string, notes: string[]): Ipv4Address | Ipv6Address {
  if (!text.includes(':')) return parseWith('HOST', text, parseIpv4);
  if (!ipv6On) throw new UsageError(`${command} ${text}: IPv6 is off (--no-ipv6)`);
  const { address, zone } = parseWith('HOST', text, parseIpv6WithZone);
  if (zone !== undefined && zone !== tap) throw new UsageError(`${command} ${text}: the zone names the link; tapstack has one, ${tap}`);
  if (address.isLinkLocal && zone === undefined) notes.push(`${command} ${text}: a link-local address without %zone; using ${tap}, the only link`);
  return address;
}
