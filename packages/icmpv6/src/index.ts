export * from './packet.ts';
export * from './format.ts';
