// The demo page: samples, your own face, attribute edits, blends and home-made directions.
// All model work goes through the SharedModel of glow-face.js (one download, one GlowModel
// per model, calls queued one at a time). Everything runs in this page: no request ever
// carries an image.
//
// URL state: ?model=models/NAME&seed=N&t=0.7&tl=0.7,0.5,0.9 (per-level temperatures)
//            &grid=4 (faces per side) &backend=auto|webgpu|cpu

import { loadModel, release, drawImage, prettyName, activity } from './glow-face.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const state = {
  models: [], // model URLs as listed in models/index.json (relative)
  modelUrl: null,
  shared: null,
  seed: clampSeed(params.get('seed') ?? 1),
  temperature: clamp01(parseFloat(params.get('t') ?? '0.7'), 0.7),
  perLevel: parseLevels(params.get('tl')),
  gridSide: 4, // set per model: ?grid=N, else 4 (2 on the slower CPU engine)
  backend: ['auto', 'webgpu', 'cpu'].includes(params.get('backend')) ? params.get('backend') : 'auto',
  faces: [], // grid faces: {label, eps (temperature applied), rgba}
  gen: 0, // grid generation, bumped by every new request
  current: { kind: 'grid', index: 0 }, // the face being edited
  a: { kind: 'grid', index: 0 },
  b: { kind: 'grid', index: 1 },
  you: null, // {label, eps, rgba, quant, bpd, err}
  amounts: null, // Float32Array, one per model attribute
  custom: [], // {name, vec, amount}
  marks: { with: [], without: [] }, // {eps, rgba}
  source: null, // {canvas, crop:{x, y, w}} the user's photo
  msPerImage: null,
};

function clamp01(v, d) { return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : d; }
function clampSeed(v) { const n = Number(v); return Number.isFinite(n) && n >= 0 ? Math.floor(n) >>> 0 : 1; }
function parseLevels(s) {
  if (!s) return null;
  const v = s.split(',').map(Number);
  return v.length && v.every(Number.isFinite) ? v.map((x) => clamp01(x, 0.7)) : null;
}

// ------------------------------------------------------------------------------------
// Status, errors, progress

function setStatus(text, title = '') {
  $('status').textContent = text;
  $('status').title = title;
}

function showError(e) {
  const msg = e && e.message ? e.message : String(e);
  console.error(e);
  $('error').textContent = msg;
  $('error').hidden = false;
}

function clearError() { $('error').hidden = true; }

function showProgress(loaded, total) {
  $('progress').hidden = false;
  const pct = total ? Math.min(100, (100 * loaded) / total) : 0;
  $('progress-fill').style.width = `${pct.toFixed(1)}%`;
  $('progress-text').textContent = total
    ? `Downloading the model: ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`
    : `Downloading the model: ${(loaded / 1e6).toFixed(1)} MB`;
}

function describeBackend(shared) {
  const parts = [shared.backend === 'webgpu' ? 'WebGPU' : 'CPU (WebAssembly)'];
  if (shared.backend === 'webgpu') parts.push(shared.adapterInfo);
  else if (shared.reason) parts.push(shared.reason);
  if (state.msPerImage != null) parts.push(`${state.msPerImage < 10 ? state.msPerImage.toFixed(1) : Math.round(state.msPerImage)} ms per image`);
  return parts.join(' · ');
}

function updateStatus() {
  if (state.shared) setStatus(describeBackend(state.shared), state.shared.adapterInfo);
}

/** Runs fn; calls made while it runs collapse into one more run afterwards. */
function coalesced(fn) {
  let running = false;
  let again = false;
  return async function run() {
    if (running) { again = true; return; }
    running = true;
    activity(1);
    try {
      do { again = false; await fn(); } while (again);
    } catch (e) {
      showError(e);
    } finally {
      running = false;
      activity(-1);
    }
  };
}

/**
 * Work for a section that only matters when it can be seen: run now if the section is on
 * screen (or near), else once it scrolls into view. Keeps a slow adapter busy with the
 * pictures the visitor is looking at, not with every section of the page.
 */
const lazySections = new Map();
const sectionObserver = typeof IntersectionObserver === 'function'
  ? new IntersectionObserver((entries) => {
    for (const e of entries) {
      const x = lazySections.get(e.target);
      x.visible = e.isIntersecting;
      if (x.visible && x.dirty) {
        x.dirty = false;
        x.run();
      }
    }
  }, { rootMargin: '150px' })
  : null;

function whenVisible(section, run) {
  if (!sectionObserver) return run;
  const entry = { visible: false, dirty: false, run };
  lazySections.set(section, entry);
  sectionObserver.observe(section);
  return () => {
    if (entry.visible) run();
    else entry.dirty = true;
  };
}

function bump(el) { el.dataset.renders = String((Number(el.dataset.renders) || 0) + 1); }

// ------------------------------------------------------------------------------------
// URL state

function writeUrl() {
  const q = new URLSearchParams();
  if (state.modelUrl && state.modelUrl !== state.models[0]) q.set('model', state.modelUrl);
  q.set('seed', String(state.seed));
  q.set('t', state.temperature.toFixed(2));
  if (state.perLevel) q.set('tl', state.perLevel.map((x) => x.toFixed(2)).join(','));
  if (params.has('grid')) q.set('grid', String(state.gridSide));
  if (state.backend !== 'auto') q.set('backend', state.backend);
  history.replaceState(null, '', `${location.pathname}?${q}`);
}

