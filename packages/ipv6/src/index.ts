export * from './cidr.ts';
export * from './addresses.ts';
export * from './routes.ts';
