/**
 * Entry point of `tapstack` and of `npm start`. With no command: on a machine that can open a
 * TAP device (root, /dev/net/tun) it runs `tapstack up`; anywhere else it runs the in-memory demo
 * and says how to get the real thing.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { FaultInjector, PcapWriter, TapDevice, TapError, formatIpv4, withCapture, withFaults, type Ipv6Address, type Link } from '@tapstack/link';
import { formatPing6Error, formatPing6Reply, formatPing6Summary } from '@tapstack/icmpv6';
import { formatPingError, formatPingReply, formatPingSummary, indent, pingHeader } from './output.ts';
import { commandHelp, parseCommand, UsageError, USAGE, type Command, type DeviceOptions, type Services } from './cli.ts';
import { describeServices, httpServer, tcpDiscard, tcpEcho, udpEcho as runUdpEcho } from './services.ts';
import { formatTcpAddress, formatTcpEndpoint, jsonLinesSink, TcpError, toTcpAddress } from '@tapstack/tcp';
import { runMemoryDemo } from './memory-demo.ts';
import { runPlot } from './plot/command.ts';
import { LineFile } from './line-file.ts';
import { createStack, type Stack } from './stack.ts';
import { describeNamespace, hostSideDecision, hostSideNamespace, networkNamespace, rootNamespaceRefusal } from './namespace.ts';

/** Where the device was created, for the banner: `namespace lab`, `namespace net:[4026532...]`. */
let namespaceName = '';
/** The command line, for the commands the root-namespace refusal prints. */
let commandLine: readonly string[] = [];

/** CAP_NET_ADMIN in this process's effective set (bit 12 of CapEff), which opening a TAP needs. */
function hasNetAdmin(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return ((BigInt(`0x${m[1]}`) >> 12n) & 1n) === 1n;
  } catch {
    /* no /proc: fall back to the uid */
  }
  return process.getuid?.() === 0;
}

/** Whether this process could open a TAP device, and if not, why (in words that name the fix). */
export function canOpenTap(): { ok: true } | { ok: false; why: string } {
  if (!hasNetAdmin()) {
    return {
      ok: false,
      why:
        process.getuid?.() === 0
          ? 'running as root but without CAP_NET_ADMIN (a TAP device needs it; a container needs --cap-add NET_ADMIN)'
          : 'not running as root (a TAP device needs CAP_NET_ADMIN)',
    };
  }
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return { ok: false, why: '/dev/net/tun is missing (load it with `modprobe tun`)' };
  }
  return { ok: true };
}

/** The TAP device of this process (for its failure, when it closes on its own). */
let device: TapDevice | undefined;

/**
 * The --pcap file, opened (and its header written) before the device exists, so a file that
 * cannot be written (a directory, a read-only or full file system) is a one-line usage error.
 */
function openCapture(d: DeviceOptions): PcapWriter | undefined {
  if (d.pcap === undefined) return undefined;
  try {
    return new PcapWriter(d.pcap);
  } catch (err) {
    throw new UsageError(`--pcap ${d.pcap}: ${(err as Error).message}`);
  }
}

/** The --tcp-log file, opened before the device for the same reason as --pcap. */
function openTcpLog(d: DeviceOptions): LineFile | undefined {
  if (d.tcpLog === undefined) return undefined;
  const file = d.tcpLog;
  try {
    return new LineFile(file, (error) => process.stderr.write(`tapstack: --tcp-log ${file}: log stopped (${error.message}); the stack keeps running\n`));
  } catch (err) {
    throw new UsageError(`--tcp-log ${file}: ${(err as Error).message}`);
  }
}

/**
 * Opens the TAP device, with the virtio-net header unless --no-vnet-hdr. A kernel that refuses
 * the header (TUNSETVNETHDRSZ or TUNSETOFFLOAD fails: an old kernel, a restricted container) costs
 * speed only, so the stack says so once and runs on plain frames rather than not at all.
 */
export function openTap(d: Pick<DeviceOptions, 'tap' | 'mac' | 'netns' | 'vnetHeader'> & Partial<Pick<DeviceOptions, 'ioThreads'>>, warn: (line: string) => void): TapDevice {
  const open = (vnetHeader: boolean): TapDevice =>
    TapDevice.open({
      name: d.tap,
      mtu: 1500,
      ...(d.mac ? { mac: d.mac } : {}),
      ...(d.netns ? { netns: d.netns } : {}),
      ...(vnetHeader ? { vnetHeader: true } : {}),
      ...(d.ioThreads !== undefined ? { ioThreads: d.ioThreads } : {}),
    });
  if (!d.vnetHeader) return open(false);
  try {
    return open(true);
  } catch (err) {
    if (!(err instanceof TapError) || !isVnetHeaderRefusal(err.syscall)) throw err;
    warn(`tapstack: the kernel refused the virtio-net header (${err.syscall}: ${err.errno ?? '?'}): running on plain frames, one per system call (as --no-vnet-hdr)`);
    return open(false);
  }
}