// ------------------------------------------------------------------------------------
// Models

async function listModels() {
  const r = await fetch('models/index.json', { cache: 'no-cache' });
  if (!r.ok) throw new Error(`models/index.json: HTTP ${r.status}. Build the site with ./build.sh build.`);
  const list = await r.json();
  if (!Array.isArray(list) || !list.length) throw new Error('models/index.json lists no models (models/SHIPPED is empty?)');
  return list.map((u) => String(u).replace(/\/+$/, ''));
}

async function fillModelPicker() {
  const sel = $('model');
  sel.replaceChildren(...state.models.map((u) => {
    const o = document.createElement('option');
    o.value = u;
    o.textContent = u.split('/').pop();
    return o;
  }));
  sel.value = state.modelUrl;
  sel.disabled = state.models.length < 2;
  // Nicer labels from each model.json (small files), when they come.
  await Promise.all(state.models.map(async (u, i) => {
    try {
      const c = await (await fetch(`${u}/model.json`, { cache: 'no-cache' })).json();
      const im = c.image || {};
      const attrs = c.attributes && c.attributes.names ? ` · ${c.attributes.names.length} attributes` : '';
      sel.options[i].textContent = `${c.name || u.split('/').pop()} · ${im.width}×${im.height}${im.channels === 1 ? ' grey' : ''}${attrs}`;
    } catch { /* keep the directory name */ }
  }));
}

async function switchModel(url) {
  clearError();
  const token = {};
  switchModel.token = token;
  state.modelUrl = url;
  $('model').value = url;
  writeUrl();
  if (state.shared) {
    release(state.shared);
    state.shared = null;
  }
  document.body.dataset.ready = '';
  setStatus('Loading the model…');
  $('model').disabled = true;
  let shared;
  const t0 = performance.now();
  try {
    shared = await loadModel(url, { backend: state.backend, batch: 4, onProgress: showProgress });
  } catch (e) {
    $('progress').hidden = true;
    setStatus('The model could not be loaded.');
    showError(new Error(`Could not load ${url}: ${e.message || e}`));
    $('model').disabled = state.models.length < 2;
    return;
  }
  if (switchModel.token !== token) { release(shared); return; }
  $('model').disabled = state.models.length < 2;
  $('progress').hidden = true;
  state.shared = shared;
  state.msPerImage = null;
  const loadMs = performance.now() - t0;
  console.info(`model ${shared.name}: ${(shared.bytes / 1e6).toFixed(1)} MB ${shared.cached ? 'from Cache Storage' : 'downloaded'}, ready in ${Math.round(loadMs)} ms on ${shared.backend}`);
  document.body.dataset.backend = shared.backend;
  document.body.dataset.cached = shared.cached ? '1' : '0';

  const notice = $('notice');
  if (shared.notice) {
    notice.textContent = `No WebGPU here: ${shared.notice} Glow still works, on the CPU in WebAssembly, just more slowly. For GPU speed use a browser with WebGPU (a recent Chrome, Edge or Safari).`;
    notice.hidden = false;
  } else {
    notice.hidden = true;
  }
  updateStatus();

  const c = shared.config;
  $('model-info').textContent = `${shared.name}: ${shared.width}×${shared.height} ${shared.channels === 1 ? 'greyscale' : 'RGB'}, ${shared.levels} levels × ${c.steps} steps, ${c.coupling} coupling, ${c.n_bits}-bit.`;
  fillAbout(shared);
  for (const h of document.querySelectorAll('[data-faces]')) h.textContent = shared.channels === 3 ? h.dataset.faces : h.dataset.other;
  $('you-input-cap').textContent = `What the model sees (${shared.width}×${shared.height}, ${c.n_bits}-bit)`;
  $('eye-line').hidden = shared.channels === 1;
  $('invert-row').hidden = shared.channels !== 1;
  placeEyeGuide();
  document.documentElement.style.setProperty('--aspect', `${shared.width} / ${shared.height}`);

  // Per-model state.
  state.gridSide = params.has('grid')
    ? Math.max(1, Math.min(8, parseInt(params.get('grid'), 10) || 4))
    : shared.backend === 'cpu' ? 2 : 4;
  state.amounts = new Float32Array(shared.attributeNames.length);
  state.custom = [];
  state.marks = { with: [], without: [] };
  state.you = null;
  state.faces = [];
  state.current = { kind: 'grid', index: 0 };
  state.a = { kind: 'grid', index: 0 };
  state.b = { kind: 'grid', index: Math.min(1, state.gridSide * state.gridSide - 1) };
  if (state.perLevel && state.perLevel.length !== shared.levels) state.perLevel = null;
  buildLevels();
  buildAttributeSliders();
  renderMarks();
  updateYouButtons();
  buildGrid();
  buildStrip();
  if (state.source) {
    setCropAspect();
    requestEncode();
  } else {
    clearYou();
  }
  await runGrid();
}

