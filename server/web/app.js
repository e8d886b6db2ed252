// The astrovec search page: one module, no build step. It talks only to the public
// API (/v1/...) and keeps the search in the URL so a link reproduces it.

import { parsePosition, raSexagesimal, decSexagesimal } from './coords.js';
import { drawSpectrum, drawMap } from './plots.js';

const $ = (id) => document.getElementById(id);

/** DESI model grid: 7,781 pixels from 3600 Å in 0.8 Å steps. */
const GRID = { start: 3600, step: 0.8, n: 7781 };

const state = {
  collection: null,
  info: null, // GET /v1/collections/{c}
  source: null, // {kind: 'id'|'position'|'image'|'spectrum', ...}
  lastRequest: null, // the search body last sent (for exports and predict)
  results: [],
  selected: null, // id of the result whose spectrum is shown
  queryId: null,
  map: null,
  mapView: null,
  mapCursor: null,
};

// ---------- small helpers ----------

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function status(message, kind = 'info') {
  const s = $('status');
  s.textContent = message;
  s.className = `status ${kind}`;
  s.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

async function api(path, options = {}) {
  const resp = await fetch(path, options);
  if (!resp.ok) {
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      if (body.error && body.error.message) msg = body.error.message;
    } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(msg);
  }
  return resp;
}

// Catalogue ids (DESI TARGETIDs) can exceed 2^53: integers JavaScript cannot hold
// exactly are kept as their decimal text, and the page handles every id as a string.
function keepBigIntegers(key, value, context) {
  if (typeof value === 'number' && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)) {
    return context.source;
  }
  return value;
}

const parseJson = async (resp) => JSON.parse(await resp.text(), keepBigIntegers);
const getJson = async (path) => parseJson(await api(path));

/** JSON of a request body whose `id` (a decimal string) is sent as a JSON integer. */
function bodyJson(body) {
  if (typeof body.id !== 'string') return JSON.stringify(body);
  const { id, ...rest } = body;
  if (!/^\d+$/.test(id)) throw new Error(`Object id: "${id}" is not a whole number`);
  const tail = JSON.stringify(rest);
  return `{"id":${id}${tail === '{}' ? '}' : `,${tail.slice(1)}`}`;
}

const postJson = (path, body, query = '') => api(`${path}${query}`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: bodyJson(body),
});

const base = () => `/v1/collections/${encodeURIComponent(state.collection)}`;
const objectUrl = (id, what = '') => `${base()}/objects/${id}${what}`;

function attrInfo(name) {
  return (state.info && state.info.attributes || []).find((a) => a.name === name);
}

function unitOf(name) {
  const a = attrInfo(name);
  return a && a.unit ? ` ${a.unit}` : '';
}

function fmt(v, digits = 4) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(digits);
  return String(v);
}

/** The redshift attribute of the collection, if it has one. */
function redshiftAttr() {
  const attrs = (state.info && state.info.attributes) || [];
  const a = attrs.find((x) => x.name === 'redshift') || attrs.find((x) => /^(z|redshift.*|z_.*)$/i.test(x.name) && x.kind !== 'category');
  return a ? a.name : null;
}

function magAttrs() {
  return ((state.info && state.info.attributes) || [])
    .filter((a) => a.kind !== 'category' && (/^mag/i.test(a.name) || /^mag/i.test(a.unit || '')))
    .map((a) => a.name);
}

/** Numeric attributes worth a k-NN estimate: redshift and the usual physical properties. */
const PHYSICAL = ['log_stellar_mass', 'log_sfr', 'log_ssfr', 'metallicity', 'age_gyr', 'mag_r'];
function estimateAttrs() {
  const numeric = ((state.info && state.info.attributes) || []).filter((a) => a.kind !== 'category').map((a) => a.name);
  const z = redshiftAttr();
  const chosen = [z, ...PHYSICAL.filter((p) => numeric.includes(p))].filter(Boolean);
  return chosen.length ? chosen : numeric.slice(0, 5);
}

function catAttrs() {
  return ((state.info && state.info.attributes) || []).filter((a) => a.kind === 'category');
}

