// @ts-check
// The demo page: a model picker and status line over five sections (samples, your face,
// edit, blend, teach a direction), each a module that draws from the store and changes
// it. All engine work goes through GlowClient, in workers; nothing here touches wasm, and
// no request ever carries an image.
//
// URL state: ?model=models/NAME&seed=N&t=0.7&tl=0.7,0.5,0.9 (per-level temperatures)
//            &grid=4 (faces per side) &backend=auto|webgpu|cpu

import { GlowClient } from '../glow/client.js';
import { isolate } from './isolate.js';
import { Store } from './store.js';
import { $, showError, clearError } from './ui.js';
import * as samples from './samples.js';
import * as you from './you.js';
import * as edit from './edit.js';
import * as blend from './blend.js';
import * as teach from './teach.js';

const params = new URLSearchParams(location.search);
const clamp01 = (/** @type {number} */ v, /** @type {number} */ d) => (Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : d);
const seedParam = Number(params.get('seed') ?? 1);
const levelsParam = (params.get('tl') || '').split(',').filter(Boolean).map(Number);
const backendParam = params.get('backend');

const store = new Store({
  client: null,
  models: [],
  modelUrl: '',
  backend: backendParam === 'webgpu' || backendParam === 'cpu' ? backendParam : 'auto',
  seed: Number.isFinite(seedParam) && seedParam >= 0 ? Math.floor(seedParam) >>> 0 : 1,
  temperature: clamp01(parseFloat(params.get('t') ?? '0.7'), 0.7),
  perLevel: levelsParam.length && levelsParam.every(Number.isFinite) ? levelsParam.map((x) => clamp01(x, 0.7)) : null,
  gridSide: Math.max(1, Math.min(8, parseInt(params.get('grid') || '4', 10) || 4)),
  faces: [],
  you: null,
  current: { kind: 'grid', index: 0 },
  a: { kind: 'grid', index: 0 },
  b: { kind: 'grid', index: 1 },
  amounts: new Float32Array(0),
  attributeNames: [],
  shipped: 0,
  marks: { with: [], without: [] },
  msPerImage: null,
});

/** Keeps the address bar in step with what is shown, so a copied link shows the same faces. */
function writeUrl() {
  const s = store.state;
  const q = new URLSearchParams();
  if (s.modelUrl && s.modelUrl !== s.models[0] && !s.modelUrl.startsWith('folder: ')) q.set('model', s.modelUrl);
  q.set('seed', String(s.seed));
  q.set('t', s.temperature.toFixed(2));
  if (s.perLevel) q.set('tl', s.perLevel.map((x) => x.toFixed(2)).join(','));
  if (s.gridSide !== 4) q.set('grid', String(s.gridSide));
  if (s.backend !== 'auto') q.set('backend', s.backend);
  history.replaceState(null, '', `${location.pathname}?${q}`);
}

function setStatus(/** @type {string} */ text, title = '') {
  $('status').textContent = text;
  $('status').title = title;
}

function describeBackend() {
  const { client, msPerImage } = store.state;
  if (!client) return;
  const i = client.info;
  const nw = client.workers.length;
  // With WebAssembly threads one worker runs the engine on several threads; without them,
  // several single-threaded workers share a grid. `threadsWhy` says which and why.
  const cpu = i.threads > 1 ? `${i.threads} threads` : nw > 1 ? `${nw} workers, one thread each` : '1 worker, one thread';
  // On WebGPU: the adapter, and "f16 weights" when the engine keeps them at half size.
  const f16 = /^f16\b/.test(i.gpuWeights || '') ? ' · f16 weights' : '';
  const parts = [i.backend === 'webgpu' ? `WebGPU · ${i.adapter}${f16}` : `CPU engine (WebAssembly, ${cpu})`];
  if (msPerImage !== null) parts.push(`${msPerImage < 10 ? msPerImage.toFixed(1) : Math.round(msPerImage)} ms per image`);
  // The engine's reason can carry the browser's raw adapter text (a list of every graphics
  // API it lacks): its first clause on the page, all of it on hover.
  const cut = i.reason.indexOf(' (');
  const reason = i.reason.length > 90 && cut > 0 ? i.reason.slice(0, cut) : i.reason;
  const more = i.threadsWhy ? ` ${i.threadsWhy.charAt(0).toUpperCase()}${i.threadsWhy.slice(1)}.` : '';
  setStatus(parts.join(' · '), `${i.reason}.${more}`);
  $('backend-why').textContent = `${reason}.${more}`;
  $('backend-why').title = `${i.reason}.${more}`;
}