/** "About this model": data, licence and the measured numbers from model.json. */
function fillAbout(shared) {
  const c = shared.config;
  const rows = [];
  const m = c.metrics || {};
  const data = c.data || {};
  if (data.name) rows.push(['Data', data.name]);
  if (data.licence) rows.push(['Licence', data.licence]);
  if (Number.isFinite(m.test_bpd)) rows.push(['Test bits/dim', `${m.test_bpd.toFixed(3)}${Number.isFinite(m.test_bpd_dequantized) ? ` (dequantized bound ${m.test_bpd_dequantized.toFixed(3)})` : ''}`]);
  if (Number.isFinite(m.parameters)) rows.push(['Parameters', m.parameters.toLocaleString('en')]);
  if (Number.isFinite(m.train_seconds)) rows.push(['Training', `${(m.train_seconds / 60).toFixed(0)} min${m.hardware ? ` on ${m.hardware}` : ''}`]);
  rows.push(['Download', `${(shared.bytes / 1e6).toFixed(2)} MB${shared.cached ? ' (from this browser\'s cache)' : ''}`]);
  if (shared.attributeNames.length) rows.push(['Attributes', `${shared.attributeNames.length} directions`]);
  $('about-list').replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    return [dt, dd];
  }));
}

// ------------------------------------------------------------------------------------
// Samples grid

function temps() {
  return state.perLevel ? state.perLevel.slice() : state.temperature;
}

function canvasEl(cls = 'pix') {
  const c = document.createElement('canvas');
  c.className = cls;
  c.width = state.shared ? state.shared.width : 1;
  c.height = state.shared ? state.shared.height : 1;
  return c;
}

function buildGrid() {
  const grid = $('grid');
  const n = state.gridSide * state.gridSide;
  grid.style.setProperty('--cols', String(state.gridSide));
  grid.replaceChildren();
  for (let i = 0; i < n; i++) {
    const tile = document.createElement('div');
    tile.className = 'tile loading';
    tile.setAttribute('role', 'listitem');
    const c = canvasEl();
    c.tabIndex = 0;
    c.setAttribute('role', 'button');
    c.setAttribute('aria-label', `Face ${i + 1}: edit it`);
    c.addEventListener('click', () => selectFace({ kind: 'grid', index: i }));
    c.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); selectFace({ kind: 'grid', index: i }); } });
    const marks = document.createElement('div');
    marks.className = 'marks';
    for (const [kind, sym, label] of [['with', '+', 'has the feature'], ['without', '−', 'does not have the feature']]) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `mark ${kind}`;
      b.textContent = sym;
      b.title = `Mark: ${label}`;
      b.setAttribute('aria-label', `Face ${i + 1} ${label}`);
      b.addEventListener('click', (e) => { e.stopPropagation(); markFace(i, kind); });
      marks.append(b);
    }
    tile.append(c, marks);
    grid.append(tile);
  }
  highlightSelection();
}

function highlightSelection() {
  const tiles = $('grid').children;
  for (let i = 0; i < tiles.length; i++) {
    tiles[i].classList.toggle('selected', state.current.kind === 'grid' && state.current.index === i);
  }
}

/** Samples the grid; a newer request cancels an older one between batches. */
const runGridLoop = coalesced(async () => {
  const shared = state.shared;
  if (!shared) return;
  const gen = state.gen;
  const n = state.gridSide * state.gridSide;
  const eps = shared.sampleEps(n, state.seed, temps());
  const faces = [];
  const tiles = $('grid').children;
  for (const t of tiles) t.classList.add('loading');
  $('grid').dataset.seed = String(state.seed);
  const r = await shared.decodeChunked(eps, n, (rgba, first, count) => {
    const size = shared.width * shared.height * 4;
    for (let k = 0; k < count; k++) {
      const i = first + k;
      faces[i] = {
        shared,
        label: `Sample ${i + 1} (seed ${state.seed})`,
        eps: eps.slice(i * shared.dim, (i + 1) * shared.dim),
        rgba: rgba.slice(k * size, (k + 1) * size),
      };
      drawImage(tiles[i].firstChild, rgba, shared.width, shared.height, k);
      tiles[i].classList.remove('loading');
    }
  }, () => gen !== state.gen || shared !== state.shared);
  if (!r) return; // superseded
  state.faces = faces;
  state.msPerImage = r.msPerImage;
  updateStatus();
  bump($('grid'));
  document.body.dataset.ready = '1'; // the page's "loaded and drawn" marker (tests wait for it)
  // Faces that point into the grid follow it.
  if (state.current.kind === 'grid') renderEdit();
  if (state.a.kind === 'grid' || state.b.kind === 'grid') renderInterp();
});

function runGrid() {
  state.gen++;
  return runGridLoop();
}

function selectFace(ref) {
  state.current = ref;
  highlightSelection();
  renderEdit();
}

function resolve(ref) {
  const face = ref.kind === 'you' ? state.you : state.faces[ref.index];
  return face && face.shared === state.shared ? face : null; // never a face of another model
}

// Temperature controls.
function buildLevels() {
  const box = $('levels');
  box.replaceChildren();
  const L = state.shared.levels;
  for (let l = 0; l < L; l++) {
    const row = document.createElement('div');
    row.className = 'level';
    const id = `level-${l}`;
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = l === 0 ? 'L1 · fine detail' : l === L - 1 ? `L${l + 1} · overall shape` : `L${l + 1}`;
    label.title = `Temperature of level ${l + 1} of ${L} (level 1 holds the finest detail, level ${L} the overall shape)`;
    const input = document.createElement('input');
    input.type = 'range';
    input.id = id;
    input.min = '0';
    input.max = '1';
    input.step = '0.01';
    const out = document.createElement('output');
    input.addEventListener('input', () => {
      if (!state.perLevel) state.perLevel = Array(L).fill(state.temperature);
      state.perLevel[l] = Number(input.value);
      out.value = Number(input.value).toFixed(2);
      writeUrl();
      runGrid();
    });
    row.append(label, input, out);
    box.append(row);
  }
  if (state.perLevel) $('advanced').open = true;
  syncTemperatureUi();
}

