// Drives the astrovec web page in headless Chromium (Debian's /usr/bin/chromium via
// playwright-core) against a running `astrovec serve`, and asserts on what the page
// shows. Run by tests/web_browser.rs:
//
//   node tests/web/browser.mjs --url http://127.0.0.1:PORT --out DIR
//
// Exits non-zero (with the failed check) on the first failure; saves screenshots in DIR.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0 && process.argv[i + 1]) return process.argv[i + 1];
  if (fallback === undefined) throw new Error(`missing --${name}`);
  return fallback;
}

const BASE = arg('url');
const OUT = arg('out');
const K = 12;
fs.mkdirSync(OUT, { recursive: true });

const step = (msg) => console.log(`[web] ${msg}`);

async function apiJson(p) {
  const r = await fetch(`${BASE}${p}`);
  assert.equal(r.status, 200, `GET ${p}`);
  return r.json();
}

// RA/Dec written independently of the page's own formatter.
function sexa(ra, dec) {
  const h = ra / 15;
  const hh = Math.floor(h);
  const mm = Math.floor((h - hh) * 60);
  const ss = ((h - hh) * 60 - mm) * 60;
  const sign = dec < 0 ? '-' : '+';
  const d = Math.abs(dec);
  const dd = Math.floor(d);
  const dm = Math.floor((d - dd) * 60);
  const ds = ((d - dd) * 60 - dm) * 60;
  const p2 = (x) => String(x).padStart(2, '0');
  return `${p2(hh)}:${p2(mm)}:${ss.toFixed(3).padStart(6, '0')} ${sign}${p2(dd)}:${p2(dm)}:${ds.toFixed(2).padStart(5, '0')}`;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text());
  });
  page.on('response', (r) => { if (r.status() >= 400) pageErrors.push(`${r.status()} ${r.url()}`); });

  const collections = (await apiJson('/v1/collections')).collections;
  assert.ok(collections.length >= 1, 'the server serves a collection');
  const coll = collections[0].name;
  const map = await apiJson(`/v1/collections/${coll}/map?points=5000`);
  const queryId = map.ids[0];
  const queryObj = await apiJson(`/v1/collections/${coll}/objects/${queryId}`);

  step('open the page');
  await page.goto(`${BASE}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
  assert.match(await page.textContent('#collection-info'), /objects/);
  assert.equal(await page.inputValue('#collection'), coll);

  step(`search by id ${queryId} (Enter in the id box)`);
  const results = async () => page.$$eval('#results > li', (els) => els.map((e) => ({
    id: Number(e.dataset.id),
    score: Number(e.querySelector('.score').textContent.replace('score ', '')),
    z: e.querySelector('.z') ? Number(e.querySelector('.z').textContent.replace('z = ', '')) : null,
    img: e.querySelector('img').getAttribute('src'),
    lazy: e.querySelector('img').getAttribute('loading'),
    text: e.textContent,
  })));
  async function waitResults(pred = () => true) {
    await page.waitForFunction(() => /results in/.test(document.getElementById('status').textContent), null, { timeout: 60000 });
    const r = await results();
    assert.ok(pred(r), 'results satisfy the expectation');
    return r;
  }
  await page.fill('#k', String(K));
  await page.fill('#q-id', String(queryId));
  await page.focus('#q-id');
  await page.keyboard.press('Enter');
  let byId = await waitResults();
  assert.equal(byId.length, K, 'k results shown');
  assert.ok(!byId.some((r) => r.id === queryId), 'the query is left out of its own results');
  for (let i = 1; i < byId.length; i += 1) assert.ok(byId[i].score <= byId[i - 1].score + 1e-6, 'scores descend');
  for (const r of byId) {
    assert.match(r.img, new RegExp(`/objects/${r.id}/image\\.png\\?size=thumb$`));
    assert.equal(r.lazy, 'lazy');
    assert.match(r.text, /RA \d+\.\d{4}°\s+Dec -?\d+\.\d{4}°/, 'RA/Dec in degrees on every card');
  }
  const card = await page.textContent('#query-card');
  assert.ok(card.includes(String(queryId)), 'the query card names the query id');
  assert.ok(card.includes(queryObj.ra.toFixed(5)), 'the query card shows RA in degrees');
  assert.equal(await page.getAttribute('#query-card img', 'src'), `/v1/collections/${coll}/objects/${queryId}/image.png`);
  assert.match(page.url(), new RegExp(`[?&]id=${queryId}(&|$)`), 'the URL holds the query');
  await page.waitForSelector('#estimate table', { timeout: 60000 });
  const estimate = await page.textContent('#estimate');
  assert.match(estimate, /redshift/, 'the k-NN estimate lists redshift');
  assert.match(estimate, /±/, 'the estimate has a spread');
  // All cards' images load (the thumbnails exist).
  await page.waitForFunction(() => [...document.querySelectorAll('#results img')].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 30000 });

  step('switch modes: all four');
  const byMode = {};
  for (const [from, to] of [['image', 'spectrum'], ['spectrum', 'spectrum'], ['spectrum', 'image'], ['image', 'image']]) {
    await page.check(`input[name="from"][value="${from}"]`);
    await page.check(`input[name="to"][value="${to}"]`);
    await page.click('#search');
    await page.waitForFunction(([f, t]) => {
      const s = document.getElementById('results-summary').textContent;
      return s.includes(`${t === 'spectrum' ? 'spectra' : 'images'} nearest the query's ${f} embedding`);
    }, [from, to], { timeout: 60000 });
    const r = await results();
    assert.equal(r.length, K, `${from}→${to}: k results`);
    byMode[`${from}>${to}`] = r.map((x) => x.id).join(',');
    assert.match(page.url(), new RegExp(`from=${from}&to=${to}`));
  }
  assert.ok(new Set(Object.values(byMode)).size >= 2, 'the four modes do not all return the same list');
  assert.equal(byMode['image>image'], byId.map((x) => x.id).join(','), 'image→image again gives the first list');

  step('apply a redshift filter');
  const zs = byId.map((r) => r.z).filter((z) => z != null).sort((a, b) => a - b);
  const zMax = Number(zs[Math.floor(zs.length / 2)].toFixed(3));
  await page.fill('#z-max', String(zMax));
  assert.match(await page.textContent('#filter-text'), new RegExp(`redshift <= ${zMax}`));
  await page.click('#search');
  await page.waitForFunction((zm) => {
    const els = [...document.querySelectorAll('#results .z')];
    return els.length > 0 && els.every((e) => Number(e.textContent.replace('z = ', '')) <= zm + 1e-4);
  }, zMax, { timeout: 60000 });
  const filtered = await results();
  assert.equal(filtered.length, K, 'the filtered search still fills k');
  for (const r of filtered) assert.ok(r.z <= zMax + 1e-4, `result ${r.id}: z ${r.z} ≤ ${zMax}`);
  assert.notEqual(filtered.map((r) => r.id).join(','), byId.map((r) => r.id).join(','), 'the filter changed the results');
  assert.match(page.url(), new RegExp(`zmax=${zMax}`));
  await page.screenshot({ path: path.join(OUT, 'web_search.png') });

  step('open a spectrum');
  const pick = filtered[2];
  await page.click(`#results > li[data-id="${pick.id}"] .card-main`);
  await page.waitForSelector('#spec-result svg path.flux', { timeout: 30000 });
  await page.waitForSelector('#spec-query svg path.flux', { timeout: 30000 });
  const spec = await page.$eval('#spec-result', (el) => ({
    title: el.querySelector('.plot-title').textContent,
    points: (el.querySelector('path.flux').getAttribute('d').match(/[ML]/g) || []).length,
    labels: [...el.querySelectorAll('.lines text')].map((t) => t.childNodes[0].textContent),
    axis: [...el.querySelectorAll('.axis-label')].map((t) => t.textContent).join(' | '),
    caption: el.querySelector('figcaption').textContent,
  }));
  assert.ok(spec.title.includes(String(pick.id)), 'the plot names the result');
  assert.ok(spec.title.includes(`z = ${pick.z.toFixed(4)}`), 'the plot gives the redshift');
  assert.ok(spec.points > 500, `the spectrum has many points (${spec.points})`);
  assert.match(spec.axis, /wavelength \(Å/);
  assert.match(spec.axis, /erg s⁻¹ cm⁻² Å⁻¹/);
  // Every line whose observed wavelength falls in 3600–9824 Å is labelled.
  const expected = [['Hβ', 4862.7], ['[OIII]', 4960.3], ['Na D', 5895.6], ['Ca K', 3934.8]]
    .filter(([, rest]) => rest * (1 + pick.z) >= 3600 && rest * (1 + pick.z) <= 9824).map(([n]) => n);
  assert.ok(expected.length > 0);
  for (const n of expected) assert.ok(spec.labels.includes(n), `line ${n} marked (got ${spec.labels})`);
  assert.match(spec.caption, /1e-17 erg/);
  assert.ok(await page.$eval(`#results > li[data-id="${pick.id}"]`, (e) => e.classList.contains('selected')));
  assert.match(page.url(), new RegExp(`sel=${pick.id}`));
  await page.$eval('#spectra-panel', (e) => e.scrollIntoView());
  await page.locator('#results-panel, #spectra-panel').first().isVisible();
  await page.locator('#spectra-panel').screenshot({ path: path.join(OUT, 'web_spectrum.png') });

  step('export CSV');
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30000 }), page.click('#export-csv')]);
  const csvPath = path.join(OUT, 'export.csv');
  await download.saveAs(csvPath);
  const lines = fs.readFileSync(csvPath, 'utf8').trim().split(/\r?\n/).filter((l) => !l.startsWith('#'));
  const header = lines[0].split(',');
  assert.ok(header.includes('id') && header.includes('score'), `CSV header: ${lines[0]}`);
  assert.equal(lines.length - 1, K, 'one CSV row per result');
  const idCol = header.indexOf('id');
  assert.deepEqual(lines.slice(1).map((l) => Number(l.split(',')[idCol])), filtered.map((r) => r.id), 'CSV rows = grid, in order');
  const [vot] = await Promise.all([page.waitForEvent('download', { timeout: 30000 }), page.click('#export-votable')]);
  const votPath = path.join(OUT, 'export.vot');
  await vot.saveAs(votPath);
  const votText = fs.readFileSync(votPath, 'utf8');
  assert.match(votText, /<VOTABLE/);
  assert.equal((votText.match(/<TR>/g) || []).length, K, 'one VOTable row per result');

  step('copy link and restore it in a new page');
  await page.click('#copy-link');
  const link = await page.inputValue('#link');
  assert.match(link, new RegExp(`id=${queryId}`));
  const page2 = await context.newPage();
  await page2.goto(link);
  await page2.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
  await page2.waitForSelector('#spec-result svg', { timeout: 30000 });
  const restored = await page2.$$eval('#results > li', (els) => els.map((e) => Number(e.dataset.id)));
  assert.deepEqual(restored, filtered.map((r) => r.id), 'the link reproduces the search');
  assert.equal(await page2.inputValue('#z-max'), String(zMax));
  await page2.close();

  step('search by sexagesimal position');
  const target = await apiJson(`/v1/collections/${coll}/objects/${map.ids[7]}`);
  await page.fill('#z-max', '');
  await page.fill('#q-pos', sexa(target.ra, target.dec));
  await page.focus('#q-pos');
  await page.keyboard.press('Enter');
  await page.waitForFunction((id) => document.getElementById('query-card').textContent.includes(`id${id}`), target.id, { timeout: 60000 });
  assert.match(await page.textContent('#query-card'), /separation\d+\.\d\d″/);

  step('click the map');
  await page.waitForFunction(() => /embeddings/.test(document.getElementById('map-info').textContent), null, { timeout: 60000 });
  const before = await page.textContent('#q-source');
  // Find a drawn point that is not the current query (black) by reading the canvas pixels.
  const spot = await page.$eval('#map', (c) => {
    const ctx = c.getContext('2d');
    const { data, width, height } = ctx.getImageData(0, 0, c.width, c.height);
    const dpr = c.width / c.clientWidth;
    for (let y = Math.floor(height * 0.3); y < height; y += 2) {
      for (let x = Math.floor(width * 0.3); x < width; x += 2) {
        const i = (y * width + x) * 4;
        const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
        if (a > 200 && !(r < 40 && g < 40 && b < 40) && !(r > 200 && g < 80 && b < 80)) return { x: x / dpr, y: y / dpr };
      }
    }
    return null;
  });
  assert.ok(spot, 'the map has drawn points');
  await page.click('#map', { position: spot });
  await page.waitForFunction((b) => document.getElementById('q-source').textContent !== b
    && /results in/.test(document.getElementById('status').textContent), before, { timeout: 60000 });
  const mapQuery = Number((await page.textContent('#q-source')).replace('object ', ''));
  assert.ok(map.ids.includes(mapQuery), `the clicked point ${mapQuery} is a map object`);
  await page.waitForFunction((id) => document.getElementById('query-card').textContent.includes(`id${id}`), mapQuery, { timeout: 30000 });
  const afterMap = await results();
  assert.equal(afterMap.length, K);
  assert.ok(!afterMap.some((r) => r.id === mapQuery));
  assert.match(await page.textContent('#map-legend'), /redshift/);

  step('upload a CSV spectrum (wavelength Å, flux)');
  const s = await apiJson(`/v1/collections/${coll}/objects/${queryId}/spectrum`);
  const csv = ['wavelength_A,flux_1e-17'].concat(s.wavelength.map((w, i) => `${w},${s.flux[i]}`)).join('\n');
  const csvUpload = path.join(OUT, 'upload.csv');
  fs.writeFileSync(csvUpload, csv);
  await page.check('input[name="to"][value="spectrum"]');
  await page.setInputFiles('#q-spectrum', csvUpload);
  await page.waitForFunction(() => /uploaded spectrum/.test(document.getElementById('q-source').textContent)
    && /results in/.test(document.getElementById('status').textContent), null, { timeout: 60000 });
  assert.match(await page.textContent('#q-source'), /uploaded spectrum/);
  const up = await results();
  assert.equal(up[0].id, queryId, 'the uploaded spectrum finds its own object first');
  assert.ok(up[0].score > 0.99, `self score ${up[0].score}`);

  step('upload an ingested Galaxy Zoo JPEG to the JPEG collection');
  const jpeg = arg('jpeg');
  const jpegId = Number(arg('jpeg-id'));
  await page.selectOption('#collection', 'zoo');
  await page.waitForFunction(() => /objects/.test(document.getElementById('collection-info').textContent), null, { timeout: 30000 });
  await page.check('input[name="to"][value="image"]');
  await page.setInputFiles('#q-image', jpeg);
  await page.waitForFunction(() => /uploaded image/.test(document.getElementById('q-source').textContent)
    && /results in/.test(document.getElementById('status').textContent), null, { timeout: 60000 });
  const zoo = await results();
  assert.equal(zoo[0].id, jpegId, 'the uploaded JPEG finds its own ingested copy first');
  assert.ok(zoo[0].score >= 0.9999, `self score ${zoo[0].score}`);

  step('keyboard: Tab reaches the search button, focus is visible');
  await page.focus('#k');
  let reached = false;
  for (let i = 0; i < 20 && !reached; i += 1) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement && document.activeElement.id === 'search');
  }
  assert.ok(reached, 'Tab from k reaches the Search button');
  const outline = await page.$eval('#search', (e) => getComputedStyle(e).outlineStyle);
  assert.notEqual(outline, 'none', 'the focused button shows a focus ring');

  assert.deepEqual(pageErrors, [], 'no script errors in the page');
  step('all checks passed');
} catch (e) {
  if (page) await page.screenshot({ path: path.join(OUT, 'failure.png') }).catch(() => {});
  console.error(`[web] FAILED: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
