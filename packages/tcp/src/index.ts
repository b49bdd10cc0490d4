export * from './seq.ts';
export * from './header.ts';