function syncTemperatureUi() {
  $('temperature').value = String(state.temperature);
  $('temperature-out').value = state.temperature.toFixed(2);
  const t = state.perLevel || Array(state.shared ? state.shared.levels : 0).fill(state.temperature);
  const rows = $('levels').children;
  for (let l = 0; l < rows.length; l++) {
    rows[l].querySelector('input').value = String(t[l]);
    rows[l].querySelector('output').value = t[l].toFixed(2);
  }
  $('seed').value = String(state.seed);
}

function setupSampleControls() {
  $('temperature').addEventListener('input', () => {
    state.temperature = clamp01(Number($('temperature').value), 0.7);
    state.perLevel = null;
    syncTemperatureUi();
    writeUrl();
    runGrid();
  });
  $('levels-reset').addEventListener('click', () => {
    state.perLevel = null;
    syncTemperatureUi();
    writeUrl();
    runGrid();
  });
  $('seed').addEventListener('change', () => {
    state.seed = clampSeed($('seed').value);
    syncTemperatureUi();
    writeUrl();
    runGrid();
  });
  $('reroll').addEventListener('click', () => {
    state.seed = (Math.random() * 2 ** 31) >>> 0;
    syncTemperatureUi();
    writeUrl();
    runGrid();
  });
  $('share').addEventListener('click', async () => {
    writeUrl();
    const note = $('share-note');
    try {
      await navigator.clipboard.writeText(location.href);
      note.textContent = 'Link copied.';
    } catch {
      note.textContent = location.href;
    }
    setTimeout(() => { note.textContent = ''; }, 4000);
  });
}

// ------------------------------------------------------------------------------------
// Your face: source image, crop box, encode

const MAX_SOURCE = 1024;

async function setSourceFromBlob(blob) {
  if (!blob || (blob.type && !blob.type.startsWith('image/'))) {
    showError(new Error('That file is not an image.'));
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    try {
      bitmap = await loadViaImg(blob);
    } catch {
      showError(new Error('This image could not be read (is it a JPEG, PNG, WebP or GIF?).'));
      return;
    }
  }
  setSource(bitmap, bitmap.width, bitmap.height, false);
  if (bitmap.close) bitmap.close();
}

function loadViaImg(blob) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(blob);
    const img = new Image();
    img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
    img.onerror = () => { URL.revokeObjectURL(url); reject(new Error('decode')); };
    img.src = url;
  });
}

/** Copies an image (capped at MAX_SOURCE px) into the crop stage and encodes it. */
function setSource(image, w, h, mirror) {
  clearError();
  const k = Math.min(1, MAX_SOURCE / Math.max(w, h));
  const canvas = $('source');
  canvas.width = Math.max(1, Math.round(w * k));
  canvas.height = Math.max(1, Math.round(h * k));
  const ctx = canvas.getContext('2d');
  ctx.save();
  if (mirror) { ctx.translate(canvas.width, 0); ctx.scale(-1, 1); }
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  ctx.restore();
  state.source = { canvas, crop: null };
  $('drop-empty').hidden = true;
  $('camera-panel').hidden = true;
  $('stage').hidden = false;
  $('crop-controls').hidden = false;
  fitSource();
  setCropAspect();
  requestEncode();
}

/** Shows the photo as large as the drop area allows (small photos are scaled up). */
function fitSource() {
  if (!state.source) return;
  const c = state.source.canvas;
  const drop = $('drop');
  const style = getComputedStyle(drop);
  const maxW = drop.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const maxH = Math.min(440, window.innerHeight * 0.6);
  const k = Math.min(maxW / c.width, maxH / c.height);
  if (!(k > 0)) return;
  c.style.width = `${Math.floor(c.width * k)}px`;
  c.style.height = `${Math.floor(c.height * k)}px`;
}

/**
 * A fresh crop box with the model's aspect ratio: the training crop when the photo has
 * the training images' shape (model.json preprocess.source_size and crop), else centred
 * at 80% of the short side.
 */
function setCropAspect() {
  const src = state.source;
  if (!src || !state.shared) return;
  const { width: W, height: H } = src.canvas;
  const aspect = state.shared.width / state.shared.height;
  const pre = state.shared.config.preprocess || {};
  const [sw, sh] = Array.isArray(pre.source_size) ? pre.source_size.map(Number) : [];
  const [cx, cy, cw, ch] = Array.isArray(pre.crop) ? pre.crop.map(Number) : [];
  if (sw > 0 && sh > 0 && cw > 0 && ch > 0 && Math.abs(W / H - sw / sh) < 0.01 && Math.abs(cw / ch - aspect) < 0.01) {
    const k = W / sw;
    src.crop = { x: cx * k, y: cy * k, w: cw * k };
  } else {
    const w = Math.min(W, H * aspect) * 0.8;
    src.crop = { x: (W - w) / 2, y: (H - w / aspect) / 2, w };
  }
  placeCrop();
}

