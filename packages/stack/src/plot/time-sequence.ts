/**
 * The time-sequence graph (tcptrace's, Wireshark's "Stevens" graph) of one direction of a
 * connection, drawn from a DirectionSeries as an SVG:
 *
 *   - each data segment is a vertical bar from seq to seq + length at the time it was seen
 *     (class "segment"); a retransmitted one is red with an X on top (class "retransmission"),
 *     one mark each;
 *   - the ACK line (class "ack") steps up to each acknowledgement number the receiver sent:
 *     the gap between the bars and the line is data in flight;
 *   - the receive-window line (class "window") is the right edge the receiver offered,
 *     ack + (window << scale): the sender may not go above it;
 *   - SACK blocks (class "sack") are short bars beside the ACK that carried them: data that
 *     arrived above a hole.
 *
 * Slow start shows as bars climbing ever faster, a loss as a red bar below the rising edge with
 * SACK bars above it, a zero window as the bars stopping under a flat window line.
 */
import { axes, clippedGroup, formatBytes, heading, legend, LinearScale, niceTicks, px, stepPath, svgDocument, timeAxis, type PlotArea } from './svg.ts';
import type { DirectionSeries } from './tcp-series.ts';

export interface TimeSequenceGraph {
  /** The heading above the graph. */
  readonly title: string;
  readonly series: DirectionSeries;
  /** Only this stretch of time, seconds [from, to] (default: all of it). */
  readonly timeRange?: readonly [number, number];
}

export interface TimeSequenceOptions {
  /** Pixels (default 960 x 540 per graph). */
  readonly width?: number;
  readonly height?: number;
}

const STYLE =
  '.segment{stroke:#1f3f8f;stroke-width:1.2}.retransmission{stroke:#d62728;stroke-width:2.2}' +
  '.ack{fill:none;stroke:#2ca02c;stroke-width:1.2}.window{fill:none;stroke:#c9a100;stroke-width:1.2}' +
  '.sack{stroke:#9467bd;stroke-width:2}' +
  '.legend-segment{stroke:#1f3f8f;stroke-width:2}.legend-retransmission{stroke:#d62728;stroke-width:3}' +
  '.legend-ack{stroke:#2ca02c;stroke-width:2}.legend-window{stroke:#c9a100;stroke-width:2}.legend-sack{stroke:#9467bd;stroke-width:3}';

/** An SVG with one time-sequence graph per entry, stacked. */
export function timeSequenceSvg(graphs: readonly TimeSequenceGraph[], options: TimeSequenceOptions = {}): string {
  const width = options.width ?? 960;
  const height = options.height ?? 540;
  return svgDocument(
    width,
    graphs.map((g, i) => ({ height, body: graphBody(g, i + 1, width, height) })),
    STYLE,
  );
}

