// @ts-check
// <glow-face>: an embeddable Glow widget (a custom element; the engine is glow/client.js).
//
//   <script type="module" src="https://example.org/glow/glow-face.js"></script>
//   <glow-face model="models/celeba-64x64-additive" mode="sample" temperature="0.7" seed="1"></glow-face>
//
// glow-face.js needs glow/ (the client and its worker) and the wasm engine's builds (pkg/,
// pkg-relaxed/, pkg-mt/, pkg-mt-relaxed/; glow/builds.js picks one) next to it.
// Nothing is downloaded until the widget comes within 200px of the viewport: until then it
// shows its poster (the `poster` image, or a neutral placeholder), which also loads the
// widget at once when clicked.
//
// Attributes (all reflected as properties, all honoured when they change later):
//   model (alias src)  a model directory URL, relative to the page; left out: the first
//                      entry of models/index.json next to glow-face.js
//   mode               "sample" | "manipulate" | "interpolate"
//   temperature        0..1 (default 0.7)
//   seed, seed2        the face's seed; interpolate's second face (default seed + 1)
//   attribute, amount  manipulate: the attribute's name (e.g. "Smiling") and how far to move
//                      along it, -2..2 (default 0)
//   mix                interpolate: 0 (first face) .. 1 (second face), default 0.5
//   backend            "auto" | "webgpu" | "cpu"
//   theme              "light" | "dark" (default: the visitor's prefers-color-scheme)
//   poster             an image shown until the widget loads
//   loading            "lazy" (default: load when scrolled near) | "eager" (load at once)
//
// Events (bubbling, composed):
//   glow-progress  {fraction (0..1), loaded, total}       the download; ends with fraction 1
//   glow-ready     {width, height, backend, adapter, reason, name, model}
//   glow-error     {name, title, message, fatal}           title: what went wrong, in plain
//                  words; without WebGPU a non-fatal "WebGPUNotAvailable" and the CPU engine
// Methods: sample(seed?) draws another face, reset() sets amount 0 and mix 0.5,
//   toBlob(type?) resolves to the current picture (PNG unless `type` says otherwise),
//   load() starts loading now (as if scrolled into view).
// Properties: glowModel (the GlowClient, null until loaded), state ("waiting" | "loading" |
//   "ready" | "error"). data-state, data-busy (decodes under way) and data-renders (pictures
//   drawn so far) on the element say the same to stylesheets and tests.
//
// Styling: the widget's insides are in a shadow root; style them with these CSS custom
// properties (set on the element or any ancestor) and ::part() names.
//   --glow-bg --glow-fg --glow-muted --glow-accent --glow-accent-fg --glow-border
//   --glow-view-bg --glow-error --glow-radius --glow-font
//   Parts: card, view, canvas, poster, poster-image, poster-text, overlay, message, detail,
//   progress, progress-bar, controls, row, label, slider, select, value, button, footer,
//   status, backend.
//
// CSP-strict: no inline scripts, no eval, styles in a constructed stylesheet (adopted by
// the shadow root), so it works under script-src 'self' 'wasm-unsafe-eval'; style-src 'self'.
// Widgets on one document share one download and one set of engine workers per model.

import { GlowClient, defaultModelUrl, drawImage, explain, isSuperseded, namedError, prettyName } from './glow/client.js';

/** @typedef {'sample' | 'manipulate' | 'interpolate'} Mode */
/** @typedef {'waiting' | 'loading' | 'ready' | 'error'} State */

const HERE = new URL('./', import.meta.url).href;
const MODES = /** @type {const} */ (['sample', 'manipulate', 'interpolate']);
const BACKENDS = /** @type {const} */ (['auto', 'webgpu', 'cpu']);

// ---------------------------------------------------------------------------------------
// Styles

/** @type {Record<string, string>} */
const LIGHT = {
  bg: '#ffffff', fg: '#1d2433', muted: '#5b6478', accent: '#5b5bd6', 'accent-fg': '#ffffff',
  border: '#dfe3ec', 'view-bg': '#eef0f5', error: '#b42318',
};
/** @type {Record<string, string>} */
const DARK = {
  bg: '#161a22', fg: '#e6e9f0', muted: '#9aa3b5', accent: '#9b99ff', 'accent-fg': '#10121a',
  border: '#2a3140', 'view-bg': '#0f1218', error: '#ff8a80',
};
/** Internal --_x variables: the page's --glow-x when set, else the theme's value. */
const vars = (/** @type {Record<string, string>} */ t) => Object.entries(t).map(([k, v]) => `--_${k}: var(--glow-${k}, ${v});`).join(' ');