function clampCrop() {
  const src = state.source;
  const { width: W, height: H } = src.canvas;
  const aspect = state.shared.width / state.shared.height;
  const c = src.crop;
  const maxW = Math.min(W, H * aspect);
  c.w = Math.min(maxW, Math.max(Math.min(8, maxW), c.w));
  c.x = Math.min(W - c.w, Math.max(0, c.x));
  c.y = Math.min(H - c.w / aspect, Math.max(0, c.y));
}

function placeCrop() {
  const src = state.source;
  if (!src || !src.crop) return;
  clampCrop();
  const { width: W, height: H } = src.canvas;
  const c = src.crop;
  const h = c.w * state.shared.height / state.shared.width;
  const box = $('crop');
  box.style.left = `${(100 * c.x) / W}%`;
  box.style.top = `${(100 * c.y) / H}%`;
  box.style.width = `${(100 * c.w) / W}%`;
  box.style.height = `${(100 * h) / H}%`;
  const maxW = Math.min(W, H * (state.shared.width / state.shared.height));
  $('crop-size').value = String(c.w / maxW);
  box.setAttribute('aria-valuetext', `${Math.round(c.w)} pixels wide at ${Math.round(c.x)}, ${Math.round(c.y)}`);
}

/**
 * Where the eyes of a training image sit in the model's frame, as fractions:
 * {y, xs}. From model.json's preprocess: an explicit `eye_line`, or, for crops of
 * aligned CelebA (whose alignment puts the eye centres at about (0.388, 0.512) and
 * (0.612, 0.512) of the image), computed from `crop` and `source_size`.
 */
function eyeGuide(config) {
  const pre = config.preprocess || {};
  const ok = (v) => Number.isFinite(v) && v > 0 && v < 1;
  if (ok(Number(pre.eye_line))) return { y: Number(pre.eye_line), xs: null };
  const [x, y, w, h] = Array.isArray(pre.crop) ? pre.crop.map(Number) : [];
  const [sw, sh] = Array.isArray(pre.source_size) ? pre.source_size.map(Number) : [];
  if (/align_celeba/i.test(String(pre.source || '')) && w > 0 && h > 0 && sw > 0 && sh > 0) {
    const ey = (0.512 * sh - y) / h;
    const xs = [0.388, 0.612].map((f) => (f * sw - x) / w);
    if (ok(ey) && xs.every(ok)) return { y: ey, xs };
  }
  return { y: 0.45, xs: null };
}

function placeEyeGuide() {
  const g = eyeGuide(state.shared.config);
  $('eye-line').style.top = `${100 * g.y}%`;
  $('eye-line').querySelectorAll('.eye').forEach((d, i) => {
    d.hidden = !g.xs;
    if (g.xs) d.style.left = `${100 * g.xs[i]}%`;
  });
}

function setupCrop() {
  if (typeof ResizeObserver === 'function') new ResizeObserver(() => fitSource()).observe($('drop'));
  else window.addEventListener('resize', fitSource);
  const box = $('crop');
  const stage = $('stage');
  let drag = null;
  const scale = () => state.source.canvas.width / stage.getBoundingClientRect().width; // source px per CSS px
  box.addEventListener('pointerdown', (e) => {
    if (!state.source || e.button > 0) return;
    e.preventDefault();
    box.setPointerCapture(e.pointerId);
    const resize = e.target === $('crop-handle');
    drag = { id: e.pointerId, x0: e.clientX, y0: e.clientY, crop: { ...state.source.crop }, resize, k: scale() };
    box.classList.add('dragging');
  });
  box.addEventListener('pointermove', (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    const dx = (e.clientX - drag.x0) * drag.k;
    const dy = (e.clientY - drag.y0) * drag.k;
    const c = state.source.crop;
    if (drag.resize) {
      c.w = drag.crop.w + Math.max(dx, dy * (state.shared.width / state.shared.height));
      c.x = drag.crop.x;
      c.y = drag.crop.y;
    } else {
      c.x = drag.crop.x + dx;
      c.y = drag.crop.y + dy;
    }
    placeCrop();
  });
  const end = (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    drag = null;
    box.classList.remove('dragging');
    requestEncode();
  };
  box.addEventListener('pointerup', end);
  box.addEventListener('pointercancel', end);
  stage.addEventListener('wheel', (e) => {
    if (!state.source) return;
    e.preventDefault();
    zoomCrop(Math.exp(e.deltaY * 0.0015));
    requestEncodeSoon();
  }, { passive: false });
  $('crop-size').addEventListener('input', () => {
    if (!state.source) return;
    const { width: W, height: H } = state.source.canvas;
    const maxW = Math.min(W, H * (state.shared.width / state.shared.height));
    zoomCrop((Number($('crop-size').value) * maxW) / state.source.crop.w);
    requestEncodeSoon();
  });
  box.addEventListener('keydown', (e) => {
    if (!state.source) return;
    const step = (e.shiftKey ? 10 : 2) * scale();
    const c = state.source.crop;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) {
      c.x += moves[e.key][0];
      c.y += moves[e.key][1];
    } else if (e.key === '+' || e.key === '=') zoomCrop(1 / 1.05);
    else if (e.key === '-') zoomCrop(1.05);
    else return;
    e.preventDefault();
    placeCrop();
    requestEncodeSoon();
  });
}

