// @ts-check
// The engine's home: a dedicated worker that downloads a model (through Cache Storage),
// loads it into the wasm engine (WebGPU works in workers) and answers GlowClient's calls,
// so that no engine work ever runs on the page's main thread. The messages are described
// in protocol.js.

/** @typedef {import('./protocol.js').ToWorker} ToWorker */
/** @typedef {import('./protocol.js').FromWorker} FromWorker */
/** @typedef {import('./protocol.js').ModelInfo} ModelInfo */
/** @typedef {import('./protocol.js').ModelFiles} ModelFiles */
/** @typedef {import('../pkg/glow_web.js').GlowModel} GlowModel */

import { startHelpers, threadPlan } from './threads.js';
import { buildUrl } from './builds.js';

const PKG_URL = buildUrl(false);
// The same engine built with WebAssembly threads over shared memory (./build.sh builds both).
const PKG_MT_URL = buildUrl(true);
const CACHE_NAME = 'glow-weights-v1';

// The worker's global scope (typed by hand: the DOM and WebWorker libraries clash in one
// type-check).
/** @type {{postMessage: (m: any, transfer: Transferable[]) => void, onmessage: ((e: MessageEvent<ToWorker>) => void) | null}} */
const scope = /** @type {any} */ (self);

/** @type {GlowModel | null} */
let model = null;
/** @type {ModelInfo | null} */
let info = null;

/** @param {FromWorker} m @param {Transferable[]} [transfer] */
function post(m, transfer = []) {
  scope.postMessage(m, transfer);
}

/** @param {unknown} e @returns {{name: string, message: string}} */
function wire(e) {
  if (e && typeof e === 'object' && 'message' in e) {
    const err = /** @type {Error} */ (e);
    return { name: err.name || 'Error', message: String(err.message) };
  }
  return { name: 'Error', message: String(e) };
}

/** @typedef {typeof import('../pkg/glow_web.js')} Glow */
/** @typedef {import('./threads.js').ThreadedGlow} ThreadedGlow */

/** @type {Promise<Glow> | null} */
let wasm = null;
/** The wasm module once loaded (a model is loaded only after it). @type {Glow} */
let glowModule;
/** Threads of the CPU engine in this worker (1 unless the threaded build runs). */
let threadCount = 1;
/** Why the CPU engine runs on `threadCount` threads. */
let threadWhy = '';

/**
 * Loads the engine's wasm once per worker: the threaded build when `threads` > 1 and it can
 * run here (it starts its helper threads first), else the plain one. Later calls get the one
 * already loaded.
 * @param {number} [threads]  CPU-engine threads wanted (1: the plain build)
 * @param {string} [why]      why no threads, when `threads` is 1
 */
function initWasm(threads = 1, why = '') {
  if (!wasm) {
    wasm = (async () => {
      if (threads > 1) {
        try {
          const mt = /** @type {ThreadedGlow} */ (await import(PKG_MT_URL));
          await mt.default();
          threadCount = 1 + await startHelpers(mt, PKG_MT_URL, threads - 1);
          threadWhy = threadCount > 1
            ? 'WebAssembly threads: the page is cross-origin isolated'
            : 'the threaded build started no helper thread';
          glowModule = mt;
          return mt;
        } catch (e) {
          // A fresh worker could still load the plain build; this one can too, since the
          // threaded build's module is a different one.
          why = `the threaded build (pkg-mt/) could not start: ${wire(e).message}`;
        }
      }
      const mod = await import(PKG_URL);
      await mod.default();
      threadCount = 1;
      threadWhy = why;
      glowModule = mod;
      return mod;
    })();
  }
  return wasm;
}

// ------------------------------------------------------------------------------------
// Downloads

/** A short, stable hash of a string (FNV-1a, 32 bit), used to version cached files. */
function hashText(/** @type {string} */ s) {
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
 * @param {string} url @param {string} version @param {(loaded: number, total: number) => void} onProgress
 * @returns {Promise<{bytes: Uint8Array, cached: boolean}>}
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
  if (!res.ok) throw named('DownloadFailed', `could not download ${url}: HTTP ${res.status} ${res.statusText}`.trim());
  const total = Number(res.headers.get('content-length')) || 0;
  /** @type {Uint8Array[]} */
  const chunks = [];
  let loaded = 0;
  onProgress(0, total);
  const reader = /** @type {ReadableStream<Uint8Array>} */ (res.body).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress(loaded, Math.max(total, loaded));
  }
  const bytes = new Uint8Array(loaded);
  let off = 0;
  for (const c of chunks) { bytes.set(c, off); off += c.length; }
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

