export * from './packet.ts';
export * from './rate-limit.ts';
export * from './ping-session.ts';
export * from './ping.ts';
export * from './ping-client.ts';
export * from './layer.ts';
export * from './echo-options.ts';
