/**
 * What the e2e tests compare downloads with: the body `GET /bytes/N` of our `--http` service
 * sends (byte i is i mod 251), written here on its own rather than taken from the service, so a
 * service that sends the wrong bytes fails the test; and a SHA-256 to compare large bodies by.
 */
import { createHash } from 'node:crypto';

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The N bytes of `GET /bytes/N`: byte i is i mod 251. */
export function expectedBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}