/** @param {string} name @param {string} message */
function named(name, message) {
  const e = new Error(message);
  e.name = name;
  return e;
}

/**
 * Whether WebGPU can be used here and a readable adapter name. The engine picks its own
 * adapter; this only explains the choice, and sizes the GPU plan (on a software adapter
 * every image costs seconds, so one image per call keeps calls short).
 */
async function probeWebGPU() {
  const gpu = /** @type {any} */ (navigator).gpu;
  if (!gpu) return { problem: 'this browser has no WebGPU', adapter: '', software: false };
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { problem: 'WebGPU offers no GPU adapter here (it may be switched off or blocklisted)', adapter: '', software: false };
    const i = adapter.info || {};
    const software = !!(i.isFallbackAdapter || adapter.isFallbackAdapter);
    const name = i.description || [i.vendor, i.architecture].filter(Boolean).join(' ') || 'GPU';
    return { problem: '', adapter: software ? `${name} (software)` : name, software };
  } catch (e) {
    return { problem: `WebGPU failed to start (${wire(e).message})`, adapter: '', software: false };
  }
}

/**
 * @param {ModelFiles} files @param {import('./protocol.js').BackendChoice} backend
 * @param {number} batch @param {string} url
 * @param {number} threads  CPU-engine threads wanted (0: one per core; 1: the plain build)
 * @returns {Promise<ModelInfo>}
 */
async function load(files, backend, batch, url, threads) {
  const probe = backend === 'cpu' ? { problem: '', adapter: '', software: false } : await probeWebGPU();
  // The CPU engine runs where `Backend::choose` picks it: asked for, or `auto` without a
  // hardware adapter. Only then is the threaded build worth loading; WebGPU keeps the plain one.
  const cpu = backend === 'cpu' || (backend === 'auto' && (!!probe.problem || probe.software));
  const plan = cpu ? threadPlan(threads) : { threads: 1, why: '' };
  const glow = await initWasm(plan.threads, plan.why);
  let config;
  try {
    config = JSON.parse(files.config);
  } catch (e) {
    throw named('BadModelFile', `model.json is not valid JSON: ${wire(e).message}`);
  }
  if (probe.software) batch = 1;
  model = await glow.GlowModel.load(files.config, files.weights, files.attributes, backend, batch, 0);
  const m = model;
  return {
    url,
    name: m.name,
    width: m.width,
    height: m.height,
    channels: m.channels,
    dim: m.dim,
    levels: m.levels,
    layout: Array.from(m.levelLayout),
    backend: m.backend === 'webgpu' ? 'webgpu' : 'cpu',
    reason: m.backendReason,
    gpuWeights: m.gpuWeights || '',
    adapter: (m.backend === 'webgpu' && probe.adapter) || m.adapterInfo,
    software: probe.software,
    webgpuProblem: probe.problem,
    attributeNames: Array.from(m.attributeNames, String),
    config,
    bytes: files.weights.length + (files.attributes ? files.attributes.length : 0),
    cached: false,
    // The CPU engine decodes a grid a few images per call: one per thread, each image on
    // its own thread (one image alone is split by rows over all of them).
    batch: m.backend === 'webgpu' ? batch : threadCount,
    threads: m.backend === 'cpu' ? threadCount : 0,
    // (A hardware GPU that could not build the model's plan: the CPU engine runs on the
    // plain build loaded for WebGPU.)
    threadsWhy: m.backend !== 'cpu' ? '' : cpu ? threadWhy : 'one thread: the plain build was loaded for the GPU, which could not run this model',
  };
}

/**
 * Reads a file the visitor picked (nothing leaves the device), reporting progress.
 * @param {File} file @param {(loaded: number, total: number) => void} onProgress
 */
async function readFile(file, onProgress) {
  const bytes = new Uint8Array(file.size);
  let off = 0;
  onProgress(0, file.size);
  const reader = file.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes.set(value, off);
    off += value.length;
    onProgress(off, file.size);
  }
  return { bytes, cached: false };
}

/**
 * Downloads (or reads from a picked folder) a model directory's files and loads them.
 * @param {number} id @param {import('./protocol.js').ModelSource} source
 * @param {import('./protocol.js').BackendChoice} backend @param {number} batch
 * @param {number} threads
 */