/** The setup steps of the header mode only (tap.cc's open): a failure there leaves plain frames possible. */
function isVnetHeaderRefusal(syscall: string | undefined): boolean {
  return syscall === 'ioctl(TUNSETVNETHDRSZ)' || syscall === 'ioctl(TUNSETOFFLOAD)';
}

function openDevice(d: DeviceOptions, capture: PcapWriter | undefined): Link {
  const tap = openTap(d, (line) => process.stderr.write(`${line}\n`));
  // --no-host-config means what --help says: the kernel's side of the device is the user's to set
  // up (link up, addresses); we do not even bring it up.
  if (d.hostIp) {
    try {
      tap.configureHost({ up: true, address: d.hostIp.toString() });
    } catch (err) {
      tap.close();
      throw err;
    }
  }
  if (d.hostIp6) configureHostIpv6(tap.ifname, d.hostIp6.toString(), d.netns);
  device = tap;
  const file = d.pcap;
  const captured: Link = capture
    ? withCapture(tap, capture, {
        onError: (error) => process.stderr.write(`tapstack: --pcap ${file}: capture stopped (${error.message}); the stack keeps running\n`),
      })
    : tap;
  // --link-delay and --link-reorder sit above the capture: the pcap shows the frames as the
  // device carries them (in the order the kernel sent and took them).
  if (!d.linkDelay && !d.linkReorder) return captured;
  return withFaults(captured, {
    ...(d.linkDelay ? { delayMs: d.linkDelay.delayMs, jitterMs: d.linkDelay.jitterMs } : {}),
    ...(d.linkReorder ? { reorder: d.linkReorder.probability, reorderDelayMs: d.linkReorder.holdMs } : {}),
  });
}

/**
 * Gives the kernel's side of the device its IPv6 address (`ip -6 addr add fd00:10::1/64 dev tap0
 * nodad`), the IPv6 twin of configureHost's 10.0.0.1/24. `nodad`: the kernel's side is usable at
 * once (the stack's own address still goes through DAD), so `ping -6` works as soon as the banner
 * is printed. Done with `ip` (the addon sets IPv4 addresses with ioctls, which IPv6 lacks); a
 * namespace with IPv6 disabled only loses IPv6, with a warning.
 */
