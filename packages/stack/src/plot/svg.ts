/**
 * The little SVG both graphs share: linear scales, "nice" axis ticks (steps of 1, 2 or 5 times a
 * power of ten, as gnuplot and d3 choose them), axes with labels, a legend, and text escaping.
 * Plain strings, no dependencies: an SVG is XML a browser, Wireshark's users and GitHub render.
 */

/** Escapes the five characters XML gives a meaning to. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A number for a coordinate: one decimal is a tenth of a pixel, enough. */
export function px(value: number): string {
  return String(Math.round(value * 10) / 10);
}

/** Maps a domain [d0, d1] onto a range [r0, r1] (r1 < r0 for a y axis that grows upwards). */
export class LinearScale {
  constructor(
    readonly d0: number,
    readonly d1: number,
    readonly r0: number,
    readonly r1: number,
  ) {}

  at(value: number): number {
    const span = this.d1 - this.d0 || 1;
    return this.r0 + ((value - this.d0) / span) * (this.r1 - this.r0);
  }
}

/** About `count` round tick values covering [min, max]: multiples of 1, 2 or 5 times a power of ten. */
export function niceTicks(min: number, max: number, count = 6): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max <= min) return [min];
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  // Rounded to the step's precision, so 0.30000000000000004 prints as 0.3.
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toFixed(digits)));
  return ticks;
}

/** Bytes for an axis: 0, 500, 1.5k, 300k, 2.5M (SI thousands, like tcptrace's labels). */
export function formatBytes(value: number): string {
  const a = Math.abs(value);
  if (a >= 1e9) return `${trim(value / 1e9)}G`;
  if (a >= 1e6) return `${trim(value / 1e6)}M`;
  if (a >= 1e3) return `${trim(value / 1e3)}k`;
  return trim(value);
}

function trim(value: number): string {
  return String(Number(value.toFixed(3)));
}

export interface PlotArea {
  /** Left, top, right and bottom edges of the plotting rectangle, in pixels. */
  readonly left: number;
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
}

/** One axis: its scale, where the ticks go, its title and how a tick value prints. */
export interface Axis {
  readonly scale: LinearScale;
  readonly ticks: number[];
  readonly label: string;
  readonly format: (v: number) => string;
}

/** The time axis both graphs draw along the bottom: seconds, about 8 ticks. */
export function timeAxis(scale: LinearScale, start: number, end: number): Axis {
  return { scale, ticks: niceTicks(start, end, 8), label: 'time (s)', format: (v) => String(v) };
}

/** Grid lines, tick labels and the axis titles of one x axis and a left (and maybe a right) y axis. */
export function axes(area: PlotArea, x: Axis, y: Axis, right?: Axis): string {
  const out: string[] = [];
  out.push(`<rect class="frame" x="${px(area.left)}" y="${px(area.top)}" width="${px(area.right - area.left)}" height="${px(area.bottom - area.top)}"/>`);
  for (const t of x.ticks) {
    const at = px(x.scale.at(t));
    out.push(`<line class="grid" x1="${at}" y1="${px(area.top)}" x2="${at}" y2="${px(area.bottom)}"/>`);
    out.push(`<text class="tick" x="${at}" y="${px(area.bottom + 16)}" text-anchor="middle">${escapeXml(x.format(t))}</text>`);
  }
  for (const t of y.ticks) {
    const at = px(y.scale.at(t));
    out.push(`<line class="grid" x1="${px(area.left)}" y1="${at}" x2="${px(area.right)}" y2="${at}"/>`);
    out.push(`<text class="tick" x="${px(area.left - 6)}" y="${at}" text-anchor="end" dominant-baseline="middle">${escapeXml(y.format(t))}</text>`);
  }
  if (right) {
    for (const t of right.ticks) {
      const at = px(right.scale.at(t));
      out.push(`<text class="tick" x="${px(area.right + 6)}" y="${at}" dominant-baseline="middle">${escapeXml(right.format(t))}</text>`);
    }
    const cy = px((area.top + area.bottom) / 2);
    out.push(`<text class="axis-label" x="${px(area.right + 52)}" y="${cy}" text-anchor="middle" transform="rotate(90 ${px(area.right + 52)} ${cy})">${escapeXml(right.label)}</text>`);
  }
  out.push(`<text class="axis-label" x="${px((area.left + area.right) / 2)}" y="${px(area.bottom + 36)}" text-anchor="middle">${escapeXml(x.label)}</text>`);
  const cy = px((area.top + area.bottom) / 2);
  out.push(`<text class="axis-label" x="${px(area.left - 62)}" y="${cy}" text-anchor="middle" transform="rotate(-90 ${px(area.left - 62)} ${cy})">${escapeXml(y.label)}</text>`);
  return out.join('\n');
}

