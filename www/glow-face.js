// <glow-face>: an embeddable Glow widget, and the model loader the demo page shares.
//
//   <script type="module" src="https://example.org/glow/glow-face.js"></script>
//   <glow-face model="models/celeba64" mode="sample" temperature="0.7" seed="1"></glow-face>
//
// Attributes (reflected as properties): model (alias src; a model directory URL,
// relative to the page; left out = the first entry of models/index.json), mode
// ("sample" | "manipulate" | "interpolate"), temperature (0..1), seed, seed2
// (interpolate's second face), attribute (manipulate's attribute name), backend
// ("auto" | "webgpu" | "cpu").
// Events (bubbling, composed): glow-progress {loaded, total}, glow-ready {width, height,
// adapter, backend}, glow-error {name, message, fatal}. Without WebGPU the widget fires a
// non-fatal glow-error named "WebGPUNotAvailable", says so in its footer and carries on
// with the CPU engine. Methods: sample(seed?), reset().
//
// Every widget and the demo page on one document share one wasm init, one download and
// one GlowModel per model URL; calls to a model go through one queue (the engine runs
// one call at a time). No inline scripts, no eval, styles in the shadow root through a
// constructed stylesheet, so the widget works under a strict Content-Security-Policy
// (script-src 'self' 'wasm-unsafe-eval'; style-src 'self').

const PKG_URL = new URL('./pkg/glow_web.js', import.meta.url).href;
const CACHE_NAME = 'glow-weights-v1';

let initPromise = null;

/** Loads and initialises the wasm module once per document. */
export function initGlow() {
  if (!initPromise) {
    initPromise = import(PKG_URL).then(async (mod) => {
      await mod.default();
      return mod;
    });
    initPromise.catch(() => { initPromise = null; });
  }
  return initPromise;
}

