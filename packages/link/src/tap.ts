/**
 * A Linux TAP device as a Link: the stack's side of a virtual Ethernet cable whose other end is
 * the kernel's network interface `tap0`. What the kernel sends out of tap0 (ARP requests, pings)
 * arrives here as whole Ethernet frames; what we send appears on tap0 as received.
 *
 * The work happens in a small N-API addon (../native/tap.cc): it opens /dev/net/tun with
 * IFF_TAP | IFF_NO_PI (Ethernet frames, no 4-byte packet-info prefix), non-blocking, watches the
 * fd with libuv on the main loop and, on every wake-up, reads frames until EAGAIN and hands the
 * whole batch to JS in one call (one ArrayBuffer, one copy per frame). Sending is batched the
 * same way: `send` copies the frame into a staging buffer and returns; at the end of the current
 * run of JavaScript (a microtask; or at once when the dispatcher ends a received batch, or when
 * the buffer is full) one call into the addon writes them all, one write(2) per frame, since the
 * tun driver takes one frame per write. A full device queue (EAGAIN) parks the frames not yet
 * written in a bounded queue that drains when the fd turns writable.
 *
 * That is the whole path with `ioThreads: false` (the default with the virtio-net header). With
 * `ioThreads: true` (the default on plain frames) the addon also has a writer thread: writeBatch still writes a batch of one or two frames itself while the thread is
 * idle, and hands the thread larger ones (a copy, so the staging buffer is free again at once),
 * and every batch while the thread still holds one, so that frames keep their order. While the
 * thread is busy, the device is read when it finishes a batch rather than at every frame the kernel
 * answers. What JavaScript sees is the same: batches of frames in, batches out, frames kept staged
 * when the addon's send buffers are all in flight.
 *
 * With `vnetHeader: true` the device also carries a virtio-net header in front of every frame
 * (virtio-net.ts): the kernel then hands us TCP super-frames of up to 64 KB with checksums it
 * vouches for, and takes ours, so one system call moves up to 64 KB. Received frames come up
 * with a FrameOffload beside them; `send(frame, offload)` passes one down. Off by default: the
 * plain path is the one to read first.
 *
 *   const tap = TapDevice.open({ name: 'tap0', netns: 'demo' });
 *   tap.configureHost({ address: '10.0.0.1/24' });   // like: ip addr add 10.0.0.1/24 dev tap0; ip link set tap0 up
 *   for await (const frame of tap.frames()) console.log(formatEthernet(frame));
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import debugFactory from 'debug';
import { Counters } from './counters.ts';
import { formatEthernet } from './ethernet.ts';
import { hotPathLogging } from './hot-path-log.ts';
import { parseIpv4 } from './ipv4-address.ts';
import { BaseLink, type FrameOffload } from './link.ts';
import { MacAddress } from './mac.ts';
import {
  VIRTIO_NET_HEADER_LENGTH,
  VIRTIO_NET_HEADER_MRG_LENGTH,
  VirtioNetHeaderRepr,
  headerOfOffload,
  offloadOfHeader,
  type VirtioNetProblem,
} from './virtio-net.ts';

const log = debugFactory('tapstack:link');
/** `log.enabled` for the per-frame lines, read once per run (hot-path-log.ts). */
const logging = hotPathLogging(log);

/** Why opening or configuring a TAP device failed; the message says how to fix it. */
export type TapErrorCode =
  /** The native addon is not built (run `npm run build:native -w @tapstack/link`). */
  | 'ENOADDON'
  /** /dev/net/tun does not exist: the tun module is not loaded. */
  | 'ENOENT_TUN'
  /** Not root, or no CAP_NET_ADMIN (CAP_SYS_ADMIN too, to enter a namespace). */
  | 'EPERM'
  /** The interface name is taken (by another open TAP device, or by a device of another kind). */
  | 'EBUSY'
  /** The interface name is empty, too long (15 bytes at most) or has characters Linux refuses. */
  | 'EINVAL_NAME'
  /** The named network namespace does not exist (or its name is not valid). */
  | 'ENOENT_NETNS'
  /** An option is out of range (MTU, address). */
  | 'EINVAL_OPTION'
  /** The kernel refused configureHost (address, MTU, flags). */
  | 'ECONFIG'
  /** Anything else; the message has the system call and errno. */
  | 'EIO';

export class TapError extends Error {
  override readonly name = 'TapError';
  constructor(
    readonly code: TapErrorCode,
    message: string,
    /** The errno name from the kernel (`EBUSY`), when a system call failed. */
    readonly errno?: string,
    /** The system call (or step) that failed. */
    readonly syscall?: string,
  ) {
    super(message);
  }
}

