export * from './fragment-table.ts';