/** A short, stable hash of a string (FNV-1a, 32 bit), used to version cached files. */
function hashText(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

async function openCache() {
  try {
    if (typeof caches === 'undefined') return null; // insecure context or old browser
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

/**
 * Fetches a file as bytes, reporting progress, through Cache Storage: the bytes are kept
 * under the URL plus a version (the model.json hash), so a second visit reads them from
 * disk and a retrained model replaces the old copy.
 */
async function fetchBytes(url, version, onProgress) {
  const key = `${url}${url.includes('?') ? '&' : '?'}glow-v=${version}`;
  const cache = await openCache();
  if (cache) {
    try {
      const hit = await cache.match(key);
      if (hit) {
        const bytes = new Uint8Array(await hit.arrayBuffer());
        onProgress(bytes.length, bytes.length);
        return { bytes, cached: true };
      }
    } catch { /* fall through to the network */ }
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not download ${url}: HTTP ${res.status} ${res.statusText}`.trim());
  const total = Number(res.headers.get('content-length')) || 0;
  let bytes;
  if (res.body && res.body.getReader) {
    const reader = res.body.getReader();
    const chunks = [];
    let loaded = 0;
    onProgress(0, total);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      onProgress(loaded, Math.max(total, loaded));
    }
    bytes = new Uint8Array(loaded);
    let off = 0;
    for (const c of chunks) { bytes.set(c, off); off += c.length; }
  } else {
    bytes = new Uint8Array(await res.arrayBuffer());
  }
  onProgress(bytes.length, bytes.length);
  if (cache) {
    try {
      const prefix = `${url}${url.includes('?') ? '&' : '?'}glow-v=`;
      for (const req of await cache.keys()) {
        if (req.url.startsWith(prefix) && req.url !== key) await cache.delete(req);
      }
      await cache.put(key, new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } }));
    } catch { /* quota or private mode: the page still works, it just downloads again */ }
  }
  return { bytes, cached: false };
}

/** Runs async tasks one after another (the engine refuses a second concurrent call). */
class Serial {
  constructor() { this.tail = Promise.resolve(); }
  run(fn) {
    activity(1);
    const p = this.tail.then(fn);
    this.tail = p.catch(() => {});
    p.then(() => activity(-1), () => activity(-1));
    return p;
  }
}

let active = 0;
/**
 * Counts engine calls and renders under way, and shows the count as
 * `document.documentElement.dataset.glowBusy` (tests wait for "0"; pages may style on it).
 */
export function activity(delta) {
  active = Math.max(0, active + delta);
  if (typeof document !== 'undefined') document.documentElement.dataset.glowBusy = String(active);
}

/**
 * Whether WebGPU can be used here: {problem: null | why not, adapter: a readable name}.
 * (The engine picks its own adapter; this one only explains and names it.)
 */
export async function probeWebGPU() {
  if (typeof navigator === 'undefined' || !navigator.gpu) {
    return { problem: 'This browser has no WebGPU (navigator.gpu is missing).', adapter: '', software: false };
  }
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { problem: 'WebGPU is present but offers no GPU adapter (it may be disabled or blocklisted).', adapter: '', software: false };
    const info = adapter.info || {};
    const software = !!(info.isFallbackAdapter || adapter.isFallbackAdapter);
    let name = info.description || [info.vendor, info.architecture].filter(Boolean).join(' ') || 'GPU';
    if (software) name += ' (software)';
    return { problem: null, adapter: name, software };
  } catch (e) {
    return { problem: `WebGPU failed to start: ${e.message || e}`, adapter: '', software: false };
  }
}

/**
 * Workers running the CPU engine on copies of the model, for decoding several images at
 * once on several cores (images are independent, and the engine is deterministic: the
 * result is the same as on the main thread). `ready` resolves to false, and the page keeps
 * decoding on the main thread, if workers cannot start (old browser, CSP) within 30 s.
 */
class WorkerPool {
  constructor(configText, weights, size) {
    this.workers = [];
    this.pending = new Map();
    this.nextId = 1;
    const loads = [];
    for (let i = 0; i < size; i++) {
      let w;
      try {
        w = new Worker(new URL('./glow-worker.js', import.meta.url), { type: 'module' });
      } catch {
        break;
      }
      loads.push(new Promise((resolve) => {
        w.onerror = (e) => { e.preventDefault(); resolve(false); };
        w.onmessage = (e) => {
          const m = e.data;
          if (m.type === 'ready' || m.type === 'error') {
            resolve(m.type === 'ready');
            return;
          }
          const p = this.pending.get(m.id);
          if (!p) return;
          this.pending.delete(m.id);
          if (m.error) p.reject(new Error(m.error)); else p.resolve(m.rgba);
        };
      }));
      w.postMessage({ type: 'load', pkg: PKG_URL, config: configText, weights });
      this.workers.push(w);
    }
    const timeout = new Promise((r) => setTimeout(() => r(false), 30000));
    this.ready = Promise.race([Promise.all(loads).then((ok) => ok.length > 0 && ok.every(Boolean)), timeout])
      .then((ok) => {
        if (!ok) this.terminate();
        return ok;
      });
  }

  /** Decodes `n` images of eps (temperature 1) on worker `i`. */
  decode(i, eps, n) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[i].postMessage({ id, eps, n });
    });
  }

  terminate() {
    for (const w of this.workers) w.terminate();
    this.workers = [];
    for (const p of this.pending.values()) p.reject(new Error('the worker pool was stopped'));
    this.pending.clear();
  }
}

/** A loaded model shared by the page and every widget that names the same URL. */
export class SharedModel {
  constructor(url, model, config, info) {
    this.url = url;
    this.model = model;
    this.config = config;
    this.queue = new Serial();
    this.refs = 0;
    this.freed = false;
    Object.assign(this, info); // cached, bytes, notice
    this.width = model.width;
    this.height = model.height;
    this.channels = model.channels;
    this.dim = model.dim;
    this.levels = model.levels;
    this.name = model.name;
    this.backend = model.backend;
    // A readable adapter name from the browser, else the engine's description.
    this.adapterInfo = (this.backend === 'webgpu' && info.adapterName) || model.adapterInfo;
    this.attributeNames = Array.from(model.attributeNames);
    // Why this backend (Backend::choose in Rust), shown in footers and the model card.
    this.reason = model.backendReason;
    // Images per engine call that keep the page responsive: the GPU plan's batch, or
    // one image at a time on the CPU engine.
    this.chunk = this.backend === 'webgpu' ? info.batch : 1;
    // On the CPU engine, decodes of several images go to workers, one per core (up to 4).
    const cores = (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) || 1;
    const size = info.workers ?? (cores > 1 ? Math.min(cores, 4) : 0);
    this.pool = this.backend === 'cpu' && typeof Worker !== 'undefined' && size > 0 && info.configText
      ? new WorkerPool(info.configText, info.weights, size) : null;
    delete this.workers;
    delete this.configText;
    delete this.weights;
  }

  // Async engine calls, serialised.
  decode(eps, n, temperature = 1) { return this.queue.run(() => this.model.decode(eps, n, temperature)); }
  encode(rgba, n = 1) { return this.queue.run(() => this.model.encode(rgba, n)); }
  /** Bits/dim both ways: {binCentre, dequantized, draws}. */
  bitsPerDim(rgba, n = 1, draws = 4, seed = 0) { return this.queue.run(() => this.model.bitsPerDim(rgba, n, draws, seed)); }
  sample(n, temperature, seed, perLevel) { return this.queue.run(() => this.model.sample(n, temperature, seed, perLevel)); }
  // Synchronous helpers: the latent math lives in Rust (model::latent, via the Session).
  /** eps of `n` samples from `seed`, scaled by `temps` (one number, or one per level). */
  sampleEps(n, seed, temps = 1) {
    const perLevel = typeof temps === 'number' ? undefined : Float32Array.from(temps);
    return this.model.sampleEps(n, seed >>> 0, typeof temps === 'number' ? temps : 1, perLevel);
  }
  manipulate(eps, amounts) { return this.model.manipulate(eps, amounts); }
  /** `steps` eps from a to b; path 'linear' or 'spherical'. */
  interpolate(a, b, steps, path = 'spherical') { return this.model.interpolate(a, b, steps, path); }
  /** The point at t (0 = a, 1 = b) between two eps. */
  mix(a, b, t, path = 'spherical') { return this.model.mix(a, b, t, path); }
  /** A taught direction joins the attributes (after the shipped ones); returns its index. */
  teachDirection(name, withEps, withoutEps) { return this.model.teachDirection(name, withEps, withoutEps); }
  forgetDirection(name) { this.model.forgetDirection(name); }
  /** What the model sees of an RGBA image (n_bits, bin centres). */
  quantizeInput(rgba) { return this.model.quantizeInput(rgba); }

  /**
   * Decodes n images (eps at temperature 1) in chunks, yielding to the event loop
   * between chunks; onChunk(rgba, first, count) draws as they come. Returns ms/image.
   * `cancelled()` lets a newer request stop an older one between chunks.
   */
  async decodeChunked(eps, n, onChunk, cancelled = () => false) {
    if (n > 1 && this.pool && await this.pool.ready) return this.decodeOnWorkers(eps, n, onChunk, cancelled);
    const t0 = performance.now();
    let engineMs = 0;
    for (let first = 0; first < n; first += this.chunk) {
      if (cancelled()) return null;
      const count = Math.min(this.chunk, n - first);
      const part = eps.subarray(first * this.dim, (first + count) * this.dim);
      const t = performance.now();
      const rgba = await this.decode(part, count, 1);
      engineMs += performance.now() - t;
      if (cancelled()) return null;
      onChunk(rgba, first, count);
      await new Promise((r) => setTimeout(r, 0));
    }
    return { msPerImage: engineMs / n, totalMs: performance.now() - t0 };
  }

  /** decodeChunked on the worker pool: each worker takes the next image when it is free.
   *  msPerImage is wall time over images (what a visitor waits per image). */
  async decodeOnWorkers(eps, n, onChunk, cancelled) {
    const t0 = performance.now();
    let next = 0;
    let stopped = false;
    const work = async (i) => {
      while (next < n && !stopped) {
        if (cancelled()) { stopped = true; return; }
        const first = next++;
        const rgba = await this.pool.decode(i, eps.slice(first * this.dim, (first + 1) * this.dim), 1);
        if (cancelled()) { stopped = true; return; }
        onChunk(rgba, first, 1);
      }
    };
    await Promise.all(this.pool.workers.map((_, i) => work(i)));
    if (stopped) return null;
    const totalMs = performance.now() - t0;
    return { msPerImage: totalMs / n, totalMs };
  }
}

const models = new Map(); // key -> {promise, listeners:Set, last:{loaded,total}}

function resolveUrl(url) {
  return new URL(url.replace(/\/+$/, ''), document.baseURI).href;
}

/**
 * Loads (once per document) the model in directory `url`. `onProgress(loaded, total)`
 * reports the download. backend: "auto" (WebGPU when available, else the CPU engine),
 * "webgpu" or "cpu". Resolves to a SharedModel; call release() when done with it.
 */
export function loadModel(url, { backend = 'auto', batch = 4, workers, onProgress } = {}) {
  const abs = resolveUrl(url);
  const key = `${abs}|${backend}|${workers}`;
  let entry = models.get(key);
  if (!entry) {
    entry = { listeners: new Set(), last: null };
    const report = (loaded, total) => {
      entry.last = { loaded, total };
      for (const f of entry.listeners) {
        try { f(loaded, total); } catch { /* a listener's bug is not ours */ }
      }
    };
    entry.promise = loadUncached(abs, backend, batch, workers, report);
    entry.promise.then((m) => { entry.listeners.clear(); return m; }, () => models.delete(key));
    models.set(key, entry);
  }
  if (onProgress) {
    entry.listeners.add(onProgress);
    if (entry.last) onProgress(entry.last.loaded, entry.last.total);
  }
  return entry.promise.then((m) => {
    m.refs++;
    return m;
  });
}

/** Drops one reference; the GPU model is freed shortly after the last one goes. */
export function release(shared) {
  if (!shared || shared.freed) return;
  shared.refs = Math.max(0, shared.refs - 1);
  if (shared.refs > 0) return;
  setTimeout(() => {
    if (shared.refs > 0 || shared.freed) return;
    shared.freed = true;
    for (const [k, e] of models) {
      e.promise.then((m) => { if (m === shared) models.delete(k); }, () => {});
    }
    if (shared.pool) shared.pool.terminate();
    shared.queue.run(() => shared.model.free()).catch(() => {});
  }, 2000);
}

async function loadUncached(abs, backend, batch, workers, report) {
  const [glow, configText] = await Promise.all([
    initGlow(),
    fetch(`${abs}/model.json`, { cache: 'no-cache' }).then((r) => {
      if (!r.ok) throw new Error(`could not load ${abs}/model.json: HTTP ${r.status}`);
      return r.text();
    }),
  ]);
  let config;
  try {
    config = JSON.parse(configText);
  } catch (e) {
    throw new Error(`${abs}/model.json is not valid JSON: ${e.message}`);
  }
  const version = hashText(configText);
  const files = [config.weights || 'weights.safetensors'];
  if (config.attributes && config.attributes.file) files.push(config.attributes.file);
  const progress = files.map(() => ({ loaded: 0, total: 0 }));
  const results = await Promise.all(files.map((f, i) => fetchBytes(`${abs}/${f}`, version, (loaded, total) => {
    progress[i] = { loaded, total };
    report(progress.reduce((s, p) => s + p.loaded, 0), progress.reduce((s, p) => s + p.total, 0));
  })));
  const weights = results[0].bytes;
  const attributes = results[1] ? results[1].bytes : undefined;
  const info = {
    cached: results.every((r) => r.cached),
    bytes: results.reduce((s, r) => s + r.bytes.length, 0),
    notice: null,
    batch,
    workers, // CPU engine's decode workers (default: one per core up to 4, none on one core)
    configText, // for the CPU engine's workers (not kept on the model)
    weights,
  };
  // The probe only names the adapter for display and sizes the GPU plan: on a software
  // adapter every image costs seconds, so a plan of one image keeps single-image calls
  // cheap. Which engine runs is decided in Rust (Backend::choose), and model.backendReason
  // says why.
  const probe = backend === 'cpu' ? { problem: null, adapter: '', software: false } : await probeWebGPU();
  info.adapterName = probe.adapter;
  if (probe.software) info.batch = batch = 1;
  const model = await glow.GlowModel.load(configText, weights, attributes, backend, batch);
  // A visitor who wanted the GPU and did not get it is told why.
  if (backend === 'auto' && model.backend === 'cpu' && probe.problem) info.notice = probe.problem;
  return new SharedModel(abs, model, config, info);
}

/** The first (default) model URL listed in models/index.json next to `base`. */
export async function defaultModelUrl(base = document.baseURI) {
  const url = new URL('models/index.json', base).href;
  const r = await fetch(url, { cache: 'no-cache' });
  if (!r.ok) throw new Error(`could not load ${url}: HTTP ${r.status}`);
  const list = await r.json();
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${url} lists no models`);
  return new URL(list[0], url.replace(/models\/index\.json$/, '')).href;
}

/** Draws one RGBA image (a slice of `rgba` starting at image `index`) on a canvas. */
export function drawImage(canvas, rgba, width, height, index = 0) {
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const n = width * height * 4;
  const data = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset + index * n, n);
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(data), width, height), 0, 0);
}