let verb = 'Downloading';
function showProgress(/** @type {{fraction: number, loaded: number, total: number}} */ p) {
  $('progress').hidden = false;
  $('progress-fill').style.width = `${(100 * p.fraction).toFixed(1)}%`;
  $('progress-text').textContent = p.total
    ? `${verb} the model: ${(p.loaded / 1e6).toFixed(1)} of ${(p.total / 1e6).toFixed(1)} MB`
    : `${verb} the model: ${(p.loaded / 1e6).toFixed(1)} MB`;
}

async function listModels() {
  const r = await fetch('models/index.json', { cache: 'no-cache' });
  if (!r.ok) throw new Error(`models/index.json: HTTP ${r.status}. Build the site with ./build.sh build.`);
  const list = await r.json();
  if (!Array.isArray(list) || !list.length) throw new Error('models/index.json lists no models (models/SHIPPED is empty?)');
  return list.map((u) => String(u).replace(/\/+$/, ''));
}

async function fillModelPicker() {
  const sel = /** @type {HTMLSelectElement} */ ($('model'));
  const { models, modelUrl } = store.state;
  sel.replaceChildren(...models.map((u) => {
    const o = document.createElement('option');
    o.value = u;
    o.textContent = u.split('/').pop() || u;
    return o;
  }));
  sel.value = modelUrl;
  sel.disabled = models.length < 2;
  // Nicer labels from each model.json (small files), when they come.
  await Promise.all(models.map(async (u, i) => {
    try {
      const c = await (await fetch(`${u}/model.json`, { cache: 'no-cache' })).json();
      const im = c.image || {};
      const attrs = c.attributes && c.attributes.names ? ` · ${c.attributes.names.length} attributes` : '';
      sel.options[i].textContent = `${c.name || u.split('/').pop()} · ${im.width}×${im.height}${im.channels === 1 ? ' grey' : ''}${attrs}`;
    } catch { /* keep the directory name */ }
  }));
}

let opening = 0;
/**
 * Opens a model: a directory URL (shipped, or any other the visitor names; the engine's
 * worker fetches it) or a folder picked on the visitor's disk.
 * @param {string} url  the directory's URL, or a label for a picked folder
 * @param {File[]} [folder]
 */