const radio = (name) => document.querySelector(`input[name="${name}"]:checked`).value;
function setRadio(name, value) {
  const r = document.querySelector(`input[name="${name}"][value="${value}"]`);
  if (r) r.checked = true;
}

// ---------- filters ----------

function num(id) {
  const v = $(id).value.trim();
  if (v === '') return null;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new Error(`${$(id).getAttribute('aria-label')}: "${v}" is not a number`);
  return x;
}

function rangeClause(attr, lo, hi) {
  if (lo !== null && hi !== null) {
    if (lo > hi) throw new Error(`${attr}: the minimum (${lo}) is above the maximum (${hi})`);
    return `${attr} between ${lo} and ${hi}`;
  }
  if (lo !== null) return `${attr} >= ${lo}`;
  if (hi !== null) return `${attr} <= ${hi}`;
  return null;
}

/** The filter expression of the form (engine syntax), or null. Throws on bad input. */
function filterText() {
  const parts = [];
  const z = redshiftAttr();
  if (z) parts.push(rangeClause(z, num('z-min'), num('z-max')));
  const mag = $('mag-attr').value;
  if (mag) parts.push(rangeClause(mag, num('mag-min'), num('mag-max')));
  const cat = $('cat-attr').value;
  const val = $('cat-value').value;
  if (cat && val) parts.push(`${cat} = '${val.replace(/'/g, "\\'")}'`);
  const f = parts.filter(Boolean).join(' and ');
  return f || null;
}

function showFilter() {
  try {
    $('filter-text').textContent = filterText() || 'none';
  } catch (e) {
    $('filter-text').textContent = e.message;
  }
}

function buildFilters() {
  const z = redshiftAttr();
  $('f-redshift').hidden = !z;
  if (z) {
    const a = attrInfo(z);
    $('f-z-label').textContent = `Redshift${a.min != null ? ` (${fmt(a.min, 3)}–${fmt(a.max, 3)})` : ''}`;
  }
  const mags = magAttrs();
  $('f-mag').hidden = !mags.length;
  $('mag-attr').replaceChildren(...mags.map((m) => {
    const a = attrInfo(m);
    return h('option', { value: m, text: `${m}${a.unit ? ` (${a.unit})` : ''}${a.min != null ? ` ${fmt(a.min, 1)}–${fmt(a.max, 1)}` : ''}` });
  }));
  if (mags.includes('mag_r')) $('mag-attr').value = 'mag_r';
  const cats = catAttrs();
  $('f-cat').hidden = !cats.length;
  $('cat-attr').replaceChildren(...cats.map((c) => h('option', { value: c.name, text: c.name })));
  fillCategoryValues();
  showFilter();
}

function fillCategoryValues() {
  const a = attrInfo($('cat-attr').value);
  const values = (a && a.values) || [];
  $('cat-value').replaceChildren(h('option', { value: '', text: 'any' }),
    ...values.map(([label, count]) => h('option', { value: label, text: `${label} (${count})` })));
}

// ---------- query sources ----------

function setSource(src) {
  state.source = src;
  let text = 'none yet';
  if (src) {
    if (src.kind === 'id') text = `object ${src.id}`;
    else if (src.kind === 'position') text = `nearest object within ${src.radius}″ of RA ${src.ra.toFixed(5)}°, Dec ${src.dec.toFixed(5)}°`;
    else text = `uploaded ${src.kind} “${src.name}”`;
  }
  $('q-source').textContent = text;
  // An uploaded image can only search with the image model (and likewise spectra).
  const upload = src && (src.kind === 'image' || src.kind === 'spectrum');
  for (const r of document.querySelectorAll('input[name="from"]')) {
    r.disabled = Boolean(upload) && r.value !== src.kind;
  }
  if (upload) setRadio('from', src.kind);
}

function sourceFromId() {
  const v = $('q-id').value.trim();
  if (!/^\d+$/.test(v)) throw new Error(`Object id: "${v}" is not a whole number`);
  return { kind: 'id', id: v };
}

