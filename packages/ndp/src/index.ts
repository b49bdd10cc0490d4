export * from './messages.ts';
export * from './ndp.ts';
