export * from './udp.ts';
export * from './errors.ts';
export * from './ports.ts';
export * from './socket.ts';
export * from './layer.ts';
