export * from './stack.ts';
export { tcpSeries, dataDirection, type CaptureSeries, type ConnectionSeries, type DirectionSeries, type SeriesSegment, type SeriesAck, type SeriesSack } from './plot/tcp-series.ts';
export { timeSequenceSvg, type TimeSequenceGraph, type TimeSequenceOptions } from './plot/time-sequence.ts';
export { readTcpLog, tcpLogSvg, type TcpLog, type TcpLogConnection } from './plot/tcp-log-chart.ts';