async function open(id, source, backend, batch, threads) {
  /** @type {(name: string, version: string, onProgress: (l: number, t: number) => void) => Promise<{bytes: Uint8Array, cached: boolean}>} */
  let get;
  let where;
  let configText;
  if ('url' in source) {
    const url = source.url;
    where = url;
    const configRes = await fetch(`${url}/model.json`, { cache: 'no-cache' });
    if (!configRes.ok) throw named('DownloadFailed', `could not load ${url}/model.json: HTTP ${configRes.status}`);
    configText = await configRes.text();
    get = (name, version, onProgress) => fetchBytes(`${url}/${name}`, version, onProgress);
  } else {
    // A folder from <input webkitdirectory>: its model.json, and files named relative to it.
    const files = source.files;
    const path = (/** @type {File} */ f) => /** @type {any} */ (f).webkitRelativePath || f.name;
    const config = files.filter((f) => f.name === 'model.json').sort((x, y) => path(x).length - path(y).length)[0];
    if (!config) throw named('BadModelFile', 'the chosen folder has no model.json (pick the model\'s own folder)');
    const dir = path(config).slice(0, -'model.json'.length);
    where = dir.replace(/\/$/, '') || config.name;
    configText = await config.text();
    get = (name, _version, onProgress) => {
      const f = files.find((x) => path(x) === dir + name);
      if (!f) return Promise.reject(named('BadModelFile', `the folder has no ${name}, which model.json names`));
      return readFile(f, onProgress);
    };
  }
  let config;
  try {
    config = JSON.parse(configText);
  } catch (e) {
    throw named('BadModelFile', `${where}/model.json is not valid JSON: ${wire(e).message}`);
  }
  const version = hashText(configText);
  const names = [config.weights || 'weights.safetensors'];
  if (config.attributes && config.attributes.file) names.push(config.attributes.file);
  const progress = names.map(() => ({ loaded: 0, total: 0 }));
  const got = await Promise.all(names.map((f, i) => get(f, version, (loaded, total) => {
    progress[i] = { loaded, total };
    post({ type: 'progress', id, loaded: progress.reduce((s, p) => s + p.loaded, 0), total: progress.reduce((s, p) => s + p.total, 0) });
  })));
  /** @type {ModelFiles} */
  const files = { config: configText, weights: got[0].bytes, attributes: got[1] ? got[1].bytes : undefined };
  const i = await load(files, backend, batch, where, threads);
  i.cached = got.every((g) => g.cached);
  info = i;
  // The CPU engine's other workers load from these bytes instead of reading them again.
  post({ type: 'opened', id, info: i, files: i.backend === 'cpu' ? files : undefined });
}

// ------------------------------------------------------------------------------------
// Engine calls: one at a time, highest priority first, decodes a chunk at a time.

/**
 * @typedef {Object} Job
 * @property {number} id
 * @property {import('./protocol.js').Op} op
 * @property {any[]} args
 * @property {number} priority
 * @property {number} seq        arrival order, for FIFO within a priority
 * @property {number} next       decode: the first image not yet done
 */

/** @type {Job[]} */
const queue = [];
const cancelled = new Set();
let seq = 0;
let running = false;
/** The id of the job whose step is running now (a cancel for it lands between chunks). */
let current = -1;

/** The queued job to run next: highest priority, then oldest. */
function takeNext() {
  let best = 0;
  for (let i = 1; i < queue.length; i++) {
    const a = queue[i];
    const b = queue[best];
    if (a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq)) best = i;
  }
  return queue.splice(best, 1)[0];
}

async function pump() {
  if (running) return;
  running = true;
  try {
    while (queue.length) {
      const job = takeNext();
      if (cancelled.delete(job.id)) {
        post({ type: 'error', id: job.id, error: { name: 'AbortError', message: 'cancelled' } });
        continue;
      }
      current = job.id;
      try {
        const finished = await step(job);
        if (finished) cancelled.delete(job.id);
        else queue.push(job); // a chunk done; it waits its turn for the next one
      } catch (e) {
        post({ type: 'error', id: job.id, error: wire(e) });
      }
      current = -1;
    }
  } finally {
    running = false;
  }
}

/**
 * Runs one job, or the next chunk of a decode. Returns whether the job is finished.
 * @param {Job} job
 */
async function step(job) {
  const m = /** @type {GlowModel} */ (model);
  const a = job.args;
  switch (job.op) {
    case 'decode': {
      // args: eps (Float32Array), n, temperature, perLevel, quantize
      const [eps, n, temperature, perLevel, quantize] = a;
      const dim = m.dim;
      const count = Math.min(n - job.next, info ? info.batch : 1);
      const part = eps.subarray(job.next * dim, (job.next + count) * dim);
      const rgba = await m.decode(part, count, temperature, perLevel, quantize);
      post({ type: 'chunk', id: job.id, first: job.next, count, rgba }, [rgba.buffer]);
      job.next += count;
      if (job.next < n) return false;
      post({ type: 'done', id: job.id, value: null });
      return true;
    }
    case 'encode': {
      const r = await m.encode(a[0], a[1]);
      post({ type: 'done', id: job.id, value: r });
      return true;
    }
    case 'bitsPerDim': {
      const r = await m.bitsPerDim(a[0], a[1], a[2], a[3]);
      post({ type: 'done', id: job.id, value: r });
      return true;
    }
    default:
      throw named('BadInput', `unknown engine call ${job.op}`);
  }
}

