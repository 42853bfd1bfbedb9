// Helpers shared by the benchmark pages: www/bench.js, www/bench-threads.js and bench/ort.js
// (which bench/ort.mjs serves beside a built dist/, where this file is /bench-util.js).

export async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** Median, p90, min and max of a series of ms, and its length. */
export function stats(v) {
  const s = [...v].sort((a, b) => a - b);
  const pick = (p) => s[Math.min(s.length - 1, Math.round((s.length - 1) * p))];
  return { median_ms: pick(0.5), p90_ms: pick(0.9), min_ms: s[0], max_ms: s[s.length - 1], runs: s.length };
}

/**
 * A benchmark worker (bench-worker.js, beside this file) and a function that sends it one
 * request and resolves to its answer.
 * @param {string} name  the worker's name (shown in profiles)
 */
export function benchWorker(name) {
  const w = new Worker(new URL('./bench-worker.js', import.meta.url), { type: 'module', name });
  let next = 0;
  const pending = new Map();
  w.onmessage = (e) => {
    const p = pending.get(e.data.id);
    pending.delete(e.data.id);
    if (e.data.error) p.reject(new Error(e.data.error)); else p.resolve(e.data.value);
  };
  const call = (msg) => new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    w.postMessage({ ...msg, id });
  });
  return { call, terminate: () => w.terminate() };
}
