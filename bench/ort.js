// Head-to-head: this engine vs onnxruntime-web on the same Glow model, in one page.
// Served by bench/ort.mjs: ./ort/ is onnxruntime-web's dist/ (default bundle, JSEP build),
// ./pkg/ or ./pkg-relaxed/ our plain wasm build (build.sh; the one glow/builds.js picks), MODEL/ the model directory plus the ONNX exports
// {decode,encode}_b{BATCH}.onnx written by tools/export_onnx.py.
// Query: model, runs, batches, ort (webgpu|wasm|none), threads (ORT wasm threads),
// min_runs, glow (webgpu|cpu|none), glow_threads (our CPU engine's threads: above 1 it runs
// the threaded build pkg-mt/ in a worker, bench-worker.js, as the page's engine worker does;
// its times include the messages), ort_spin (0: asks ORT's threads not to spin between
// calls; measured: no effect), glow_time (0: our engine gives the inputs and reference
// outputs only), ort_time (0: ORT's sessions are made but not timed), gap_ms (idle pause
// before every timed call), budget_s (stop a warm series early once it has taken this long).
// Prints JSON into #out and sets document.body.dataset.done.
import * as ort from './ort/ort.min.mjs';
import { fetchBytes, stats, benchWorker } from './bench-util.js';
import { buildUrl, RELAXED_SIMD } from './glow/builds.js';

// Our plain build as the page loads it here (relaxed SIMD where the browser has it).
const { default: init, GlowModel } = await import(buildUrl(false));

const out = document.getElementById('out');
const q = new URLSearchParams(location.search);
const modelUrl = q.get('model') || 'models/bench64';
const runs = Number(q.get('runs') || 5);
const batches = (q.get('batches') || '1,16').split(',').map(Number);
const ortEp = q.get('ort') || 'wasm';
const threads = Number(q.get('threads') || 1);
const glowBackend = q.get('glow') || 'none';
const glowThreads = Number(q.get('glow_threads') || 1);
// ort_spin=0: session.intra_op.allow_spinning 0, meant to stop ORT's intra-op threads spinning
// after a call. Measured: it did not change how ORT's threads slow the next call (ORT-web's
// sessions presumably share one global pool); gap_ms is what keeps the engines apart.
const ortSpin = q.get('ort_spin') !== '0';
const budgetMs = Number(q.get('budget_s') || 30) * 1000;
const minRuns = Number(q.get('min_runs') || 3);
// Untimed rounds before timing (at least one, until this much time has passed): wasm code
// is first run by V8's baseline compiler and only later by its optimising tier, which
// compiles in the background; without a warm-up the first "warm" calls are several times slower.
const warmupMs = Number(q.get('warmup_s') ?? 3) * 1000;
// glow_time=0: our engine only provides the eps, images and reference outputs (untimed)
const glowTime = q.get('glow_time') !== '0';
// ort_time=0: ORT's sessions are made and checked (cold calls) but not timed
const ortTime = q.get('ort_time') !== '0';
// gap_ms: an idle pause before every timed call (what lingers after the other engine's call)
const gapMs = Number(q.get('gap_ms') || 0);
const TEMPERATURE = 0.7;
const SEED = 1;

/** Our threaded CPU engine in a worker, with the calls of a GlowModel that this page uses. */
async function threadedModel(batch) {
  const w = benchWorker('bench-threads');
  const call = (msg) => w.call({ ...msg, threads: glowThreads, batch });
  const helpers = await call({ type: 'init', threaded: true, helpers: glowThreads - 1, model: modelUrl });
  if (helpers < glowThreads - 1) throw new Error(`only ${helpers} of ${glowThreads - 1} helper threads started`);
  const adapterInfo = await call({ type: 'load' });
  return {
    backend: 'cpu', adapterInfo,
    sampleEps: (n, seed) => call({ type: 'eps', seed }),
    // Copies go over (the caller keeps its arrays), as the page's client sends them.
    decode: (eps, n, t) => call({ type: 'decode', eps, temperature: t }),
    encode: (rgba) => call({ type: 'encode', rgba }),
    free: w.terminate,
  };
}

/** Warm series of several engines' calls, alternating (one call of each per round):
 *  up to `runs` rounds, fewer once the series has taken the time budget (at least
 *  `minRuns` rounds). The cold calls happened before (their outputs are the ones checked).
 *  A failing engine is dropped from the series with its error. */