/** A graph's two top lines: its title, and a note under it with what the graph holds. */
export function heading(area: PlotArea, title: string, note: string): string {
  return `<text class="title" x="${px(area.left)}" y="18">${escapeXml(title)}</text>\n<text class="note" x="${px(area.left)}" y="34">${escapeXml(note)}</text>`;
}

/**
 * Opens a group clipped to the plotting rectangle (close it with `</g>`): the data lines are
 * drawn whole and the clip cuts them at the edges, so a zoomed range needs no trimming.
 */
export function clippedGroup(area: PlotArea, id: string): string {
  return (
    `<clipPath id="${id}"><rect x="${px(area.left)}" y="${px(area.top)}" width="${px(area.right - area.left)}" height="${px(area.bottom - area.top)}"/></clipPath>\n` +
    `<g clip-path="url(#${id})">`
  );
}

/**
 * A stair line through the points: a value holds until the next point, then the line goes
 * straight up (or down) to it; an undefined value lifts the pen. With `extendTo`, the last value
 * runs on to that x (it is still in force at the right edge).
 */
export function stepPath(className: string, points: readonly (readonly [number, number | undefined])[], extendTo?: number): string {
  const d: string[] = [];
  let last: number | undefined;
  for (const [x, y] of points) {
    if (y === undefined) {
      last = undefined;
      continue;
    }
    if (last === undefined) d.push(`M${px(x)} ${px(y)}`);
    else d.push(`H${px(x)}V${px(y)}`);
    last = y;
  }
  if (d.length === 0) return '';
  if (extendTo !== undefined) d.push(`H${px(extendTo)}`);
  return `<path class="${className}" d="${d.join('')}"/>`;
}

/** One legend entry: a short sample of the line drawn with `className`'s style, and its name. */
export interface LegendEntry {
  readonly className: string;
  readonly label: string;
}

/**
 * A row of legend entries starting at (x, y). The samples carry `legend-CLASS`, not the class
 * itself, so counting a class in the SVG counts only the marks of the data.
 */
export function legend(x: number, y: number, entries: readonly LegendEntry[]): string {
  const out: string[] = [];
  let at = x;
  for (const e of entries) {
    out.push(`<line class="legend-${e.className}" x1="${px(at)}" y1="${px(y)}" x2="${px(at + 18)}" y2="${px(y)}"/>`);
    out.push(`<text class="legend" x="${px(at + 23)}" y="${px(y)}" dominant-baseline="middle">${escapeXml(e.label)}</text>`);
    at += 32 + e.label.length * 6.2;
  }
  return out.join('\n');
}

/** Wraps graphs stacked one under another in one SVG document, with one style sheet for all. */
export function svgDocument(width: number, graphs: readonly { height: number; body: string }[], style: string): string {
  const height = graphs.reduce((h, g) => h + g.height, 0) || 40;
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<style>${BASE_STYLE}${style}</style>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  let y = 0;
  for (const g of graphs) {
    out.push(`<g transform="translate(0 ${y})">`, g.body, `</g>`);
    y += g.height;
  }
  if (graphs.length === 0) out.push(`<text x="10" y="24">no data</text>`);
  out.push(`</svg>`, '');
  return out.join('\n');
}

const BASE_STYLE =
  '.frame{fill:none;stroke:#444}.grid{stroke:#e4e4e4}.tick{fill:#333}.axis-label{fill:#111;font-size:12px}' +
  '.title{fill:#111;font-size:13px;font-weight:bold}.note{fill:#555}.legend{fill:#222}';
