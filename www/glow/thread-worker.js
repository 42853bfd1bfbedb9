// @ts-check
// A helper thread of the threaded CPU engine (pkg-mt/). The engine worker starts one per
// extra core and sends it the compiled module and the shared memory; this worker
// instantiates the same module on that memory, says it is ready, and then lends its thread
// to the engine for good: `threadHelper()` never returns (it sleeps on a futex between the
// engine's calls). It is stopped with the engine worker that made it.

/** @typedef {{pkg: string, module: WebAssembly.Module, memory: WebAssembly.Memory}} Start */
/** @typedef {{type: 'ready'} | {type: 'failed', message: string}} HelperReport */

/** @type {{postMessage: (m: HelperReport) => void, onmessage: ((e: MessageEvent<Start>) => void) | null}} */
const scope = /** @type {any} */ (self);

scope.onmessage = async (e) => {
  scope.onmessage = null;
  const { pkg, module, memory } = e.data;
  /** @type {any} */
  let glow;
  try {
    glow = await import(pkg);
    await glow.default({ module_or_path: module, memory });
  } catch (err) {
    scope.postMessage({ type: 'failed', message: String(/** @type {Error} */ (err).message || err) });
    return;
  }
  scope.postMessage({ type: 'ready' });
  try {
    glow.threadHelper();
  } catch (err) {
    // Only a trap ends it (a panic: they abort in wasm). Tell the engine, so that a call
    // waiting for this thread's part fails instead of waiting forever.
    glow.threadHelperLost();
    scope.postMessage({ type: 'failed', message: String(/** @type {Error} */ (err).message || err) });
  }
};