async function switchModel(url, folder) {
  clearError('samples');
  const token = ++opening;
  const old = store.state.client;
  store.set({ client: null, modelUrl: url, faces: [], you: null, msPerImage: null, marks: { with: [], without: [] } });
  if (old) old.release();
  writeUrl();
  document.body.dataset.ready = '';
  setStatus('Loading the model…');
  const sel = /** @type {HTMLSelectElement} */ ($('model'));
  if (![...sel.options].some((o) => o.value === url)) sel.append(new Option(folder ? `${url} (your folder)` : url, url));
  sel.value = url;
  sel.disabled = true;
  let client;
  try {
    const opts = { backend: store.state.backend, onProgress: showProgress };
    verb = folder ? 'Reading' : 'Downloading';
    client = await (folder ? GlowClient.openFolder(folder, opts) : GlowClient.open(url, opts));
  } catch (e) {
    if (token !== opening) return;
    $('progress').hidden = true;
    setStatus('The model could not be loaded.');
    sel.disabled = store.state.models.length < 2;
    const action = store.state.backend !== 'cpu'
      ? { label: 'Use the CPU engine', run: () => { store.set({ backend: 'cpu' }); writeUrl(); switchModel(url, folder); } }
      : undefined;
    showError('samples', e, action);
    return;
  }
  if (token !== opening) { client.release(); return; }
  sel.disabled = store.state.models.length < 2;
  $('progress').hidden = true;
  const i = client.info;
  document.body.dataset.backend = i.backend;
  document.body.dataset.threads = String(i.threads);
  document.body.dataset.cached = i.cached ? '1' : '0';
  const notice = $('notice');
  notice.hidden = !i.webgpuProblem;
  notice.textContent = i.webgpuProblem
    ? `No WebGPU here (${i.webgpuProblem}). Glow still works, on the CPU in WebAssembly, just more slowly. For GPU speed use a recent Chrome, Edge or Safari.`
    : '';
  for (const h of document.querySelectorAll('[data-faces]')) {
    const e = /** @type {HTMLElement} */ (h);
    e.textContent = (i.channels === 3 ? e.dataset.faces : e.dataset.other) || '';
  }
  document.documentElement.style.setProperty('--aspect', `${i.width} / ${i.height}`);
  // Grid tiles at a whole multiple of the model's size (about 128 px): sharp pixels.
  document.documentElement.style.setProperty('--tile', `${Math.max(1, Math.round(128 / i.width)) * i.width}px`);
  // A large model (OpenAI's 256 px one) takes seconds to minutes per face: one face first.
  if (!params.has('grid') && i.dim > 64 * 64 * 3) store.set({ gridSide: 1 });
  const n = store.state.gridSide * store.state.gridSide;
  store.set({
    client,
    attributeNames: i.attributeNames.slice(),
    shipped: i.attributeNames.length,
    amounts: new Float32Array(i.attributeNames.length),
    perLevel: store.state.perLevel && store.state.perLevel.length === i.levels ? store.state.perLevel : null,
    current: { kind: 'grid', index: 0 },
    a: { kind: 'grid', index: 0 },
    b: { kind: 'grid', index: Math.min(1, n - 1) },
  });
  describeBackend();
}

async function main() {
  // Before anything loads: on a host without COOP/COEP headers this may reload the page
  // once, through the service worker that adds them (WebAssembly threads need them).
  await isolate();
  const ctx = { store, writeUrl };
  samples.mount(ctx);
  you.mount(ctx);
  edit.mount(ctx);
  blend.mount(ctx);
  teach.mount(ctx);
  store.subscribe(['msPerImage', 'client'], describeBackend);
  store.subscribe(['seed', 'temperature', 'perLevel', 'gridSide'], writeUrl);
  $('model').addEventListener('change', () => switchModel(/** @type {HTMLSelectElement} */ ($('model')).value));
  // Other models: by URL (a model directory on any server that allows it), or a folder on
  // this device (read here, never uploaded).
  const other = /** @type {HTMLFormElement} */ ($('other-model'));
  other.addEventListener('submit', (e) => {
    e.preventDefault();
    const url = /** @type {HTMLInputElement} */ ($('model-url')).value.trim().replace(/\/+$/, '');
    if (url) switchModel(url);
  });
  const folder = /** @type {HTMLInputElement} */ ($('model-folder'));
  folder.addEventListener('change', () => {
    const files = [...(folder.files || [])];
    const config = files.find((f) => f.name === 'model.json');
    const name = config ? (/** @type {any} */ (config).webkitRelativePath || 'model.json').split('/').slice(-2, -1)[0] || 'folder' : 'folder';
    if (files.length) switchModel(`folder: ${name}`, files);
    folder.value = '';
  });
  let models;
  try {
    models = await listModels();
  } catch (e) {
    setStatus('No model to load.');
    showError('samples', e);
    return;
  }
  // ?model= names a shipped model or any other model directory's URL.
  const wanted = (params.get('model') || '').replace(/\/+$/, '');
  const modelUrl = wanted || models[0];
  store.set({ models, modelUrl });
  fillModelPicker();
  await switchModel(modelUrl);
}

main().catch((e) => showError('samples', e));