const WIDGET_CSS = `
:host { display: inline-block; width: 260px; max-width: 100%; vertical-align: top; text-align: left;
  ${vars(LIGHT)} color-scheme: light;
  font: 13px/1.4 var(--glow-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif); color: var(--_fg); }
@media (prefers-color-scheme: dark) { :host(:not([theme="light"])) { ${vars(DARK)} color-scheme: dark; } }
:host([theme="dark"]) { ${vars(DARK)} color-scheme: dark; }
:host([hidden]) { display: none; }
[hidden] { display: none !important; }
.card { border: 1px solid var(--_border); border-radius: var(--glow-radius, 12px); background: var(--_bg);
  color: var(--_fg); padding: 10px; box-shadow: 0 1px 2px rgba(20, 30, 60, .06); }
.view { position: relative; aspect-ratio: 1 / 1; background: var(--_view-bg); border-radius: 8px; overflow: hidden; }
canvas { display: block; width: 100%; height: 100%; image-rendering: pixelated; }
.poster, .overlay { position: absolute; inset: 0; display: flex; flex-direction: column; align-items: center;
  justify-content: center; gap: 8px; padding: 12px; text-align: center; }
.poster { width: 100%; border: 0; margin: 0; font: inherit; color: var(--_muted); cursor: pointer;
  background: var(--_view-bg) repeating-linear-gradient(135deg, transparent 0 14px, rgba(127, 127, 127, .05) 14px 28px); }
.poster:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.poster img { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: cover; }
.poster.has-image span { position: absolute; bottom: 8px; left: 8px; right: 8px; }
.poster span { position: relative; padding: 3px 8px; border-radius: 6px; background: var(--_bg); color: var(--_muted); }
.overlay { color: var(--_muted); background: color-mix(in srgb, var(--_view-bg) 92%, transparent); }
.overlay .detail { font-size: 11px; opacity: .85; overflow-wrap: anywhere; max-height: 40%; overflow: auto; }
.overlay.err .message { color: var(--_error); font-weight: 600; }
.bar { width: 80%; height: 6px; border-radius: 3px; background: var(--_border); overflow: hidden; }
.bar > div { height: 100%; width: 0; background: var(--_accent); transition: width .15s; }
.row { display: flex; align-items: center; gap: 8px; margin-top: 8px; }
.row label { flex: 0 0 auto; color: var(--_muted); min-width: 5.5em; }
.row input[type=range] { flex: 1 1 auto; min-width: 0; accent-color: var(--_accent); }
.row output { flex: 0 0 2.8em; text-align: right; font-variant-numeric: tabular-nums; }
select { flex: 1 1 auto; min-width: 0; font: inherit; padding: 3px 4px; border-radius: 6px;
  border: 1px solid var(--_border); background: var(--_bg); color: inherit; }
button.act { font: inherit; border: 0; border-radius: 8px; padding: 6px 12px; background: var(--_accent);
  color: var(--_accent-fg); cursor: pointer; }
button.act:hover { filter: brightness(1.08); }
button.act:disabled { opacity: .5; cursor: default; }
.foot { margin-top: 6px; font-size: 11px; color: var(--_muted); display: flex; justify-content: space-between; gap: 6px; }
.foot span:last-child { text-align: right; }
.sr { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
`;

/** @type {CSSStyleSheet | null} */
let widgetSheet = null;
function widgetStyles(/** @type {ShadowRoot} */ shadow) {
  try {
    if (!widgetSheet) {
      widgetSheet = new CSSStyleSheet();
      widgetSheet.replaceSync(WIDGET_CSS);
    }
    shadow.adoptedStyleSheets = [widgetSheet];
  } catch {
    // A browser without constructed stylesheets (a strict CSP may then block this).
    const style = document.createElement('style');
    style.textContent = WIDGET_CSS;
    shadow.appendChild(style);
  }
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {Record<string, string>} [attrs] @param {(Node | string)[]} children
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** A labelled slider row: {row, input, out}. */
function sliderRow(/** @type {string} */ label, /** @type {string} */ min, /** @type {string} */ max, /** @type {string} */ step) {
  const input = el('input', { type: 'range', min, max, step, part: 'slider', 'aria-label': label });
  const out = el('output', { part: 'value' });
  const row = el('div', { class: 'row', part: 'row' }, el('label', { part: 'label' }, label), input, out);
  return { row, input, out };
}

// ---------------------------------------------------------------------------------------
// Loading when visible: one observer for every widget on the page.

/** @type {IntersectionObserver | null} */
let observer = null;
function visibility() {
  if (!observer && typeof IntersectionObserver === 'function') {
    observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        /** @type {IntersectionObserver} */ (observer).unobserve(e.target);
        /** @type {GlowFace} */ (e.target).load();
      }
    }, { rootMargin: '200px' });
  }
  return observer;
}