function configureHostIpv6(ifname: string, cidr: string, netns: string | undefined): void {
  try {
    execFileSync('ip', [...(netns ? ['-n', netns] : []), '-6', 'addr', 'add', cidr, 'dev', ifname, 'nodad'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
  } catch (err) {
    const why = ((err as { stderr?: Buffer }).stderr?.toString() ?? (err as Error).message).trim();
    process.stderr.write(`tapstack: could not give the host side ${cidr} (${why}); IPv6 from the host will not reach the stack\n`);
  }
}

/**
 * The --trace line printer: each line stamped like tcpdump, with the local wall-clock time to the
 * microsecond (`-tttt`: 2026-12-04 02:59:01.123456) or the time since the first line (`-ttttt`).
 */
function traceWriter(mode: 'absolute' | 'relative'): (line: string) => void {
  let first: number | undefined;
  return (line) => {
    const nowUs = Math.round((performance.timeOrigin + performance.now()) * 1000);
    process.stderr.write(`${mode === 'absolute' ? formatWallClock(nowUs) : formatElapsed(nowUs - (first ??= nowUs))} ${line}\n`);
  };
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

export function formatWallClock(us: number): string {
  const d = new Date(Math.floor(us / 1000));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(us % 1_000_000, 6)}`;
}

export function formatElapsed(us: number): string {
  const s = Math.floor(us / 1_000_000);
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}.${pad(us % 1_000_000, 6)}`;
}

/** A device command run where it would change the machine's own network: the refusal (exit 2). */
class RootNamespaceRefusal extends Error {}

function bringUp(d: DeviceOptions): Stack {
  for (const note of d.notes) process.stderr.write(`tapstack: ${note}\n`);
  // Judged where the host side lands: --netns NAME, else the namespace this process runs in.
  const where = hostSideNamespace(d.netns);
  if (hostSideDecision(where, d) === 'refuse') throw new RootNamespaceRefusal(rootNamespaceRefusal(commandLine));
  namespaceName = describeNamespace(where);
  const capture = openCapture(d);
  let tcpLog: LineFile | undefined;
  let link: Link;
  try {
    tcpLog = openTcpLog(d);
    link = openDevice(d, capture);
  } catch (err) {
    capture?.close();
    tcpLog?.close();
    throw err;
  }
  const stack = createStack({
    link,
    ip: d.ip,
    ...(d.gateway !== undefined ? { gateway: d.gateway } : {}),
    trace: d.trace ? traceWriter(d.trace) : false,
    ...(tcpLog || d.tcpAcks ? { tcp: { ...(tcpLog ? { tcpLog: jsonLinesSink((line) => tcpLog.write(line)) } : {}), ...(d.tcpAcks ? { params: d.tcpAcks } : {}) } } : {}),
    ipv6: d.ipv6 ? { addresses: d.ip6 } : false,
  });
  // The device's own counters join `stats`: batches each way (frames per wake-up, per write
  // call), and with the virtio-net header (the default) the super-frames.
  if (device) stack.register({ name: 'tap', counters: device.tapCounters });
  // --link-delay / --link-reorder: what the fault injector did (frames held back, delayed,
  // dropped for a full delay line) shows beside what TCP made of it.
  if (link instanceof FaultInjector) stack.register({ name: 'faults', counters: link.faultCounters });
  // The link closes last (after TCP has aborted its connections and logged it): then the file.
  if (tcpLog) link.onClose(() => tcpLog.close());
  stack.start();
  return stack;
}

/** `ping -6 fd00:10::2` (or the link-local address) for the banner's try lines. */
function ipv6Try(stack: Stack, d: DeviceOptions, udpEcho: number | undefined, tcp: { tcpEcho?: number; http?: number } = {}): string {
  const usable = (stack.ipv6?.addresses.list() ?? []).filter((a) => a.state === 'preferred');
  const target = usable.find((a) => !a.address.isLinkLocal) ?? usable[0];
  if (!target) return '';
  const text = target.address.isLinkLocal ? `${target.address}%${d.tap}` : target.address.toString();
  const inNs = d.netns ? `ip netns exec ${d.netns} ` : '';
  // the echo socket is bound to `::`: the same one answers over IPv6
  const udp = udpEcho !== undefined && !target.address.isLinkLocal ? `\n      printf hi | ${inNs}socat -t 1 - UDP6:[${text}]:${udpEcho}` : '';
  // the TCP services listen on `::` too: the same servers over IPv6
  const echo = tcp.tcpEcho !== undefined && !target.address.isLinkLocal ? `\n      printf hi | ${inNs}nc -6 -N ${text} ${tcp.tcpEcho}` : '';
  const http = tcp.http !== undefined && !target.address.isLinkLocal ? `\n      ${inNs}curl -6 -g http://[${text}]:${tcp.http}/` : '';
  return `\ntry:  ${inNs}ping -6 ${text}${udp}${echo}${http}`;
}

/** The IPv6 addresses for the banner: `fe80::...%tap0 (link-local), fd00:10::2/64`, duplicates marked. */
function describeIpv6(stack: Stack, tap: string): string {
  const list = stack.ipv6?.addresses.list() ?? [];
  return list
    .map((a) => {
      const text = a.address.isLinkLocal ? `${a.address}%${tap}` : `${a.address}/${a.prefixLength}`;
      return a.state === 'duplicate' ? `${text} (DUPLICATE: another host has it; not used)` : a.state === 'tentative' ? `${text} (tentative)` : text;
    })
    .join(', ');
}

function printTables(stack: Stack): void {
  process.stdout.write(
    `neighbours:\n${indent(stack.neighbours({ statistics: true }) || '(none)')}\nconnections:\n${indent(stack.connections())}\ncounters:\n${indent(stack.counters())}\n`,
  );
}

async function up(d: DeviceOptions, services: Services): Promise<number> {
  const udpEcho = services.udpEcho;
  const stack = bringUp(d);
  if (udpEcho !== undefined) runUdpEcho(stack.udp, udpEcho);
  if (services.tcpEcho !== undefined) tcpEcho(stack.tcp, services.tcpEcho);
  if (services.tcpDiscard !== undefined) tcpDiscard(stack.tcp, services.tcpDiscard);
  if (services.http !== undefined) httpServer(stack.tcp, services.http, formatIpv4(stack.address));
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      stopping = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGUSR1', show);
      rl?.close();
      process.stdout.write('\nstopping; counters:\n');
      process.stdout.write(`${indent(stack.counters())}\n`);
      stack.close();
      resolve(0);
    };
    // The device can go away under us (ip link del tap0, the namespace deleted): say so and exit
    // non-zero, as ping does when its interface disappears, instead of ending silently.
    stack.link.onClose(() => {
      if (stopping) return;
      const why = device?.failure?.message ?? `the device ${d.tap} was closed`;
      process.stderr.write(`tapstack: ${why}\n`);
      process.stdout.write(`counters:\n${indent(stack.counters())}\n`);
      stopping = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGUSR1', show);
      rl?.close();
      stack.close();
      resolve(1);
    });
    const show = (): void => printTables(stack);
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    process.on('SIGUSR1', show);
    // The banner comes last, once Ctrl-C is handled: whoever reads it (a person, a test) may stop
    // the stack at once, and a SIGINT before the handler would kill it without the counters.
    const where = ` in ${namespaceName}`;
    process.stdout.write(
      `tapstack is up on ${d.tap}${where}: ${formatIpv4(stack.address)} at ${stack.link.mac}` +
        (d.hostIp ? ` (host side ${d.hostIp.toString()})` : ` (host side left alone: bring it up with ip link set ${d.tap} up and give it an address)`) +
        `\ntry:  ${d.netns ? `ip netns exec ${d.netns} ` : ''}ping ${formatIpv4(stack.address)}` +
        `\n      ${d.netns ? `ip netns exec ${d.netns} ` : ''}arping -I ${d.tap} ${formatIpv4(stack.address)}` +
        `\ntables: type \`neigh\` (neighbours, like ip -s neigh), \`conns\` (TCP, like ss) or \`stats\` (counters) and Enter,` +
        `\n        or send SIGUSR1 (kill -USR1 ${process.pid}) for all three; Ctrl-C to stop\n`,
    );
    if (udpEcho !== undefined) {
      process.stdout.write(
        `udp echo on ${formatIpv4(stack.address)}:${udpEcho}; try: printf hi | ${d.netns ? `ip netns exec ${d.netns} ` : ''}socat -t 1 - UDP4:${formatIpv4(stack.address)}:${udpEcho}\n`,
      );
    }
    process.stdout.write(describeServices(stack.address, services, d.netns ? `ip netns exec ${d.netns} ` : ''));
    if (d.linkReorder) {
      const { probability, holdMs } = d.linkReorder;
      process.stdout.write(`link reorder: ${probability * 100}% of the frames held ${holdMs > 0 ? `${holdMs} ms while later ones pass` : 'behind the next one'}, each way (--link-reorder)\n`);
    }
    if (d.linkDelay) {
      const { delayMs, jitterMs } = d.linkDelay;
      process.stdout.write(`link delay: ${delayMs} ms each way${jitterMs > 0 ? ` plus up to ${jitterMs} ms of jitter` : ''} (--link-delay), so ${2 * delayMs} ms more round trip\n`);
    }
    // IPv6 addresses are usable once DAD has passed (about a second): then they are printed.
    void stack.ndp?.settled().then(() => {
      if (stopping) return;
      process.stdout.write(`IPv6: ${describeIpv6(stack, d.tap)}${d.hostIp6 ? ` (host side ${d.hostIp6.toString()})` : ''}${ipv6Try(stack, d, udpEcho, services)}\n`);
    });
    const rl = process.stdin.isTTY || !process.stdin.readableEnded ? createInterface({ input: process.stdin }) : undefined;
    rl?.on('line', (line) => {
      const word = line.trim();
      if (word === 'neigh' || word === 'n') process.stdout.write(`${stack.neighbours({ statistics: true }) || '(no neighbours)'}\n`);
      else if (word === 'stats' || word === 's') process.stdout.write(`${stack.counters()}\n`);
      else if (word === 'conns' || word === 'c') process.stdout.write(`${stack.connections()}\n`);
      else if (word === 'quit' || word === 'q') stop();
      else if (word !== '') process.stdout.write('commands: neigh, conns, stats, quit\n');
    });
  });
}

