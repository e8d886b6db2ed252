// Drawing: spectra as SVG (wavelength in Å, flux in 1e-17 erg s⁻¹ cm⁻² Å⁻¹, spectral
// lines marked at the object's redshift) and the embedding map as a canvas scatter.

const SVG = 'http://www.w3.org/2000/svg';

/** Main galaxy lines: rest-frame vacuum wavelengths, Å. */
export const LINES = [
  { name: '[OII]', rest: [3727.1, 3729.9], kind: 'emission' },
  { name: 'Ca K', rest: [3934.8], kind: 'absorption' },
  { name: 'Ca H', rest: [3969.6], kind: 'absorption' },
  { name: 'Hβ', rest: [4862.7], kind: 'emission' },
  { name: '[OIII]', rest: [4960.3, 5008.2], kind: 'emission' },
  { name: 'Mg b', rest: [5176.7], kind: 'absorption' },
  { name: 'Na D', rest: [5895.6], kind: 'absorption' },
  { name: '[NII]', rest: [6549.9, 6585.3], kind: 'emission' },
  { name: 'Hα', rest: [6564.6], kind: 'emission' },
  { name: '[SII]', rest: [6718.3, 6732.7], kind: 'emission' },
];

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** "Nice" tick values covering [lo, hi] (about `n` of them). */
export function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

function quantile(sorted, q) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(q * (sorted.length - 1))))];
}

/**
 * Draws a spectrum into `host` (replacing its content).
 * spec: {wavelength: [Å], flux: [...], flux_unit}; z: redshift or null; title: text.
 */
