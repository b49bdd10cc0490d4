export * from './header.ts';
export * from './checksum.ts';
export * from './extension.ts';
