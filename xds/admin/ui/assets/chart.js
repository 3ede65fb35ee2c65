// An inline SVG chart of shadow-read comparisons: reads compared per point
// as bars, the mismatch rate as a line, the promotion threshold dashed.
// Drawn from numbers only; a data table beside it says the same in text.
import { h, s, pct } from './dom.js';

const W = 640, H = 220, L = 56, R = 16, T = 14, B = 34;

export function mismatchChart(series, threshold) {
  const pts = (series || []).map((p) => ({
    at: new Date(p.at).getTime(),
    reads: Number(p.reads_compared) || 0,
    mism: Number(p.mismatches) || 0,
  })).filter((p) => !Number.isNaN(p.at)).sort((a, b) => a.at - b.at);
  for (const p of pts) p.rate = p.reads > 0 ? p.mism / p.reads : 0;
  const last = pts[pts.length - 1];
  const summary = pts.length
    ? `${pts.length} points; latest mismatch rate ${pct(last.rate)} over ${last.reads} compared reads; threshold ${pct(threshold)}.`
    : 'No comparisons yet.';
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-title chart-desc', id: 'mismatch-chart' },
    s('title', { id: 'chart-title' }, 'Mismatch rate of shadow reads over time'),
    s('desc', { id: 'chart-desc' }, summary));
  const x0 = L, x1 = W - R, y0 = H - B, y1 = T;
  svg.append(s('line', { class: 'axis', x1: x0, y1: y0, x2: x1, y2: y0 }), s('line', { class: 'axis', x1: x0, y1: y0, x2: x0, y2: y1 }));
  if (pts.length) {
    const tMin = pts[0].at, tMax = Math.max(last.at, tMin + 1);
    const maxRate = Math.max(threshold * 1.5 || 0, ...pts.map((p) => p.rate), 0.001);
    const maxReads = Math.max(...pts.map((p) => p.reads), 1);
    const X = (t) => x0 + ((t - tMin) / (tMax - tMin)) * (x1 - x0);
    const Y = (r) => y0 - (r / maxRate) * (y0 - y1);
    for (const f of [0.25, 0.5, 0.75, 1]) {
      const y = Y(maxRate * f);
      svg.append(s('line', { class: 'grid', x1: x0, y1: y, x2: x1, y2: y }),
        s('text', { x: x0 - 6, y: y + 4, 'text-anchor': 'end' }, pct(maxRate * f)));
    }
    const bw = Math.max(2, Math.min(14, (x1 - x0) / pts.length - 2));
    for (const p of pts) {
      const hgt = (p.reads / maxReads) * (y0 - y1) * 0.5;
      svg.append(s('rect', { class: 'reads', x: X(p.at) - bw / 2, y: y0 - hgt, width: bw, height: hgt }));
    }
    if (threshold > 0) svg.append(s('line', { class: 'threshold', x1: x0, y1: Y(threshold), x2: x1, y2: Y(threshold) }));
    svg.append(s('polyline', { class: 'rate', points: pts.map((p) => `${X(p.at).toFixed(1)},${Y(p.rate).toFixed(1)}`).join(' ') }));
    svg.append(s('text', { x: x0, y: H - 10 }, new Date(tMin).toLocaleTimeString()),
      s('text', { x: x1, y: H - 10, 'text-anchor': 'end' }, new Date(tMax).toLocaleTimeString()));
  } else {
    svg.append(s('text', { x: (x0 + x1) / 2, y: (y0 + y1) / 2, 'text-anchor': 'middle' }, 'No shadow-read comparisons yet'));
  }
  return h('figure', { class: 'chart' }, svg,
    h('figcaption', { class: 'legend' }, h('span', { class: 'l-rate' }, 'mismatch rate'),
      h('span', { class: 'l-threshold' }, 'promotion threshold'), h('span', { class: 'l-reads' }, 'reads compared (relative)')),
    h('details', null, h('summary', null, 'Chart data as a table'),
      h('table', null, h('thead', null, h('tr', null, ['Time', 'Reads compared', 'Mismatches', 'Mismatch rate'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, pts.map((p) => h('tr', null, h('td', null, new Date(p.at).toLocaleTimeString()), h('td', { class: 'num' }, p.reads),
          h('td', { class: 'num' }, p.mism), h('td', { class: 'num' }, pct(p.rate))))))));
}