function sourceFromPosition() {
  const p = parsePosition($('q-pos').value);
  const radius = Number($('q-radius').value || 5);
  if (!(radius > 0 && radius <= 3600)) throw new Error('Match radius: give 0–3600 arcsec');
  return { kind: 'position', ra: p.ra, dec: p.dec, radius, text: $('q-pos').value.trim() };
}

function showParsedPosition() {
  const out = $('q-pos-parsed');
  if (!$('q-pos').value.trim()) { out.textContent = ''; return; }
  try {
    const p = parsePosition($('q-pos').value);
    out.textContent = `= RA ${p.ra.toFixed(5)}°, Dec ${p.dec.toFixed(5)}° (${raSexagesimal(p.ra)} ${decSexagesimal(p.dec)})`;
    out.classList.remove('error');
  } catch (e) {
    out.textContent = e.message;
    out.classList.add('error');
  }
}

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

const isFits = (name) => /\.(fits?|fz)$/i.test(name);

/**
 * The points of a CSV spectrum, for the query's plot only: the server reads the file
 * itself (the same code as `astrovec embed` and the ingest) and reports any problem.
 * One column is flux on the model grid; two or more are wavelength (Å) and flux.
 */
export function csvPoints(text) {
  const rows = text.split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/[,;\t ]+/).filter(Boolean).map(Number))
    .filter((cells) => cells.length && cells.every(Number.isFinite));
  if (rows.length && rows[0].length === 1) {
    return { wavelength: rows.map((_, i) => GRID.start + GRID.step * i), flux: rows.map((r) => r[0]) };
  }
  return { wavelength: rows.map((r) => r[0]), flux: rows.map((r) => r[1]) };
}

async function sourceFromFile(kind, file) {
  const buf = await file.arrayBuffer();
  if (kind === 'image') {
    let payload;
    if (isFits(file.name)) payload = { fits: toBase64(buf) };
    else if (/\.npy$/i.test(file.name)) payload = { npy: toBase64(buf) };
    else if (/\.jpe?g$/i.test(file.name) || file.type === 'image/jpeg') payload = { jpeg: toBase64(buf) };
    else if (/\.png$/i.test(file.name) || file.type === 'image/png') payload = { png: toBase64(buf) };
    else throw new Error(`${file.name}: upload a PNG, JPEG, FITS or .npy image`);
    const preview = isFits(file.name) || /\.npy$/i.test(file.name) ? null : URL.createObjectURL(file);
    return { kind, name: file.name, payload, preview };
  }
  if (isFits(file.name)) return { kind, name: file.name, payload: { fits: toBase64(buf) } };
  if (/\.npy$/i.test(file.name)) return { kind, name: file.name, payload: { npy: toBase64(buf) } };
  const text = new TextDecoder().decode(buf);
  return { kind, name: file.name, payload: { csv: text }, points: csvPoints(text) };
}

// ---------- URL state ----------

function writeUrl() {
  const p = new URLSearchParams();
  p.set('c', state.collection);
  const src = state.source;
  if (src && src.kind === 'id') p.set('id', src.id);
  if (src && src.kind === 'position') { p.set('pos', src.text); p.set('r', String(src.radius)); }
  p.set('from', radio('from'));
  p.set('to', radio('to'));
  p.set('k', $('k').value);
  for (const [key, id] of [['zmin', 'z-min'], ['zmax', 'z-max'], ['magmin', 'mag-min'], ['magmax', 'mag-max']]) {
    if ($(id).value.trim()) p.set(key, $(id).value.trim());
  }
  if ($('mag-attr').value && ($('mag-min').value || $('mag-max').value)) p.set('mag', $('mag-attr').value);
  if ($('cat-value').value) { p.set('cat', $('cat-attr').value); p.set('catv', $('cat-value').value); }
  if (state.selected != null) p.set('sel', String(state.selected));
  const url = `${location.pathname}?${p}`;
  history.replaceState(null, '', url);
  return new URL(url, location.href).href;
}

