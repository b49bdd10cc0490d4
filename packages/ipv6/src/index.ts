export * from './header.ts';
export * from './checksum.ts';
export * from './extension.ts';
export * from './cidr.ts';
export * from './addresses.ts';
export * from './routes.ts';
export * from './layer.ts';