/** "Blond_Hair" -> "Blond hair". */
export function prettyName(s) {
  const t = String(s).replace(/^5_o_Clock/i, "5 o'clock").replace(/_/g, ' ').trim();
  return t.charAt(0).toUpperCase() + t.slice(1).toLowerCase();
}

// ---------------------------------------------------------------------------------------
// The custom element.

const WIDGET_CSS = `
:host { display: inline-block; width: 260px; max-width: 100%; vertical-align: top;
  font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2433;
  --glow-accent: #5b5bd6; }
:host([hidden]) { display: none; }
.card { border: 1px solid #dfe3ec; border-radius: 12px; background: #fff; padding: 10px; text-align: left;
  box-shadow: 0 1px 2px rgba(20, 30, 60, .06); }
.view { position: relative; aspect-ratio: 1 / 1; background: #eef0f5; border-radius: 8px; overflow: hidden; }
canvas { display: block; width: 100%; height: 100%; image-rendering: pixelated; }
.overlay { position: absolute; inset: 0; display: flex; flex-direction: column; align-items: center;
  justify-content: center; gap: 8px; padding: 12px; text-align: center; color: #4a5468;
  background: rgba(238, 240, 245, .92); }
.overlay[hidden] { display: none; }
.bar { width: 80%; height: 6px; border-radius: 3px; background: #d6dbe6; overflow: hidden; }
.bar > div { height: 100%; width: 0; background: var(--glow-accent); transition: width .15s; }
.row { display: flex; align-items: center; gap: 8px; margin-top: 8px; }
.row label { flex: 0 0 auto; color: #4a5468; min-width: 5.5em; }
.row input[type=range] { flex: 1 1 auto; min-width: 0; accent-color: var(--glow-accent); }
.row output { flex: 0 0 2.6em; text-align: right; font-variant-numeric: tabular-nums; }
select { flex: 1 1 auto; min-width: 0; font: inherit; padding: 3px 4px; border-radius: 6px; border: 1px solid #cfd5e1; background: #fff; color: inherit; }
button { font: inherit; border: 0; border-radius: 8px; padding: 6px 12px; background: var(--glow-accent);
  color: #fff; cursor: pointer; }
button:hover { filter: brightness(1.08); }
button:disabled { opacity: .5; cursor: default; }
.foot { margin-top: 6px; font-size: 11px; color: #6b7385; display: flex; justify-content: space-between; gap: 6px; }
.foot span:last-child { text-align: right; }
.err { color: #b42318; }
[hidden] { display: none !important; }
@media (prefers-color-scheme: dark) {
  :host { color: #e6e9f0; }
  .card { background: #161a22; border-color: #2a3140; }
  .view { background: #0f1218; }
  .overlay { background: rgba(15, 18, 24, .92); color: #aab2c2; }
  .bar { background: #2a3140; }
  select { background: #0f1218; border-color: #2a3140; }
  .row label, .foot { color: #9aa3b5; }
}
`;