function readUrl() {
  const p = new URLSearchParams(location.search);
  if (p.get('from')) setRadio('from', p.get('from'));
  if (p.get('to')) setRadio('to', p.get('to'));
  if (p.get('k')) $('k').value = p.get('k');
  for (const [key, id] of [['zmin', 'z-min'], ['zmax', 'z-max'], ['magmin', 'mag-min'], ['magmax', 'mag-max']]) {
    if (p.get(key)) $(id).value = p.get(key);
  }
  if (p.get('mag')) $('mag-attr').value = p.get('mag');
  if (p.get('cat')) { $('cat-attr').value = p.get('cat'); fillCategoryValues(); $('cat-value').value = p.get('catv') || ''; }
  showFilter();
  if (p.get('r')) $('q-radius').value = p.get('r');
  if (p.get('id')) { $('q-id').value = p.get('id'); setSource({ kind: 'id', id: p.get('id') }); }
  else if (p.get('pos')) { $('q-pos').value = p.get('pos'); showParsedPosition(); setSource(sourceFromPosition()); }
  return { search: Boolean(p.get('id') || p.get('pos')), selected: p.get('sel') };
}

// ---------- search ----------

function requestBody() {
  const src = state.source;
  if (!src) throw new Error('Choose a query first: an id, a position, a random galaxy or an upload');
  const k = Number($('k').value);
  if (!(Number.isInteger(k) && k >= 1 && k <= 200)) throw new Error('Results (k): give a whole number from 1 to 200');
  const body = { to: radio('to'), k, exclude_self: true };
  const f = filterText();
  if (f) body.filter = f;
  if (src.kind === 'id') Object.assign(body, { id: src.id, from: radio('from') });
  else if (src.kind === 'position') {
    Object.assign(body, { position: { ra: src.ra, dec: src.dec, radius_arcsec: src.radius }, from: radio('from') });
  } else body[src.kind] = src.payload;
  return body;
}

let searchSeq = 0;

async function search() {
  let body;
  try {
    body = requestBody();
  } catch (e) {
    status(e.message, 'error');
    return;
  }
  const seq = (searchSeq += 1);
  status('Searching…', 'busy');
  $('search').disabled = true;
  const t0 = performance.now();
  try {
    const predictBody = { ...body, attributes: estimateAttrs() };
    delete predictBody.k; delete predictBody.exclude_self; delete predictBody.filter;
    const predict = postJson(`${base()}/predict`, predictBody).then(parseJson);
    const resp = await parseJson(await postJson(`${base()}/search`, body));
    if (seq !== searchSeq) return;
    for (const r of resp.results) r.id = String(r.id);
    state.lastRequest = body;
    state.results = resp.results;
    state.queryId = resp.query && resp.query.id != null ? String(resp.query.id) : null;
    if (state.selected != null && !resp.results.some((r) => r.id === state.selected)) state.selected = null;
    renderResults(resp);
    renderQuery(resp);
    writeUrl();
    drawMapMarks();
    const elapsed = performance.now() - t0;
    status(`${resp.results.length} results in ${(elapsed / 1000).toFixed(2)} s (server ${fmt(resp.timing_ms.total, 1)} ms).`, 'ok');
    predict.then((p) => { if (seq === searchSeq) renderEstimate(p); })
      .catch((e) => { if (seq === searchSeq) $('estimate').replaceChildren(h('p', { class: 'error', text: `Estimate: ${e.message}` })); });
    if (state.selected != null) showSpectrum(state.selected);
  } catch (e) {
    if (seq === searchSeq) status(e.message, 'error');
  } finally {
    $('search').disabled = false;
  }
}