export interface TapOptions {
  /** Interface name, at most 15 bytes (default `tap0`). `tap%d` lets the kernel pick a number. */
  name?: string;
  /** The stack's MAC on this link (default: a random locally administered one). */
  mac?: MacAddress;
  /** The stack's MTU: the largest IP datagram; frames up to mtu + 14 bytes (default 1500). */
  mtu?: number;
  /** Create the device inside this named network namespace (`ip netns add <name>`). */
  netns?: string;
  /** Frames parked while the device queue is full before new ones are dropped (default 1024). */
  txQueueCapacity?: number;
  /**
   * Frames a sender (TCP) should hand the device in one run of JavaScript before it lets the event
   * loop read what came back (Link.sendBurstLimit; default 256, 0: no limit). Each frame we write
   * makes the kernel answer at once, into tap0's queue towards us (txqueuelen, 1000 frames): a
   * sender that writes thousands of frames without reading fills that queue and the kernel drops
   * its own ACKs.
   */
  sendBurstLimit?: number;
  /**
   * Carry a virtio-net header in front of every frame (IFF_VNET_HDR) and turn on checksum and
   * TCP segmentation offload for IPv4 and IPv6 (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6):
   * super-frames of up to 64 KB both ways. Default false: plain frames, one per system call.
   */
  vnetHeader?: boolean;
  /** The header's length with `vnetHeader`: 10 (struct virtio_net_hdr, the default) or 12. */
  vnetHeaderLength?: 10 | 12;
  /**
   * Give the write(2)s of large batches to a writer thread of the addon, beside the JavaScript. The
   * tun driver takes one frame per system call and runs the kernel's receive path for it, so on the
   * plain path a bulk send's writes are a large part of the work; the thread runs them on another
   * core. Small batches while the thread is idle (a ping-pong's frame) are still written at once
   * on the main thread, and reading stays there: no thread wake-up on a round trip. Default: true
   * on plain frames, false with `vnetHeader` (64 KB per write(2): there the hand-offs cost more than
   * they saved; measured in docs/01-link.md). false: everything on the main thread, as the chapter
   * first explains it.
   */
  ioThreads?: boolean;
  /**
   * Open the device in NAPI mode (IFF_NAPI): each frame we write joins a queue that the kernel
   * polls as it polls a network card's receive ring, through GRO (generic receive offload), which
   * can merge consecutive TCP segments of one connection into one larger packet before the
   * kernel's IP and TCP see them. Default false (see docs/01-link.md for what it did here).
   */
  napi?: boolean;
  /**
   * With `napi`: the device's gro_flush_timeout in nanoseconds (/sys/class/net/<dev>/), how long
   * GRO may hold merged segments after a poll for more to come. 0 (the kernel's default) flushes
   * at the end of every poll, and a poll runs for every write(2), so nothing merges. Default: leave it.
   */
  groFlushTimeoutNs?: number;
}

export interface HostConfig {
  /** IPv4 address and prefix length for the kernel's side: `10.0.0.1/24` (no `/n` means /32). */
  address?: string;
  /** Bring the interface up (default true) or down (false). */
  up?: boolean;
  /** The kernel side's MTU (default: the device's `mtu`, so both ends agree). */
  mtu?: number;
}

/** Counters of the device itself, next to the Link's `counters`. */
export const TAP_COUNTERS = [
  /** Wake-ups that delivered frames; rx_frames / rx_batches is the mean batch size. */
  'rx_batches',
  /** Frames in the largest batch so far. */
  'rx_batch_max',
  'rx_read_errors',
  /** Calls into the addon that wrote staged frames; tx frames / tx_batches is the mean batch. */
  'tx_batches',
  /** Frames in the largest send batch so far. */
  'tx_batch_max',
  /**
   * With the writer thread (ioThreads): batches (and their frames) handed to the thread; the other
   * batches were written on the main thread (small ones while the writer was idle).
   */
  'tx_handoff_batches',
  'tx_handoff_frames',
  /** write(2) said EAGAIN: the frame (and those behind it) were queued until the device is writable. */
  'tx_eagain',
  'tx_queued',
  /** The tx queue was full: frame dropped. */
  'tx_dropped_queue_full',
  'tx_write_errors',
  // virtio-net header mode (vnetHeader: true) only
  /** TCP super-frames (gso_type TCPV4) read: each stands for several segments. */
  'rx_gso_frames',
  /** Frames whose transport checksum the kernel left partial (NEEDS_CSUM) or marked valid (DATA_VALID). */
  'rx_csum_partial',
  'rx_csum_valid',
  /** Dropped: a read shorter than the header, a gso_type we did not enable, gso_size 0, csum_start past the end. */
  'rx_vnet_truncated',
  'rx_vnet_unsupported_gso',
  'rx_vnet_bad_gso_size',
  'rx_vnet_bad_csum_start',
  /** Super-frames we wrote for the kernel to cut into segments, and frames whose checksum it finished. */
  'tx_gso_frames',
  'tx_csum_partial',
] as const;
export type TapCounterName = (typeof TAP_COUNTERS)[number];

interface NativeError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
  /** On a failure of the running device: the interface no longer exists (deleted, or its namespace with it). */
  deviceGone?: boolean;
}

/**
 * The native side of one open TAP device, as the addon hands it to `TapDevice`. Exported so that a
 * device can also be made from a handle opened some other way (`TapDevice.fromHandle`), which is
 * how the tests play a scripted device without a kernel.
 */