let widgetSheet = null;
function widgetStyles(shadow) {
  if ('adoptedStyleSheets' in Document.prototype && typeof CSSStyleSheet === 'function') {
    try {
      if (!widgetSheet) {
        widgetSheet = new CSSStyleSheet();
        widgetSheet.replaceSync(WIDGET_CSS);
      }
      shadow.adoptedStyleSheets = [widgetSheet];
      return;
    } catch { /* fall back below */ }
  }
  const style = document.createElement('style');
  style.textContent = WIDGET_CSS;
  shadow.appendChild(style);
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

const MODES = ['sample', 'manipulate', 'interpolate'];

export class GlowFace extends HTMLElement {
  static get observedAttributes() {
    return ['model', 'src', 'mode', 'temperature', 'seed', 'seed2', 'attribute', 'backend'];
  }

  constructor() {
    super();
    this.shared = null;
    this.eps = null; // mode sample/manipulate: one face; interpolate: face A
    this.epsB = null;
    this.amount = 0;
    this.loading = null;
    this.renderBusy = false;
    this.renderAgain = false;
    this.built = false;
  }

  // Reflected properties.
  get model() { return this.getAttribute('model') || this.getAttribute('src') || ''; }
  set model(v) { this.setAttribute('model', v); }
  get src() { return this.model; }
  set src(v) { this.setAttribute('src', v); }
  get mode() { const m = this.getAttribute('mode'); return MODES.includes(m) ? m : 'sample'; }
  set mode(v) { this.setAttribute('mode', v); }
  get temperature() {
    const t = parseFloat(this.getAttribute('temperature'));
    return Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0.7;
  }
  set temperature(v) { this.setAttribute('temperature', String(v)); }
  get seed() { const s = parseInt(this.getAttribute('seed'), 10); return Number.isFinite(s) ? s >>> 0 : 0; }
  set seed(v) { this.setAttribute('seed', String(v >>> 0)); }
  get seed2() { const s = parseInt(this.getAttribute('seed2'), 10); return Number.isFinite(s) ? s >>> 0 : (this.seed + 1) >>> 0; }
  set seed2(v) { this.setAttribute('seed2', String(v >>> 0)); }
  get attribute() { return this.getAttribute('attribute') || ''; }
  set attribute(v) { this.setAttribute('attribute', v); }
  get backend() { return this.getAttribute('backend') || 'auto'; }
  set backend(v) { this.setAttribute('backend', v); }
  /** The SharedModel once loaded (null before). */
  get glowModel() { return this.shared; }

  connectedCallback() {
    if (!this.built) this.build();
    if (!this.shared && !this.loading) this.load();
  }

  disconnectedCallback() {
    // Released a moment later unless the element comes straight back (moved in the DOM).
    setTimeout(() => {
      if (!this.isConnected && this.shared) {
        release(this.shared);
        this.shared = null;
        this.loading = null;
      }
    }, 0);
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (!this.built || oldValue === newValue) return;
    if (name === 'model' || name === 'src' || name === 'backend') {
      if (this.shared) release(this.shared);
      this.shared = null;
      this.loading = null;
      if (this.isConnected) this.load();
      return;
    }
    this.syncControls();
    if (!this.shared) return;
    if (name === 'mode') this.setupMode();
    else if (name === 'seed' || name === 'seed2') { this.newEps(); this.render(); }
    else if (name === 'attribute') { this.amount = 0; this.ui.amount.value = '0'; this.render(); }
    else this.render();
  }

  build() {
    this.built = true;
    const shadow = this.attachShadow({ mode: 'open' });
    widgetStyles(shadow);
    const ui = (this.ui = {});
    ui.canvas = el('canvas', { part: 'canvas', width: 1, height: 1 });
    ui.canvas.setAttribute('role', 'img');
    ui.canvas.setAttribute('aria-label', 'A face generated by Glow');
    ui.bar = el('div');
    ui.msg = el('div', {}, 'Loading Glow…');
    ui.overlay = el('div', { class: 'overlay' }, ui.msg, el('div', { class: 'bar' }, ui.bar));
    const view = el('div', { class: 'view' }, ui.canvas, ui.overlay);

    ui.temp = el('input', { type: 'range', min: '0', max: '1', step: '0.01' });
    ui.tempOut = el('output');
    ui.temp.setAttribute('aria-label', 'Temperature');
    const tempRow = el('div', { class: 'row' }, el('label', {}, 'Temperature'), ui.temp, ui.tempOut);

    ui.attrSel = el('select');
    ui.attrSel.setAttribute('aria-label', 'Attribute');
    ui.amount = el('input', { type: 'range', min: '-2', max: '2', step: '0.05', value: '0' });
    ui.amount.setAttribute('aria-label', 'Attribute amount');
    ui.amountOut = el('output', {}, '0');
    ui.attrRows = el('div', {},
      el('div', { class: 'row' }, el('label', {}, 'Attribute'), ui.attrSel),
      el('div', { class: 'row' }, el('label', {}, 'Amount'), ui.amount, ui.amountOut));

    ui.mix = el('input', { type: 'range', min: '0', max: '1', step: '0.01', value: '0.5' });
    ui.mix.setAttribute('aria-label', 'Position between the two faces');
    ui.mixOut = el('output', {}, '0.50');
    ui.mixRow = el('div', { class: 'row' }, el('label', {}, 'A ↔ B'), ui.mix, ui.mixOut);

    ui.button = el('button', { type: 'button', disabled: true }, 'New face');
    ui.status = el('span', {}, '');
    ui.backendNote = el('span', {}, '');
    const buttons = el('div', { class: 'row' }, ui.button);
    const foot = el('div', { class: 'foot' }, ui.status, ui.backendNote);
    shadow.append(el('div', { class: 'card', part: 'card' }, view, tempRow, ui.attrRows, ui.mixRow, buttons, foot));

    ui.temp.addEventListener('input', () => {
      ui.tempOut.value = Number(ui.temp.value).toFixed(2);
      this.setAttribute('temperature', ui.temp.value);
    });
    ui.amount.addEventListener('input', () => {
      this.amount = Number(ui.amount.value);
      ui.amountOut.value = this.amount.toFixed(2);
      this.render();
    });
    ui.attrSel.addEventListener('change', () => this.setAttribute('attribute', ui.attrSel.value));
    ui.mix.addEventListener('input', () => {
      ui.mixOut.value = Number(ui.mix.value).toFixed(2);
      this.render();
    });
    ui.button.addEventListener('click', () => this.sample());
    this.syncControls();
  }

  syncControls() {
    const { ui } = this;
    ui.temp.value = String(this.temperature);
    ui.tempOut.value = this.temperature.toFixed(2);
    const hasAttrs = this.shared && this.shared.attributeNames.length > 0;
    ui.attrRows.hidden = !(this.mode === 'manipulate' && hasAttrs);
    ui.mixRow.hidden = this.mode !== 'interpolate';
    const noun = this.shared && this.shared.channels === 1 ? 'sample' : 'face';
    ui.button.textContent = this.mode === 'interpolate' ? 'New pair' : `New ${noun}`;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  fail(name, message) {
    this.ui.overlay.hidden = false;
    this.ui.msg.className = 'err';
    this.ui.msg.textContent = message;
    this.ui.bar.parentElement.hidden = true;
    this.emit('glow-error', { name, message, fatal: true });
  }

  async load() {
    const { ui } = this;
    ui.overlay.hidden = false;
    ui.msg.className = '';
    ui.msg.textContent = 'Loading Glow…';
    ui.bar.parentElement.hidden = false;
    ui.button.disabled = true;
    const token = {};
    this.loading = token;
    let shared;
    try {
      const url = this.model || (await defaultModelUrl());
      shared = await loadModel(url, {
        backend: this.backend,
        onProgress: (loaded, total) => {
          if (this.loading !== token) return;
          ui.bar.style.width = total ? `${Math.min(100, (100 * loaded) / total).toFixed(1)}%` : '30%';
          ui.msg.textContent = total ? `Downloading the model… ${(loaded / 1e6).toFixed(1)} / ${(total / 1e6).toFixed(1)} MB` : 'Downloading the model…';
          this.emit('glow-progress', { loaded, total });
        },
      });
    } catch (e) {
      if (this.loading === token) this.fail('LoadError', `Could not load the model: ${e.message || e}`);
      return;
    }
    if (this.loading !== token) {
      release(shared);
      return;
    }
    if (!this.isConnected) {
      this.loading = null;
      release(shared);
      return;
    }
    this.loading = null;
    this.shared = shared;
    if (shared.notice) {
      this.emit('glow-error', { name: 'WebGPUNotAvailable', message: `${shared.notice} Running on the CPU instead.`, fatal: false });
    }
    ui.backendNote.textContent = shared.backend === 'webgpu' ? 'WebGPU' : 'CPU';
    ui.backendNote.title = shared.notice || shared.reason;
    ui.canvas.width = shared.width;
    ui.canvas.height = shared.height;
    ui.msg.textContent = 'Drawing…';
    ui.bar.parentElement.hidden = true;
    this.emit('glow-ready', { width: shared.width, height: shared.height, adapter: shared.adapterInfo, backend: shared.backend });
    this.setupMode();
  }

  setupMode() {
    const { ui, shared } = this;
    if (!shared) return;
    ui.attrSel.replaceChildren(...shared.attributeNames.map((n) => el('option', { value: n }, prettyName(n))));
    if (shared.attributeNames.length) {
      const want = shared.attributeNames.find((n) => n.toLowerCase() === this.attribute.toLowerCase())
        || shared.attributeNames.find((n) => n === 'Smiling') || shared.attributeNames[0];
      ui.attrSel.value = want;
    }
    if (this.mode === 'manipulate' && !shared.attributeNames.length) {
      ui.status.textContent = 'no attributes in this model';
    }
    this.syncControls();
    this.newEps();
    this.render();
  }

  newEps() {
    if (!this.shared) return;
    this.eps = this.shared.sampleEps(1, this.seed);
    this.epsB = this.mode === 'interpolate' ? this.shared.sampleEps(1, this.seed2) : null;
  }

  /** Draws a new face (or pair). With a seed, that one; else a random one. */
  sample(seed) {
    const s = seed === undefined ? (Math.random() * 2 ** 31) >>> 0 : seed >>> 0;
    if (this.mode === 'interpolate') this.setAttribute('seed2', String((s + 1) >>> 0));
    this.seed = s;
  }

  /** Back to the attributes' values: amount 0, the middle of an interpolation. */
  reset() {
    const { ui } = this;
    this.amount = 0;
    ui.amount.value = '0';
    ui.amountOut.value = '0.00';
    ui.mix.value = '0.5';
    ui.mixOut.value = '0.50';
    this.render();
  }

  currentEps() {
    const { shared } = this;
    let eps = this.eps;
    if (this.mode === 'interpolate' && this.epsB) {
      eps = shared.mix(eps, this.epsB, Number(this.ui.mix.value));
    } else if (this.mode === 'manipulate' && shared.attributeNames.length && this.amount !== 0) {
      const amounts = new Float32Array(shared.attributeNames.length);
      amounts[Math.max(0, shared.attributeNames.indexOf(this.ui.attrSel.value))] = this.amount;
      eps = shared.manipulate(eps, amounts);
    }
    return eps; // at temperature 1: render() decodes it at the widget's temperature
  }

  /** Decodes the current face; requests made meanwhile coalesce into one more render. */
  async render() {
    if (!this.shared || !this.eps) return;
    if (this.renderBusy) { this.renderAgain = true; return; }
    this.renderBusy = true;
    const { ui } = this;
    ui.button.disabled = true;
    try {
      do {
        this.renderAgain = false;
        const shared = this.shared;
        if (!shared) break;
        const t0 = performance.now();
        const rgba = await shared.decode(this.currentEps(), 1, this.temperature);
        if (this.shared !== shared) break;
        drawImage(ui.canvas, rgba, shared.width, shared.height);
        ui.overlay.hidden = true;
        ui.status.textContent = `${Math.round(performance.now() - t0)} ms`;
        this.dataset.renders = String((Number(this.dataset.renders) || 0) + 1);
      } while (this.renderAgain);
    } catch (e) {
      this.fail('RenderError', `Could not draw: ${e.message || e}`);
    } finally {
      this.renderBusy = false;
      ui.button.disabled = !this.shared;
    }
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('glow-face')) {
  customElements.define('glow-face', GlowFace);
}
