// A CPU-engine worker: the page's wasm module and model, decoding the images it is sent,
// so that a grid of samples decodes on several cores and the page stays responsive while
// it does. Started by glow-face.js (WorkerPool) only when the page runs the CPU engine.
// In: {type: 'load', pkg, config, weights} once, then {id, eps, n} (eps at temperature 1).
// Out: {type: 'ready'} or {type: 'error', error}; then {id, rgba} or {id, error}.
let model = null;

self.onmessage = async (e) => {
  const m = e.data;
  if (m.type === 'load') {
    try {
      const glow = await import(m.pkg);
      await glow.default();
      model = await glow.GlowModel.load(m.config, m.weights, undefined, 'cpu', 1);
      self.postMessage({ type: 'ready' });
    } catch (err) {
      self.postMessage({ type: 'error', error: String((err && err.message) || err) });
    }
    return;
  }
  try {
    const rgba = await model.decode(m.eps, m.n, 1);
    self.postMessage({ id: m.id, rgba }, [rgba.buffer]);
  } catch (err) {
    self.postMessage({ id: m.id, error: String((err && err.message) || err) });
  }
};