async function ping(c: Extract<Command, { kind: 'ping' }>): Promise<number> {
  const target = c.target;
  if (typeof target !== 'number') return ping6(c, target.address, target.zone);
  const stack = bringUp(c.device);
  const onSigint = (): void => {
    stack.icmp.close(); // ends the session: ping resolves with what it has, as iputils prints on Ctrl-C
  };
  process.on('SIGINT', onSigint);
  // The device deleted under it: nothing more can be sent or received. Say so, end the session
  // (the summary follows) and exit 1, whatever came before.
  let deviceLost = false;
  stack.link.onClose(() => {
    if (closing) return;
    deviceLost = true;
    process.stderr.write(`tapstack: ${device?.failure?.message ?? `the device ${c.device.tap} was closed`}\n`);
    stack.icmp.close();
  });
  let closing = false;
  process.stdout.write(`${pingHeader(target, c.size)}\n`);
  try {
    const summary = await stack.icmp.ping(target, {
      count: c.count,
      size: c.size,
      intervalMs: c.intervalMs,
      timeoutMs: c.timeoutMs,
      onReply: (reply) => process.stdout.write(`${formatPingReply(reply)}\n`),
      onError: (error) => process.stdout.write(`${formatPingError(error)}\n`),
    });
    process.stdout.write(`\n${formatPingSummary(summary)}\n`);
    // iputils: 0 when any reply came, also after Ctrl-C; 1 when none did
    return summary.received > 0 && !deviceLost ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    closing = true;
    stack.close();
  }
}

