/*
 * app.js - the page of `nabla serve`: a drawing pad whose drawing is sent,
 * centred as MNIST's digits are, to /api/predict and /api/activations; the
 * first layer's kernels, the run's curves and the test set's confusion
 * matrix.  No framework and no build step: the server sends this file as it
 * is, and nothing is fetched from anywhere else.
 */
'use strict';

const PAD = 280;          // the pad's side in CSS pixels, and the PNG's
const FIT = 200;          // the drawing's box inside it: MNIST's 20 of 28
const PEN = 18;
const INK_MIN = 12;       // a pixel this much darker than white is ink
const DEBOUNCE_MS = 150;
const RUN_POLL_MS = 3000;
const IMAGE_PX = 56;      // tiles are magnified to at least this side
const KERNEL_PX = 40;
const MAX_IN_TILES = 16;  // as nabla visualize: at most 16 input channels shown
const GRID_LINE = [51, 102, 230];   // tools/grid.h's blue between tiles

const $ = (id) => document.getElementById(id);
const dpr = Math.max(1, Math.min(window.devicePixelRatio || 1, 4));

const state = {
  model: null,
  drawing: 0,          // bumped by reset: answers for an older drawing are dropped
  version: 0,          // bumped by every change of the drawing
  hasInk: false,
  busy: false,         // a request for the drawing is in flight
  queued: false,
  wantActivations: false,
  timer: 0,
  run: null,           // the last /api/run answer, redrawn on resize
};

/* ---- the API and the status line ---- */

const errors = new Map();

function setError(source, message) {
  if (message) errors.set(source, message);
  else errors.delete(source);
  const line = $('status');
  line.textContent = [...errors.values()].join(' · ');
  line.classList.toggle('error', errors.size > 0);
}

