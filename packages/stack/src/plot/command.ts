/**
 * `tapstack plot`: a capture's connections as time-sequence graphs, or a `--tcp-log` file's
 * connections as cwnd/ssthresh/srtt graphs; the SVG goes to stdout, one line per connection to
 * stderr (what was drawn, with its counts), so `tapstack plot run.pcap > seq.svg` says what is in
 * the picture.
 */
import { readFileSync } from 'node:fs';
import { PcapFormatError, readCapture } from '@tapstack/link';
import { readTcpLog, tcpLogSvg } from './tcp-log-chart.ts';
import { dataDirection, tcpSeries, type ConnectionSeries } from './tcp-series.ts';
import { timeSequenceSvg } from './time-sequence.ts';

export interface PlotCommand {
  /** A pcap or pcapng file (time-sequence graphs) or a --tcp-log file (cwnd graphs). */
  readonly source: { readonly kind: 'pcap' | 'tcp-log'; readonly path: string };
  /** Draw only connection N (1-based, as listed on stderr); default all. */
  readonly connection?: number;
  /** Draw only this stretch, seconds since each connection's start [from, to]. */
  readonly timeRange?: readonly [number, number];
}

export interface PlotOutput {
  write(text: string): void;
}

/** Runs the command; returns the exit code (0 drawn, 1 nothing to draw or an unreadable file). */
export function runPlot(command: PlotCommand, stdout: PlotOutput, stderr: PlotOutput): number {
  let bytes: Buffer;
  try {
    bytes = readFileSync(command.source.path);
  } catch (err) {
    stderr.write(`tapstack plot: ${command.source.path}: ${(err as Error).message}\n`);
    return 1;
  }
  return command.source.kind === 'pcap' ? plotCapture(bytes, command, stdout, stderr) : plotTcpLog(bytes.toString('utf8'), command, stdout, stderr);
}

function plotCapture(bytes: Uint8Array, command: PlotCommand, stdout: PlotOutput, stderr: PlotOutput): number {
  const path = command.source.path;
  let records;
  try {
    // A capture still being written ends in the middle of a record: draw what is there.
    records = readCapture(bytes, { partial: true, onTruncated: (e) => stderr.write(`tapstack plot: ${path}: ${e.message} (still being written?); drawing the records before it\n`) });
  } catch (err) {
    if (!(err instanceof PcapFormatError)) throw err;
    stderr.write(`tapstack plot: ${path}: ${err.message}\n`);
    return 1;
  }
  const capture = tcpSeries(records);
  const all = capture.connections;
  if (all.length === 0) {
    stderr.write(`tapstack plot: ${path}: no TCP over IPv4 in its ${records.length} frames\n`);
    return 1;
  }
  let chosen: readonly ConnectionSeries[];
  if (command.connection !== undefined) {
    const c = all[command.connection - 1];
    if (!c) {
      stderr.write(`tapstack plot: --conn ${command.connection}: ${path} has ${all.length} TCP connection${all.length === 1 ? '' : 's'} (1-${all.length})\n`);
      return 1;
    }
    chosen = [c];
  } else {
    // Connections that carried no data (a refused SYN, a bare handshake) have nothing to draw.
    chosen = all.filter((c) => c.forward.bytes + c.reverse.bytes > 0);
    if (chosen.length === 0) chosen = all;
  }
  for (const c of all) {
    const d = dataDirection(c);
    const drawn = chosen.includes(c) ? '' : ' (no data, not drawn)';
    stderr.write(
      `connection ${c.index}: ${d.from} > ${d.to}, ${d.bytes} data bytes in ${d.segments.length} segments, ` +
        `${d.retransmissions.length} retransmitted, ${d.sacks.length} ACKs with SACK blocks${drawn}\n`,
    );
  }
  const skipped = Object.entries(capture.skipped);
  if (skipped.length > 0) stderr.write(`frames skipped: ${skipped.map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
  stdout.write(
    timeSequenceSvg(
      chosen.map((c) => ({
        title: `connection ${c.index} of ${path.split('/').pop()}, from ${new Date(c.startUs / 1000).toISOString()}`,
        series: dataDirection(c),
        ...(command.timeRange ? { timeRange: command.timeRange } : {}),
      })),
    ),
  );
  return 0;
}

function plotTcpLog(text: string, command: PlotCommand, stdout: PlotOutput, stderr: PlotOutput): number {
  const path = command.source.path;
  const log = readTcpLog(text);
  if (log.badLines > 0) stderr.write(`tapstack plot: ${path}: ${log.badLines} lines are not tcp-log records (lines ${log.badLineNumbers.join(', ')}${log.badLines > log.badLineNumbers.length ? ', ...' : ''}), skipped\n`);
  const all = log.connections;
  if (all.length === 0) {
    stderr.write(`tapstack plot: ${path}: no tcp-log records\n`);
    return 1;
  }
  const chosen = command.connection === undefined ? all : all.filter((c) => c.index === command.connection);
  if (chosen.length === 0) {
    stderr.write(`tapstack plot: --conn ${command.connection}: ${path} has ${all.length} connection${all.length === 1 ? '' : 's'} (1-${all.length})\n`);
    return 1;
  }
  for (const c of all) {
    const retransmits = c.events.filter((e) => e.event === 'retransmit').length;
    stderr.write(`connection ${c.index}: ${c.local} > ${c.remote}, ${c.events.length} events, ${retransmits} retransmissions\n`);
  }
  stdout.write(tcpLogSvg(chosen, command.timeRange ? { timeRange: command.timeRange } : {}));
  return 0;
}