function renderResults(resp) {
  const z = redshiftAttr();
  const mag = $('mag-attr').value || magAttrs()[0];
  const frag = document.createDocumentFragment();
  for (const r of resp.results) {
    const zv = z ? r.attributes[z] : null;
    const card = h('li', { class: 'card', 'data-id': String(r.id) },
      h('button', {
        type: 'button', class: 'card-main',
        'aria-label': `Result ${r.rank}: object ${r.id}, score ${r.score.toFixed(3)}; show its spectrum`,
        onclick: () => select(r.id),
      },
      h('img', {
        src: objectUrl(r.id, '/image.png?size=thumb'), alt: '', loading: 'lazy', decoding: 'async',
        width: 96, height: 96,
      }),
      h('span', { class: 'meta' },
        h('span', { class: 'rank', text: `#${r.rank}` }),
        h('span', { class: 'score', text: `score ${r.score.toFixed(4)}`, title: 'Cosine similarity of the embeddings (1 = identical)' }),
        h('span', { class: 'rid', text: `id ${r.id}` }),
        h('span', { class: 'pos', text: `RA ${r.ra.toFixed(4)}°  Dec ${r.dec.toFixed(4)}°`, title: `${raSexagesimal(r.ra)} ${decSexagesimal(r.dec)}` }),
        z ? h('span', { class: 'z', text: `z = ${fmt(zv, 4)}` }) : null,
        mag && r.attributes[mag] != null ? h('span', { class: 'mag', text: `${mag} = ${fmt(r.attributes[mag], 2)}${unitOf(mag)}` }) : null)),
      h('button', { type: 'button', class: 'from-here', onclick: () => searchFromId(r.id), 'aria-label': `Search from object ${r.id}`, text: 'Search from this' }));
    frag.append(card);
  }
  $('results').replaceChildren(frag);
  const t = resp.timing_ms;
  $('results-summary').textContent = `${resp.results.length} ${resp.to === 'spectrum' ? 'spectra' : 'images'} nearest the query's ${resp.query.kind === 'image' || resp.query.kind === 'spectrum' ? `uploaded ${resp.query.kind}` : `${resp.query.from}`} embedding · search ${fmt(t.search, 2)} ms${t.encode ? `, encode ${fmt(t.encode, 1)} ms` : ''}`;
  for (const b of ['export-csv', 'export-votable', 'copy-link']) $(b).disabled = !resp.results.length;
  markSelected();
}

async function renderQuery(resp) {
  const card = $('query-card');
  const src = state.source;
  if (state.queryId == null) {
    const children = [h('p', {}, h('strong', { text: `Uploaded ${src.kind}` }), ` “${src.name}”`)];
    if (src.preview) children.push(h('img', { src: src.preview, alt: `Uploaded image ${src.name}`, class: 'query-img' }));
    card.replaceChildren(...children);
    if (src.points && src.points.flux.length) {
      drawSpectrum($('spec-query'), src.points, null, `Query: uploaded ${src.name}`);
    } else {
      $('spec-query').replaceChildren(h('figcaption', { class: 'muted', text: 'The uploaded query has no spectrum to plot.' }));
    }
    return;
  }
  const id = state.queryId;
  const obj = await getJson(objectUrl(id));
  const rows = [
    ['id', String(obj.id)],
    ['RA', `${obj.ra.toFixed(5)}° (${raSexagesimal(obj.ra)})`],
    ['Dec', `${obj.dec.toFixed(5)}° (${decSexagesimal(obj.dec)})`],
  ];
  if (src && src.kind === 'position') {
    const sep = angularSeparation(src.ra, src.dec, obj.ra, obj.dec) * 3600;
    rows.push(['separation', `${sep.toFixed(2)}″ from the position given`]);
  }
  const attrRow = (k) => [k, `${fmt(obj.attributes[k])}${typeof obj.attributes[k] === 'number' ? unitOf(k) : ''}`];
  const names = Object.keys(obj.attributes);
  const key = [redshiftAttr(), ...magAttrs(), ...PHYSICAL].filter((k, i, a) => k && names.includes(k) && a.indexOf(k) === i);
  const dl = (list) => h('dl', { class: 'attrs' }, ...list.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })]));
  card.replaceChildren(
    h('img', { src: objectUrl(id, '/image.png'), alt: `Image of the query galaxy ${id} (g, r, z as RGB)`, class: 'query-img', width: 152, height: 152 }),
    h('div', {}, dl(rows.concat(key.map(attrRow))),
      h('details', {}, h('summary', { text: `All ${names.length} attributes` }), dl(names.map(attrRow)))));
  const z = redshiftAttr();
  plotObjectSpectrum($('spec-query'), id, z ? obj.attributes[z] : null, `Query ${id}`);
}