// ------------------------------------------------------------------------------------
// Faces: the detector and landmark nets (models/face/, face-api's tiny nets, MIT) load on
// the first photo, from this site.

const FACE_DIR = new URL('../models/face/', import.meta.url).href;
/** @type {Promise<import('../pkg/glow_web.js').FaceFinder> | null} */
let finder = null;
function faceFinder() {
  if (!finder) {
    finder = (async () => {
      const glow = await initWasm();
      const get = async (/** @type {string} */ name) => (await fetchBytes(`${FACE_DIR}${name}`, 'face-1', () => {})).bytes;
      const [det, lm] = await Promise.all([get('tiny_face_detector.safetensors'), get('face_landmark_68_tiny.safetensors')]);
      return glow.FaceFinder.load(det, lm);
    })();
    finder.catch(() => { finder = null; });
  }
  return finder;
}

/**
 * Faces in a photo, largest first, each with the similarity that aligns it to the model's
 * template (model.json `align`), when the model has one.
 * @param {Uint8Array} rgba @param {number} w @param {number} h
 */
async function detectFaces(rgba, w, h) {
  const f = await faceFinder();
  const i = info;
  const al = i && i.config.align;
  const template = i && al ? Float64Array.from([...al.left_eye, ...al.right_eye, ...al.mouth, i.width, i.height]) : undefined;
  return f.find(rgba, w, h, template);
}

/** Latent math, answered at once (it is synchronous and cheap). @param {import('./protocol.js').Op} op @param {any[]} a */
function now(op, a) {
  const m = /** @type {GlowModel} */ (model);
  switch (op) {
    case 'sampleEps': return m.sampleEps(a[0], a[1], a[2], a[3]);
    case 'manipulate': return m.manipulate(a[0], a[1]);
    case 'mix': return m.mix(a[0], a[1], a[2], a[3]);
    case 'interpolate': return m.interpolate(a[0], a[1], a[2], a[3]);
    case 'teachDirection': {
      const index = m.teachDirection(a[0], a[1], a[2]);
      return { index, attributeNames: Array.from(m.attributeNames, String) };
    }
    case 'forgetDirection': {
      m.forgetDirection(a[0]);
      return { attributeNames: Array.from(m.attributeNames, String) };
    }
    case 'quantizeInput': return m.quantizeInput(a[0]);
    case 'alignedCrop': return glowModule.alignedCrop(a[0], a[1], a[2], a[3], a[4], a[5]);
    default: return undefined;
  }
}

const QUEUED = new Set(['decode', 'encode', 'bitsPerDim']);

scope.onmessage = (/** @type {MessageEvent<ToWorker>} */ e) => {
  const m = e.data;
  switch (m.type) {
    case 'open':
      open(m.id, m.source, m.backend, m.batch, m.threads ?? 0).catch((err) => post({ type: 'error', id: m.id, error: wire(err) }));
      break;
    case 'adopt':
      load(m.files, m.backend, 1, '', m.threads ?? 0).then((i) => {
        info = i;
        post({ type: 'opened', id: m.id, info: i });
      }, (err) => post({ type: 'error', id: m.id, error: wire(err) }));
      break;
    case 'cancel': {
      const at = queue.findIndex((j) => j.id === m.id);
      if (at >= 0) {
        queue.splice(at, 1);
        post({ type: 'error', id: m.id, error: { name: 'AbortError', message: 'cancelled' } });
      } else if (m.id === current) {
        cancelled.add(m.id); // stops before its next chunk
      }
      break;
    }
    case 'call':
      if (!model) {
        post({ type: 'error', id: m.id, error: { name: 'BadInput', message: 'no model is loaded' } });
      } else if (m.op === 'detectFaces') {
        detectFaces(m.args[0], m.args[1], m.args[2]).then(
          (value) => post({ type: 'done', id: m.id, value }),
          (err) => post({ type: 'error', id: m.id, error: wire(err) }));
      } else if (QUEUED.has(m.op)) {
        queue.push({ id: m.id, op: m.op, args: m.args, priority: m.priority, seq: seq++, next: 0 });
        pump();
      } else {
        try {
          const value = now(m.op, m.args);
          post({ type: 'done', id: m.id, value });
        } catch (err) {
          post({ type: 'error', id: m.id, error: wire(err) });
        }
      }
      break;
    default:
      break;
  }
};
