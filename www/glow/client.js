// @ts-check
// GlowClient: the one way the page and the <glow-face> widget reach the engine. The engine
// runs in dedicated workers (engine-worker.js), so the page's main thread only posts
// messages and draws pixels: one worker on WebGPU; on the CPU engine one worker whose engine
// runs on every core with WebAssembly threads (pkg-mt/, where the page is cross-origin
// isolated), else one single-threaded worker per core but one, up to four.
//
//   const client = await GlowClient.open('models/celeba-64x64-additive', {onProgress});
//   const eps = await client.sampleEps(16, seed, 0.7);
//   await client.decode(eps, 16, {key: 'grid', onChunk: (rgba, first, count) => draw(...)});
//
// A call made with a `key` supersedes the unfinished call with the same key: the older one
// is cancelled (in the queue, or between the chunks of a decode) and rejects with an
// AbortError, so a slider dragged across its range costs one decode, not fifty. Calls
// with a higher `priority` overtake lower ones between chunks. Every document shares one
// client per model URL and backend; `release()` gives it back.

/** @typedef {import('./protocol.js').ModelInfo} ModelInfo */
/** @typedef {import('./protocol.js').ModelFiles} ModelFiles */
/** @typedef {import('./protocol.js').BackendChoice} BackendChoice */
/** @typedef {import('./protocol.js').FromWorker} FromWorker */
/** @typedef {import('./protocol.js').ToWorker} ToWorker */
/** @typedef {import('./protocol.js').Op} Op */
/** @typedef {(p: {fraction: number, loaded: number, total: number}) => void} ProgressFn */
/** @typedef {(rgba: Uint8ClampedArray, first: number, count: number) => void} ChunkFn */
/** @typedef {{key?: string, priority?: number}} CallOptions */
/**
 * @typedef {Object} OpenOptions
 * @property {BackendChoice} [backend]  'auto' (default), 'webgpu' or 'cpu'
 * @property {number} [batch]    the GPU plan's images per call
 * @property {number} [workers]  CPU engine: engine workers (default: 1 with threads, else
 *   one per core but one, up to 4)
 * @property {number} [threads]  CPU engine: threads per worker (default: one per core, up to
 *   8, shared out among `workers`; 1 runs the plain single-threaded build)
 * @property {ProgressFn} [onProgress]
 */

const WORKER_URL = new URL('./engine-worker.js', import.meta.url);

/**
 * @typedef {Object} Pending
 * @property {(v: any) => void} resolve
 * @property {(e: Error) => void} reject
 * @property {ChunkFn} [onChunk]
 * @property {(loaded: number, total: number) => void} [onProgress]
 * @property {(m: any) => void} [onOpened]
 */

/** An Error with a name, as the engine's errors have (BadImage, NoAdapter, ...). */
export function namedError(/** @type {string} */ name, /** @type {string} */ message) {
  const e = new Error(message);
  e.name = name;
  return e;
}

/** Whether an error only says that a newer call replaced this one. */
export function isSuperseded(/** @type {unknown} */ e) {
  return !!e && typeof e === 'object' && /** @type {Error} */ (e).name === 'AbortError';
}

let nextId = 1;

/** One engine worker and the calls waiting on it. */
class EngineWorker {
  constructor() {
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    this.worker = new Worker(WORKER_URL, { type: 'module', name: 'glow-engine' });
    this.worker.onmessage = (/** @type {MessageEvent<FromWorker>} */ e) => this.receive(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.failAll(namedError('WorkerFailed', `the engine's worker stopped: ${e.message || 'it could not start'}`));
    };
  }

  /** @param {FromWorker} m */
  receive(m) {
    const p = this.pending.get(m.id);
    if (!p) return; // a call already superseded on this side
    switch (m.type) {
      case 'progress': if (p.onProgress) p.onProgress(m.loaded, m.total); break;
      case 'chunk': if (p.onChunk) p.onChunk(m.rgba, m.first, m.count); break;
      case 'opened': this.pending.delete(m.id); p.resolve(m); break;
      case 'done': this.pending.delete(m.id); p.resolve(m.value); break;
      case 'error': this.pending.delete(m.id); p.reject(namedError(m.error.name, m.error.message)); break;
      default: break;
    }
  }