async function warm(fns) {
  const times = Object.fromEntries(Object.keys(fns).map((k) => [k, []]));
  const errors = {};
  const w0 = performance.now();
  for (let round = 0; round < runs && (round === 0 || performance.now() - w0 < warmupMs); round++) {
    for (const [k, fn] of Object.entries(fns)) {
      if (errors[k]) continue;
      try {
        await fn();
      } catch (e) {
        errors[k] = String(e.message || e);
      }
    }
  }
  const t0 = performance.now();
  for (let round = 0; round < runs; round++) {
    for (const [k, fn] of Object.entries(fns)) {
      if (errors[k]) continue;
      try {
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
        const t = performance.now();
        await fn();
        times[k].push(performance.now() - t);
      } catch (e) {
        errors[k] = String(e.message || e);
      }
    }
    if (round + 1 >= minRuns && performance.now() - t0 > budgetMs) break;
  }
  return Object.fromEntries(Object.keys(fns).map((k) => [k, errors[k] ? { error: errors[k] } : stats(times[k])]));
}

/** Model value -> 8-bit pixel, exactly the engine's continuous (unquantized) output. */
const toU8 = (x) => Math.min(255, Math.max(0, Math.floor((x + 0.5) * 256)));

/** Compare our RGBA with ORT's NHWC x (n * H * W * c0 values). */
function comparePixels(rgba, x, c0) {
  const hist = [0, 0, 0, 0]; // |diff| = 0, 1, 2, >2
  let max = 0;
  const px = x.length / c0;
  for (let i = 0; i < px; i++) {
    for (let k = 0; k < 3; k++) {
      const d = Math.abs(rgba[i * 4 + k] - toU8(x[i * c0 + Math.min(k, c0 - 1)]));
      max = Math.max(max, d);
      hist[Math.min(d, 3)]++;
    }
  }
  const total = hist.reduce((a, b) => a + b, 0);
  return { max_level_diff: max, values: total, equal: hist[0], off_by_1: hist[1], off_by_2: hist[2], off_by_more: hist[3],
    ok: hist[3] <= total * 1e-3 };
}

/** ORT's encode input from RGBA: the bin-centre dequantized image (FORMAT.md). */
function rgbaToX(rgba, c0, nBits) {
  const bins = 2 ** nBits;
  const shift = 2 ** (8 - nBits);
  const n = rgba.length / 4;
  const x = new Float32Array(n * c0);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c0; k++) x[i * c0 + k] = Math.floor(rgba[i * 4 + k] / shift) / bins - 0.5 + 0.5 / bins;
  }
  return x;
}

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
const maxAbs = (a) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

async function adapterInfo(adapter) {
  if (!adapter) return null;
  const i = adapter.info || {};
  return { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
    isFallbackAdapter: i.isFallbackAdapter ?? adapter.isFallbackAdapter };
}