export interface TapHandle {
  readonly ifname: string;
  start(
    lengths: Uint32Array,
    onFrames: (buffer: ArrayBuffer, count: number) => void,
    onWritable: () => void,
    onError: (error: NativeError) => void,
    /** Read and write on threads of the addon (TapOptions.ioThreads); a handle may ignore it. */
    ioThreads?: boolean,
  ): void;
  /** Bytes written, or -errno. With `header` (virtio-net header mode) it goes in front, in the same write. */
  write(frame: Uint8Array, header?: Uint8Array): number;
  /**
   * Writes `count` frames that lie back to back in `frames` (lengths in `lengths`), one write(2)
   * each, in one call; returns how many got through (fewer than `count` when the device queue is
   * full: EAGAIN). Frames refused for another reason are skipped and counted in status[0], the
   * last errno in status[1]. Optional: a handle without it gets one `write` per frame, at once.
   */
  writeBatch?(frames: Uint8Array, lengths: Uint32Array, count: number, status: Int32Array): number;
  /**
   * With I/O threads: frames the writer thread could not write since the last writeBatch, added to
   * status[0] (the last errno in status[1]); close() asks once more after the writer stopped. Optional.
   */
  takeTxFailures?(status: Int32Array): void;
  /** With I/O threads: frames writeBatch would take now (room in the send buffers); -1 without. Optional. */
  txRoom?(): number;
  /** Reads what the device holds now and hands it to onFrames before returning (Link.receivePending). Optional. */
  readNow?(): void;
  wantWritable(on: boolean): void;
  /** address -1: leave; mtu -1: leave; up -1 leave, 0 down, 1 up. */
  configure(address: number, prefixLength: number, mtu: number, up: number): void;
  hostMac(): Uint8Array;
  ref(): void;
  unref(): void;
  close(): void;
}

interface NativeAddon {
  /** vnetHeaderLength 0: plain frames; 10 or 12: virtio-net header mode. */
  open(name: string, netns: string | null, vnetHeaderLength: number, napi?: boolean): TapHandle;
  readonly maxBatch: number;
}

const EAGAIN = 11;
/**
 * The send side's staging buffer: 512 KiB holds 256 full 1514-byte frames (the batch's frame
 * limit) or 7 super-frames of 64 KB; whichever fills first sends the batch.
 */
const TX_STAGING_BYTES = 512 * 1024;
const TX_STAGING_FRAMES = 256;
const DEFAULT_SEND_BURST_LIMIT = 256;
/**
 * TapOptions.ioThreads's default (measured in docs/01-link.md): the writer thread on plain frames,
 * where a bulk send is one write(2) per 1514 bytes; not with the virtio-net header, where one
 * write moves up to 64 KB and the hand-off cost more than it saved.
 */
function defaultIoThreads(vnetHeaderLength: number): boolean {
  return vnetHeaderLength === 0;
}

const VNET_PROBLEM_COUNTER: Record<VirtioNetProblem, TapCounterName> = {
  truncated: 'rx_vnet_truncated',
  unsupported_gso: 'rx_vnet_unsupported_gso',
  bad_gso_size: 'rx_vnet_bad_gso_size',
  bad_csum_start: 'rx_vnet_bad_csum_start',
};
/**
 * Writes one of the device's attributes in /sys/class/net/<dev>/ (gro_flush_timeout). sysfs shows
 * the devices of the namespace it was mounted in, not the writer's: with `netns` the write runs
 * under `ip netns exec`, which mounts the namespace's own. Either way the attribute is written
 * only if the directory's MAC address is our device's kernel side, so a same-named device
 * elsewhere is never touched.
 */
