/**
 * The sender's own view of a transfer, from a `--tcp-log` file (packages/tcp/src/event-log.ts):
 * cwnd, ssthresh and the bytes in flight against time on the left axis, the smoothed RTT on the
 * right one; each retransmission a red tick at the foot of the graph, each retransmission
 * timeout a dashed red line, each fast recovery a shaded band, each undo of a recovery that
 * proved spurious a green triangle on the cwnd line where the window went back up (with a line
 * from where it stood). Slow start is the steep climb of cwnd, a loss the drop to ssthresh (fast
 * recovery) or to one segment (timeout).
 *
 * Reading is separate from drawing (`readTcpLog`, then `tcpLogSvg`), and reading never throws
 * on what it reads: lines that are not records are counted and skipped.
 */
import type { TcpLogEvent } from '@tapstack/tcp';
import { axes, clippedGroup, escapeXml, formatBytes, heading, legend, LinearScale, niceTicks, px, stepPath, svgDocument, timeAxis, type PlotArea } from './svg.ts';

export interface TcpLogConnection {
  /** 1-based, in order of first appearance (--conn N). */
  readonly index: number;
  readonly local: string;
  readonly remote: string;
  readonly events: readonly TcpLogEvent[];
}

export interface TcpLog {
  readonly connections: readonly TcpLogConnection[];
  /** Line numbers (1-based) of lines that were not records, at most 20 kept; `badLines` counts them all. */
  readonly badLineNumbers: readonly number[];
  readonly badLines: number;
}

const KINDS = new Set(['open', 'state', 'rtt', 'cwnd', 'retransmit', 'timeout', 'recovery-enter', 'recovery-exit', 'undo']);

function isRecord(v: unknown): v is TcpLogEvent {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  const num = (k: string): boolean => typeof r[k] === 'number' && Number.isFinite(r[k]);
  const numOrNull = (k: string): boolean => r[k] === null || num(k);
  return (
    num('t') && typeof r.event === 'string' && KINDS.has(r.event) && typeof r.local === 'string' && typeof r.remote === 'string' &&
    typeof r.state === 'string' && num('cwnd') && numOrNull('ssthresh') && numOrNull('srtt') && numOrNull('rttvar') && num('rto') && num('inflight') &&
    // an undo line carries its kind and the window before and after (the marker is drawn from them)
    (r.event !== 'undo' || (typeof r.undo === 'string' && num('cwndBefore') && num('cwndAfter')))
  );
}

/** The records of a log file's text, grouped by connection (a new 'open' on a 4-tuple starts a new one). */
export function readTcpLog(text: string): TcpLog {
  const connections: { index: number; local: string; remote: string; events: TcpLogEvent[] }[] = [];
  const current = new Map<string, (typeof connections)[number]>();
  const badLineNumbers: number[] = [];
  let badLines = 0;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    if (!isRecord(value)) {
      badLines++;
      if (badLineNumbers.length < 20) badLineNumbers.push(i + 1);
      return;
    }
    const key = `${value.local} ${value.remote}`;
    let c = current.get(key);
    if (!c || value.event === 'open') {
      c = { index: connections.length + 1, local: value.local, remote: value.remote, events: [] };
      connections.push(c);
      current.set(key, c);
    }
    c.events.push(value);
  });
  return { connections, badLineNumbers, badLines };
}