  /**
   * Sends a message and returns its id and the promise of its answer.
   * @param {import('./protocol.js').ToWorkerBody} msg @param {Omit<Pending, 'resolve' | 'reject'>} [hooks]
   * @param {Transferable[]} [transfer]
   */
  send(msg, hooks = {}, transfer = []) {
    const id = nextId++;
    /** @type {Promise<any>} */
    const promise = new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...hooks });
    });
    this.worker.postMessage({ ...msg, id }, transfer);
    return { id, promise };
  }

  /** Stops waiting for `id` (its promise rejects with an AbortError) and tells the worker. */
  cancel(/** @type {number} */ id) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.worker.postMessage({ type: 'cancel', id });
    p.reject(namedError('AbortError', 'superseded by a newer call'));
  }

  get load() { return this.pending.size; }

  /** @param {Error} e */
  failAll(e) {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  terminate() {
    this.worker.terminate();
    this.failAll(namedError('AbortError', 'the model was closed'));
  }
}

export class GlowClient {
  /**
   * @param {EngineWorker[]} workers  the first one answers latent math and single calls
   * @param {ModelInfo} info
   */
  constructor(workers, info) {
    this.workers = workers;
    /** @type {ModelInfo} */
    this.info = info;
    /** @type {Map<string, () => void>} */
    this.byKey = new Map();
    this.refs = 0;
    this.closed = false;
  }

  /**
   * Loads (once per document) the model in directory `url`, in workers.
   * @param {string} url  a model directory, relative to the document
   * @param {OpenOptions} [opts]
   * @returns {Promise<GlowClient>}
   */
  static open(url, opts = {}) {
    const abs = new URL(url.replace(/\/+$/, ''), document.baseURI).href;
    return openShared({ url: abs }, abs, opts);
  }

  /**
   * Loads a model from a folder the visitor picked (`<input type=file webkitdirectory>`):
   * its model.json and the files it names are read in the worker; nothing is uploaded.
   * @param {File[]} files
   * @param {OpenOptions} [opts]
   * @returns {Promise<GlowClient>}
   */
  static openFolder(files, opts = {}) {
    return openShared({ files }, `folder:${++folders}`, opts);
  }

  /** Gives this reference back; the workers stop shortly after the last one goes. */
  release() {
    if (this.closed) return;
    this.refs = Math.max(0, this.refs - 1);
    if (this.refs > 0) return;
    setTimeout(() => {
      if (this.refs > 0 || this.closed) return;
      this.closed = true;
      for (const [k, e] of shared) e.promise.then((c) => { if (c === this) shared.delete(k); }, () => {});
      for (const w of this.workers) w.terminate();
    }, 2000);
  }

  get primary() { return this.workers[0]; }

  /**
   * Runs a call on a worker, superseding the unfinished call with the same key.
   * @param {EngineWorker} w @param {Op} op @param {any[]} args @param {CallOptions} opts
   * @param {ChunkFn} [onChunk] @param {Transferable[]} [transfer]
   */
  call(w, op, args, opts = {}, onChunk, transfer = []) {
    const { id, promise } = w.send({ type: 'call', op, args, priority: opts.priority ?? 0 }, { onChunk }, transfer);
    if (opts.key) this.supersede(opts.key, () => w.cancel(id), promise);
    return promise;
  }

  /** @param {string} key @param {() => void} cancel @param {Promise<any>} done */
  supersede(key, cancel, done) {
    const old = this.byKey.get(key);
    if (old) old();
    this.byKey.set(key, cancel);
    const clear = () => { if (this.byKey.get(key) === cancel) this.byKey.delete(key); };
    done.then(clear, clear);
  }

  // Latent math (answered at once by the primary worker).

