/**
 * The floor of node plus our TAP addon: the same batched reads and synchronous writes tapstack
 * uses (TapDevice), but no stack: an echo request is turned into its reply in place and written
 * back, an ARP request for 10.0.0.2 answered. No validation: a measuring stick, not a stack.
 * Run by `npm run bench -- --floors` inside a namespace of its own; it creates tap0 there.
 */
import { TapDevice } from '@tapstack/link';

const tap = TapDevice.open({ name: 'tap0' });
const mac = tap.mac.bytes;
tap.setReceiver((frames) => {
  for (let k = 0; k < frames.length; k++) {
    const f = frames[k]!;
    if (f.length < 42) continue;
    if (f[12] === 0x08 && f[13] === 0x06 && f[21] === 1 && f[38] === 10 && f[39] === 0 && f[40] === 0 && f[41] === 2) {
      const r = new Uint8Array(42);
      r.set(f.subarray(6, 12), 0);
      r.set(mac, 6);
      r[12] = 0x08;
      r[13] = 0x06;
      r.set(f.subarray(14, 20), 14);
      r[21] = 2;
      r.set(mac, 22);
      r.set(f.subarray(38, 42), 28);
      r.set(f.subarray(22, 32), 32);
      tap.send(r);
    } else if (f[12] === 0x08 && f[13] === 0x00 && f[23] === 1 && f[34] === 8) {
      for (let i = 0; i < 6; i++) {
        const t = f[i]!;
        f[i] = f[i + 6]!;
        f[i + 6] = t;
      }
      for (let i = 26; i < 30; i++) {
        const t = f[i]!;
        f[i] = f[i + 4]!;
        f[i + 4] = t;
      }
      f[34] = 0;
      let sum = ((f[36]! << 8) | f[37]!) + 0x0800;
      sum = (sum & 0xffff) + (sum >>> 16);
      f[36] = sum >>> 8;
      f[37] = sum & 0xff;
      tap.send(f);
    }
  }
});
process.on('SIGTERM', () => {
  tap.close();
  process.exit(0);
});
process.stdout.write('ready\n');