function graphBody(graph: TimeSequenceGraph, n: number, width: number, height: number): string {
  const s = graph.series;
  const area: PlotArea = { left: 84, top: 64, right: width - 24, bottom: height - 48 };
  const range = graph.timeRange;
  const inRange = (t: number): boolean => !range || (t >= range[0] && t <= range[1]);
  const segments = s.segments.filter((seg) => inRange(seg.time));
  const sacks = s.sacks.filter((sack) => inRange(sack.time));
  const acks = s.acks.filter((a) => inRange(a.time));
  if (range) {
    // The ACK in force when the window opens starts the stairs at its left edge.
    const before = s.acks.findLast((a) => a.time < range[0]);
    if (before) acks.unshift({ ...before, time: range[0] });
  }
  // Time from 0 (or the range's start) to the last event; sequence from the lowest to the highest byte sent or acknowledged.
  const tStart = range ? range[0] : 0;
  let tMax = tStart;
  let yMin = Infinity;
  let dataTop = -Infinity;
  for (const seg of segments) {
    tMax = Math.max(tMax, seg.time);
    yMin = Math.min(yMin, seg.seq);
    dataTop = Math.max(dataTop, seg.seq + seg.length);
  }
  // SACK blocks report data the receiver holds: it was sent, so it belongs in the picture.
  for (const sack of sacks) for (const b of sack.blocks) dataTop = Math.max(dataTop, b.right);
  let windowTop = -Infinity;
  for (const a of acks) {
    tMax = Math.max(tMax, a.time);
    yMin = Math.min(yMin, a.ack);
    dataTop = Math.max(dataTop, a.ack);
    windowTop = Math.max(windowTop, a.windowEdge);
  }
  if (!Number.isFinite(yMin)) yMin = 0;
  if (!Number.isFinite(dataTop)) dataTop = yMin + 1;
  // The window edge is often far above the data (a 3 MB window on a 300 kB transfer); show it
  // when it is near, and let it leave the top of the graph (clipped) when it is not.
  const yMax = Math.max(dataTop, Math.min(windowTop, yMin + (dataTop - yMin) * 1.25)) || yMin + 1;
  const tEnd = range ? range[1] : tMax > 0 ? tMax * 1.02 : 1;
  const x = new LinearScale(tStart, tEnd > tStart ? tEnd : tStart + 1, area.left, area.right);
  const y = new LinearScale(yMin, yMax === yMin ? yMin + 1 : yMax, area.bottom, area.top);
  const clipId = `time-sequence-${n}`;

  const out: string[] = [];
  out.push(
    heading(
      area,
      graph.title,
      `${s.from} > ${s.to}: ${s.bytes} data bytes in ${s.segments.length} segments, ${s.retransmissions.length} retransmitted, ${s.sacks.length} ACKs with SACK blocks` +
        (s.synSeen ? `, window scale ${s.windowScale}` : ', SYN not captured (absolute window, numbers relative to the first segment)') +
        (range ? `; showing ${range[0]} to ${range[1]} s` : ''),
    ),
  );
  out.push(
    legend(area.left, 50, [
      { className: 'segment', label: 'data segment' },
      { className: 'retransmission', label: 'retransmission' },
      { className: 'ack', label: 'ACK' },
      { className: 'window', label: 'receive window edge' },
      { className: 'sack', label: 'SACK block' },
    ]),
  );
  out.push(
    axes(
      area,
      timeAxis(x, tStart, tEnd),
      { scale: y, ticks: niceTicks(yMin, yMax, 7), label: 'relative sequence number (bytes)', format: formatBytes },
    ),
  );
  out.push(clippedGroup(area, clipId));
  out.push(stepPath('window', acks.map((a) => [x.at(a.time), y.at(a.windowEdge)]), area.right));
  out.push(stepPath('ack', acks.map((a) => [x.at(a.time), y.at(a.ack)]), area.right));
  for (const sack of sacks) {
    const at = px(x.at(sack.time) + 2);
    for (const b of sack.blocks) out.push(`<line class="sack" x1="${at}" y1="${px(y.at(b.left))}" x2="${at}" y2="${px(y.at(b.right))}"/>`);
  }
  for (const seg of segments) {
    // An I-beam: a bar with short caps, so back-to-back segments stay apart.
    const cx = x.at(seg.time);
    const y0 = y.at(seg.seq);
    const y1 = y.at(seg.seq + seg.length);
    if (seg.retransmission) {
      // The same bar in red, with an X over its top so a one-segment resend shows at any scale.
      out.push(`<path class="retransmission" d="M${px(cx)} ${px(y0)}V${px(y1)}M${px(cx - 4)} ${px(y1 - 4)}l8 8m0 -8l-8 8"/>`);
    } else {
      out.push(`<path class="segment" d="M${px(cx)} ${px(y0)}V${px(y1)}M${px(cx - 2)} ${px(y1)}h4"/>`);
    }
  }
  out.push('</g>');
  return out.join('\n');
}

