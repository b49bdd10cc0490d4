export * from './neighbour-table.ts';