function setDeviceAttribute(handle: TapHandle, netns: string | undefined, attribute: 'gro_flush_timeout', value: string): void {
  const mac = MacAddress.fromBytes(handle.hostMac()).toString();
  const script = 'dir=/sys/class/net/$1; [ "$(cat "$dir/address")" = "$2" ] || { echo "$dir is not this device" >&2; exit 1; }; echo "$4" > "$dir/$3"';
  const args = ['-c', script, 'sh', handle.ifname, mac, attribute, value];
  if (netns === undefined) execFileSync('sh', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  else execFileSync('ip', ['netns', 'exec', netns, 'sh', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

const ADDON_PATH = '../build/Release/tap.node';
let addon: NativeAddon | undefined;

function loadAddon(): NativeAddon {
  if (addon) return addon;
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    return addon;
  } catch (err) {
    throw new TapError(
      'ENOADDON',
      `the TAP addon (packages/link/build/Release/tap.node) is not built or does not load: ${(err as Error).message}. ` +
        'Build it with `npm run build:native -w @tapstack/link` (needs python3, make and g++); `npm ci` builds it too.',
    );
  }
}

/** Linux's rule (dev_valid_name), a little stricter: 1-15 bytes of [A-Za-z0-9_.-], and `%d` once. */
export function checkInterfaceName(name: string): string | undefined {
  if (name.length === 0) return 'the interface name is empty';
  if (Buffer.byteLength(name) > 15) return `"${name}" is ${Buffer.byteLength(name)} bytes; Linux allows 15 at most (IFNAMSIZ - 1)`;
  if (name === '.' || name === '..') return `"${name}" is not a valid interface name`;
  const rest = name.replace('%d', '');
  if (!/^[A-Za-z0-9_.-]*$/.test(rest)) {
    return `"${name}" has characters not allowed in an interface name (use letters, digits, '-', '_', '.'; no '/', ':', spaces)`;
  }
  return undefined;
}

function tapError(err: NativeError, name: string, netns: string | undefined): TapError {
  const errno = err.code ?? 'EUNKNOWN';
  const syscall = err.syscall ?? '?';
  const where = netns ? ` in network namespace "${netns}"` : '';
  const detail = `(${syscall}: ${errno})`;
  if (syscall.startsWith('open(/run/netns') && errno === 'ENOENT') {
    return new TapError('ENOENT_NETNS', `network namespace "${netns}" does not exist ${detail}: create it with \`ip netns add ${netns}\``, errno, syscall);
  }
  if (errno === 'EPERM' || errno === 'EACCES') {
    const fix = netns
      ? 'run it as root (e.g. with sudo): entering a namespace needs CAP_SYS_ADMIN, creating the device CAP_NET_ADMIN'
      : 'run it as root (e.g. with sudo), or give node CAP_NET_ADMIN: sudo setcap cap_net_admin+ep "$(command -v node)"';
    return new TapError('EPERM', `opening TAP device "${name}"${where} is not permitted ${detail}: ${fix}`, errno, syscall);
  }
  if (syscall === 'open(/dev/net/tun)' && (errno === 'ENOENT' || errno === 'ENODEV' || errno === 'ENXIO')) {
    return new TapError(
      'ENOENT_TUN',
      `/dev/net/tun is missing ${detail}: load the tun module with \`sudo modprobe tun\` ` +
        '(in a container, pass the device in: docker run --device /dev/net/tun --cap-add NET_ADMIN ...)',
      errno,
      syscall,
    );
  }
  if (syscall === 'ioctl(TUNSETIFF)' && errno === 'EBUSY') {
    return new TapError(
      'EBUSY',
      `TAP device "${name}"${where} is busy: another process (or another TapDevice) has it open ${detail}. ` +
        `Close that one, or pick another name (tapstack: --tap tap1; in code: TapDevice.open({ name: 'tap1' }))`,
      errno,
      syscall,
    );
  }
  if (syscall === 'ioctl(TUNSETIFF)' && errno === 'EINVAL') {
    return new TapError(
      'EBUSY',
      `the name "${name}"${where} is taken by a device that is not a TAP device ${detail} ` +
        `(see \`ip -d link show ${name}\`): pick another name (tapstack: --tap tap1; in code: TapDevice.open({ name: 'tap1' }))`,
      errno,
      syscall,
    );
  }
  return new TapError('EIO', `opening TAP device "${name}"${where} failed: ${err.message}`, errno, syscall);
}

export class TapDevice extends BaseLink {
  readonly tapCounters = new Counters<TapCounterName>('tap', TAP_COUNTERS);
  private readonly rxBatches = this.tapCounters.counter('rx_batches');
  private readonly rxBatchMax = this.tapCounters.counter('rx_batch_max');
  /** The kernel's name for the device (`tap0`; the real number when opened as `tap%d`). */
  readonly ifname: string;
  /** The named network namespace the device lives in, if any. */
  readonly netns: string | undefined;
  /** The error that closed the device, if a read failed (device deleted, namespace gone). */
  failure: TapError | undefined;

  private readonly handle: TapHandle;
  private readonly lengths: Uint32Array;
  private readonly txCapacity: number;
  private txQueue: Uint8Array[] = [];
  private txHead = 0;
  private isRef = true;
  /** 0 for plain frames; 10 or 12 in virtio-net header mode. */
  readonly vnetHeaderLength: number;
  /** Whether the system calls run on the addon's threads (TapOptions.ioThreads). */
  readonly ioThreads: boolean;
  /** The header written in front of the next frame (vnet mode), reused for every write. */
  private readonly txHeader: Uint8Array;
  /** Staged frames (each behind its virtio-net header, in vnet mode), back to back, and their lengths. */
  private readonly txStaging: Uint8Array | undefined;
  private readonly txLengths = new Uint32Array(TX_STAGING_FRAMES);
  /**
   * writeBatch's report: frames refused (not EAGAIN), the last errno, and (with the writer thread)
   * the batches and frames it handed to the thread instead of writing them itself.
   */
  private readonly txStatus = new Int32Array(4);
  private txStaged = 0;
  private txStagedBytes = 0;
  private flushQueued = false;
  private readonly flushTask = (): void => {
    this.flushQueued = false;
    this.flush();
  };
  private readonly txBatches = this.tapCounters.counter('tx_batches');
  private readonly txBatchMax = this.tapCounters.counter('tx_batch_max');
  private readonly txHandoffBatches = this.tapCounters.counter('tx_handoff_batches');
  private readonly txHandoffFrames = this.tapCounters.counter('tx_handoff_frames');
  private readonly burstLimit: number;
  private readonly rxGsoFrames = this.tapCounters.counter('rx_gso_frames');
  private readonly rxCsumPartial = this.tapCounters.counter('rx_csum_partial');
  private readonly rxCsumValid = this.tapCounters.counter('rx_csum_valid');
  private readonly txGsoFrames = this.tapCounters.counter('tx_gso_frames');
  private readonly txCsumPartial = this.tapCounters.counter('tx_csum_partial');

  private constructor(
    handle: TapHandle,
    mac: MacAddress,
    mtu: number,
    netns: string | undefined,
    txCapacity: number,
    maxBatch: number,
    vnetHeaderLength: number,
    sendBurstLimit: number,
    ioThreads: boolean,
  ) {
    super(handle.ifname, mac, mtu);
    this.burstLimit = sendBurstLimit;
    this.txStaging = handle.writeBatch ? new Uint8Array(TX_STAGING_BYTES) : undefined;
    this.vnetHeaderLength = vnetHeaderLength;
    this.txHeader = new Uint8Array(vnetHeaderLength);
    this.handle = handle;
    this.ifname = handle.ifname;
    this.netns = netns;
    this.txCapacity = txCapacity;
    this.lengths = new Uint32Array(maxBatch);
    handle.start(
      this.lengths,
      (buffer, count) => this.onFrames(buffer, count),
      () => this.onWritable(),
      (error) => this.onDeviceError(error),
      ioThreads,
    );
    this.ioThreads = ioThreads;
  }

  /** Opens (creates) the device. Throws TapError with a message that names the fix. */
  /**
   * A device over a handle that is already open (a scripted one in tests, or one opened by other
   * means). `open` is the ordinary way; this skips the name checks and the system calls.
   */
  static fromHandle(
    handle: TapHandle,
    options: {
      mac?: MacAddress;
      mtu?: number;
      netns?: string;
      txQueueCapacity?: number;
      maxBatch?: number;
      vnetHeaderLength?: 0 | 10 | 12;
      sendBurstLimit?: number;
      ioThreads?: boolean;
    } = {},
  ): TapDevice {
    return new TapDevice(
      handle,
      options.mac ?? MacAddress.randomLocal(),
      options.mtu ?? 1500,
      options.netns,
      options.txQueueCapacity ?? 1024,
      options.maxBatch ?? 256,
      options.vnetHeaderLength ?? 0,
      options.sendBurstLimit ?? DEFAULT_SEND_BURST_LIMIT,
      options.ioThreads ?? false,
    );
  }

  static open(options: TapOptions = {}): TapDevice {
    const name = options.name ?? 'tap0';
    const mtu = options.mtu ?? 1500;
    const netns = options.netns;
    const nameProblem = checkInterfaceName(name);
    if (nameProblem) throw new TapError('EINVAL_NAME', `invalid TAP device name: ${nameProblem}`);
    if (netns !== undefined && (!/^[A-Za-z0-9_.@+-]+$/.test(netns) || netns === '.' || netns === '..' || netns.length > 200)) {
      throw new TapError('ENOENT_NETNS', `"${netns}" is not a valid network namespace name (as in \`ip netns add <name>\`)`);
    }
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
      throw new TapError('EINVAL_OPTION', `mtu ${mtu} is out of range: IPv4 needs at least 68 and a TAP device allows 65535 at most`);
    }
    const txCapacity = options.txQueueCapacity ?? 1024;
    if (!Number.isInteger(txCapacity) || txCapacity < 0) {
      throw new TapError('EINVAL_OPTION', `txQueueCapacity ${txCapacity} must be a whole number >= 0`);
    }
    const vnetHeaderLength = options.vnetHeader ? (options.vnetHeaderLength ?? VIRTIO_NET_HEADER_LENGTH) : 0;
    if (vnetHeaderLength !== 0 && vnetHeaderLength !== VIRTIO_NET_HEADER_LENGTH && vnetHeaderLength !== VIRTIO_NET_HEADER_MRG_LENGTH) {
      throw new TapError('EINVAL_OPTION', `vnetHeaderLength ${String(vnetHeaderLength)} must be 10 (struct virtio_net_hdr) or 12 (virtio_net_hdr_mrg_rxbuf)`);
    }
    const groFlushTimeoutNs = options.groFlushTimeoutNs;
    if (groFlushTimeoutNs !== undefined && (!Number.isInteger(groFlushTimeoutNs) || groFlushTimeoutNs < 0 || groFlushTimeoutNs > 1e9 || options.napi !== true)) {
      throw new TapError('EINVAL_OPTION', `groFlushTimeoutNs ${groFlushTimeoutNs} needs napi: true and a whole number of nanoseconds up to 1e9`);
    }
    const native = loadAddon();
    let handle: TapHandle;
    try {
      handle = native.open(name, netns ?? null, vnetHeaderLength, options.napi === true);
    } catch (err) {
      throw tapError(err as NativeError, name, netns);
    }
    const burst = options.sendBurstLimit ?? DEFAULT_SEND_BURST_LIMIT;
    if (!Number.isInteger(burst) || burst < 0) {
      handle.close();
      throw new TapError('EINVAL_OPTION', `sendBurstLimit ${burst} must be a whole number >= 0`);
    }
    if (groFlushTimeoutNs !== undefined) {
      try {
        setDeviceAttribute(handle, netns, 'gro_flush_timeout', String(groFlushTimeoutNs));
      } catch (err) {
        handle.close();
        throw new TapError('EINVAL_OPTION', `gro_flush_timeout of ${name}: ${(err as Error).message}`);
      }
    }
    const ioThreads = options.ioThreads ?? defaultIoThreads(vnetHeaderLength);
    const device = new TapDevice(handle, options.mac ?? MacAddress.randomLocal(), mtu, netns, txCapacity, native.maxBatch, vnetHeaderLength, burst, ioThreads);
    log('opened %s%s, mac %s, mtu %d%s', device.ifname, netns ? ` in netns ${netns}` : '', device.mac, mtu, vnetHeaderLength ? `, virtio-net header ${vnetHeaderLength} bytes` : '');
    return device;
  }

  /**
   * Configures the kernel's side of the device, inside its namespace: like
   * `ip link set tap0 mtu 1500 && ip addr add 10.0.0.1/24 dev tap0 && ip link set tap0 up`.
   * Calling it again replaces the address.
   */
  configureHost(config: HostConfig = {}): void {
    if (this.closed) throw new TapError('ECONFIG', `TAP device ${this.ifname} is closed`);
    let address = -1;
    let prefixLength = 32;
    if (config.address !== undefined) {
      const [ip, prefix, extra] = config.address.split('/');
      if (extra !== undefined || (prefix !== undefined && !/^(\d|[12]\d|3[0-2])$/.test(prefix))) {
        throw new TapError('EINVAL_OPTION', `invalid address "${config.address}": expected an IPv4 address with a prefix length, like 10.0.0.1/24`);
      }
      try {
        address = parseIpv4(ip ?? '');
      } catch (err) {
        throw new TapError('EINVAL_OPTION', (err as Error).message);
      }
      if (prefix !== undefined) prefixLength = Number(prefix);
    }
    const mtu = config.mtu ?? this.mtu;
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
      throw new TapError('EINVAL_OPTION', `host mtu ${mtu} is out of range (68-65535)`);
    }
    const up = config.up === false ? 0 : 1;
    try {
      this.handle.configure(address, prefixLength, mtu, up);
    } catch (err) {
      const e = err as NativeError;
      const code = e.code === 'EPERM' || e.code === 'EACCES' ? 'EPERM' : 'ECONFIG';
      const fix = code === 'EPERM' ? ': configuring an interface needs root or CAP_NET_ADMIN' : '';
      throw new TapError(code, `configuring ${this.ifname} (${JSON.stringify(config)}) failed: ${e.message}${fix}`, e.code, e.syscall);
    }
    log('configured host side of %s: %o', this.ifname, config);
  }

  /** The MAC of the kernel's side of the device (what the kernel puts in its ARP requests). */
  get hostMac(): MacAddress {
    if (this.closed) throw new TapError('EIO', `TAP device ${this.ifname} is closed`);
    return MacAddress.fromBytes(this.handle.hostMac());
  }

  /** Keep the process alive while the device is open (the default), like a listening socket. */
  ref(): this {
    this.isRef = true;
    this.handle.ref();
    return this;
  }

  /** Let the process exit even though the device is open. */
  unref(): this {
    this.isRef = false;
    this.handle.unref();
    return this;
  }

  get hasRef(): boolean {
    return this.isRef && !this.closed;
  }

  /** In virtio-net header mode the kernel takes TCP/IPv4 super-frames up to 64 KB. */
  override get gsoMaxSize(): number {
    return this.vnetHeaderLength > 0 ? 65535 : 0;
  }

  /** Frames waiting for the device to become writable. */
  get txQueueLength(): number {
    return this.txQueue.length - this.txHead;
  }

  /** `send` copies every frame (into the staging buffer, or a parked copy) before it returns. */
  get copiesFrames(): boolean {
    return true;
  }

  /**
   * See TapOptions.sendBurstLimit. With I/O threads also no more than the addon's send buffers
   * can take now (at least 1): the writer thread may be slower than the JavaScript that stages
   * (each write(2) runs the kernel's receive path), and a sender that went on regardless would
   * fill the parking queue and lose frames to tx_dropped_queue_full. TCP reads this once per run.
   */
  override get sendBurstLimit(): number {
    const room = this.ioThreads && !this.closed ? (this.handle.txRoom?.() ?? -1) : -1;
    if (room < 0) return this.burstLimit;
    const left = Math.max(1, room - this.txStaged - this.txQueueLength);
    return this.burstLimit > 0 ? Math.min(this.burstLimit, left) : left;
  }

  /** Frames staged for the next batch write. */
  get txStagedFrames(): number {
    return this.txStaged;
  }

  protected transmit(frame: Uint8Array, offload?: FrameOffload): boolean {
    let header: Uint8Array | undefined;
    if (this.vnetHeaderLength > 0) {
      header = this.txHeader;
      VirtioNetHeaderRepr.emit(headerOfOffload(offload), header);
      if (offload !== undefined && offload.gso !== 'none') this.txGsoFrames.value++;
      if (offload?.checksum === 'partial') this.txCsumPartial.value++;
    }
    if (logging()) log('tx %s', formatEthernet(frame));
    const staging = this.txStaging;
    if (staging === undefined) return this.writeNow(frame, header);
    const length = this.vnetHeaderLength + frame.length;
    if (this.txStaged === TX_STAGING_FRAMES || this.txStagedBytes + length > staging.length) this.flush();
    // Frames parked after EAGAIN go first: behind them, not around them. (With I/O threads a
    // flush the addon had no room for keeps its frames staged: a frame that does not fit beside
    // them is parked behind them.)
    if (this.txHead < this.txQueue.length || this.txStaged === TX_STAGING_FRAMES || this.txStagedBytes + length > staging.length) {
      return this.enqueue(frame, header);
    }
    // The one copy on the way out: the caller may reuse its buffer once send() returns.
    if (header) staging.set(header, this.txStagedBytes);
    staging.set(frame, this.txStagedBytes + this.vnetHeaderLength);
    this.txLengths[this.txStaged++] = length;
    this.txStagedBytes += length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushTask);
    }
    return true;
  }

  /**
   * Writes the staged frames: one call into the addon, one write(2) each. Runs by itself at the
   * end of the run of JavaScript that staged them; the dispatcher calls it at the end of each
   * received batch; anyone may call it earlier. What the device does not take now (EAGAIN) is
   * parked in the queue, in order.
   */
  override flush(): void {
    const count = this.txStaged;
    if (count === 0) return;
    const staging = this.txStaging!;
    const stagedBytes = this.txStagedBytes;
    this.txStaged = 0;
    this.txStagedBytes = 0;
    const status = this.txStatus;
    const done = this.handle.writeBatch!(staging, this.txLengths, count, status);
    this.txBatches.value++;
    if (count > this.txBatchMax.value) this.txBatchMax.value = count;
    this.countWriteFailures();
    if (done === 0 && this.ioThreads) {
      // All the addon's send buffers are in flight: the frames stay staged, as they are, until
      // it frees one (onWritable), instead of a copy each in the parking queue.
      this.txStaged = count;
      this.txStagedBytes = stagedBytes;
      this.tapCounters.inc('tx_eagain');
      this.handle.wantWritable(true);
      return;
    }
    if (done < count) {
      this.tapCounters.inc('tx_eagain');
      let offset = 0;
      for (let i = 0; i < done; i++) offset += this.txLengths[i]!;
      for (let i = done; i < count; i++) {
        const length = this.txLengths[i]!;
        this.park(staging.slice(offset, offset + length));
        offset += length;
      }
      this.handle.wantWritable(true);
    }
  }

  /** See Link.receivePending: one read of the device now, delivered before this returns. */
  receivePending(): void {
    if (!this.closed) this.handle.readNow?.();
  }

  /** The unbatched path (a handle without writeBatch): one write now. */
  private writeNow(frame: Uint8Array, header: Uint8Array | undefined): boolean {
    if (this.txHead < this.txQueue.length) return this.enqueue(frame, header);
    const n = this.handle.write(frame, header);
    if (n >= 0) return true;
    if (n === -EAGAIN) {
      this.tapCounters.inc('tx_eagain');
      const queued = this.enqueue(frame, header);
      this.handle.wantWritable(true);
      return queued;
    }
    this.tapCounters.inc('tx_write_errors');
    if (log.enabled) log('write on %s failed: errno %d', this.ifname, -n);
    return false;
  }

  private enqueue(frame: Uint8Array, header: Uint8Array | undefined): boolean {
    // The caller may reuse its buffer once send() returns: keep a copy (also of a Buffer), with
    // the virtio-net header, if any, joined in front so the queue holds what write(2) will take.
    if (this.txQueue.length - this.txHead >= this.txCapacity) {
      this.tapCounters.inc('tx_dropped_queue_full');
      return false; // before copying: a full queue costs no allocation
    }
    let copy: Uint8Array;
    if (header) {
      copy = new Uint8Array(header.length + frame.length);
      copy.set(header);
      copy.set(frame, header.length);
    } else {
      copy = new Uint8Array(frame);
    }
    return this.park(copy);
  }

  /** Parks one whole write (a copy the queue owns) until the device is writable; false when the queue is full. */
  private park(write: Uint8Array): boolean {
    if (this.txQueue.length - this.txHead >= this.txCapacity) {
      this.tapCounters.inc('tx_dropped_queue_full');
      return false;
    }
    this.txQueue.push(write);
    this.tapCounters.inc('tx_queued');
    return true;
  }

  private onWritable(): void {
    if (this.txStaged > 0) {
      this.flush(); // frames kept staged while the addon's send buffers were full (I/O threads)
      if (this.txStaged > 0) return;
    }
    if (this.txStaging !== undefined) return this.drainParked(this.txStaging);
    while (this.txHead < this.txQueue.length) {
      const frame = this.txQueue[this.txHead]!;
      const n = this.handle.write(frame);
      if (n === -EAGAIN) return; // still full: wait for the next writable wake-up
      if (n < 0) this.tapCounters.inc('tx_write_errors');
      this.txQueue[this.txHead++] = undefined as unknown as Uint8Array;
    }
    this.txQueue = [];
    this.txHead = 0;
    this.handle.wantWritable(false);
  }

  /**
   * The parked frames, in order, through writeBatch: staged again a batch at a time (with I/O
   * threads a single write() could only become a batch of one frame). Stops where the device (or
   * the writer thread's ring) takes no more; the next onWritable goes on from there.
   */
  private drainParked(staging: Uint8Array): void {
    while (this.txHead < this.txQueue.length) {
      let count = 0;
      let bytes = 0;
      for (let i = this.txHead; i < this.txQueue.length && count < TX_STAGING_FRAMES; i++) {
        const frame = this.txQueue[i]!;
        if (bytes + frame.length > staging.length) break;
        staging.set(frame, bytes);
        this.txLengths[count++] = frame.length;
        bytes += frame.length;
      }
      const status = this.txStatus;
      const done = this.handle.writeBatch!(staging, this.txLengths, count, status);
      this.txBatches.value++;
      this.countWriteFailures();
      for (let i = 0; i < done; i++) this.txQueue[this.txHead++] = undefined as unknown as Uint8Array;
      if (done < count) return; // still full: wait for the next writable wake-up
    }
    this.txQueue = [];
    this.txHead = 0;
    this.handle.wantWritable(false);
  }

  /** Adds the frames writeBatch (or the writer thread) reported refused to tx_write_errors, and the hand-offs. */
  private countWriteFailures(): void {
    const status = this.txStatus;
    if (status[2]! > 0) {
      this.txHandoffBatches.value += status[2]!;
      this.txHandoffFrames.value += status[3]!;
      status[2] = 0;
      status[3] = 0;
    }
    if (status[0]! > 0) {
      this.tapCounters.inc('tx_write_errors', status[0]!);
      if (log.enabled) log('write on %s failed for %d frame(s): errno %d', this.ifname, status[0], status[1]);
      status[0] = 0;
    }
  }

  private onFrames(buffer: ArrayBuffer, count: number): void {
    this.rxBatches.value++;
    if (count > this.rxBatchMax.value) this.rxBatchMax.value = count;
    if (this.vnetHeaderLength > 0) return this.onVnetFrames(buffer, count);
    const frames = new Array<Uint8Array>(count);
    const lengths = this.lengths;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const length = lengths[i]!;
      frames[i] = new Uint8Array(buffer, offset, length);
      offset += length;
    }
    if (logging()) for (const f of frames) log('rx %s', formatEthernet(f));
    this.deliver(frames);
  }

  /** The same in virtio-net header mode: each read is a header, then the frame; the header becomes a FrameOffload. */
  private onVnetFrames(buffer: ArrayBuffer, count: number): void {
    const frames: Uint8Array[] = [];
    const offloads: (FrameOffload | undefined)[] = [];
    const lengths = this.lengths;
    const headerLength = this.vnetHeaderLength;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const length = lengths[i]!;
      const read = new Uint8Array(buffer, offset, length);
      offset += length;
      const parsed = length >= headerLength ? VirtioNetHeaderRepr.parse(read) : undefined;
      if (!parsed?.ok) {
        this.tapCounters.inc('rx_vnet_truncated');
        continue;
      }
      const frame = read.subarray(headerLength);
      const offload = offloadOfHeader(parsed.value, frame.length);
      if (!offload.ok) {
        this.tapCounters.inc(VNET_PROBLEM_COUNTER[offload.reason]);
        continue;
      }
      const o = offload.value;
      if (o) {
        if (o.gso !== 'none') this.rxGsoFrames.value++;
        if (o.checksum === 'partial') this.rxCsumPartial.value++;
        else if (o.checksum === 'valid') this.rxCsumValid.value++;
      }
      frames.push(frame);
      offloads.push(o);
    }
    if (logging()) for (const f of frames) log('rx %s', formatEthernet(f));
    this.deliver(frames, offloads);
  }

  private onDeviceError(error: NativeError): void {
    this.tapCounters.inc('rx_read_errors');
    const where = this.netns ? ` in network namespace ${this.netns}` : '';
    this.failure = new TapError(
      'EIO',
      error.deviceGone
        ? `TAP device ${this.ifname}${where} was deleted (ip link del ${this.ifname}, or its namespace removed) and is closed: ${error.message}`
        : `TAP device ${this.ifname}${where} failed and was closed: ${error.message} (was the device or its namespace deleted?)`,
      error.code,
      error.syscall,
    );
    log('%s', this.failure.message);
    this.close();
  }

  protected release(): void {
    this.flush(); // what was sent before close() goes out (a RST, the last ACK)
    this.handle.close(); // with I/O threads: after the writer wrote what it holds, and stopped
    this.handle.takeTxFailures?.(this.txStatus);
    this.countWriteFailures();
    this.txQueue = [];
    this.txHead = 0;
    log('closed %s', this.ifname);
  }
}