/** Scales the crop box about its centre. */
function zoomCrop(f) {
  const c = state.source.crop;
  const aspect = state.shared.width / state.shared.height;
  const cx = c.x + c.w / 2;
  const cy = c.y + c.w / aspect / 2;
  c.w *= f;
  const maxW = Math.min(state.source.canvas.width, state.source.canvas.height * aspect);
  c.w = Math.min(maxW, Math.max(8, c.w));
  c.x = cx - c.w / 2;
  c.y = cy - c.w / aspect / 2;
  placeCrop();
}

let encodeTimer = 0;
function requestEncodeSoon() {
  clearTimeout(encodeTimer);
  encodeTimer = setTimeout(requestEncode, 250);
}

/** The crop, resized to the model's size (halving steps first, so large photos do not alias). */
function cropPixels() {
  const { canvas, crop } = state.source;
  const { width: W, height: H } = state.shared;
  let src = canvas;
  let x = crop.x;
  let y = crop.y;
  let w = crop.w;
  let h = (crop.w * H) / W;
  while (w / 2 >= W * 2) {
    const t = document.createElement('canvas');
    t.width = Math.ceil(w / 2);
    t.height = Math.ceil(h / 2);
    const tc = t.getContext('2d');
    tc.imageSmoothingQuality = 'high';
    tc.drawImage(src, x, y, w, h, 0, 0, t.width, t.height);
    src = t;
    x = 0;
    y = 0;
    w = t.width;
    h = t.height;
  }
  const out = document.createElement('canvas');
  out.width = W;
  out.height = H;
  const ctx = out.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(src, x, y, w, h, 0, 0, W, H);
  const px = ctx.getImageData(0, 0, W, H).data;
  if (state.shared.channels === 1) {
    const invert = $('invert').checked;
    for (let i = 0; i < px.length; i += 4) {
      const g = Math.round(0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2]);
      px[i] = px[i + 1] = px[i + 2] = invert ? 255 - g : g;
    }
  }
  for (let i = 3; i < px.length; i += 4) px[i] = 255;
  return px;
}

const runEncode = coalesced(async () => {
  const shared = state.shared;
  if (!shared || !state.source || !state.source.crop) return;
  const px = cropPixels();
  const quant = shared.quantizeInput(px);
  drawImage($('you-input'), quant, shared.width, shared.height);
  $('you-result').classList.add('working');
  const enc = await shared.encode(new Uint8Array(px.buffer, px.byteOffset, px.length), 1);
  const recon = await shared.decode(enc.eps, 1, 1);
  if (shared !== state.shared) return;
  drawImage($('you-recon'), recon, shared.width, shared.height);
  let err = 0;
  const c = shared.channels;
  for (let i = 0; i < recon.length; i += 4) {
    for (let k = 0; k < c; k++) err = Math.max(err, Math.abs(recon[i + k] - quant[i + k]));
  }
  const bpd = enc.bitsPerDim[0];
  // OpenAI's figure beside it: the mean over 4 seeded uniform dequantization draws.
  const both = await shared.bitsPerDim(new Uint8Array(px.buffer, px.byteOffset, px.length), 1, 4, 0);
  if (shared !== state.shared) return;
  $('you-bpd-deq').textContent = `${both.dequantized[0].toFixed(3)} bits/dim`;
  state.you = { shared, label: 'Your photo', eps: enc.eps, rgba: recon, quant, bpd, err };
  $('you-bpd').textContent = `${bpd.toFixed(3)} bits/dim`;
  $('you-bpd').title = `${(bpd * shared.dim).toFixed(0)} bits for the whole ${shared.width}×${shared.height} image`;
  $('you-err').textContent = `max |Δ| = ${err} / 255`;
  $('you-result').classList.remove('working');
  bump($('you-result'));
  updateYouButtons();
  // Your face becomes the one being edited; blends that show it follow.
  state.current = { kind: 'you' };
  highlightSelection();
  renderEdit();
  if (state.a.kind === 'you' || state.b.kind === 'you') renderInterp();
});

function requestEncode() {
  clearTimeout(encodeTimer);
  runEncode();
}

function clearYou() {
  for (const id of ['you-input', 'you-recon']) {
    const c = $(id);
    c.width = state.shared ? state.shared.width : 1;
    c.height = state.shared ? state.shared.height : 1;
  }
  $('you-bpd').textContent = '–';
  $('you-err').textContent = '–';
  $('you-bpd-deq').textContent = '–';
  updateYouButtons();
}

function updateYouButtons() {
  for (const id of ['you-edit', 'you-a', 'you-b']) $(id).disabled = !state.you;
}

