/**
 * parseCommand: every way to say what you want, and every mistake, without a device. A mistake
 * is a UsageError (main prints it with the usage and exits 2: see test/cli.e2e.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { formatIpv4, ipv4 } from '@tapstack/link';
import { commandHelp, parseCommand, UsageError, USAGE, type Command } from '../src/cli.ts';

function up(argv: string[]): Extract<Command, { kind: 'up' }> {
  const c = parseCommand(argv);
  if (c.kind !== 'up') throw new Error(`expected up, got ${c.kind}`);
  return c;
}

function ping(argv: string[]): Extract<Command, { kind: 'ping' }> {
  const c = parseCommand(argv);
  if (c.kind !== 'ping') throw new Error(`expected ping, got ${c.kind}`);
  return c;
}

function usageError(argv: string[]): string {
  try {
    parseCommand(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`parseCommand(${JSON.stringify(argv)}) accepted it`);
}

describe('parseCommand', () => {
  it('help: no command, help, --help, -h', () => {
    for (const argv of [[], ['help'], ['--help'], ['-h']]) expect(parseCommand(argv)).toEqual({ kind: 'help' });
    expect(USAGE).toMatch(/tapstack up/);
    expect(USAGE).toMatch(/tapstack ping TARGET/);
  });

  it('demo, and demo with arguments is a mistake', () => {
    expect(parseCommand(['demo'])).toEqual({ kind: 'demo' });
    expect(usageError(['demo', '--tap', 'x'])).toMatch(/demo takes no arguments/);
  });

  it('up with no options: tap0, 10.0.0.2/24, host side 10.0.0.1/24, no pcap, no trace', () => {
    const c = up(['up']);
    expect(c.device.tap).toBe('tap0');
    expect(c.device.ip.toString()).toBe('10.0.0.2/24');
    expect(c.device.hostIp?.toString()).toBe('10.0.0.1/24');
    expect(c.device.mac).toBeUndefined();
    expect(c.device.gateway).toBeUndefined();
    expect(c.device.netns).toBeUndefined();
    expect(c.device.pcap).toBeUndefined();
    expect(c.device.trace).toBe(false);
    expect(c.device.hostSideChosen).toBe(false);
    expect(c.services).toEqual({});
  });

  it('up with every option', () => {
    const c = up([
      'up',
      '--tap', 'ts1',
      '--ip', '10.0.0.9/25',
      '--host-ip', '10.0.0.3/25',
      '--mac', '02:aa:bb:cc:dd:ee',
      '--gateway', '10.0.0.3',
      '--netns', 'lab',
      '--pcap', '/tmp/x.pcap',
      '--trace',
      '--udp-echo', '7',
      '--tcp-echo', '7',
      '--tcp-discard', '9',
      '--http', '80',
    ]);
    expect(c.device.tap).toBe('ts1');
    expect(c.device.ip.toString()).toBe('10.0.0.9/25');
    expect(c.device.hostIp?.toString()).toBe('10.0.0.3/25');
    expect(c.device.mac?.toString()).toBe('02:aa:bb:cc:dd:ee');
    expect(c.device.gateway).toBe(ipv4('10.0.0.3'));
    expect(c.device.netns).toBe('lab');
    expect(c.device.pcap).toBe('/tmp/x.pcap');
    expect(c.device.trace).toBe('absolute');
    expect(c.device.hostSideChosen).toBe(true);
    expect(c.services).toEqual({ udpEcho: 7, tcpEcho: 7, tcpDiscard: 9, http: 80 });
  });

  it('every command has its own --help (and -h), listing its usage and only its options', () => {
    for (const topic of ['up', 'ping', 'connect', 'get', 'plot', 'demo'] as const) {
      expect(parseCommand([topic, '--help'])).toEqual({ kind: 'help', topic });
      expect(parseCommand([topic, '-h'])).toEqual({ kind: 'help', topic });
    }
    expect(parseCommand(['up', '--tap', 'x', '--help'])).toEqual({ kind: 'help', topic: 'up' });
    const up = commandHelp('up');
    expect(up).toMatch(/^usage:\n  tapstack up /);
    expect(up).toContain('--tcp-echo PORT');
    expect(up).not.toContain('-c COUNT');
    const ping = commandHelp('ping');
    expect(ping).toContain('-W TIMEOUT');
    expect(ping).toContain('(ping; default 10, ends early');
    expect(ping).not.toContain('--http');
    expect(commandHelp('get')).toContain('--netns NAME');
    expect(commandHelp('get')).toContain('--tcp-log FILE');
    expect(commandHelp('ping')).not.toContain('--tcp-log');
    const plot = commandHelp('plot');
    expect(plot).toContain('tapstack plot CAPTURE.pcap [--conn N] [--from S] [--to S] > seq.svg');
    expect(plot).toContain('tapstack plot --tcp-log FILE [--conn N] [--from S] [--to S] > cwnd.svg');
    expect(plot).toContain('--from S, --to S');
    expect(plot).toContain('--conn N');
    expect(plot).not.toContain('--tap NAME');
    expect(commandHelp('up')).not.toContain('--conn N');
    expect(commandHelp('up')).not.toContain('--from S');
    expect(commandHelp('demo')).toBe('usage:\n  tapstack demo        two stacks on an in-memory wire, no root needed');
  });

  it('plot: a capture, or --tcp-log FILE, and --conn N', () => {
    expect(parseCommand(['plot', 'run.pcap'])).toEqual({ kind: 'plot', plot: { source: { kind: 'pcap', path: 'run.pcap' } } });
    expect(parseCommand(['plot', 'run.pcap', '--conn', '2'])).toEqual({ kind: 'plot', plot: { source: { kind: 'pcap', path: 'run.pcap' }, connection: 2 } });
    expect(parseCommand(['plot', '--tcp-log', 'tcp.jsonl'])).toEqual({ kind: 'plot', plot: { source: { kind: 'tcp-log', path: 'tcp.jsonl' } } });
    expect(parseCommand(['plot', 'run.pcap', '--from', '0.25', '--to', '0.5'])).toEqual({ kind: 'plot', plot: { source: { kind: 'pcap', path: 'run.pcap' }, timeRange: [0.25, 0.5] } });
    expect(parseCommand(['plot', 'run.pcap', '--to', '2'])).toEqual({ kind: 'plot', plot: { source: { kind: 'pcap', path: 'run.pcap' }, timeRange: [0, 2] } });
  });

  it('the virtio-net header is on by default; --no-vnet-hdr gives plain frames; both at once is a mistake', () => {
    expect(up(['up']).device.vnetHeader).toBe(true);
    expect(up(['up', '--vnet-hdr']).device.vnetHeader).toBe(true);
    expect(up(['up', '--no-vnet-hdr']).device.vnetHeader).toBe(false);
    expect(ping(['ping', '10.0.0.1', '--no-vnet-hdr']).device.vnetHeader).toBe(false);
    expect(usageError(['up', '--vnet-hdr', '--no-vnet-hdr'])).toMatch(/--vnet-hdr and --no-vnet-hdr contradict/);
    expect(commandHelp('up')).toMatch(/--no-vnet-hdr {5}plain frames/);
    expect(commandHelp('ping')).toMatch(/--no-vnet-hdr/);
  });

  it('the I/O threads are left to the device unless --io-threads or --no-io-threads says; both at once is a mistake', () => {
    expect(up(['up']).device.ioThreads).toBeUndefined();
    expect(up(['up', '--io-threads']).device.ioThreads).toBe(true);
    expect(up(['up', '--no-io-threads']).device.ioThreads).toBe(false);
    expect(usageError(['up', '--io-threads', '--no-io-threads'])).toMatch(/--io-threads and --no-io-threads contradict/);
    expect(commandHelp('up')).toMatch(/--io-threads {6}give the TAP device's large batches of write\(2\)s to a writer thread/);
  });

  it('NAPI mode is off unless --napi; --gro-flush-timeout NS needs it; --napi with --no-napi is a mistake', () => {
    expect(up(['up']).device.napi).toBeUndefined();
    expect(up(['up', '--no-napi']).device.napi).toBe(false);
    const napi = up(['up', '--napi', '--gro-flush-timeout', '20000']).device;
    expect([napi.napi, napi.groFlushTimeoutNs]).toEqual([true, 20000]);
    expect(up(['up', '--napi']).device.groFlushTimeoutNs).toBeUndefined();
    expect(usageError(['up', '--gro-flush-timeout', '20000'])).toMatch(/--gro-flush-timeout .* add --napi/);
    expect(usageError(['up', '--napi', '--gro-flush-timeout', '-1'])).toMatch(/--gro-flush-timeout/);
    expect(usageError(['up', '--napi', '--no-napi'])).toMatch(/--napi and --no-napi contradict/);
    expect(commandHelp('up')).toMatch(/--napi {12}open the TAP device in NAPI mode \(IFF_NAPI\)/);
    expect(commandHelp('ping')).toMatch(/--gro-flush-timeout NS/);
  });

  it('--tcp-log FILE on up, connect and get; not on ping', () => {
    expect(up(['up', '--tcp-log', '/tmp/tcp.jsonl']).device.tcpLog).toBe('/tmp/tcp.jsonl');
    expect(up(['up']).device.tcpLog).toBeUndefined();
    const get = parseCommand(['get', 'http://10.0.0.1/', '--tcp-log', '/tmp/t.jsonl']);
    expect(get.kind === 'get' && get.device.tcpLog).toBe('/tmp/t.jsonl');
  });

  it('--delayed-ack MS, --quickack, --no-ack-coalescing: TCP params on up, connect and get; none by default', () => {
    expect(up(['up']).device.tcpAcks).toBeUndefined();
    expect(up(['up', '--delayed-ack', '10', '--quickack', '--no-ack-coalescing']).device.tcpAcks).toEqual({ delayedAckMs: 10, quickAck: true, ackCoalescing: false });
    expect(up(['up', '--quickack']).device.tcpAcks).toEqual({ quickAck: true });
    expect(up(['up', '--no-sack-compression']).device.tcpAcks).toEqual({ sackCompression: false });
    const get = parseCommand(['get', 'http://10.0.0.1/', '--delayed-ack', '5']);
    expect(get.kind === 'get' && get.device.tcpAcks).toEqual({ delayedAckMs: 5 });
    expect(() => parseCommand(['up', '--delayed-ack', '0'])).toThrow(UsageError);
    expect(() => parseCommand(['up', '--delayed-ack', 'x'])).toThrow(UsageError);
    expect(() => parseCommand(['ping', '10.0.0.1', '--quickack'])).toThrow();
  });

  it('--link-reorder P[/MS]: the probability a frame is held behind the next one; none by default', () => {
    expect(up(['up']).device.linkReorder).toBeUndefined();
    expect(up(['up', '--link-reorder', '0.02']).device.linkReorder).toEqual({ probability: 0.02, holdMs: 0 });
    expect(up(['up', '--link-reorder', '0.02/4.5']).device.linkReorder).toEqual({ probability: 0.02, holdMs: 4.5 });
    expect(usageError(['up', '--link-reorder', '2'])).toMatch(/--link-reorder 2: expected a number from 0 to 1/);
    expect(usageError(['up', '--link-reorder', '0.1/2/3'])).toMatch(/expected P or P\/MS/);
    expect(usageError(['up', '--link-reorder', '0.1/-1'])).toMatch(/--link-reorder hold -1: expected a number/);
    expect(usageError(['up', '--link-reorder', 'some'])).toMatch(/--link-reorder some: expected a number/);
  });

  it('--link-delay MS[/JITTER]: the delay each way and the jitter, in ms; none by default', () => {
    expect(up(['up']).device.linkDelay).toBeUndefined();
    expect(up(['up', '--link-delay', '10']).device.linkDelay).toEqual({ delayMs: 10, jitterMs: 0 });
    expect(up(['up', '--link-delay', '10/2.5']).device.linkDelay).toEqual({ delayMs: 10, jitterMs: 2.5 });
    expect(usageError(['up', '--link-delay', 'ten'])).toMatch(/--link-delay ten: expected a number from 0 to 60000/);
    expect(usageError(['up', '--link-delay', '10/-1'])).toMatch(/--link-delay jitter -1: expected a number/);
    expect(usageError(['up', '--link-delay', '1/2/3'])).toMatch(/expected MS or MS\/JITTER/);
    expect(usageError(['up', '--link-delay', '70000'])).toMatch(/from 0 to 60000/);
  });

  it('--trace is stamped with the wall clock; --trace=rel with the time since the first line', () => {
    expect(up(['up', '--trace']).device.trace).toBe('absolute');
    expect(up(['up', '--trace=rel']).device.trace).toBe('relative');
    expect(up(['up', '--trace=abs']).device.trace).toBe('absolute');
    expect(usageError(['up', '--trace=sometimes'])).toMatch(/--trace=sometimes: expected --trace, --trace=abs or --trace=rel/);
  });

  it('--ip without a prefix gets /24, and a note says so', () => {
    const c = up(['up', '--ip', '10.0.0.9']);
    expect(c.device.ip.toString()).toBe('10.0.0.9/24');
    expect(c.device.notes).toEqual(['--ip 10.0.0.9 has no prefix length: using 10.0.0.9/24']);
    expect(up(['up']).device.notes).toEqual([]);
  });

  it('--no-host-config leaves the host side alone', () => {
    expect(up(['up', '--no-host-config']).device.hostIp).toBeUndefined();
  });

  it('ping: target and defaults like iputils (4 requests, 56 bytes, 1 s, 1 s)', () => {
    const c = ping(['ping', '10.0.0.1']);
    expect(typeof c.target === 'number' && formatIpv4(c.target)).toBe('10.0.0.1');
    expect(c.count).toBe(4);
    expect(c.size).toBe(56);
    expect(c.intervalMs).toBe(1000);
    expect(c.timeoutMs).toBe(10_000);
    expect(c.device.tap).toBe('tap0');
  });

  it('ping: short and long options, options before or after the target', () => {
    const a = ping(['ping', '10.0.0.1', '-c', '3', '-s', '1472', '-i', '0.2', '-W', '2']);
    expect([a.count, a.size, a.intervalMs, a.timeoutMs]).toEqual([3, 1472, 200, 2000]);
    const b = ping(['ping', '--count', '5', '--size', '0', '--tap', 'x0', '10.0.0.7']);
    expect([b.count, b.size, b.device.tap, typeof b.target === 'number' && formatIpv4(b.target)]).toEqual([5, 0, 'x0', '10.0.0.7']);
    expect(ping(['ping', '10.0.0.1', '-s', '65507']).size).toBe(65507);
  });

  it('IPv6: on by default with the host side at fd00:10::1/64; --ip6 repeatable; --no-ipv6 turns it off', () => {
    const d = up(['up']).device;
    expect([d.ipv6, d.ip6.map(String), d.hostIp6?.toString()]).toEqual([true, ['fd00:10::2/64'], 'fd00:10::1/64']);
    const e = up(['up', '--ip6', 'fd00:10::2/64', '--ip6', 'fd00:10::3']).device;
    expect(e.ip6.map(String)).toEqual(['fd00:10::2/64', 'fd00:10::3/64']);
    expect(e.notes).toContain('--ip6 fd00:10::3 has no prefix length: using fd00:10::3/64');
    const f = up(['up', '--no-ipv6']).device;
    expect([f.ipv6, f.ip6, f.hostIp6]).toEqual([false, [], undefined]);
    expect(up(['up', '--no-host-config']).device.hostIp6).toBeUndefined();
    expect(() => parseCommand(['up', '--ip6', 'fe80::2/64'])).toThrow(/link-local address comes from the MAC/);
    expect(() => parseCommand(['up', '--ip6', 'ff02::1/64'])).toThrow(/must be unicast/);
    expect(() => parseCommand(['up', '--ip6', 'fd00:10::1/64'])).toThrow(/host side's IPv6 address/);
    expect(() => parseCommand(['up', '--ip6', 'fd00:10::2/64', '--no-ipv6'])).toThrow(/contradict/);
    expect(() => parseCommand(['up', '--ip6', 'fd00:10::zz/64'])).toThrow(UsageError);
  });

  it('connect and get take IPv6 hosts: bare or with the zone for connect, in brackets in a URL (a zone as %25)', () => {
    const host = (c: Command): string => (c.kind === 'connect' || c.kind === 'get' ? (typeof c.host === 'number' ? formatIpv4(c.host) : c.host.toString()) : '');
    const c = parseCommand(['connect', 'fd00:10::1', '7']);
    expect([c.kind, host(c), c.kind === 'connect' && c.port]).toEqual(['connect', 'fd00:10::1', 7]);
    expect(host(parseCommand(['connect', 'fe80::1%tap0', '7']))).toBe('fe80::1');
    const g = parseCommand(['get', 'http://[fd00:10::1]:8000/file.bin']);
    expect([host(g), g.kind === 'get' && g.port, g.kind === 'get' && g.path]).toEqual(['fd00:10::1', 8000, '/file.bin']);
    expect(host(parseCommand(['get', 'http://[fe80::1%25tap0]/']))).toBe('fe80::1');
    expect(host(parseCommand(['get', 'http://10.0.0.1/']))).toBe('10.0.0.1');
    const ll = parseCommand(['connect', 'fe80::1', '7']);
    expect(ll.kind === 'connect' && ll.device.notes.some((n) => /without %zone; using tap0/.test(n))).toBe(true);
    expect(() => parseCommand(['get', 'http://fd00:10::1/'])).toThrow(UsageError);
    expect(() => parseCommand(['connect', 'fe80::1%eth0', '7'])).toThrow(/one, tap0/);
    expect(() => parseCommand(['connect', '--no-ipv6', 'fd00:10::1', '7'])).toThrow(/IPv6 is off/);
    expect(() => parseCommand(['connect', 'fd00::10::1', '7'])).toThrow(UsageError);
  });

  it('ping -6 and IPv6 targets (with the zone of a link-local one)', () => {
    const a = ping(['ping', '-6', 'fd00:10::1', '-s', '4000']);
    expect(typeof a.target !== 'number' && a.target.address.toString()).toBe('fd00:10::1');
    expect(a.size).toBe(4000);
    const b = ping(['ping', 'fe80::1%tap0']);
    expect(typeof b.target !== 'number' && [b.target.address.toString(), b.target.zone]).toEqual(['fe80::1', 'tap0']);
    expect(() => parseCommand(['ping', 'fe80::1%eth0'])).toThrow(/one, tap0/);
    expect(() => parseCommand(['ping', '-6', '10.0.0.1'])).toThrow(UsageError);
    expect(() => parseCommand(['ping', '--no-ipv6', 'fd00:10::1'])).toThrow(/IPv6 is off/);
    expect(ping(['ping', 'fd00:10::1', '-s', '65519']).size).toBe(65519);
    expect(() => parseCommand(['ping', 'fd00:10::1', '-s', '65520'])).toThrow(UsageError);
  });

  it.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['up', '--bogus'], /--bogus/],
    [['up', 'extra'], /extra/],
    [['up', '--tap'], /--tap/],
    [['up', '--ip', '10.0.0.300/24'], /^--ip: /],
    [['up', '--ip', 'ten'], /^--ip: /],
    [['up', '--host-ip', '10.0.0.1/33'], /^--host-ip: /],
    [['up', '--host-ip', '10.0.0.1/24', '--no-host-config'], /contradict/],
    [['up', '--host-ip', '10.0.0.2/24'], /stack's own address/],
    [['up', '--tap', 'a-name-that-is-far-too-long'], /1-15 letters/],
    [['up', '--tap', 'bad/name'], /1-15 letters/],
    [['up', '--mac', '01:00:5e:00:00:01'], /multicast/],
    [['up', '--mac', 'zz:zz'], /^--mac: /],
    [['up', '--gateway', '192.168.1.1'], /not inside 10\.0\.0\.2\/24/],
    [['up', '--gateway', 'x'], /^--gateway: /],
    [['up', '--udp-echo', '0'], /--udp-echo 0: expected a whole number from 1 to 65535/],
    [['up', '--udp-echo', '70000'], /--udp-echo 70000/],
    [['up', '-c', '3'], /-c/],
    [['ping'], /exactly one TARGET/],
    [['ping', '10.0.0.1', '10.0.0.3'], /exactly one TARGET/],
    [['ping', 'host.example'], /^TARGET: /],
    [['ping', '10.0.0.1', '-c', '0'], /-c 0: expected a whole number/],
    [['ping', '10.0.0.1', '-c', '1.5'], /-c 1.5: expected a whole number/],
    [['ping', '10.0.0.1', '-c', ''], /-c : expected/],
    [['ping', '10.0.0.1', '-s', '65508'], /-s 65508/],
    [['ping', '10.0.0.1', '-s', '-1'], /-s/],
    [['ping', '10.0.0.1', '-i', 'fast'], /-i fast: expected a number/],
    [['ping', '10.0.0.1', '-W', '0'], /-W 0/],
    [['ping', '10.0.0.1', '--udp-echo', '7'], /--udp-echo/],
    [['up', '--pcap', '/nonexistent/dir/x.pcap'], /^--pcap \/nonexistent\/dir\/x\.pcap: cannot write in \/nonexistent\/dir/],
    [['up', '--tcp-log', '/nonexistent/dir/x.jsonl'], /^--tcp-log \/nonexistent\/dir\/x\.jsonl: cannot write in \/nonexistent\/dir/],
    [['up', '--pcap', '/tmp/x', '--tcp-log', '/tmp/x'], /--pcap and --tcp-log name the same file/],
    [['ping', '10.0.0.1', '--tcp-log', '/tmp/x'], /--tcp-log/],
    [['plot'], /plot needs one capture file/],
    [['plot', 'a.pcap', 'b.pcap'], /plot needs one capture file/],
    [['plot', 'a.pcap', '--tcp-log', 'x'], /plot draws one file/],
    [['plot', 'a.pcap', '--conn', '0'], /--conn 0: expected a whole number from 1/],
    [['plot', 'a.pcap', '--tap', 'x'], /--tap/],
    [['plot', 'a.pcap', '--from', '2', '--to', '1'], /the end must come after the start/],
    [['plot', 'a.pcap', '--from', '2'], /--from needs --to/],
    [['plot', 'a.pcap', '--to', 'soon'], /--to soon: expected a number/],
    [['up', '--mac', '00:00:00:00:00:00'], /all zeros/],
    [['up', '--mac', 'ff:ff:ff:ff:ff:ff'], /the broadcast address/],
    [['up', '--gateway', '10.0.0.0'], /--gateway 10\.0\.0\.0 is the network address of 10\.0\.0\.0\/24/],
    [['up', '--gateway', '10.0.0.255'], /--gateway 10\.0\.0\.255 is the broadcast address/],
    [['up', '--udp-echo', '0x7'], /--udp-echo 0x7: expected a whole number/],
    [['up', '--udp-echo', '1e1'], /--udp-echo 1e1: expected a whole number/],
    [['up', '--tcp-echo', '7', '--http', '7'], /different ports/],
    [['ping', '10.0.0.1', '-i', '1e-1'], /-i 1e-1: expected a number/],
  ])('%j is a usage error', (argv, message) => {
    expect(usageError(argv)).toMatch(message);
  });
});