  /** eps of `n` samples from `seed`, scaled by the temperature (or one per level). */
  sampleEps(/** @type {number} */ n, /** @type {number} */ seed, temperature = 1, /** @type {number[] | undefined} */ perLevel = undefined) {
    return this.call(this.primary, 'sampleEps', [n, seed >>> 0, temperature, perLevel ? Float32Array.from(perLevel) : undefined]);
  }
  /** One face's eps moved by amounts[i] along attribute i (shipped, then taught). */
  manipulate(/** @type {Float32Array} */ eps, /** @type {Float32Array} */ amounts) {
    return this.call(this.primary, 'manipulate', [eps, amounts]);
  }
  /** The point at t (0 = a, 1 = b) between two eps; path 'spherical' or 'linear'. */
  mix(/** @type {Float32Array} */ a, /** @type {Float32Array} */ b, /** @type {number} */ t, path = 'spherical') {
    return this.call(this.primary, 'mix', [a, b, t, path]);
  }
  /** `steps` eps from a to b, both included. */
  interpolate(/** @type {Float32Array} */ a, /** @type {Float32Array} */ b, /** @type {number} */ steps, path = 'spherical') {
    return this.call(this.primary, 'interpolate', [a, b, steps, path]);
  }
  /**
   * A direction from marked examples joins the attributes; resolves to its index and the
   * new attribute list.
   * @returns {Promise<{index: number, attributeNames: string[]}>}
   */
  async teachDirection(/** @type {string} */ name, /** @type {Float32Array} */ withEps, /** @type {Float32Array} */ withoutEps) {
    const r = await this.call(this.primary, 'teachDirection', [name, withEps, withoutEps]);
    this.info.attributeNames = r.attributeNames;
    return r;
  }
  async forgetDirection(/** @type {string} */ name) {
    const r = await this.call(this.primary, 'forgetDirection', [name]);
    this.info.attributeNames = r.attributeNames;
  }
  /** What the model sees of an RGBA image (its n_bits levels, at bin centres). */
  quantizeInput(/** @type {Uint8ClampedArray | Uint8Array} */ rgba) {
    return this.call(this.primary, 'quantizeInput', [rgba]);
  }

  // Faces (the detector loads in the worker on first use, from models/face/ next to glow/).

  /**
   * The faces in an RGBA photo, largest first: each its box [x, y, w, h], score, eye and
   * mouth centres, and (for a model with an alignment template) `transform`, the
   * similarity [a, b, tx, ty] taking photo pixels into the model's frame.
   * @returns {Promise<{box: number[], score: number, leftEye: number[], rightEye: number[], mouth: number[], transform: number[] | null}[]>}
   */
  detectFaces(/** @type {Uint8ClampedArray | Uint8Array} */ rgba, /** @type {number} */ width, /** @type {number} */ height, /** @type {CallOptions} */ opts = {}) {
    return this.call(this.primary, 'detectFaces', [rgba, width, height], opts);
  }

  /**
   * The crop a similarity [a, b, tx, ty] (photo -> model frame) defines, resampled from the
   * photo with an antialiasing filter: RGBA of outWidth x outHeight.
   * @returns {Promise<Uint8ClampedArray>}
   */
  alignedCrop(/** @type {Uint8ClampedArray | Uint8Array} */ rgba, /** @type {number} */ width, /** @type {number} */ height, /** @type {number[]} */ transform, /** @type {number} */ outWidth, /** @type {number} */ outHeight) {
    return this.call(this.primary, 'alignedCrop', [rgba, width, height, Float64Array.from(transform), outWidth, outHeight]);
  }

  // Engine calls (queued in the workers).

  /**
   * Decodes n images; `onChunk(rgba, first, count)` sees them as they are done. On the CPU
   * engine the images are shared out to the workers. Resolves to all n images' RGBA.
   * @param {Float32Array} eps @param {number} n
   * @param {CallOptions & {temperature?: number, perLevel?: number[], quantize?: boolean, onChunk?: ChunkFn}} [opts]
   * @returns {Promise<Uint8ClampedArray>}
   */
  async decode(eps, n, opts = {}) {
    const { dim, width, height } = this.info;
    const size = width * height * 4;
    const out = new Uint8ClampedArray(n * size);
    /** @type {ChunkFn} */
    const chunk = (rgba, first, count) => {
      out.set(rgba, first * size);
      if (opts.onChunk) opts.onChunk(rgba, first, count);
    };
    const extra = [opts.temperature ?? 1, opts.perLevel ? Float32Array.from(opts.perLevel) : undefined, opts.quantize ?? false];
    const ws = this.workers;
    if (n === 1 || ws.length === 1) {
      // One image: the least busy worker.
      const w = ws.reduce((a, b) => (b.load < a.load ? b : a));
      await this.call(w, 'decode', [eps, n, ...extra], opts, chunk);
      return out;
    }
    // Several on several workers: a contiguous share each.
    /** @type {{w: EngineWorker, id: number, promise: Promise<any>}[]} */
    const parts = [];
    const share = Math.ceil(n / ws.length);
    for (let k = 0; k * share < n; k++) {
      const first = k * share;
      const count = Math.min(share, n - first);
      const w = ws[k];
      const { id, promise } = w.send({ type: 'call', op: 'decode', args: [eps.slice(first * dim, (first + count) * dim), count, ...extra], priority: opts.priority ?? 0 },
        { onChunk: (rgba, f, c) => chunk(rgba, first + f, c) });
      parts.push({ w, id, promise });
    }
    const all = Promise.all(parts.map((p) => p.promise));
    if (opts.key) this.supersede(opts.key, () => parts.forEach((p) => p.w.cancel(p.id)), all);
    await all;
    return out;
  }