function setupYou() {
  $('file').addEventListener('change', () => {
    const f = $('file').files && $('file').files[0];
    if (f) setSourceFromBlob(f);
  });
  const drop = $('you');
  drop.addEventListener('dragover', (e) => {
    if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) {
      e.preventDefault();
      $('drop').classList.add('over');
    }
  });
  drop.addEventListener('dragleave', (e) => { if (!drop.contains(e.relatedTarget)) $('drop').classList.remove('over'); });
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    $('drop').classList.remove('over');
    const f = e.dataTransfer && [...e.dataTransfer.files].find((x) => x.type.startsWith('image/'));
    if (f) setSourceFromBlob(f);
    else showError(new Error('Drop an image file (JPEG, PNG, WebP…).'));
  });
  window.addEventListener('paste', (e) => {
    const item = e.clipboardData && [...e.clipboardData.items].find((x) => x.type.startsWith('image/'));
    if (item) setSourceFromBlob(item.getAsFile());
  });
  $('invert').addEventListener('change', requestEncode);
  $('you-edit').addEventListener('click', () => {
    selectFace({ kind: 'you' });
    if (!$('edit').hidden) $('edit').scrollIntoView({ behavior: 'smooth', block: 'start' });
  });
  $('you-a').addEventListener('click', () => { state.a = { kind: 'you' }; renderInterp(); });
  $('you-b').addEventListener('click', () => { state.b = { kind: 'you' }; renderInterp(); });

  // Webcam, where the browser has one.
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    $('camera').hidden = false;
    let stream = null;
    const stop = () => {
      if (stream) for (const t of stream.getTracks()) t.stop();
      stream = null;
      $('video').srcObject = null;
      $('camera-panel').hidden = true;
      if (!state.source) $('drop-empty').hidden = false;
      else $('stage').hidden = false;
    };
    $('camera').addEventListener('click', async () => {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user', width: { ideal: 1280 } }, audio: false });
      } catch (e) {
        showError(new Error(`The camera is not available: ${e.message || e.name}`));
        return;
      }
      $('video').srcObject = stream;
      $('drop-empty').hidden = true;
      $('stage').hidden = true;
      $('camera-panel').hidden = false;
    });
    $('camera-cancel').addEventListener('click', stop);
    $('snap').addEventListener('click', () => {
      const v = $('video');
      if (!v.videoWidth) return;
      setSource(v, v.videoWidth, v.videoHeight, true);
      stop();
    });
  }
}

// ------------------------------------------------------------------------------------
// Edit: attribute sliders and home-made directions

function sliderRow(name, value, onInput, onRemove) {
  const row = document.createElement('div');
  row.className = 'attr';
  row.dataset.name = name.toLowerCase();
  const label = document.createElement('label');
  const input = document.createElement('input');
  input.type = 'range';
  input.min = '-2';
  input.max = '2';
  input.step = '0.05';
  input.value = String(value);
  input.setAttribute('aria-label', name);
  const out = document.createElement('output');
  out.value = Number(value).toFixed(2);
  label.textContent = name;
  label.title = name;
  input.addEventListener('input', () => {
    out.value = Number(input.value).toFixed(2);
    row.classList.toggle('active', Number(input.value) !== 0);
    onInput(Number(input.value));
  });
  input.addEventListener('dblclick', () => {
    input.value = '0';
    input.dispatchEvent(new Event('input'));
  });
  row.append(label, input, out);
  if (onRemove) {
    const x = document.createElement('button');
    x.type = 'button';
    x.className = 'btn small icon';
    x.textContent = '×';
    x.title = `Remove ${name}`;
    x.addEventListener('click', onRemove);
    row.append(x);
  }
  return row;
}

function buildAttributeSliders() {
  const names = state.shared.attributeNames;
  $('attrs').replaceChildren(...names.map((n, i) => sliderRow(prettyName(n), 0, (v) => {
    state.amounts[i] = v;
    renderEdit();
  })));
  $('attr-filter').hidden = names.length < 8;
  $('attr-filter').value = '';
  buildCustomSliders();
}

function buildCustomSliders() {
  $('custom-attrs').replaceChildren(...state.custom.map((d, i) => sliderRow(d.name, d.amount, (v) => {
    d.amount = v;
    renderEdit();
  }, () => {
    state.shared.forgetDirection(d.name);
    state.custom.splice(i, 1);
    buildCustomSliders();
    renderEdit();
  })));
  $('edit').hidden = !(state.shared && (state.shared.attributeNames.length || state.custom.length));
}

function editedEps(base) {
  const shared = state.shared;
  let eps = base;
  // Shipped attributes first, then taught ones: the order of the Session's directions.
  const amounts = Float32Array.from([...(state.amounts || []), ...state.custom.map((d) => d.amount)]);
  if (amounts.some((a) => a !== 0)) eps = shared.manipulate(base, amounts);
  return eps;
}

const renderEditNow = coalesced(async () => {
  const shared = state.shared;
  if (!shared || $('edit').hidden) return;
  const face = resolve(state.current);
  if (!face) return;
  drawImage($('edit-orig'), face.rgba, shared.width, shared.height);
  $('edit-label').textContent = face.label;
  const rgba = await shared.decode(editedEps(face.eps), 1, 1);
  if (shared !== state.shared) return;
  drawImage($('edit-out'), rgba, shared.width, shared.height);
  bump($('edit-out'));
});

let renderEdit = renderEditNow;

function setupEdit() {
  renderEdit = whenVisible($('edit'), renderEditNow);
  $('edit-reset').addEventListener('click', () => {
    if (state.amounts) state.amounts.fill(0);
    for (const d of state.custom) d.amount = 0;
    for (const input of $('edit').querySelectorAll('.attr input')) {
      input.value = '0';
      input.nextSibling.value = '0.00';
      input.parentElement.classList.remove('active');
    }
    renderEdit();
  });
  $('attr-filter').addEventListener('input', () => {
    const q = $('attr-filter').value.trim().toLowerCase();
    for (const row of $('attrs').children) row.hidden = q !== '' && !row.dataset.name.includes(q);
  });
}

// ------------------------------------------------------------------------------------
// Blend two faces

const STRIP = 8;

