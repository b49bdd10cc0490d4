export * from './packet.ts';
export * from './ndisc-option.ts';
export * from './ndisc.ts';
export * from './mld.ts';
export * from './format.ts';
export * from './layer.ts';
export * from './ping6-client.ts';