async function main() {
  const result = {
    page: { model: modelUrl, ort_ep: ortEp, ort_threads_requested: threads, glow_backend: glowBackend, glow_threads: glowThreads, ort_spin: ortSpin, glow_timed: glowTime, ort_timed: ortTime, gap_ms: gapMs,
      runs, min_runs: minRuns, batches, budget_s: budgetMs / 1000, warmup_s: warmupMs / 1000 },
    user_agent: navigator.userAgent,
    relaxed_simd: RELAXED_SIMD,
    cross_origin_isolated: self.crossOriginIsolated,
    hardware_concurrency: navigator.hardwareConcurrency,
    ort_version: ort.env.versions,
    results: [],
  };
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  result.webgpu_adapter = await adapterInfo(adapter);

  ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'warning';
  await init();

  const config = await (await fetch(`${modelUrl}/model.json`)).text();
  const cfg = JSON.parse(config);
  const weights = await fetchBytes(`${modelUrl}/weights.safetensors`);
  const H = cfg.image.height, W = cfg.image.width, c0 = cfg.image.channels;
  const D = H * W * c0;
  result.model = { name: cfg.name, image: cfg.image, levels: cfg.levels, steps: cfg.steps, width: cfg.width, coupling: cfg.coupling };
  const show = () => { out.textContent = JSON.stringify(result, null, 2); };

  for (const batch of batches) {
    const r = { batch };
    result.results.push(r);
    // 1. Cold calls. The shared inputs: eps from our generator, images from our decode
    //    (from ORT's when our engine is not in this page). The cold outputs are checked.
    let eps = null;
    let rgba = null;
    let m = null;
    let glowEnc = null;
    if (glowBackend !== 'none') {
      try {
        const t0 = performance.now();
        m = glowBackend === 'cpu' && glowThreads > 1 ? await threadedModel(batch)
          : await GlowModel.load(config, weights, undefined, glowBackend, batch);
        const loadMs = performance.now() - t0;
        eps = await m.sampleEps(batch, SEED, 1.0);
        const t1 = performance.now();
        rgba = await m.decode(eps, batch, TEMPERATURE);
        const decCold = loadMs + performance.now() - t1;
        const t2 = performance.now();
        glowEnc = await m.encode(new Uint8Array(rgba.buffer.slice(0)), batch);
        const encCold = performance.now() - t2;
        r.glow = glowTime ? { backend: m.backend, adapter: m.adapterInfo, load_ms: loadMs,
          decode: { cold_ms: decCold }, encode: { cold_ms: encCold } } : { backend: m.backend, reference_only: true };
      } catch (e) {
        r.glow = { error: String(e.message || e) };
        if (m) m.free();
        m = null;
      }
      show();
    }
    if (!eps) {
      // without the engine: a fixed pseudo-random standard normal sequence
      eps = new Float32Array(batch * D);
      let s = 12345;
      const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
      for (let i = 0; i < eps.length; i++) eps[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
    }
    const sessions = {};
    const feeds = {};
    if (ortEp !== 'none') {
      const opts = { executionProviders: [ortEp], graphOptimizationLevel: 'all',
        ...(ortSpin ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }) };
      for (const dir of ['decode', 'encode']) {
        const key = `ort_${dir}`;
        try {
          const bytes = await fetchBytes(`${modelUrl}/${dir}_b${batch}.onnx`);
          if (dir === 'decode') {
            feeds.decode = { eps: new ort.Tensor('float32', eps, [batch, D]),
              temperature: new ort.Tensor('float32', new Float32Array([TEMPERATURE]), [1]) };
          } else {
            if (!rgba) throw new Error('no image to encode (the decode failed)');
            feeds.encode = { x: new ort.Tensor('float32', rgbaToX(rgba, c0, cfg.n_bits), [batch, H, W, c0]) };
          }
          const t0 = performance.now();
          const sess = await ort.InferenceSession.create(bytes, opts);
          const createMs = performance.now() - t0;
          const o = await sess.run(feeds[dir]);
          r[key] = { session_create_ms: createMs, cold_ms: performance.now() - t0 };
          sessions[dir] = sess;
          if (dir === 'decode') {
            const x = o.x.data;
            if (rgba) {
              r[key].check_vs_glow = comparePixels(rgba, x, c0);
            } else {
              // no engine in this page: the encode input comes from ORT's own decode
              rgba = new Uint8ClampedArray(batch * H * W * 4);
              for (let i = 0; i < batch * H * W; i++) {
                for (let k = 0; k < 3; k++) rgba[i * 4 + k] = toU8(x[i * c0 + Math.min(k, c0 - 1)]);
                rgba[i * 4 + 3] = 255;
              }
            }
          } else {
            r[key].bits_per_dim = Array.from(o.bits_per_dim.data.slice(0, 4));
            if (glowEnc) {
              const c = { max_abs_eps_diff: maxAbsDiff(o.eps.data, glowEnc.eps), max_abs_eps: maxAbs(glowEnc.eps),
                max_abs_bpd_diff: maxAbsDiff(o.bits_per_dim.data, glowEnc.bitsPerDim),
                glow_bits_per_dim: Array.from(glowEnc.bitsPerDim.slice(0, 4)) };
              c.ok = c.max_abs_eps_diff < 1e-2 && c.max_abs_bpd_diff < 1e-3;
              r[key].check_vs_glow = c;
            }
          }
        } catch (e) {
          r[key] = { ...(r[key] || {}), error: String(e.message || e) };
        }
        show();
      }
    }

    // 2. Warm series, ours and ORT's calls alternating so that both see the same load
    //    on a shared machine.
    const glowBytes = rgba && new Uint8Array(rgba.buffer.slice(0));
    for (const dir of ['decode', 'encode']) {
      const fns = {};
      if (m && glowTime) {
        fns.glow = dir === 'decode' ? () => m.decode(eps, batch, TEMPERATURE) : () => m.encode(glowBytes, batch);
      }
      if (sessions[dir] && ortTime) fns.ort = () => sessions[dir].run(feeds[dir]);
      const w = await warm(fns);
      if (w.glow) Object.assign(r.glow[dir], { warm: w.glow, ms_per_image: w.glow.median_ms / batch });
      if (w.ort) Object.assign(r[`ort_${dir}`], { warm: w.ort, ms_per_image: w.ort.median_ms / batch });
      show();
    }
    for (const s of Object.values(sessions)) await s.release();
    if (m) m.free();
    show();
  }
  result.ort_threads_used = ort.env.wasm.numThreads;
  try {
    if (ortEp === 'webgpu' && ort.env.webgpu.adapter) result.ort_webgpu_adapter = await adapterInfo(await ort.env.webgpu.adapter);
  } catch (e) {
    result.ort_webgpu_adapter = { error: String(e.message || e) };
  }
  show();
  document.body.dataset.done = '1';
}

main().catch((e) => {
  out.textContent = `error: ${e.message || e}\n${e.stack || ''}`;
  document.body.dataset.done = 'error';
});
