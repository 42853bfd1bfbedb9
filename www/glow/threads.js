// @ts-check
// The threaded CPU engine's start (pkg-mt/, WebAssembly threads over shared memory), shared
// by the engine worker and the benchmark's worker: whether it can run here, and its helper
// workers (thread-worker.js), which join the engine's thread team in Rust
// (src/engine/cpu/threads/wasm.rs).

/**
 * The threaded build's extra exports (src/web.rs, `mod threads`).
 * @typedef {typeof import('../pkg/glow_web.js') & {threadModule: () => WebAssembly.Module,
 *   threadMemory: () => WebAssembly.Memory, threadHelper: () => void, threadHelpers: () => number,
 *   threadHelperLost: () => void}} ThreadedGlow
 */

const THREAD_WORKER_URL = new URL('./thread-worker.js', import.meta.url);

/**
 * Starts `n` helper workers (thread-worker.js) on the threaded build's module and memory
 * and resolves to how many started. They stay for this worker's life (they stop with it):
 * a worker takes tens of milliseconds to start, an engine call's convs far less. Waits for
 * them here, before the engine is made, because a worker blocked in a long call may not let
 * its child workers start.
 * @param {ThreadedGlow} mt  the threaded build, initialised on this thread
 * @param {string} pkg  its URL (pkg-mt/glow_web.js), which each helper imports
 * @param {number} n
 * @returns {Promise<number>}
 */
export async function startHelpers(mt, pkg, n) {
  const module = mt.threadModule();
  const memory = mt.threadMemory();
  const started = await Promise.all(Array.from({ length: n }, (_, i) => new Promise((resolve) => {
    /** @type {Worker} */
    let w;
    const give = (/** @type {boolean} */ ok) => {
      clearTimeout(timer);
      if (!ok) w.terminate();
      resolve(ok);
    };
    const timer = setTimeout(() => give(false), 20000);
    try {
      w = new Worker(THREAD_WORKER_URL, { type: 'module', name: `glow-thread-${i + 1}` });
    } catch {
      give(false);
      return;
    }
    w.onmessage = (e) => give(e.data && e.data.type === 'ready');
    w.onerror = (e) => { e.preventDefault(); give(false); };
    w.postMessage({ pkg, module, memory });
  })));
  const ready = started.filter(Boolean).length;
  // 'ready' is posted just before a helper enters the engine's pool: wait until it has.
  for (let t = 0; mt.threadHelpers() < ready && t < 200; t++) await new Promise((r) => setTimeout(r, 10));
  return mt.threadHelpers();
}

/**
 * How many threads the CPU engine may use here, or why only one: the threaded build needs
 * shared memory, which browsers give only to cross-origin-isolated pages (COOP/COEP headers,
 * or the site's service worker, coi-sw.js, on hosts that cannot send them).
 * @param {number} wanted  0: one per core, up to 8 (past that a 64x64 model's convs are too
 *   small to split further); 1: the plain build
 * @returns {{threads: number, why: string}}
 */
export function threadPlan(wanted) {
  const cores = navigator.hardwareConcurrency || 1;
  const threads = wanted > 0 ? wanted : Math.min(cores, 8);
  if (threads < 2) return { threads: 1, why: wanted === 1 ? 'one thread, as asked' : 'one thread: this device reports one core' };
  if (!/** @type {any} */ (self).crossOriginIsolated) {
    return { threads: 1, why: 'one thread: the page is not cross-origin isolated (no COOP/COEP headers), so WebAssembly threads are off' };
  }
  if (typeof SharedArrayBuffer === 'undefined') return { threads: 1, why: 'one thread: this browser has no SharedArrayBuffer' };
  return { threads, why: '' };
}