export function drawSpectrum(host, spec, z, title) {
  host.replaceChildren();
  const W = 560;
  const H = 260;
  const m = { l: 58, r: 12, t: 26, b: 40 };
  const svg = el('svg', {
    viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'spectrum-svg',
    'aria-label': `${title}: flux against observed wavelength${z != null ? `, lines marked at z = ${z.toFixed(4)}` : ''}`,
  });
  const wave = spec.wavelength;
  const flux = spec.flux;
  const finite = flux.filter(Number.isFinite).sort((a, b) => a - b);
  // Robust limits: a few hot pixels must not flatten the spectrum.
  let lo = quantile(finite, 0.005);
  let hi = quantile(finite, 0.995);
  const padY = (hi - lo) * 0.08 || 1;
  lo -= padY; hi += padY;
  const x0 = wave[0];
  const x1 = wave[wave.length - 1];
  const sx = (x) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y) => H - m.b - ((Math.min(hi, Math.max(lo, y)) - lo) / (hi - lo)) * (H - m.t - m.b);
  svg.append(el('text', { x: m.l, y: 16, class: 'plot-title' }, title));
  // Axes and ticks.
  const axis = el('g', { class: 'axis' });
  axis.append(el('rect', { x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, class: 'frame' }));
  for (const t of ticks(x0, x1, 6)) {
    axis.append(el('line', { x1: sx(t), x2: sx(t), y1: H - m.b, y2: H - m.b + 4 }));
    axis.append(el('text', { x: sx(t), y: H - m.b + 15, 'text-anchor': 'middle' }, String(t)));
  }
  for (const t of ticks(lo, hi, 4)) {
    axis.append(el('line', { x1: m.l - 4, x2: m.l, y1: sy(t), y2: sy(t) }));
    axis.append(el('text', { x: m.l - 6, y: sy(t) + 4, 'text-anchor': 'end' }, String(t)));
  }
  axis.append(el('text', { x: (m.l + W - m.r) / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-label' },
    'Observed wavelength (Å, vacuum)'));
  axis.append(el('text', {
    x: 12, y: (m.t + H - m.b) / 2, 'text-anchor': 'middle', class: 'axis-label',
    transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`,
  }, 'Flux (10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹)'));
  svg.append(axis);
  // Lines at the redshift, labels staggered so neighbours do not overlap.
  if (z != null && Number.isFinite(z)) {
    const g = el('g', { class: 'lines' });
    let row = 0;
    let lastX = -1e9;
    for (const line of LINES) {
      const obs = line.rest.map((r) => r * (1 + z)).filter((w) => w >= x0 && w <= x1);
      if (!obs.length) continue;
      for (const w of obs) {
        g.append(el('line', { x1: sx(w), x2: sx(w), y1: m.t, y2: H - m.b, class: `line-${line.kind}` }));
      }
      const x = sx(obs[0]);
      row = x - lastX < 34 ? (row + 1) % 3 : 0;
      lastX = x;
      const label = el('text', { x: x + 2, y: m.t + 10 + row * 10, class: `label-${line.kind}` }, line.name);
      label.append(el('title', {}, `${line.name} ${line.kind}, rest ${line.rest.join(' / ')} Å, observed ${obs.map((w) => w.toFixed(1)).join(' / ')} Å`));
      g.append(label);
    }
    svg.append(g);
  }
  let d = '';
  for (let i = 0; i < wave.length; i += 1) {
    if (!Number.isFinite(flux[i])) continue;
    d += `${d ? 'L' : 'M'}${sx(wave[i]).toFixed(1)},${sy(flux[i]).toFixed(1)}`;
  }
  svg.append(el('path', { d, class: 'flux' }));
  host.append(svg);
  return svg;
}

/** Colour for t in [0, 1] (a perceptually ordered blue → yellow ramp). */
export function ramp(t) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = stops[i].map((v, j) => Math.round(v + (stops[i + 1][j] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/**
 * Scatter of the embedding map on `canvas`. map: the /map response. marks: {query, results: Set}.
 * Returns {pick(x, y) → id or null, legend: [{label, color}] or {min, max}}.
 */
export function drawMap(canvas, map, marks = {}) {
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 480;
  const cssH = canvas.clientHeight || 360;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  const pad = 10;
  const [xmin, xmax] = [Math.min(...map.x), Math.max(...map.x)];
  const [ymin, ymax] = [Math.min(...map.y), Math.max(...map.y)];
  const px = (v) => pad + ((v - xmin) / (xmax - xmin || 1)) * (cssW - 2 * pad);
  const py = (v) => cssH - pad - ((v - ymin) / (ymax - ymin || 1)) * (cssH - 2 * pad);
  const vals = map.values || [];
  const numeric = vals.filter((v) => typeof v === 'number' && Number.isFinite(v));
  let colour = () => '#5b6b8c';
  let legend = null;
  if (numeric.length) {
    const s = numeric.slice().sort((a, b) => a - b);
    const lo = quantile(s, 0.02);
    const hi = quantile(s, 0.98);
    colour = (v) => (typeof v === 'number' ? ramp((v - lo) / (hi - lo || 1)) : '#bbb');
    legend = { min: lo, max: hi };
  } else if (vals.some((v) => typeof v === 'string')) {
    const labels = [...new Set(vals.filter((v) => typeof v === 'string'))].slice(0, PALETTE.length);
    colour = (v) => PALETTE[labels.indexOf(v)] || '#bbb';
    legend = labels.map((label, i) => ({ label, color: PALETTE[i] }));
  }
  const pts = map.ids.map((id, i) => ({ id, x: px(map.x[i]), y: py(map.y[i]), v: vals[i] }));
  for (const p of pts) {
    ctx.fillStyle = colour(p.v);
    ctx.globalAlpha = marks.results && marks.results.size ? 0.45 : 0.85;
    ctx.fillRect(p.x - 1.5, p.y - 1.5, 3, 3);
  }
  ctx.globalAlpha = 1;
  // Results and the query drawn last, on top.
  for (const p of pts) {
    if (marks.results && marks.results.has(p.id)) {
      ctx.strokeStyle = '#d62728';
      ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.arc(p.x, p.y, 4, 0, 2 * Math.PI); ctx.stroke();
    }
  }
  const q = pts.find((p) => p.id === marks.query);
  if (q) {
    ctx.fillStyle = '#000';
    ctx.beginPath(); ctx.arc(q.x, q.y, 5, 0, 2 * Math.PI); ctx.fill();
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 2; ctx.stroke();
  }
  function pick(x, y, radius = 8) {
    let best = null;
    let bd = radius * radius;
    for (const p of pts) {
      const d = (p.x - x) ** 2 + (p.y - y) ** 2;
      if (d <= bd) { bd = d; best = p.id; }
    }
    return best;
  }
  function position(id) {
    const p = pts.find((t) => t.id === id);
    return p ? { x: p.x, y: p.y } : null;
  }
  return { pick, position, legend };
}
