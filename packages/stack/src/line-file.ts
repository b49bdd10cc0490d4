/**
 * A text file written a line at a time, buffered: `--tcp-log` makes a line for every ACK of a
 * bulk transfer (an RTT sample, a cwnd step), and a write() system call for each would cost more
 * than the segment. Lines are kept until 64 KiB have gathered, or half a second has passed, or the
 * file is closed, then written at once, synchronously (what was written is on disk when write
 * returns, as the pcap writer does). A write error (a full disk) stops the file, reported once; the
 * caller's work goes on.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

const FLUSH_BYTES = 64 * 1024;
const FLUSH_MS = 500;

export class LineFile {
  private fd: number | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;

  /** Creates (or truncates) `path` at once, so a file that cannot be written fails here. */
  constructor(
    readonly path: string,
    private readonly onError: (error: Error) => void = () => {},
  ) {
    this.fd = openSync(path, 'w');
  }

  write(text: string): void {
    if (this.fd === undefined) return;
    this.pending.push(text);
    this.pendingBytes += text.length;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.fd === undefined || this.pending.length === 0) return;
    const bytes = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    this.pendingBytes = 0;
    try {
      let done = 0;
      while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done);
    } catch (err) {
      this.stop();
      this.onError(err as Error);
    }
  }

  close(): void {
    this.flush();
    this.stop();
  }

  private stop(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      /* closing after a failed write may fail too */
    }
    this.fd = undefined;
    this.pending = [];
  }
}