/** `tapstack ping -6 ADDRESS`: like iputils' ping -6, from the stack's IPv6 (after DAD). */
async function ping6(c: Extract<Command, { kind: 'ping' }>, target: Ipv6Address, zone: string | undefined): Promise<number> {
  const stack = bringUp(c.device);
  const icmpv6 = stack.icmpv6!;
  let closing = false;
  let deviceLost = false;
  const onSigint = (): void => icmpv6.close();
  process.on('SIGINT', onSigint);
  stack.link.onClose(() => {
    if (closing) return;
    deviceLost = true;
    process.stderr.write(`tapstack: ${device?.failure?.message ?? `the device ${c.device.tap} was closed`}\n`);
    icmpv6.close();
  });
  try {
    await stack.ndp?.settled();
    // iputils prints the zone it was given with the address: `PING fe80::1%tap0 (fe80::1%tap0)`
    const named = zone === undefined ? target.toString() : `${target}%${zone}`;
    process.stdout.write(`PING ${named} (${named}) ${c.size} data bytes\n`);
    const summary = await icmpv6.ping(target, {
      count: c.count,
      size: c.size,
      intervalMs: c.intervalMs,
      timeoutMs: c.timeoutMs,
      onReply: (reply) => process.stdout.write(`${formatPing6Reply(reply)}\n`),
      onError: (error) => process.stdout.write(`${formatPing6Error(error)}\n`),
    });
    process.stdout.write(`\n${formatPing6Summary(summary)}\n`);
    return summary.received > 0 && !deviceLost ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    closing = true;
    stack.close();
  }
}

/** `tapstack connect HOST PORT`: like nc, stdin into the connection, the connection to stdout. */
async function connect(c: Extract<Command, { kind: 'connect' }>): Promise<number> {
  const stack = bringUp(c.device);
  try {
    // our IPv6 addresses are tentative until DAD is over (RFC 4862 5.4): no source to connect from before
    if (typeof c.host !== 'number') await stack.ndp?.settled();
    return await new Promise<number>((resolve) => {
      const socket = stack.tcp.connect({ host: c.host, port: c.port });
      socket.on('connect', () => {
        process.stderr.write(`connected to ${formatTcpEndpoint(c.host, c.port)} from ${formatTcpEndpoint(toTcpAddress(socket.localAddress ?? '0.0.0.0'), socket.localPort ?? 0)}\n`);
        process.stdin.pipe(socket);
      });
      socket.on('data', (chunk: Buffer) => process.stdout.write(chunk));
      socket.on('error', (err: TcpError) => {
        process.stderr.write(`tapstack connect: ${err.message}\n`);
        resolve(1);
      });
      socket.on('close', () => resolve(0));
      process.once('SIGINT', () => socket.destroy());
    });
  } finally {
    process.stdin.unpipe();
    process.stdin.destroy();
    stack.close();
  }
}

