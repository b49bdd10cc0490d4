export * from './header.ts';
export * from './checksum.ts';
export * from './extension.ts';
export * from './fragment.ts';
export * from './reassembly.ts';