/** Builds a widget's shadow root; returns the parts the element updates. */
function buildShadow(/** @type {HTMLElement} */ host) {
  const shadow = host.attachShadow({ mode: 'open' });
  widgetStyles(shadow);
  const canvas = el('canvas', { part: 'canvas', width: '1', height: '1', role: 'img', 'aria-label': 'A face drawn by Glow' });
  const posterImage = el('img', { part: 'poster-image', alt: '' });
  const posterText = el('span', { part: 'poster-text' }, 'Glow face: loads when visible');
  const poster = el('button', { class: 'poster', part: 'poster', type: 'button', 'aria-label': 'Glow face: loads when visible; press to load it now' }, posterImage, posterText);
  const message = el('div', { class: 'message', part: 'message' });
  const detail = el('div', { class: 'detail', part: 'detail' });
  const bar = el('div', { part: 'progress-bar' });
  const progress = el('div', { class: 'bar', part: 'progress' }, bar);
  const retry = el('button', { class: 'act', part: 'button', type: 'button' }, 'Try again');
  const overlay = el('div', { class: 'overlay', part: 'overlay' }, message, progress, detail, retry);
  overlay.hidden = true;
  retry.hidden = true;
  const view = el('div', { class: 'view', part: 'view' }, canvas, poster, overlay);

  const temp = sliderRow('Temperature', '0', '1', '0.01');
  const attrSel = el('select', { part: 'select', 'aria-label': 'Attribute' });
  const amount = sliderRow('Amount', '-2', '2', '0.05');
  amount.input.setAttribute('aria-label', 'Attribute amount');
  const attrRows = el('div', {}, el('div', { class: 'row', part: 'row' }, el('label', { part: 'label' }, 'Attribute'), attrSel), amount.row);
  const mix = sliderRow('A ↔ B', '0', '1', '0.01');
  mix.input.setAttribute('aria-label', 'Position between the two faces');
  const button = el('button', { class: 'act', part: 'button', type: 'button', disabled: '' }, 'New face');
  const controls = el('div', { class: 'controls', part: 'controls' }, temp.row, attrRows, mix.row, el('div', { class: 'row', part: 'row' }, button));
  const status = el('span', { part: 'status' });
  const backendNote = el('span', { part: 'backend' });
  const footer = el('div', { class: 'foot', part: 'footer' }, status, backendNote);
  const live = el('div', { class: 'sr', role: 'status', 'aria-live': 'polite' });
  shadow.append(el('div', { class: 'card', part: 'card' }, view, controls, footer, live));

  return { canvas, poster, posterImage, posterText, overlay, message, detail, progress, bar, retry, temp, attrSel, amount, attrRows, mix, button, status, backendNote, live };
}

let uid = 0;

/** The default model's URL, looked up once per document. @type {Promise<string> | null} */
let defaultUrl = null;
function defaultModel() {
  if (!defaultUrl) {
    defaultUrl = defaultModelUrl(HERE);
    defaultUrl.catch(() => { defaultUrl = null; });
  }
  return defaultUrl;
}

// ---------------------------------------------------------------------------------------
// The element.

export class GlowFace extends HTMLElement {
  static get observedAttributes() {
    return ['model', 'src', 'mode', 'temperature', 'seed', 'seed2', 'attribute', 'amount', 'mix', 'backend', 'theme', 'poster', 'loading'];
  }

  /** @type {GlowClient | null} */
  #client = null;
  /** @type {State} */
  #state = 'waiting';
  /** The load under way (a newer one or a release makes it stale). @type {object | null} */
  #loading = null;
  /** Promises of eps (temperature 1) by seed, for the current client. @type {Map<number, Promise<Float32Array>>} */
  #eps = new Map();
  #renderQueued = false;
  #busy = 0;
  #drawn = false;
  #key = `widget-${++uid}`;
  #ui = buildShadow(this);
  /** The highest fraction shown, so that the bar never runs backwards. */
  #shownFraction = 0;
  #lastFraction = -1;
  #announcedStep = 0;