const STYLE =
  '.cwnd{fill:none;stroke:#1f3f8f;stroke-width:1.6}.ssthresh{fill:none;stroke:#ff7f0e;stroke-width:1.4;stroke-dasharray:6 3}' +
  '.inflight{fill:none;stroke:#8c8c8c;stroke-width:1}.srtt{fill:none;stroke:#2ca02c;stroke-width:1.2}' +
  '.retransmission{stroke:#d62728;stroke-width:1.5}.timeout{stroke:#d62728;stroke-width:1.2;stroke-dasharray:4 3}.recovery{fill:#d62728;fill-opacity:0.08}' +
  '.legend-cwnd{stroke:#1f3f8f;stroke-width:2}.legend-ssthresh{stroke:#ff7f0e;stroke-width:2;stroke-dasharray:6 3}.legend-inflight{stroke:#8c8c8c;stroke-width:2}' +
  '.legend-srtt{stroke:#2ca02c;stroke-width:2}.legend-retransmission{stroke:#d62728;stroke-width:3}.legend-timeout{stroke:#d62728;stroke-width:2;stroke-dasharray:4 3}' +
  '.legend-recovery{stroke:#d62728;stroke-opacity:0.25;stroke-width:8}' +
  '.undo{fill:#2ca02c;stroke:#1f3f8f;stroke-width:0.8}.undo-jump{stroke:#2ca02c;stroke-width:1.5;stroke-dasharray:2 2}.legend-undo{stroke:#2ca02c;stroke-width:6}';

/** An SVG with one graph per connection, stacked. */
export function tcpLogSvg(connections: readonly TcpLogConnection[], options: { width?: number; height?: number; timeRange?: readonly [number, number] } = {}): string {
  const width = options.width ?? 960;
  const height = options.height ?? 500;
  return svgDocument(
    width,
    connections.map((c, i) => ({ height, body: graphBody(c, i + 1, width, height, options.timeRange) })),
    STYLE,
  );
}

/** Times are seconds since the connection's first event; `range` limits the graph to [from, to] of them. */
function graphBody(c: TcpLogConnection, n: number, width: number, height: number, range: readonly [number, number] | undefined): string {
  const area: PlotArea = { left: 84, top: 64, right: width - 84, bottom: height - 48 };
  const events = c.events;
  const t0 = events[0]?.t ?? 0;
  const inRange = (e: TcpLogEvent): boolean => !range || (e.t - t0 >= range[0] && e.t - t0 <= range[1]);
  // The lines are drawn whole and clipped; the scales fit what is visible, with the values in
  // force at the range's start (the last event before it).
  const visible = events.filter(inRange);
  const before = range ? events.findLast((e) => e.t - t0 < range[0]) : undefined;
  if (before) visible.unshift(before);
  // Loops, not Math.max(...array): a long log would overflow the call stack.
  let last = 1e-3;
  let bytesMax = 1;
  let rttMax = 1;
  for (const e of visible) {
    last = Math.max(last, e.t - t0);
    bytesMax = Math.max(bytesMax, e.cwnd, e.inflight, e.ssthresh ?? 0);
    rttMax = Math.max(rttMax, e.srtt ?? 0);
  }
  const tStart = range ? range[0] : 0;
  const tEnd = range ? Math.max(range[1], tStart + 1e-3) : last * 1.02;
  const bytesTop = bytesMax * 1.08;
  const rttTop = rttMax * 1.15;
  const x = new LinearScale(tStart, tEnd, area.left, area.right);
  const y = new LinearScale(0, bytesTop, area.bottom, area.top);
  const yRtt = new LinearScale(0, rttTop, area.bottom, area.top);
  const retransmits = events.filter((e) => e.event === 'retransmit' && inRange(e));
  const timeouts = events.filter((e) => e.event === 'timeout' && inRange(e));
  const undos = events.filter((e) => e.event === 'undo' && inRange(e));
  const clipId = `tcp-log-${n}`;

  const out: string[] = [];
  out.push(
    heading(
      area,
      `connection ${c.index}: ${c.local} > ${c.remote}`,
      `${visible.length} events ${range ? `from ${range[0]} to ${range[1]} s` : `over ${last.toFixed(3)} s`}: ${retransmits.length} retransmissions, ${timeouts.length} timeouts, ` +
        `${visible.filter((e) => e.event === 'recovery-enter').length} fast recoveries, ${undos.length} undone, ${visible.filter((e) => e.event === 'rtt').length} RTT samples`,
    ),
  );
  out.push(
    legend(area.left, 50, [
      { className: 'cwnd', label: 'cwnd' },
      { className: 'ssthresh', label: 'ssthresh' },
      { className: 'inflight', label: 'in flight' },
      { className: 'srtt', label: 'srtt (right axis)' },
      { className: 'retransmission', label: 'retransmission' },
      { className: 'timeout', label: 'timeout' },
      { className: 'recovery', label: 'fast recovery' },
      { className: 'undo', label: 'undo' },
    ]),
  );
  out.push(
    axes(
      area,
      timeAxis(x, tStart, tEnd),
      { scale: y, ticks: niceTicks(0, bytesTop, 6), label: 'bytes', format: formatBytes },
      { scale: yRtt, ticks: niceTicks(0, rttTop, 6), label: 'smoothed RTT (ms)', format: (v) => String(v) },
    ),
  );
  out.push(clippedGroup(area, clipId));
  // Fast recovery: from each entry to its exit (or the end of the log).
  let enteredAt: number | undefined;
  for (const e of events) {
    if (e.event === 'recovery-enter') enteredAt = e.t - t0;
    if (e.event === 'recovery-exit' && enteredAt !== undefined) {
      out.push(band(x, area, enteredAt, e.t - t0));
      enteredAt = undefined;
    }
  }
  if (enteredAt !== undefined) out.push(band(x, area, enteredAt, tEnd));
  out.push(stepPath('inflight', events.map((e) => [x.at(e.t - t0), y.at(e.inflight)])));
  out.push(stepPath('ssthresh', events.map((e) => [x.at(e.t - t0), e.ssthresh === null ? undefined : y.at(e.ssthresh)])));
  out.push(stepPath('cwnd', events.map((e) => [x.at(e.t - t0), y.at(e.cwnd)])));
  out.push(linePath('srtt', events.filter((e) => e.srtt !== null).map((e) => [x.at(e.t - t0), yRtt.at(e.srtt!)])));
  for (const e of timeouts) {
    const at = px(x.at(e.t - t0));
    out.push(`<line class="timeout" x1="${at}" y1="${px(area.top)}" x2="${at}" y2="${px(area.bottom)}"/>`);
  }
  for (const e of retransmits) {
    const at = px(x.at(e.t - t0));
    out.push(`<line class="retransmission" x1="${at}" y1="${px(area.bottom)}" x2="${at}" y2="${px(area.bottom - 12)}"/>`);
  }
  // An undo: from the window before it up to the window after it, a triangle at the top, its kind on hover.
  for (const e of undos) out.push(undoMark(x.at(e.t - t0), y, e));
  out.push('</g>');
  return out.join('\n');
}

