// Browser benchmark: prints JSON into #out and sets document.body.dataset.done.
import init, { GlowModel } from './pkg/glow.js';

const out = document.getElementById('out');
const q = new URLSearchParams(location.search);
const warmupMs = Number(q.get('warmup_s') ?? 3) * 1000;

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function stats(v) {
  const s = [...v].sort((a, b) => a - b);
  const pick = (p) => s[Math.min(s.length - 1, Math.round((s.length - 1) * p))];
  return { median_ms: pick(0.5), p90_ms: pick(0.9), min_ms: s[0], runs: s.length };
}

async function time(fn, runs) {
  const t0 = performance.now();
  await fn();
  const cold = performance.now() - t0;
  // Untimed calls for at least `warmup_s` (default 3 s): V8 runs wasm on its baseline tier
  // until the optimising tier, compiled in the background, takes over.
  const w0 = performance.now();
  do await fn(); while (performance.now() - w0 < warmupMs);
  const warm = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    warm.push(performance.now() - t);
  }
  return { cold_ms: cold, warm: stats(warm) };
}

/** Sums a per-dispatch profile (GlowModel.profile) per level and layer, largest first. */
function summarize(times) {
  if (!times) return 'no timestamp queries on this backend/adapter';
  const groups = new Map();
  for (const t of times) {
    const parts = t.label.split('/');
    const name = `${parts[0]} ${parts[parts.length - 1]}`;
    const g = groups.get(name) || { layer: name, kernel: t.kernel, dispatches: 0, ms: 0, flop: 0 };
    g.dispatches += 1; g.ms += t.ms; g.flop += t.flop;
    groups.set(name, g);
  }
  const total = times.reduce((a, t) => a + t.ms, 0);
  const layers = [...groups.values()].sort((a, b) => b.ms - a.ms).map((g) => ({
    layer: g.layer, kernel: g.kernel, dispatches: g.dispatches, ms: g.ms, share: g.ms / total,
    ...(g.flop > 0 && g.ms > 0 ? { gflop_per_s: g.flop / g.ms / 1e6 } : {}),
  }));
  return { dispatches: times.length, gpu_ms: total, layers };
}

async function main() {
  await init();
  const models = await (await fetch('models/index.json')).json();
  const modelUrl = q.get('model') || models[0];
  const runs = Number(q.get('runs') || 5);
  const batches = (q.get('batches') || '1,16').split(',').map(Number);
  const config = await (await fetch(`${modelUrl}/model.json`)).text();
  const weights = await fetchBytes(`${modelUrl}/weights.safetensors`);
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  const result = {
    model: modelUrl,
    user_agent: navigator.userAgent,
    webgpu_adapter: adapter ? { ...(adapter.info ? { vendor: adapter.info.vendor, architecture: adapter.info.architecture, description: adapter.info.description } : {}), isFallbackAdapter: adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter } : null,
    results: [],
  };
  const backends = (q.get('backends') || (adapter ? 'webgpu,cpu' : 'cpu')).split(',');
  for (const backend of backends) {
    for (const batch of batches) {
      const t0 = performance.now();
      const m = await GlowModel.load(config, weights, undefined, backend, batch);
      const loadMs = performance.now() - t0;
      const eps = m.sampleEps(batch, 1);
      const dec = await time(() => m.decode(eps, batch, 0.7), runs);
      const rgba = await m.decode(eps, batch, 0.7);
      const enc = await time(() => m.encode(new Uint8Array(rgba.buffer), batch), runs);
      result.results.push({
        backend, adapter: m.adapterInfo, batch, load_ms: loadMs,
        decode: { ...dec, ms_per_image: dec.warm.median_ms / batch },
        encode: { ...enc, ms_per_image: enc.warm.median_ms / batch },
        // ?profile=1: every dispatch timed with timestamp queries, best of 3 calls (WebGPU only)
        ...(q.get('profile') ? { profile: { decode: summarize(await m.profile(true, 3)), encode: summarize(await m.profile(false, 3)) } } : {}),
      });
      // ?kernels=1: the matmul limit and the level-0 conv classes on this adapter (WebGPU only)
      if (q.get('kernels') && backend === 'webgpu' && batch === batches[0]) {
        result.kernels = JSON.parse(await m.benchKernels(batch));
      }
      m.free();
      out.textContent = JSON.stringify(result, null, 2);
    }
  }
  out.textContent = JSON.stringify(result, null, 2);
  document.body.dataset.done = '1';
}

main().catch((e) => {
  out.textContent = `error: ${e.message || e}`;
  document.body.dataset.done = 'error';
});