function buildStrip() {
  const strip = $('strip');
  strip.replaceChildren();
  for (let i = 0; i < STRIP; i++) {
    const c = canvasEl();
    c.title = `Step ${i + 1} of ${STRIP}`;
    c.addEventListener('click', () => {
      $('mix').value = String(i / (STRIP - 1));
      renderMix();
    });
    strip.append(c);
  }
  for (const id of ['interp-a', 'interp-b', 'interp-mix', 'edit-orig', 'edit-out']) {
    $(id).width = state.shared.width;
    $(id).height = state.shared.height;
  }
}

const renderStrip = coalesced(async () => {
  const shared = state.shared;
  const a = resolve(state.a);
  const b = resolve(state.b);
  if (!shared || !a || !b) return;
  drawImage($('interp-a'), a.rgba, shared.width, shared.height);
  drawImage($('interp-b'), b.rgba, shared.width, shared.height);
  const frames = shared.interpolate(a.eps, b.eps, STRIP);
  const canvases = $('strip').children;
  const r = await shared.decodeChunked(frames, STRIP, (rgba, first, count) => {
    for (let k = 0; k < count; k++) drawImage(canvases[first + k], rgba, shared.width, shared.height, k);
  }, () => shared !== state.shared);
  if (r) bump($('strip'));
});

const renderMix = coalesced(async () => {
  const shared = state.shared;
  const a = resolve(state.a);
  const b = resolve(state.b);
  if (!shared || !a || !b) return;
  const t = Number($('mix').value);
  const eps = shared.mix(a.eps, b.eps, t);
  const rgba = await shared.decode(eps, 1, 1);
  if (shared !== state.shared) return;
  drawImage($('interp-mix'), rgba, shared.width, shared.height);
  bump($('interp-mix'));
});

let renderInterp = () => { renderStrip(); renderMix(); };

function setupInterp() {
  renderInterp = whenVisible($('interp'), renderInterp);
  $('mix').addEventListener('input', renderMix);
  $('set-a').addEventListener('click', () => { state.a = { ...state.current }; renderInterp(); });
  $('set-b').addEventListener('click', () => { state.b = { ...state.current }; renderInterp(); });
  $('swap').addEventListener('click', () => {
    [state.a, state.b] = [state.b, state.a];
    renderInterp();
  });
}

// ------------------------------------------------------------------------------------
// Teach a direction

function markFace(i, kind) {
  const face = state.faces[i];
  if (!face) return;
  const other = kind === 'with' ? 'without' : 'with';
  state.marks[other] = state.marks[other].filter((m) => m.face !== face);
  const list = state.marks[kind];
  const at = list.findIndex((m) => m.face === face);
  if (at >= 0) list.splice(at, 1);
  else list.push({ face, eps: face.eps, rgba: face.rgba });
  renderMarks();
}

function renderMarks() {
  for (const kind of ['with', 'without']) {
    const box = $(`${kind}-list`);
    box.replaceChildren(...state.marks[kind].map((m, i) => {
      const c = canvasEl('pix thumb');
      drawImage(c, m.rgba, state.shared.width, state.shared.height);
      c.title = 'Click to remove';
      c.addEventListener('click', () => {
        state.marks[kind].splice(i, 1);
        renderMarks();
      });
      return c;
    }));
    $(`${kind}-count`).textContent = String(state.marks[kind].length);
  }
  $('dir-make').disabled = !(state.marks.with.length && state.marks.without.length);
  // Show the marks on the grid tiles too.
  const tiles = $('grid').children;
  for (let i = 0; i < tiles.length; i++) {
    const f = state.faces[i];
    tiles[i].classList.toggle('marked-with', !!f && state.marks.with.some((m) => m.face === f));
    tiles[i].classList.toggle('marked-without', !!f && state.marks.without.some((m) => m.face === f));
  }
}

function concat(list) {
  const d = state.shared.dim;
  const out = new Float32Array(list.length * d);
  list.forEach((m, i) => out.set(m.eps, i * d));
  return out;
}

function setupTeach() {
  $('dir-make').addEventListener('click', () => {
    try {
      const name = $('dir-name').value.trim() || `direction ${state.custom.length + 1}`;
      state.shared.teachDirection(name, concat(state.marks.with), concat(state.marks.without));
      state.custom.push({ name, amount: 0 });
      buildCustomSliders();
      $('edit').scrollIntoView({ behavior: 'smooth', block: 'start' });
      renderEdit();
    } catch (e) {
      showError(e);
    }
  });
  $('dir-clear').addEventListener('click', () => {
    state.marks = { with: [], without: [] };
    renderMarks();
  });
}

// ------------------------------------------------------------------------------------

async function main() {
  setupSampleControls();
  setupCrop();
  setupYou();
  setupEdit();
  setupInterp();
  setupTeach();
  $('model').addEventListener('change', () => switchModel($('model').value));
  // Keep the grid's marks in sync when a new grid arrives.
  new MutationObserver(() => renderMarks()).observe($('grid'), { attributes: true, attributeFilter: ['data-renders'] });
  try {
    state.models = await listModels();
  } catch (e) {
    setStatus('No model to load.');
    showError(e);
    return;
  }
  const wanted = (params.get('model') || '').replace(/\/+$/, '');
  state.modelUrl = state.models.includes(wanted) ? wanted : state.models[0];
  if (wanted && wanted !== state.modelUrl) showError(new Error(`There is no model "${wanted}" here; showing ${state.modelUrl}.`));
  fillModelPicker();
  await switchModel(state.modelUrl);
}

main().catch(showError);