function undoMark(at: number, y: LinearScale, e: TcpLogEvent): string {
  const after = y.at(e.cwndAfter ?? e.cwnd);
  const before = y.at(e.cwndBefore ?? e.cwnd);
  const title = `<title>${escapeXml(`undo (${e.undo ?? '?'}): cwnd ${e.cwndBefore ?? '?'} to ${e.cwndAfter ?? e.cwnd}`)}</title>`;
  return (
    `<line class="undo-jump" x1="${px(at)}" y1="${px(before)}" x2="${px(at)}" y2="${px(after)}"/>` +
    `<path class="undo" d="M${px(at)} ${px(after - 5)}L${px(at + 5)} ${px(after + 4)}L${px(at - 5)} ${px(after + 4)}Z">${title}</path>`
  );
}

function band(x: LinearScale, area: PlotArea, from: number, to: number): string {
  const x0 = x.at(from);
  return `<rect class="recovery" x="${px(x0)}" y="${px(area.top)}" width="${px(Math.max(1, x.at(to) - x0))}" height="${px(area.bottom - area.top)}"/>`;
}

function linePath(className: string, points: readonly (readonly [number, number])[]): string {
  if (points.length === 0) return '';
  return `<path class="${className}" d="M${points.map(([a, b]) => `${px(a)} ${px(b)}`).join('L')}"/>`;
}
