export * from './header.ts';
export * from './checksum.ts';
