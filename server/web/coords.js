// Sky-position parsing for the query box. Accepts decimal degrees ("150.1191 2.2058",
// "150.1191, -2.2058") or sexagesimal RA (hours) / Dec (degrees) with ':' or spaces or
// h m s / d m s marks ("10:00:28.6 +02:12:21", "10h00m28.6s -02d12m21s").
// Returns {ra, dec} in ICRS degrees or throws an Error whose message names the problem.

const MARKS = /[hHdDmMsS°'′"″:,]/g;

function parseParts(tokens, what) {
  const nums = tokens.map((t) => {
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) {
      throw new Error(`${what}: "${t}" is not a number`);
    }
    return Number(t);
  });
  return nums;
}

function sexagesimal(tokens, what, max) {
  // The sign applies to the whole value, even when the leading field is 0 ("-00 30 00").
  const negative = tokens[0].startsWith('-');
  const nums = parseParts(tokens, what).map(Math.abs);
  const [a, b = 0, c = 0] = nums;
  if (b >= 60) throw new Error(`${what}: minutes must be below 60 (got ${b})`);
  if (c >= 60) throw new Error(`${what}: seconds must be below 60 (got ${c})`);
  if (nums.length > 1 && !Number.isInteger(a)) {
    throw new Error(`${what}: the leading field must be whole when minutes follow (got ${a})`);
  }
  const v = a + b / 60 + c / 3600;
  if (v > max) throw new Error(`${what}: must be at most ${max} (got ${v.toFixed(4)})`);
  return negative ? -v : v;
}

/** Parses a sky position; returns {ra, dec} in degrees. */
export function parsePosition(text) {
  const raw = String(text || '').trim();
  if (!raw) throw new Error('position: enter RA and Dec, e.g. "150.1191 2.2058" or "10:00:28.6 +02:12:21"');
  const sexa = /[:hHmMsS]/.test(raw) || /°|′|″|'|"/.test(raw);
  // Split RA from Dec: the Dec starts at an explicit sign, or after the first half
  // of the space-separated fields.
  const cleaned = raw.replace(MARKS, ' ').replace(/([0-9.])([+-])/g, '$1 $2').trim();
  const tokens = cleaned.split(/\s+/).filter(Boolean);
  let raT;
  let decT;
  const signAt = tokens.findIndex((t, i) => i > 0 && /^[+-]/.test(t));
  if (signAt > 0) {
    raT = tokens.slice(0, signAt);
    decT = tokens.slice(signAt);
  } else if (tokens.length % 2 === 0) {
    raT = tokens.slice(0, tokens.length / 2);
    decT = tokens.slice(tokens.length / 2);
  } else {
    throw new Error(`position: cannot tell RA from Dec in "${raw}" (give a sign on the Dec, e.g. +02:12:21)`);
  }
  if (raT.length > 3 || decT.length > 3) {
    throw new Error(`position: too many fields in "${raw}" (RA and Dec take at most h m s / d m s each)`);
  }
  let ra;
  let dec;
  if (!sexa && raT.length === 1 && decT.length === 1) {
    [ra] = parseParts(raT, 'RA');
    [dec] = parseParts(decT, 'Dec');
    if (!(ra >= 0 && ra < 360)) throw new Error(`RA: must be in [0, 360) degrees (got ${ra})`);
  } else {
    ra = sexagesimal(raT, 'RA (hours)', 24) * 15;
    if (ra < 0) throw new Error('RA (hours): must not be negative');
    if (ra >= 360) ra -= 360;
  }
  if (dec === undefined) dec = sexagesimal(decT, 'Dec (degrees)', 90);
  if (!(dec >= -90 && dec <= 90)) throw new Error(`Dec: must be in [-90, 90] degrees (got ${dec})`);
  return { ra, dec };
}

function pad(n, width, digits) {
  const s = n.toFixed(digits);
  const [i, f] = s.split('.');
  return i.padStart(width, '0') + (f !== undefined ? `.${f}` : '');
}

/** RA (deg) as "hh:mm:ss.s". */
export function raSexagesimal(ra) {
  let s = Math.round((((ra % 360) + 360) % 360) / 15 * 36000) / 10; // seconds of time, 0.1 s
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return `${pad(h % 24, 2, 0)}:${pad(m, 2, 0)}:${pad(s, 2, 1)}`;
}

/** Dec (deg) as "±dd:mm:ss". */
export function decSexagesimal(dec) {
  const sign = dec < 0 ? '-' : '+';
  let s = Math.round(Math.abs(dec) * 3600);
  const d = Math.floor(s / 3600); s -= d * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return `${sign}${pad(d, 2, 0)}:${pad(m, 2, 0)}:${pad(s, 2, 0)}`;
}