  constructor() {
    super();
    const { poster, retry, temp, amount, mix, attrSel, button } = this.#ui;
    poster.addEventListener('click', () => this.load());
    retry.addEventListener('click', () => this.#reload());
    temp.input.addEventListener('input', () => this.setAttribute('temperature', temp.input.value));
    amount.input.addEventListener('input', () => this.setAttribute('amount', amount.input.value));
    mix.input.addEventListener('input', () => this.setAttribute('mix', mix.input.value));
    attrSel.addEventListener('change', () => this.setAttribute('attribute', attrSel.value));
    button.addEventListener('click', () => this.sample());
    // (The host's own attributes, data-state and data-busy, are set once it is connected.)
    this.#syncControls();
    this.#syncPoster();
  }

  // Reflected properties.
  get model() { return this.getAttribute('model') || this.getAttribute('src') || ''; }
  set model(v) { this.setAttribute('model', v); }
  get src() { return this.model; }
  set src(v) { this.setAttribute('model', v); }
  /** @returns {Mode} */
  get mode() {
    const m = /** @type {Mode} */ (this.getAttribute('mode'));
    return MODES.includes(m) ? m : 'sample';
  }
  set mode(v) { this.setAttribute('mode', v); }
  get temperature() { return this.#number('temperature', 0.7, 0, 1); }
  set temperature(v) { this.setAttribute('temperature', String(v)); }
  get seed() { return this.#seed('seed', 0); }
  set seed(v) { this.setAttribute('seed', String(v >>> 0)); }
  get seed2() { return this.#seed('seed2', (this.seed + 1) >>> 0); }
  set seed2(v) { this.setAttribute('seed2', String(v >>> 0)); }
  get attribute() { return this.getAttribute('attribute') || ''; }
  set attribute(v) { this.setAttribute('attribute', v); }
  get amount() { return this.#number('amount', 0, -2, 2); }
  set amount(v) { this.setAttribute('amount', String(v)); }
  get mix() { return this.#number('mix', 0.5, 0, 1); }
  set mix(v) { this.setAttribute('mix', String(v)); }
  /** @returns {'auto' | 'webgpu' | 'cpu'} */
  get backend() {
    const b = /** @type {'auto' | 'webgpu' | 'cpu'} */ (this.getAttribute('backend'));
    return BACKENDS.includes(b) ? b : 'auto';
  }
  set backend(v) { this.setAttribute('backend', v); }
  get theme() { return this.getAttribute('theme') || ''; }
  set theme(v) { this.setAttribute('theme', v); }
  get poster() { return this.getAttribute('poster') || ''; }
  set poster(v) { this.setAttribute('poster', v); }
  get loading() { return this.getAttribute('loading') === 'eager' ? 'eager' : 'lazy'; }
  set loading(v) { this.setAttribute('loading', v); }
  /** The GlowClient once loaded (null before). */
  get glowModel() { return this.#client; }
  get state() { return this.#state; }

  /** @param {string} name @param {number} def @param {number} lo @param {number} hi */
  #number(name, def, lo, hi) {
    const t = parseFloat(this.getAttribute(name) ?? '');
    return Number.isFinite(t) ? Math.min(hi, Math.max(lo, t)) : def;
  }
  /** @param {string} name @param {number} def */
  #seed(name, def) {
    const s = parseInt(this.getAttribute(name) ?? '', 10);
    return Number.isFinite(s) ? s >>> 0 : def;
  }

  connectedCallback() {
    this.dataset.state = this.#state;
    this.dataset.busy = String(this.#busy);
    if (this.#client || this.#loading || this.#state === 'error') return;
    const io = visibility();
    if (this.loading === 'eager' || !io) this.load();
    else io.observe(this);
  }

  disconnectedCallback() {
    if (observer) observer.unobserve(this);
    // Released a moment later unless the element comes straight back (moved in the DOM).
    setTimeout(() => {
      if (this.isConnected) return;
      this.#release();
      this.#setState('waiting');
      this.#syncPoster();
    }, 0);
  }

  /** @param {string} name @param {string | null} oldValue @param {string | null} newValue */
  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue) return;
    switch (name) {
      case 'model': case 'src': case 'backend':
        // Only a widget that has started loading loads again; a waiting one reads these later.
        if (this.#state !== 'waiting') this.#reload();
        return;
      case 'poster': this.#syncPoster(); return;
      case 'loading': if (this.loading === 'eager' && this.isConnected && this.#state === 'waiting') this.load(); return;
      case 'theme': return; // the stylesheet follows :host([theme])
      case 'mode': this.#setupAttributes(); break;
      default: break;
    }
    this.#syncControls();
    this.#requestRender();
  }

  // ------------------------------------------------------------------------------------
  // Public methods.

  /** Starts loading now (the widget otherwise waits until it is scrolled near). */
  load() {
    if (observer) observer.unobserve(this);
    if (this.#client || this.#loading || !this.isConnected) return;
    this.#open();
  }

  /** Draws a new face (or pair). With a seed, that one; else a random one. */
  sample(/** @type {number | undefined} */ seed = undefined) {
    const s = seed === undefined ? (Math.random() * 2 ** 31) >>> 0 : seed >>> 0;
    if (this.mode === 'interpolate') this.setAttribute('seed2', String((s + 1) >>> 0));
    this.seed = s;
  }

  /** Back to the unedited face: amount 0, the middle of an interpolation. */
  reset() {
    this.setAttribute('amount', '0');
    this.setAttribute('mix', '0.5');
  }

  /**
   * The current picture as an image file (PNG unless `type` names another format), at the
   * model's resolution.
   * @param {string} [type] @param {number} [quality]
   * @returns {Promise<Blob>}
   */
  toBlob(type = 'image/png', quality = undefined) {
    return new Promise((resolve, reject) => {
      if (!this.#drawn) {
        reject(namedError('InvalidStateError', 'the widget has not drawn a picture yet'));
        return;
      }
      this.#ui.canvas.toBlob((b) => (b ? resolve(b) : reject(namedError('EncodingError', 'the picture could not be encoded'))), type, quality);
    });
  }

  // ------------------------------------------------------------------------------------
  // Loading.

  #emit(/** @type {string} */ type, /** @type {any} */ detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  #announce(/** @type {string} */ text) {
    this.#ui.live.textContent = text;
  }

  #setState(/** @type {State} */ s) {
    this.#state = s;
    this.dataset.state = s;
  }

  #setBusy(/** @type {number} */ delta) {
    this.#busy = Math.max(0, this.#busy + delta);
    this.dataset.busy = String(this.#busy);
  }

  #syncPoster() {
    const { poster, posterImage } = this.#ui;
    poster.hidden = this.#state !== 'waiting';
    poster.classList.toggle('has-image', !!this.poster);
    if (this.poster) {
      if (posterImage.getAttribute('src') !== this.poster) posterImage.src = this.poster;
      posterImage.hidden = false;
    } else {
      posterImage.removeAttribute('src');
      posterImage.hidden = true;
    }
  }

  /** @param {{fraction: number, loaded: number, total: number}} p */
  #progress(p) {
    const fraction = Math.min(1, Math.max(0, p.fraction || 0));
    this.#lastFraction = fraction;
    this.#shownFraction = Math.max(this.#shownFraction, fraction);
    const { bar, message } = this.#ui;
    bar.style.width = `${(100 * this.#shownFraction).toFixed(1)}%`;
    message.textContent = p.total
      ? `Downloading the model… ${Math.round(100 * this.#shownFraction)}% (${(p.total / 1e6).toFixed(1)} MB)`
      : 'Downloading the model…';
    // A screen reader hears every quarter, not every chunk.
    const step = Math.floor(this.#shownFraction * 4);
    if (step > this.#announcedStep && step < 4) {
      this.#announcedStep = step;
      this.#announce(`Loading the Glow model, ${Math.round(100 * this.#shownFraction)}%`);
    }
    this.#emit('glow-progress', { fraction, loaded: p.loaded, total: p.total });
  }

  async #open() {
    const ui = this.#ui;
    const token = {};
    this.#loading = token;
    this.#setState('loading');
    this.#syncPoster();
    this.#drawn = false;
    this.#shownFraction = 0;
    this.#lastFraction = -1;
    this.#announcedStep = 0;
    ui.overlay.hidden = false;
    ui.overlay.classList.remove('err');
    ui.message.textContent = 'Loading Glow…';
    ui.detail.textContent = '';
    ui.retry.hidden = true;
    ui.progress.hidden = false;
    ui.bar.style.width = '0%';
    ui.button.disabled = true;
    ui.status.textContent = '';
    ui.backendNote.textContent = '';
    this.#announce('Loading the Glow model');
    /** @type {GlowClient} */
    let client;
    try {
      const url = this.model || (await defaultModel());
      if (this.#loading !== token) return;
      client = await GlowClient.open(url, {
        backend: this.backend,
        onProgress: (p) => { if (this.#loading === token) this.#progress(p); },
      });
    } catch (e) {
      if (this.#loading === token) {
        this.#loading = null;
        this.#fail(e, 'load');
      }
      return;
    }
    if (this.#loading !== token || !this.isConnected) {
      client.release();
      if (this.#loading === token) this.#loading = null;
      return;
    }
    this.#loading = null;
    this.#client = client;
    this.#eps.clear();
    const info = client.info;
    if (this.#lastFraction < 1) this.#progress({ fraction: 1, loaded: info.bytes, total: info.bytes });
    this.#setState('ready');
    ui.progress.hidden = true;
    ui.message.textContent = 'Drawing…';
    ui.canvas.width = info.width;
    ui.canvas.height = info.height;
    // The footer names the engine; "no WebGPU" only where WebGPU cannot be used at all
    // (the engine may also prefer the CPU over a software adapter: then it says why).
    const noWebGPU = info.backend === 'cpu' && !!info.webgpuProblem;
    ui.backendNote.textContent = info.backend === 'webgpu' ? 'WebGPU' : noWebGPU ? 'CPU (no WebGPU)' : 'CPU';
    const threads = info.threadsWhy ? ` (${info.threadsWhy})` : '';
    ui.backendNote.title = noWebGPU ? `${info.webgpuProblem}${threads}` : info.backend === 'webgpu' ? `${info.adapter}. ${info.reason}` : `${info.reason}${threads}`;
    this.#emit('glow-ready', {
      width: info.width, height: info.height, backend: info.backend, adapter: info.adapter,
      reason: info.reason, name: info.name, model: info.url,
    });
    if (noWebGPU) {
      this.#emit('glow-error', {
        name: 'WebGPUNotAvailable', title: 'WebGPU is not available here; the CPU engine draws instead (more slowly).',
        message: `${info.webgpuProblem}. Running on the CPU instead.`, fatal: false,
      });
    }
    this.#announce(`Glow model loaded on the ${info.backend === 'webgpu' ? 'GPU' : 'CPU'}; drawing`);
    this.#setupAttributes();
    this.#syncControls();
    this.#requestRender();
  }

  #release() {
    this.#loading = null;
    if (this.#client) this.#client.release();
    this.#client = null;
    this.#eps.clear();
  }

  /** Loads again (after the model or backend changed, or from the error's retry button). */
  #reload() {
    this.#release();
    if (this.isConnected) this.#open();
  }

  /** @param {unknown} e @param {'load' | 'render'} phase */
  #fail(e, phase) {
    const { title, detail } = explain(e);
    const name = (e && typeof e === 'object' && /** @type {Error} */ (e).name) || 'Error';
    const ui = this.#ui;
    this.#setState('error');
    this.#syncPoster();
    ui.overlay.hidden = false;
    ui.overlay.classList.add('err');
    ui.progress.hidden = true;
    ui.message.textContent = title;
    ui.detail.textContent = detail;
    ui.retry.hidden = false;
    ui.button.disabled = true;
    this.#announce(`Glow face error: ${title}`);
    this.#emit('glow-error', { name, title, message: detail, fatal: true, phase });
  }

  // ------------------------------------------------------------------------------------
  // Controls and drawing.

  #setupAttributes() {
    const client = this.#client;
    const names = client ? client.info.attributeNames : [];
    const sel = this.#ui.attrSel;
    if (sel.options.length !== names.length || names.some((n, i) => sel.options[i].value !== n)) {
      sel.replaceChildren(...names.map((n) => el('option', { value: n }, prettyName(n))));
    }
  }

  /** The attribute to manipulate: the one named (any case), else Smiling, else the first. */
  #attributeName() {
    const names = this.#client ? this.#client.info.attributeNames : [];
    const want = this.attribute.toLowerCase();
    return names.find((n) => n.toLowerCase() === want) || names.find((n) => n === 'Smiling') || names[0] || '';
  }

  #noun() {
    return this.#client && this.#client.info.channels === 1 ? 'image' : 'face';
  }

  #syncControls() {
    const ui = this.#ui;
    const hasAttrs = !!this.#client && this.#client.info.attributeNames.length > 0;
    ui.temp.input.value = String(this.temperature);
    ui.temp.out.value = this.temperature.toFixed(2);
    ui.amount.input.value = String(this.amount);
    ui.amount.out.value = this.amount.toFixed(2);
    ui.mix.input.value = String(this.mix);
    ui.mix.out.value = this.mix.toFixed(2);
    if (hasAttrs) ui.attrSel.value = this.#attributeName();
    ui.attrRows.hidden = !(this.mode === 'manipulate' && hasAttrs);
    ui.mix.row.hidden = this.mode !== 'interpolate';
    ui.button.textContent = this.mode === 'interpolate' ? 'New pair' : `New ${this.#noun()}`;
    if (this.mode === 'manipulate' && this.#client && !hasAttrs) ui.status.textContent = 'no attributes in this model';
  }

  /** What the picture shows, for its aria-label. */
  #describe() {
    const noun = this.#noun();
    const temp = `temperature ${this.temperature.toFixed(2)}`;
    if (this.mode === 'interpolate') {
      return `Blend of two ${noun}s sampled by Glow (seeds ${this.seed} and ${this.seed2}), ${Math.round(100 * this.mix)}% of the way to the second, ${temp}`;
    }
    const head = `${noun.charAt(0).toUpperCase()}${noun.slice(1)} sampled by Glow, seed ${this.seed}, ${temp}`;
    const attr = this.#attributeName();
    if (this.mode === 'manipulate' && attr && this.amount !== 0) {
      return `${head}, ${prettyName(attr)} ${this.amount > 0 ? '+' : ''}${this.amount.toFixed(2)}`;
    }
    return head;
  }

