/**
 * `npm run demo` (needs root): the whole thing in a private network namespace.
 * Creates a namespace, starts `tapstack up` inside it, pings it with the real `ping` and `arping`,
 * prints the results and the stack's neighbour table and counters, stops the stack with Ctrl-C
 * (SIGINT), and removes the namespace, also when something fails. Exits non-zero on any failure,
 * so CI uses it as a smoke test.
 */
import { fileURLToPath } from 'node:url';
import { Netns } from './support/netns.ts';

const tapstackBin = fileURLToPath(new URL('../packages/stack/bin/tapstack.js', import.meta.url));

function waitFor(getText: () => string, pattern: RegExp, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (pattern.test(getText())) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(poll);
        reject(new Error(`timed out waiting for ${what}; output so far:\n${getText()}`));
      }
    }, 50);
  });
}

async function demo(): Promise<void> {
  const ns = Netns.create('demo');
  let failed = false;
  try {
    console.log(`# namespace ${ns.name} created; starting tapstack inside it`);
    const child = ns.spawn(process.execPath, [tapstackBin, 'up', '--tap', 'tap0', '--ip', '10.0.0.2/24', '--host-ip', '10.0.0.1/24'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    // 'close', not 'exit': the exit can come before the last of its output (the counters) is read
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await waitFor(() => out, /tapstack is up/, 15_000, 'tapstack up');
    process.stdout.write(out);

    // -w 20: wait for every reply, also one that comes late on a busy machine (ping alone gives
    // up one interval after its last request; test/support/ping.ts); it exits 0 once 3 came
    console.log('\n$ ping -c 3 -w 20 -i 0.2 10.0.0.2');
    const ping = await ns.run('ping', ['-c', '3', '-w', '20', '-i', '0.2', '10.0.0.2'], 40_000);
    process.stdout.write(ping.stdout + ping.stderr);
    const answered = [...ping.stdout.matchAll(/ icmp_seq=(\d+) /g)].map((m) => Number(m[1]));
    if (ping.status !== 0 || ![1, 2, 3].every((seq) => answered.includes(seq))) throw new Error('ping did not get every reply');

    console.log('$ arping -c 2 -I tap0 10.0.0.2');
    const arping = await ns.run('arping', ['-c', '2', '-w', '5', '-I', 'tap0', '10.0.0.2']);
    process.stdout.write(arping.stdout + arping.stderr);
    if (arping.status !== 0 || !/Received 2 response/.test(arping.stdout)) throw new Error('arping did not get its replies');

    console.log("$ ip neigh show dev tap0   (the kernel's view of us)");
    process.stdout.write(ns.exec('ip', ['neigh', 'show', 'dev', 'tap0']));

    console.log("\n# the stack's own neighbour table and counters (typed `neigh` and `stats` on its stdin)");
    const mark = out.length;
    child.stdin!.write('neigh\nstats\n');
    await waitFor(() => out.slice(mark), /ipv4\.|icmp\./, 5_000, 'the stack to print its tables');
    await new Promise((r) => setTimeout(r, 200));
    process.stdout.write(out.slice(mark));

    console.log('\n# Ctrl-C (SIGINT) stops the stack');
    const beforeStop = out.length;
    child.kill('SIGINT');
    const code = await exited;
    process.stdout.write(out.slice(beforeStop));
    if (code !== 0) throw new Error(`tapstack exited with ${code} after SIGINT`);
    const links = ns.exec('ip', ['-o', 'link', 'show']);
    if (/tap0/.test(links)) throw new Error('tap0 still exists after tapstack stopped');
    console.log('tapstack exited 0 and tap0 is gone');
  } catch (err) {
    failed = true;
    console.error(`demo failed: ${(err as Error).message}`);
  } finally {
    ns.destroy();
    console.log(`# namespace ${ns.name} removed`);
  }
  if (failed) process.exit(1);
}

await demo();
