// Browser benchmark: prints JSON into #out and sets document.body.dataset.done.
import { fetchBytes, stats } from './bench-util.js';
import { buildUrl } from './glow/builds.js';

// The plain build the page would load here (with relaxed SIMD where the browser has it).
const { default: init, GlowModel } = await import(buildUrl(false));

const out = document.getElementById('out');
const q = new URLSearchParams(location.search);
const warmupMs = Number(q.get('warmup_s') ?? 3) * 1000;

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

/** A GlowModel.profile result: its per-layer sums, or why there are none. */
function profileOf(text) {
  return text ? JSON.parse(text) : 'no timestamp queries on this backend/adapter';
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
      const eps = m.sampleEps(batch, 1, 1.0);
      const dec = await time(() => m.decode(eps, batch, 0.7), runs);
      const rgba = await m.decode(eps, batch, 0.7);
      const enc = await time(() => m.encode(new Uint8Array(rgba.buffer), batch), runs);
      result.results.push({
        backend, adapter: m.adapterInfo, batch, load_ms: loadMs,
        decode: { ...dec, ms_per_image: dec.warm.median_ms / batch },
        encode: { ...enc, ms_per_image: enc.warm.median_ms / batch },
        // ?profile=1: every dispatch timed with timestamp queries, best of 3 calls (WebGPU only)
        ...(q.get('profile') ? { profile: { decode: profileOf(await m.profile(true, 3)), encode: profileOf(await m.profile(false, 3)) } } : {}),
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