/** `tapstack get http://HOST[:PORT]/PATH`: Node's http client over our TCP, the body to stdout. */
async function get(c: Extract<Command, { kind: 'get' }>): Promise<number> {
  const stack = bringUp(c.device);
  const progress = !process.stdout.isTTY;
  try {
    if (typeof c.host !== 'number') await stack.ndp?.settled();
    return await new Promise<number>((resolve) => {
      const req = http.request(
        {
          // Node brackets an IPv6 host in the Host header itself
          host: formatTcpAddress(c.host),
          port: c.port,
          path: c.path,
          // no `agent` option: with one (even agent: false) Node ignores createConnection and asks the kernel
          createConnection: () => {
            const socket = stack.tcp.connect({ host: c.host, port: c.port });
            process.stderr.write(`connecting from ${socket.localAddress ?? formatIpv4(stack.address)} (tapstack) to ${formatTcpEndpoint(c.host, c.port)}\n`);
            return socket as never;
          },
        },
        (res) => {
          const total = Number(res.headers['content-length'] ?? NaN);
          let got = 0;
          let last = 0;
          const started = Date.now();
          res.on('data', (chunk: Buffer) => {
            got += chunk.length;
            if (progress && Date.now() - last > 500) {
              last = Date.now();
              process.stderr.write(`\r${got} bytes${Number.isFinite(total) ? ` of ${total}` : ''}`);
            }
          });
          res.pipe(process.stdout, { end: false });
          res.on('end', () => {
            const s = (Date.now() - started) / 1000;
            if (progress) process.stderr.write(`\r${got} bytes in ${s.toFixed(2)} s (${((got * 8) / s / 1e6).toFixed(1)} Mbit/s), HTTP ${res.statusCode}\n`);
            resolve(res.statusCode !== undefined && res.statusCode < 400 ? 0 : 1);
          });
          res.on('error', (err) => {
            process.stderr.write(`tapstack get: ${err.message}\n`);
            resolve(1);
          });
        },
      );
      req.on('error', (err) => {
        process.stderr.write(`tapstack get: ${err.message}\n`);
        resolve(1);
      });
      req.end();
    });
  } finally {
    stack.close();
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  commandLine = argv.length === 0 ? ['up'] : argv;
  let command: Command;
  try {
    command = argv.length === 0 ? defaultCommand() : parseCommand(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tapstack: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  try {
    switch (command.kind) {
      case 'help':
        process.stdout.write(`${command.topic ? commandHelp(command.topic) : USAGE}\n`);
        return 0;
      case 'demo':
        await runMemoryDemo(process.stdout);
        return 0;
      case 'up':
        return await up(command.device, command.services);
      case 'ping':
        return await ping(command);
      case 'connect':
        return await connect(command);
      case 'get':
        return await get(command);
      case 'plot':
        if (process.stdout.isTTY) {
          process.stderr.write('tapstack plot writes an SVG to stdout: redirect it to a file, e.g. tapstack plot run.pcap > seq.svg\n');
          return 2;
        }
        return runPlot(command.plot, process.stdout, process.stderr);
    }
  } catch (err) {
    if (err instanceof TapError) {
      process.stderr.write(`tapstack: ${err.message}\n`);
      return 1;
    }
    if (err instanceof UsageError) {
      // found only when acting on the arguments (a --pcap file that cannot be written)
      process.stderr.write(`tapstack: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof RootNamespaceRefusal) {
      process.stderr.write(`tapstack: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/** `npm start` with no arguments: the real thing where possible, the in-memory demo elsewhere. */
function defaultCommand(): Command {
  const tap = canOpenTap();
  if (tap.ok && !networkNamespace().isRoot) return parseCommand(['up']);
  if (tap.ok) {
    process.stdout.write(
      `This is the machine's own network namespace: tapstack will not add 10.0.0.1/24 to your real network.\n` +
        `Running the in-memory demo instead. For the real thing, in a namespace of its own:\n` +
        `  sudo ip netns add tapstack && sudo ip netns exec tapstack npm start\n` +
        `  sudo ip netns exec tapstack ping 10.0.0.2      # from a second shell; sudo ip netns del tapstack when done\n\n`,
    );
    return { kind: 'demo' };
  }
  process.stdout.write(
    `No TAP device here: ${tap.why}.\nRunning the in-memory demo instead (two stacks on a virtual wire).\n` +
      `For the real thing, as root in a network namespace of its own (tap0 there, host side 10.0.0.1/24):\n` +
      `  sudo ip netns add tapstack && sudo ip netns exec tapstack npm start\n` +
      `  sudo ip netns exec tapstack ping 10.0.0.2      # from a second shell; sudo ip netns del tapstack when done\n\n`,
  );
  return { kind: 'demo' };
}

const isEntry = process.argv[1] !== undefined && /(main\.ts|tapstack(\.js)?)$/.test(process.argv[1]);
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`tapstack: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