  /**
   * Encodes n RGBA images: {eps, bitsPerDim} (bits/dim at the bin centre).
   * @returns {Promise<{eps: Float32Array, bitsPerDim: Float64Array}>}
   */
  encode(/** @type {Uint8Array | Uint8ClampedArray} */ rgba, n = 1, /** @type {CallOptions} */ opts = {}) {
    return this.call(this.primary, 'encode', [rgba, n], opts);
  }

  /**
   * Bits/dim both ways: {binCentre, dequantized, draws}.
   * @returns {Promise<{binCentre: Float64Array, dequantized: Float64Array, draws: number}>}
   */
  bitsPerDim(/** @type {Uint8Array | Uint8ClampedArray} */ rgba, n = 1, draws = 4, seed = 0, /** @type {CallOptions} */ opts = {}) {
    return this.call(this.primary, 'bitsPerDim', [rgba, n, draws, seed], opts);
  }
}

/**
 * @typedef {Object} SharedEntry
 * @property {Promise<GlowClient>} promise
 * @property {Set<ProgressFn>} listeners
 * @property {{fraction: number, loaded: number, total: number} | null} last
 */
/** @type {Map<string, SharedEntry>} */
const shared = new Map();
let folders = 0;

/**
 * One client per model source, backend, worker and thread count on a document, shared by
 * the page and its widgets; progress goes to every caller waiting for it.
 * @param {import('./protocol.js').ModelSource} source @param {string} id
 * @param {OpenOptions} opts
 * @returns {Promise<GlowClient>}
 */
function openShared(source, id, opts) {
  const backend = opts.backend || 'auto';
  const key = `${id}|${backend}|${opts.workers ?? ''}|${opts.threads ?? ''}`;
  let entry = shared.get(key);
  if (!entry) {
    /** @type {SharedEntry} */
    const e = { listeners: new Set(), last: null, promise: Promise.resolve(/** @type {any} */ (null)) };
    e.promise = openUncached(source, backend, opts.batch ?? 4, opts.workers, opts.threads, (p) => {
      e.last = p;
      for (const f of e.listeners) {
        try { f(p); } catch { /* a listener's bug is not ours */ }
      }
    });
    e.promise.then(() => e.listeners.clear(), () => shared.delete(key));
    shared.set(key, e);
    entry = e;
  }
  if (opts.onProgress) {
    const f = opts.onProgress;
    const en = entry;
    en.listeners.add(f);
    if (en.last) f(en.last);
    en.promise.then(() => en.listeners.delete(f), () => {});
  }
  return entry.promise.then((c) => {
    c.refs++;
    return c;
  });
}

/**
 * @param {import('./protocol.js').ModelSource} source @param {BackendChoice} backend @param {number} batch
 * @param {number | undefined} workers @param {number | undefined} threads @param {ProgressFn} report
 */