  /** The eps (temperature 1) of a seed, computed once per client. */
  #epsOf(/** @type {GlowClient} */ client, /** @type {number} */ seed) {
    let p = this.#eps.get(seed);
    if (!p) {
      if (this.#eps.size > 16) this.#eps.clear();
      p = client.sampleEps(1, seed, 1);
      p.catch(() => this.#eps.delete(seed));
      this.#eps.set(seed, p);
    }
    return p;
  }

  /** The current face's eps (at temperature 1: the decode applies the temperature). */
  async #currentEps(/** @type {GlowClient} */ client) {
    const eps = await this.#epsOf(client, this.seed);
    if (this.mode === 'interpolate') {
      return client.mix(eps, await this.#epsOf(client, this.seed2), this.mix);
    }
    const names = client.info.attributeNames;
    if (this.mode === 'manipulate' && names.length && this.amount !== 0) {
      const amounts = new Float32Array(names.length);
      amounts[Math.max(0, names.indexOf(this.#attributeName()))] = this.amount;
      return client.manipulate(eps, amounts);
    }
    return eps;
  }

  /** Renders once for all the changes made in this task (attributes set together). */
  #requestRender() {
    if (!this.#client || this.#renderQueued) return;
    this.#renderQueued = true;
    this.#setBusy(1);
    queueMicrotask(() => {
      this.#renderQueued = false;
      this.#render().finally(() => this.#setBusy(-1));
    });
  }

  /** Decodes and draws the current face; a newer render supersedes an unfinished one. */
  async #render() {
    const client = this.#client;
    if (!client || this.#state === 'error') return;
    const ui = this.#ui;
    const label = this.#describe();
    const temperature = this.temperature;
    const t0 = performance.now();
    try {
      const eps = await this.#currentEps(client);
      if (this.#client !== client) return;
      const rgba = await client.decode(eps, 1, { temperature, key: this.#key });
      if (this.#client !== client) return;
      drawImage(ui.canvas, rgba, client.info.width, client.info.height);
      const first = !this.#drawn;
      this.#drawn = true;
      ui.canvas.setAttribute('aria-label', label);
      ui.overlay.hidden = true;
      ui.button.disabled = false;
      ui.status.textContent = `${Math.round(performance.now() - t0)} ms`;
      this.dataset.renders = String((Number(this.dataset.renders) || 0) + 1);
      if (first) this.#announce(`Ready: ${label}`);
    } catch (e) {
      if (isSuperseded(e) || this.#client !== client) return;
      this.#fail(e, 'render');
    }
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('glow-face')) {
  customElements.define('glow-face', GlowFace);
}