function angularSeparation(ra1, dec1, ra2, dec2) {
  const r = Math.PI / 180;
  const s = Math.sin(((dec2 - dec1) * r) / 2) ** 2
    + Math.cos(dec1 * r) * Math.cos(dec2 * r) * Math.sin(((ra2 - ra1) * r) / 2) ** 2;
  return (2 * Math.asin(Math.min(1, Math.sqrt(s)))) / r;
}

async function plotObjectSpectrum(host, id, z, title) {
  try {
    const spec = await getJson(objectUrl(id, '/spectrum?max_points=1600'));
    const zt = typeof z === 'number' ? ` (z = ${z.toFixed(4)})` : '';
    drawSpectrum(host, spec, typeof z === 'number' ? z : null, `${title}${zt}`);
    host.append(h('figcaption', { class: 'muted small', text: `Flux in ${spec.flux_unit}; wavelength in ${spec.wavelength_unit}; ${spec.bin_pixels} pixel(s) of 0.8 Å per point.` }));
  } catch (e) {
    host.replaceChildren(h('figcaption', { class: 'error', text: `Spectrum of ${id}: ${e.message}` }));
  }
}

function renderEstimate(p) {
  const order = estimateAttrs();
  const rows = Object.entries(p.estimates || {}).sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]));
  if (!rows.length) { $('estimate').replaceChildren(h('p', { class: 'muted', text: 'No numeric attributes to estimate.' })); return; }
  const table = h('table', { class: 'estimate' },
    h('caption', { class: 'muted small', text: `From the ${p.k} nearest ${p.to === 'spectrum' ? 'spectra' : 'images'}` }),
    h('thead', {}, h('tr', {}, ...['Attribute', 'Estimate ± spread', '16–84 % range', 'Catalogue', 'Unit'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, ...rows.map(([name, e]) => {
      const d = Math.abs(e.spread) > 0 && Math.abs(e.spread) < 0.01 ? 4 : 3;
      return h('tr', { 'data-attr': name },
        h('th', { scope: 'row', text: name }),
        h('td', { text: `${fmt(e.value, d)} ± ${fmt(e.spread, d)}` }),
        h('td', { text: `${fmt(e.p16, d)} – ${fmt(e.p84, d)}` }),
        h('td', { text: e.actual == null ? '—' : fmt(e.actual, d) }),
        h('td', { class: 'muted', text: e.unit || 'dimensionless' }));
    })));
  $('estimate').replaceChildren(table);
}

function markSelected() {
  for (const c of $('results').children) c.classList.toggle('selected', c.dataset.id === String(state.selected));
  $('search-from-selected').disabled = state.selected == null;
}

function select(id) {
  state.selected = id;
  markSelected();
  writeUrl();
  showSpectrum(id);
  $('spectra-panel').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
}

function showSpectrum(id) {
  const r = state.results.find((x) => x.id === id);
  const z = redshiftAttr();
  plotObjectSpectrum($('spec-result'), id, r && z ? r.attributes[z] : null, `Result ${id}${r ? ` (#${r.rank}, score ${r.score.toFixed(3)})` : ''}`);
}

function searchFromId(id) {
  $('q-id').value = String(id);
  setSource({ kind: 'id', id: String(id) });
  state.selected = null;
  search();
}

// ---------- exports ----------

async function exportAs(format) {
  if (!state.lastRequest) return;
  try {
    const resp = await postJson(`${base()}/search`, state.lastRequest, `?format=${format}`);
    const blob = await resp.blob();
    const a = h('a', { href: URL.createObjectURL(blob), download: `${state.collection}_search.${format === 'csv' ? 'csv' : 'vot'}` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    status(`Exported ${state.results.length} rows as ${format === 'csv' ? 'CSV' : 'VOTable'}.`, 'ok');
  } catch (e) {
    status(`Export: ${e.message}`, 'error');
  }
}

async function copyLink() {
  const url = writeUrl();
  const box = $('link');
  box.hidden = false;
  box.value = url;
  if (state.source && (state.source.kind === 'image' || state.source.kind === 'spectrum')) {
    status('Uploads are not part of a link: the link keeps the settings only.', 'info');
  }
  try {
    await navigator.clipboard.writeText(url);
    status('Link copied to the clipboard.', 'ok');
  } catch (_) {
    box.select();
    status('Link shown beside the button (the browser did not allow copying).', 'info');
  }
}

// ---------- map ----------

async function loadMap() {
  const modality = $('map-modality').value;
  const color = $('map-color').value;
  $('map-info').textContent = 'Loading the map…';
  try {
    const q = new URLSearchParams({ modality, points: '5000' });
    if (color) q.set('color', color);
    const map = await getJson(`${base()}/map?${q}`);
    map.ids = map.ids.map(String);
    state.map = map;
    const ev = state.map.explained_variance.map((v) => `${(v * 100).toFixed(1)} %`).join(', ');
    $('map-info').textContent = `${state.map.points} of ${state.map.total_vectors} ${modality} embeddings, ${state.map.method}; variance along the axes ${ev}.`;
    drawMapMarks();
  } catch (e) {
    $('map-info').textContent = `Map: ${e.message}`;
  }
}

function drawMapMarks() {
  if (!state.map) return;
  const canvas = $('map');
  state.mapView = drawMap(canvas, state.map, { query: state.queryId, results: new Set(state.results.map((r) => r.id)) });
  if (state.mapCursor) {
    const ctx = canvas.getContext('2d');
    const { x, y } = state.mapCursor;
    ctx.strokeStyle = '#c00'; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(x - 8, y); ctx.lineTo(x + 8, y); ctx.moveTo(x, y - 8); ctx.lineTo(x, y + 8); ctx.stroke();
  }
  const legend = state.mapView.legend;
  const color = $('map-color').value;
  const box = $('map-legend');
  if (Array.isArray(legend)) {
    box.replaceChildren(...legend.map((l) => h('span', { class: 'swatch-item' }, h('span', { class: 'swatch', style: `background:${l.color}` }), l.label)));
  } else if (legend) {
    box.replaceChildren(h('span', { text: `${color} ${fmt(legend.min, 3)}${unitOf(color)}` }), h('span', { class: 'bar', 'aria-hidden': 'true' }),
      h('span', { text: `${fmt(legend.max, 3)}${unitOf(color)}` }), h('span', { class: 'muted', text: ' · black dot: query, red rings: results' }));
  } else box.textContent = 'black dot: query, red rings: results';
}

function pickFromMap(id) {
  if (id == null) return;
  $('map-info').textContent = `Map point: object ${id}`;
  searchFromId(id);
}

function mapEvents() {
  const canvas = $('map');
  canvas.addEventListener('click', (ev) => {
    if (!state.mapView) return;
    const r = canvas.getBoundingClientRect();
    pickFromMap(state.mapView.pick(ev.clientX - r.left, ev.clientY - r.top));
  });
  canvas.addEventListener('mousemove', (ev) => {
    if (!state.mapView || !state.map) return;
    const r = canvas.getBoundingClientRect();
    const id = state.mapView.pick(ev.clientX - r.left, ev.clientY - r.top);
    canvas.style.cursor = id == null ? 'default' : 'pointer';
    canvas.title = id == null ? '' : `object ${id}`;
  });
  canvas.addEventListener('keydown', (ev) => {
    if (!state.mapView) return;
    const step = ev.shiftKey ? 40 : 10;
    const c = state.mapCursor || { x: canvas.clientWidth / 2, y: canvas.clientHeight / 2 };
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[ev.key]) {
      ev.preventDefault();
      state.mapCursor = { x: c.x + moves[ev.key][0], y: c.y + moves[ev.key][1] };
      drawMapMarks();
      const id = state.mapView.pick(state.mapCursor.x, state.mapCursor.y, 12);
      $('map-info').textContent = id == null ? 'No galaxy under the cross.' : `Under the cross: object ${id} (Enter to search from it)`;
    } else if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      state.mapCursor = c;
      pickFromMap(state.mapView.pick(c.x, c.y, 40));
    }
  });
  let resize = null;
  window.addEventListener('resize', () => { clearTimeout(resize); resize = setTimeout(drawMapMarks, 150); });
}

// ---------- collections ----------

async function openCollection(name) {
  state.collection = name;
  state.info = await getJson(base());
  const i = state.info;
  $('collection-info').textContent = `${i.objects.toLocaleString('en')} objects · ${i.modalities.map((m) => `${m.name} ${m.dim}-d`).join(', ')} · ${i.index_state}`;
  buildFilters();
  const mods = i.modalities.map((m) => m.name);
  $('map-modality').replaceChildren(...mods.map((m) => h('option', { value: m, text: m })));
  const z = redshiftAttr();
  $('map-color').replaceChildren(h('option', { value: '', text: 'nothing' }),
    ...i.attributes.map((a) => h('option', { value: a.name, text: `${a.name}${a.unit ? ` (${a.unit})` : ''}` })));
  if (z) $('map-color').value = z;
}

async function randomGalaxy() {
  try {
    if (!state.map) await loadMap();
    const ids = state.map.ids;
    if (!ids.length) throw new Error('the collection is empty');
    searchFromId(ids[Math.floor(Math.random() * ids.length)]);
  } catch (e) {
    status(`Random galaxy: ${e.message}`, 'error');
  }
}

function wire() {
  $('search-form').addEventListener('submit', (ev) => { ev.preventDefault(); search(); });
  $('q-id').addEventListener('input', () => {
    try { setSource(sourceFromId()); } catch (_) { /* reported on search */ }
  });
  $('q-id').addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    ev.preventDefault();
    try { setSource(sourceFromId()); search(); } catch (e) { status(e.message, 'error'); }
  });
  const usePosition = () => { try { setSource(sourceFromPosition()); return true; } catch (e) { status(e.message, 'error'); return false; } };
  $('q-pos').addEventListener('input', showParsedPosition);
  $('q-pos').addEventListener('change', usePosition);
  $('q-pos').addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    ev.preventDefault();
    if (usePosition()) search();
  });
  $('q-radius').addEventListener('change', () => { if (state.source && state.source.kind === 'position') usePosition(); });
  $('random').addEventListener('click', randomGalaxy);
  for (const kind of ['image', 'spectrum']) {
    $(`q-${kind}`).addEventListener('change', async (ev) => {
      const file = ev.target.files[0];
      if (!file) return;
      try {
        setSource(await sourceFromFile(kind, file));
        search();
      } catch (e) {
        status(e.message, 'error');
      }
    });
  }
  for (const id of ['z-min', 'z-max', 'mag-min', 'mag-max', 'mag-attr', 'cat-value']) $(id).addEventListener('input', showFilter);
  $('cat-attr').addEventListener('change', () => { fillCategoryValues(); showFilter(); });
  $('export-csv').addEventListener('click', () => exportAs('csv'));
  $('export-votable').addEventListener('click', () => exportAs('votable'));
  $('copy-link').addEventListener('click', copyLink);
  $('search-from-selected').addEventListener('click', () => { if (state.selected != null) searchFromId(state.selected); });
  $('map-modality').addEventListener('change', loadMap);
  $('map-color').addEventListener('change', loadMap);
  $('collection').addEventListener('change', async () => {
    state.selected = null;
    state.map = null;
    await openCollection($('collection').value);
    writeUrl();
    loadMap();
  });
  mapEvents();
}

async function start() {
  wire();
  try {
    const list = (await getJson('/v1/collections')).collections;
    if (!list.length) { status('This server has no collections.', 'error'); return; }
    $('collection').replaceChildren(...list.map((c) => h('option', { value: c.name, text: `${c.name} (${c.objects.toLocaleString('en')})` })));
    const wanted = new URLSearchParams(location.search).get('c');
    const name = list.some((c) => c.name === wanted) ? wanted : list[0].name;
    $('collection').value = name;
    await openCollection(name);
    const restored = readUrl();
    loadMap();
    if (restored.search) {
      if (restored.selected) state.selected = restored.selected;
      await search();
    } else status('Ready: enter an id or a position, or press “Random galaxy”.', 'info');
  } catch (e) {
    status(e.message, 'error');
  }
  document.body.dataset.ready = 'true';
}

start();