async function openUncached(source, backend, batch, workers, threads, report) {
  const cores = navigator.hardwareConcurrency || 1;
  // Several workers asked for: each gets its share of the cores (1 thread each on 2 cores).
  const perWorker = threads ?? (workers && workers > 1 ? Math.max(1, Math.floor(cores / workers)) : 0);
  let first;
  try {
    first = new EngineWorker();
  } catch (e) {
    throw namedError('WorkerFailed', `this browser could not start the engine's worker (${/** @type {Error} */ (e).message})`);
  }
  /** @type {{info: ModelInfo, files?: ModelFiles}} */
  let opened;
  try {
    opened = await first.send({ type: 'open', source, backend, batch, threads: perWorker }, {
      onProgress: (loaded, total) => report({ loaded, total, fraction: total ? Math.min(1, loaded / total) : 0 }),
    }).promise;
  } catch (e) {
    first.terminate();
    throw e;
  }
  const info = opened.info;
  const all = [first];
  // With WebAssembly threads one engine uses every core (a grid one image per thread, one
  // image split by rows) and holds one copy of the model: one worker is best. Without them
  // the CPU engine runs one image per worker: one per core but one (kept for the page's
  // main thread, so that it stays responsive), up to four, loaded from the same bytes.
  const dflt = info.threads > 1 ? 1 : Math.min(cores - 1, 4);
  const extra = info.backend === 'cpu' && opened.files ? Math.max(0, (workers ?? dflt) - 1) : 0;
  if (extra > 0) {
    const more = [];
    for (let i = 0; i < extra; i++) more.push(new EngineWorker());
    const files = /** @type {ModelFiles} */ (opened.files);
    const ok = await Promise.all(more.map((w) => w.send({ type: 'adopt', files, backend: 'cpu', threads: perWorker }).promise.then(() => true, () => false)));
    more.forEach((w, i) => { if (ok[i]) all.push(w); else w.terminate(); });
  }
  return new GlowClient(all, info);
}

/** The first (default) model URL listed in models/index.json next to `base`. */
export async function defaultModelUrl(base = document.baseURI) {
  const url = new URL('models/index.json', base).href;
  const r = await fetch(url, { cache: 'no-cache' });
  if (!r.ok) throw namedError('DownloadFailed', `could not load ${url}: HTTP ${r.status}`);
  const list = await r.json();
  if (!Array.isArray(list) || list.length === 0) throw namedError('BadModelFile', `${url} lists no models`);
  return new URL(list[0], url.replace(/models\/index\.json$/, '')).href;
}

/** Draws image `index` of `rgba` (n images of width x height) on a canvas. */
export function drawImage(/** @type {HTMLCanvasElement} */ canvas, /** @type {Uint8ClampedArray} */ rgba, /** @type {number} */ width, /** @type {number} */ height, index = 0) {
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const n = width * height * 4;
  const data = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset + index * n, n);
  // A CPU-backed canvas: putImageData on a GPU-backed one waits for the GPU process, which
  // is busy running the engine on a software adapter, and blocks the main thread.
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d', { willReadFrequently: true }));
  ctx.putImageData(new ImageData(new Uint8ClampedArray(data), width, height), 0, 0);
}

/** "Blond_Hair" -> "Blond hair". */
export function prettyName(/** @type {string} */ s) {
  const t = String(s).replace(/^5_o_Clock/i, "5 o'clock").replace(/_/g, ' ').trim();
  return t.charAt(0).toUpperCase() + t.slice(1).toLowerCase();
}

/**
 * An error in plain words, with what to do about it: {title, detail}. The engine's own
 * message stays in `detail` for those who want it.
 * @param {unknown} e
 */
export function explain(e) {
  const err = /** @type {Error} */ (e && typeof e === 'object' ? e : new Error(String(e)));
  const msg = String(err.message || err);
  /** @type {Record<string, string>} */
  const words = {
    BadImage: 'This image could not be used. Try a JPEG, PNG or WebP photo.',
    BadInput: 'The model refused this input.',
    BadModelFile: 'The model files are damaged or do not match. Reload the page; if it persists, pick another model.',
    NoAdapter: 'WebGPU is not available here. Reload and choose the CPU engine (it works everywhere, more slowly), or try a recent Chrome, Edge or Safari.',
    DeviceLost: 'The GPU stopped responding (the browser may have reset it). Reload the page to start again.',
    OutOfMemory: 'The GPU ran out of memory. Close other tabs, or use the CPU engine.',
    GpuError: 'The GPU could not run the model. Use the CPU engine: add ?backend=cpu to the address.',
    DownloadFailed: 'The model could not be downloaded. Check the connection and reload.',
    WorkerFailed: 'This browser could not start the engine in the background (workers are blocked or unsupported). Try a recent Chrome, Edge, Firefox or Safari.',
    Busy: 'The engine is busy; try again in a moment.',
  };
  return { title: words[err.name] || 'Something went wrong.', detail: msg };
}
