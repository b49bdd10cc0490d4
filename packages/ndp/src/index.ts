export * from './messages.ts';
export * from './ndp.ts';
export * from './mld-host.ts';