// The JSON answer of path; null for a 404 when allow404, else an Error
// carrying the server's {"error": ...} message.
async function api(path, { allow404 = false, ...options } = {}) {
  const res = await fetch(path, options).catch(() => {
    throw new Error(`${path}: the server does not answer`);
  });
  if (res.status === 404 && allow404) return null;
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${path}: ${body && body.error ? body.error : `${res.status} ${res.statusText}`}`);
  if (body === null) throw new Error(`${path}: the answer is not JSON`);
  return body;
}

const postPng = (blob) => ({ method: 'POST', headers: { 'Content-Type': 'image/png' }, body: blob });

const className = (k) => {
  const classes = (state.model && state.model.classes) || [];
  return classes[k] != null ? String(classes[k]) : String(k);
};
const percent = (p) => `${(100 * p).toFixed(1)} %`;
const shapeText = (shape) => `[${shape.join(', ')}]`;

// <tag attributes>children</tag>; children are nodes or text.
function element(tag, attributes = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

const makeCanvas = (width, height) => Object.assign(document.createElement('canvas'), { width, height });

/* ---- the pad ---- */

const pad = $('pad');
pad.width = pad.height = Math.round(PAD * dpr);
const ink = pad.getContext('2d', { willReadFrequently: true });

function clearPad() {
  ink.setTransform(1, 0, 0, 1, 0, 0);
  ink.fillStyle = '#fff';
  ink.fillRect(0, 0, pad.width, pad.height);
  ink.setTransform(dpr, 0, 0, dpr, 0, 0);
  Object.assign(ink, { strokeStyle: '#000', lineWidth: PEN, lineCap: 'round', lineJoin: 'round' });
}

function stroke(x0, y0, x1, y1) {
  ink.beginPath();
  ink.moveTo(x0, y0);
  ink.lineTo(x1, y1);
  ink.stroke();
}

// The drawing changed: predict soon.  While a stroke goes on the timer is
// not pushed back, so the prediction follows the pen every ~150 ms.
function changed(strokeEnded) {
  state.version++;
  delete $('result').dataset.class;   // the class shown is no longer this drawing's
  state.hasInk = true;
  $('pad-hint').hidden = true;
  if (strokeEnded) state.wantActivations = true;
  if (!state.timer) state.timer = setTimeout(predictNow, DEBOUNCE_MS);
}

let pen = null;   // the pointer drawing: {id, x, y}; other fingers are ignored

function padPoints(e) {
  const r = pad.getBoundingClientRect();
  const events = (e.getCoalescedEvents && e.getCoalescedEvents().length) ? e.getCoalescedEvents() : [e];
  return events.map((c) => [(c.clientX - r.left) * PAD / r.width, (c.clientY - r.top) * PAD / r.height]);
}

pad.addEventListener('pointerdown', (e) => {
  if (pen || (e.pointerType === 'mouse' && e.button !== 0)) return;
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  const [[x, y]] = padPoints(e);
  pen = { id: e.pointerId, x, y };
  stroke(x, y, x, y);   // a tap leaves a dot
  changed(false);
});

pad.addEventListener('pointermove', (e) => {
  if (!pen || e.pointerId !== pen.id) return;
  for (const [x, y] of padPoints(e)) {
    stroke(pen.x, pen.y, x, y);
    pen.x = x;
    pen.y = y;
  }
  changed(false);
});

function lift(e) {
  if (!pen || e.pointerId !== pen.id) return;
  pen = null;
  changed(true);
}
pad.addEventListener('pointerup', lift);
pad.addEventListener('pointercancel', lift);

// A box blur run twice (close to a gaussian) over the pad's gray values:
// the soft edges of the training images.  ctx.filter would do, but not in
// every browser.
function blurLine(src, dst, n, lines, step, stride, r) {
  const norm = 1 / (2 * r + 1);
  for (let l = 0; l < lines; l++) {
    const base = l * stride;
    let sum = 0;
    for (let i = -r; i <= r; i++) sum += src[base + Math.min(Math.max(i, 0), n - 1) * step];
    for (let i = 0; i < n; i++) {
      dst[base + i * step] = sum * norm;
      sum += src[base + Math.min(i + r + 1, n - 1) * step] - src[base + Math.max(i - r, 0) * step];
    }
  }
}

function blurPad() {
  if (!state.hasInk) return;
  const w = pad.width, h = pad.height;
  const img = ink.getImageData(0, 0, w, h);
  const gray = new Float32Array(w * h), tmp = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) gray[i] = img.data[4 * i];
  const r = Math.max(1, Math.round(2 * dpr));
  for (let pass = 0; pass < 2; pass++) {
    blurLine(gray, tmp, w, h, 1, w, r);
    blurLine(tmp, gray, h, w, w, 1, r);
  }
  for (let i = 0; i < w * h; i++) img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = gray[i];
  ink.putImageData(img, 0, 0);
  changed(true);
}

function reset() {
  clearPad();
  state.drawing++;
  state.version++;
  state.hasInk = false;
  clearTimeout(state.timer);
  state.timer = 0;
  $('pad-hint').hidden = false;
  $('label').textContent = '–';
  $('probability').textContent = '';
  delete $('result').dataset.class;
  drawBars(null);
  const view = $('input-view');
  view.getContext('2d').clearRect(0, 0, view.width, view.height);
  $('activations').replaceChildren(element('p', { class: 'empty' }, 'Draw something to see the activations.'));
}

/* ---- centring, as MNIST: crop to the ink, fit in 200 x 200, centre of mass in the middle ---- */

function inkBox(img) {
  let x0 = img.width, y0 = img.height, x1 = -1, y1 = -1;
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++)
      if (255 - img.data[4 * (y * img.width + x)] > INK_MIN) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
  return x1 < 0 ? null : { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

function centreOfMass(img) {
  let sum = 0, sx = 0, sy = 0;
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++) {
      const v = 255 - img.data[4 * (y * img.width + x)];
      sum += v; sx += v * (x + 0.5); sy += v * (y + 0.5);
    }
  return sum > 0 ? [sx / sum, sy / sum] : [img.width / 2, img.height / 2];
}

function whiteCanvas(w, h) {
  const c = makeCanvas(w, h);
  const g = c.getContext('2d', { willReadFrequently: true });
  g.fillStyle = '#fff';
  g.fillRect(0, 0, w, h);
  g.imageSmoothingQuality = 'high';
  return [c, g];
}

// The PNG to send (a Blob), or null when the pad is blank.
async function centredPng() {
  const [small, sg] = whiteCanvas(PAD, PAD);
  sg.drawImage(pad, 0, 0, PAD, PAD);
  const box = inkBox(sg.getImageData(0, 0, PAD, PAD));
  if (!box) return null;
  const scale = FIT / Math.max(box.w, box.h);
  const w = Math.max(1, Math.round(box.w * scale)), h = Math.max(1, Math.round(box.h * scale));
  const [fit, fg] = whiteCanvas(w, h);
  fg.drawImage(pad, box.x * dpr, box.y * dpr, box.w * dpr, box.h * dpr, 0, 0, w, h);
  const [cx, cy] = centreOfMass(fg.getImageData(0, 0, w, h));
  // Clamped so that a lopsided drawing is moved, never cut.
  const x = Math.min(Math.max(Math.round(PAD / 2 - cx), 0), PAD - w);
  const y = Math.min(Math.max(Math.round(PAD / 2 - cy), 0), PAD - h);
  const [out, og] = whiteCanvas(PAD, PAD);
  og.drawImage(fit, x, y);
  return new Promise((resolve) => out.toBlob(resolve, 'image/png'));
}

const dataUrl = (blob) => new Promise((resolve, reject) => {
  const reader = new FileReader();
  reader.onload = () => resolve(reader.result);
  reader.onerror = () => reject(reader.error);
  reader.readAsDataURL(blob);
});

/* ---- predicting: one request in flight at most, the newest drawing next ---- */

async function predictNow() {
  clearTimeout(state.timer);
  state.timer = 0;
  if (state.busy) {
    state.queued = true;
    return;
  }
  state.busy = true;
  try {
    do {
      state.queued = false;
      const drawing = state.drawing, version = state.version;
      const withActivations = state.wantActivations;
      state.wantActivations = false;
      const blob = await centredPng();
      if (!blob) {
        $('probability').textContent = 'Draw something first.';
        break;
      }
      window.nablaLastPng = await dataUrl(blob);
      const p = await api('/api/predict', postPng(blob));
      setError('predict', null);
      if (drawing !== state.drawing) continue;
      // An answer for an older version is shown (the pen moved on) but is
      // not "the" prediction: data-class waits for the current one.
      showPrediction(p, version === state.version);
      if (!withActivations) continue;
      if (version !== state.version) {
        state.wantActivations = true;
        continue;
      }
      const a = await api('/api/activations', { ...postPng(blob), allow404: true });
      if (drawing === state.drawing) showActivations(a);
    } while (state.queued);
  } catch (e) {
    setError('predict', e.message);
  } finally {
    state.busy = false;
  }
}

function showPrediction(p, current) {
  $('label').textContent = p.label != null ? p.label : String(p.class);
  $('probability').textContent = `class ${p.class} · ${percent(p.probability)}`;
  const result = $('result');
  if (current) result.dataset.class = String(p.class);
  else delete result.dataset.class;
  drawBars(p.probabilities, p.class);
  if (p.input) drawInput($('input-view'), p.input);
}

function drawBars(probabilities, top) {
  const bars = $('bars');
  const n = probabilities ? probabilities.length : bars.children.length;
  if (bars.children.length !== n) {
    bars.replaceChildren();
    for (let k = 0; k < n; k++)
      bars.append(element('div', { class: 'bar' },
        element('span', { class: 'name', title: className(k) },
          ...(className(k) === String(k) ? [String(k)] : [element('small', {}, String(k)), className(k)])),
        element('span', { class: 'track' }, element('span', { class: 'fill' })),
        element('span', { class: 'value' })));
  }
  [...bars.children].forEach((row, k) => {
    const p = probabilities ? probabilities[k] : 0;
    row.classList.toggle('best', probabilities !== null && k === top);
    row.querySelector('.fill').style.width = `${(100 * p).toFixed(2)}%`;
    row.querySelector('.value').textContent = probabilities ? percent(p) : '';
  });
}

// An image {channels, height, width, pixels} (channel-major) on canvas c,
// one canvas pixel per image pixel: CSS magnifies it, pixelated.
function drawInput(c, input) {
  const { channels, height, width, pixels } = input;
  c.width = width;
  c.height = height;
  const g = c.getContext('2d');
  const img = g.createImageData(width, height);
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let k = 0; k < 3; k++) img.data[4 * i + k] = pixels[(channels === 3 ? k * plane : 0) + i];
    img.data[4 * i + 3] = 255;
  }
  g.putImageData(img, 0, 0);
}

/* ---- grids of tiles, as nabla visualize draws them (tools/grid.c) ---- */

// Near-square columns; a full rectangle when one is at most twice as wide as tall.
function gridColumns(n) {
  let c = 1;
  while (c * c < n) c++;
  for (let k = c; k <= 2 * c; k++) if (n % k === 0 && k <= 2 * (n / k)) return k;
  return c;
}

const gray = (v) => [v, v, v];
const gridZoom = (side, minPx) => (side <= 0 || side >= minPx ? 1 : Math.ceil(minPx / side));

// rows x cols tiles of h x w, each magnified zoom times, 1 px lines between;
// rgb(tile, y, x) gives a pixel as [r, g, b], or null where no tile is.
function gridCanvas(rows, cols, h, w, zoom, rgb) {
  const W = cols * (w * zoom + 1) + 1, H = rows * (h * zoom + 1) + 1;
  const c = makeCanvas(W, H);
  const g = c.getContext('2d');
  const img = g.createImageData(W, H);
  const d = img.data;
  for (let i = 0; i < W * H; i++) {
    d.set(GRID_LINE, 4 * i);
    d[4 * i + 3] = 255;
  }
  for (let t = 0; t < rows * cols; t++) {
    const top = 1 + Math.floor(t / cols) * (h * zoom + 1), left = 1 + (t % cols) * (w * zoom + 1);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const p = rgb(t, y, x);
        if (!p) continue;
        for (let dy = 0; dy < zoom; dy++) {
          const at = 4 * ((top + y * zoom + dy) * W + left + x * zoom);
          for (let dx = 0; dx < zoom; dx++) d.set(p, at + 4 * dx);
        }
      }
  }
  g.putImageData(img, 0, 0);
  c.style.width = `${W}px`;   // one CSS pixel each, crisp on any density
  return c;
}

// Hides a part of "Inside the network", and the card once it is empty.
function hidePart(id) {
  $(id).hidden = true;
  if ($('activations-part').hidden && $('kernels-part').hidden) $('inside-card').hidden = true;
}

const figure = (canvas, caption) => element('figure', {}, canvas, element('figcaption', {}, caption));

function showActivations(a) {
  const box = $('activations');
  if (!a) {
    hidePart('activations-part');   // 404: this server has none
    return;
  }
  if (!a.layers.length) {
    box.replaceChildren(element('p', { class: 'empty' }, 'No layer of this model gives an image.'));
    return;
  }
  box.replaceChildren(...a.layers.map((layer) => {
    const [n, h, w] = layer.shape;
    const cols = gridColumns(n), rows = Math.ceil(n / cols);
    const canvas = gridCanvas(rows, cols, h, w, gridZoom(Math.max(h, w), IMAGE_PX),
      (t, y, x) => (t < n ? gray(layer.pixels[(t * h + y) * w + x]) : null));
    return figure(canvas, `${layer.name} (${layer.type}) ${shapeText(layer.shape)}`);
  }));
  box.dataset.layers = String(a.layers.length);
}

async function loadKernels() {
  const k = await api('/api/kernels', { allow404: true }).catch((e) => setError('kernels', e.message));
  if (k === undefined) return;   // an error, in the status line
  if (!k) {
    hidePart('kernels-part');
    return;
  }
  const [o, c, kh, kw] = k.shape;
  const px = k.pixels, plane = kh * kw;
  const zoom = gridZoom(Math.max(kh, kw), KERNEL_PX);
  let canvas;
  if (c === 1 || c === 3) {
    // One tile a kernel, in colour when it has 3 input channels.
    const cols = gridColumns(o);
    canvas = gridCanvas(Math.ceil(o / cols), cols, kh, kw, zoom, (t, y, x) => {
      if (t >= o) return null;
      const at = t * c * plane + y * kw + x;
      return c === 3 ? [px[at], px[at + plane], px[at + 2 * plane]] : gray(px[at]);
    });
  } else {
    // A row a kernel, a tile for each of its (first 16) input channels.
    const cols = Math.min(c, MAX_IN_TILES);
    canvas = gridCanvas(o, cols, kh, kw, zoom,
      (t, y, x) => gray(px[((Math.floor(t / cols) * c + t % cols) * kh + y) * kw + x]));
  }
  $('kernels-title').textContent = `Kernels of ${k.layer}`;
  $('kernels').replaceChildren(figure(canvas, `${k.layer} weight ${shapeText(k.shape)}`));
  $('kernels').dataset.layer = k.layer;
}

/* ---- the run's curves ---- */

function cssColour(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// Ticks at 1, 2 or 5 times a power of ten, about n of them over lo..hi.
function ticks(lo, hi, n) {
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
  return { values: out, step };
}

// A polyline through points [[x, y]] (canvas pixels) in colour, dashed or not.
function path(g, points, colour, width, dash = []) {
  g.strokeStyle = colour;
  g.lineWidth = width;
  g.setLineDash(dash);
  g.beginPath();
  points.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
  g.stroke();
  g.setLineDash([]);
}

// A line chart on canvas c: series [{name, colour, dashed, points: [[epoch, y|null]]}]
// (null breaks the line), marks [{x, text}] as vertical dashed lines.
function drawChart(c, title, series, marks, xMax) {
  const cssW = c.clientWidth || 320, cssH = c.clientHeight || 240;
  c.width = Math.round(cssW * dpr);
  c.height = Math.round(cssH * dpr);
  const g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  const fg = cssColour('--fg'), muted = cssColour('--muted'), grid = cssColour('--grid');
  const left = 48, top = 30, pw = cssW - left - 12, ph = cssH - top - 36, bottom = top + ph;

  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  let lo = ys.length ? Math.min(...ys) : 0, hi = ys.length ? Math.max(...ys) : 1;
  const margin = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 0.1;
  const yt = ticks(lo - margin, hi + margin, 5);
  lo = Math.min(lo - margin, yt.values[0]);
  hi = Math.max(hi + margin, yt.values[yt.values.length - 1]);
  const x1 = Math.max(2, xMax);
  const X = (x) => left + 8 + (x - 1) / (x1 - 1) * (pw - 16);   // dots clear of the axes
  const Y = (y) => top + (hi - y) / (hi - lo) * ph;

  g.font = '11px system-ui, sans-serif';
  g.textBaseline = 'middle';
  g.textAlign = 'right';
  g.fillStyle = muted;
  const digits = Math.max(0, -Math.floor(Math.log10(yt.step)));
  for (const v of yt.values) {
    path(g, [[left, Y(v)], [left + pw, Y(v)]], grid, 1);
    g.fillText(v.toFixed(digits), left - 6, Y(v));
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  for (const v of ticks(1, x1, Math.min(8, x1 - 1)).values.filter(Number.isInteger)) {
    path(g, [[X(v), bottom], [X(v), bottom + 4]], muted, 1);
    g.fillText(String(v), X(v), bottom + 6);
  }
  g.fillText('epoch', left + pw / 2, bottom + 20);
  path(g, [[left, top], [left, bottom], [left + pw, bottom]], muted, 1);

  g.fillStyle = fg;
  marks.forEach((m, i) => {
    path(g, [[X(m.x), top], [X(m.x), bottom]], fg, 1, [3, 3]);
    const right = X(m.x) > left + pw - 60;
    g.textAlign = right ? 'right' : 'left';
    g.fillText(m.text, X(m.x) + (right ? -4 : 4), top + 2 + 13 * i);
  });

  for (const s of series) {
    // Runs of finite points are lines; every point is a dot, so one epoch shows.
    const runs = [[]];
    for (const [x, y] of s.points) {
      if (Number.isFinite(y)) runs[runs.length - 1].push([X(x), Y(y)]);
      else if (runs[runs.length - 1].length) runs.push([]);
    }
    g.fillStyle = s.colour;
    for (const r of runs) {
      path(g, r, s.colour, 2, s.dashed ? [6, 4] : []);
      for (const [x, y] of r) { g.beginPath(); g.arc(x, y, 3, 0, 2 * Math.PI); g.fill(); }
    }
  }

  // The title on the left, the legend on the right of the top line.
  g.textBaseline = 'middle';
  g.textAlign = 'left';
  g.fillStyle = fg;
  g.font = '600 12px system-ui, sans-serif';
  g.fillText(title, left, 12);
  g.font = '11px system-ui, sans-serif';
  let lx = left + pw;
  for (const s of [...series].reverse()) {
    if (!s.points.some((p) => Number.isFinite(p[1]))) continue;
    lx -= g.measureText(s.name).width;
    g.fillText(s.name, lx, 12);
    path(g, [[lx - 24, 12], [lx - 6, 12]], s.colour, 2, s.dashed ? [4, 3] : []);
    lx -= 38;
  }
}

function drawCurves() {
  const run = state.run;
  if (!run) return;
  const value = (row, name) => (run.columns.includes(name) ? row[run.columns.indexOf(name)] : null);
  const epochs = run.rows.map((r) => value(r, 'epoch'));
  const line = (name, label, colour, dashed) =>
    ({ name: label, colour, dashed, points: run.rows.map((r, i) => [epochs[i], value(r, name)]) });
  const train = cssColour('--train'), val = cssColour('--val');
  // The last epoch flagged best is the run's best; restored names the epoch
  // whose weights early stopping kept (most often the same one).
  const best = run.rows.filter((r) => value(r, 'best') === 1).map((r) => value(r, 'epoch')).pop();
  const restored = run.rows.map((r) => value(r, 'restored')).find((k) => k > 0);
  const marks = [];
  if (best) marks.push({ x: best, text: best === restored ? `best ${best}, restored` : `best ${best}` });
  if (restored && restored !== best) marks.push({ x: restored, text: `restored ${restored}` });
  const xMax = Math.max(1, ...epochs.filter(Number.isFinite));
  drawChart($('loss-chart'), 'loss', [line('train_loss', 'train', train, false),
    line('val_loss', 'validation', val, true)], marks, xMax);
  drawChart($('accuracy-chart'), 'accuracy', [line('train_accuracy', 'train', train, false),
    line('val_accuracy', 'validation', val, true)], marks, xMax);
  $('curves').dataset.rows = String(run.rows.length);
}

async function pollRun() {
  if (!document.hidden) {
    try {
      const run = await api('/api/run', { allow404: true });
      if (!run) {
        $('training-card').hidden = true;
        return;   // no run: stop asking
      }
      setError('run', null);
      state.run = run;
      const n = run.rows.length;
      $('run-dir').textContent = `${run.run}: ${n ? `${n} epoch${n > 1 ? 's' : ''}` : 'the first epoch is running'}`;
      drawCurves();
    } catch (e) {
      setError('run', e.message);
    }
  }
  setTimeout(pollRun, RUN_POLL_MS);
}

/* ---- the test set ---- */

async function loadEval() {
  const box = $('confusion');
  box.replaceChildren(element('p', { class: 'empty' }, 'Evaluating the test set…'));
  const e = await api('/api/eval', { allow404: true }).catch((err) => setError('eval', err.message));
  if (e === undefined) {
    box.replaceChildren();
    return;
  }
  if (!e) {
    $('test-card').hidden = true;
    return;
  }
  $('eval-summary').textContent =
    `${e.examples.toLocaleString('en')} test images: accuracy ${percent(e.accuracy)}, loss ${e.loss.toFixed(4)}. ` +
    'Rows are the true classes, columns the predicted ones.';
  const classes = [...Array(e.classes).keys()];
  const table = element('table', {}, element('tr', {}, element('th', {}, 'true \\ predicted'),
    ...classes.map((k) => element('th', { title: className(k) }, String(k))),
    element('th', { class: 'row' }, 'accuracy')));
  const accent = cssColour('--accent'), wrong = cssColour('--wrong');
  e.confusion.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    const cells = row.map((count, k) => {
      // Errors are rarer than hits: their colour is stretched to show.
      const alpha = k === t ? count / total : Math.min(1, 4 * count / total);
      const td = element('td', { class: 'cell', title: `${className(t)} taken for ${className(k)}: ${count}` }, String(count));
      td.style.background = `color-mix(in srgb, ${k === t ? accent : wrong} ${Math.round(100 * alpha)}%, transparent)`;
      if (alpha > 0.55) td.style.color = '#fff';
      return td;
    });
    const pc = e.per_class.find((p) => p.class === t);
    const bar = element('span', { class: 'acc-bar' });
    if (pc) bar.style.width = `${(4 * pc.accuracy).toFixed(2)}em`;
    table.append(element('tr', {}, element('th', { class: 'row' }, `${t} ${className(t)}`), ...cells,
      element('td', { class: 'accuracy' }, ...(pc ? [bar, percent(pc.accuracy)] : []))));
  });
  box.replaceChildren(table);
  box.dataset.classes = String(e.classes);
}

/* ---- the model ---- */

function showModel(m) {
  state.model = m;
  $('model-name').textContent = m.name;
  $('model-params').textContent = `${m.total_params.toLocaleString('en')} parameters`;
  document.title = `nabla · ${m.name}`;
  $('layers').replaceChildren(
    element('tr', {}, ...['name', 'type', 'output', 'params'].map((h) => element('th', {}, h))),
    ...m.layers.map((l) => element('tr', l.trainable === false ? { class: 'frozen', title: 'frozen' } : {},
      ...[l.name, l.type, shapeText(l.output_shape), l.params.toLocaleString('en')].map((v) => element('td', {}, v)))));
  $('weights-path').textContent = `input ${shapeText(m.input_shape)} · weights ${m.weights}`;
  drawBars(m.classes.map(() => 0), -1);   // the rows, named, before any drawing
  drawBars(null);
}

async function loadModel() {
  let m;
  try {
    m = await api('/api/model');
  } catch (e) {
    setError('model', `${e.message} (retrying)`);
    setTimeout(loadModel, 2000);
    return;
  }
  setError('model', null);
  showModel(m);
  loadKernels();
  if (m.run) {
    $('training-card').hidden = false;
    pollRun();
    new ResizeObserver(drawCurves).observe($('curves'));
  }
  if (m.test) {
    $('test-card').hidden = false;
    loadEval();
  }
}

clearPad();
$('reset').addEventListener('click', reset);
$('blur').addEventListener('click', blurPad);
$('predict').addEventListener('click', () => {
  state.wantActivations = true;
  predictNow();
});
loadModel();
