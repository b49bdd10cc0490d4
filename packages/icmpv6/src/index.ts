export * from './layer.ts';
export * from './ping6-client.ts';
