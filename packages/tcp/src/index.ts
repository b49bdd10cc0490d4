export * from './seq.ts';
export * from './header.ts';
export * from './errors.ts';
export * from './reset.ts';
export * from './socket.ts';
