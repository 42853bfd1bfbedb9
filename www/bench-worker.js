// The threads benchmark's worker (bench-threads.js): loads one build of the engine (the
// plain pkg/ or the threaded pkg-mt/ with its helper workers, each with relaxed SIMD where
// the browser has it, as the engine worker does),
// one CPU engine per thread count, and times their calls here, where blocking is allowed.
// bench/ort.js also makes single calls through it ('eps', 'decode', 'encode'), for our
// threaded engine beside onnxruntime-web's threads.
import { startHelpers } from './glow/threads.js';
import { buildUrl } from './glow/builds.js';
import { fetchBytes } from './bench-util.js';

let glow;
let files;
const engines = new Map();

function call(m) {
  const e = engines.get(m.threads);
  const eps = e.sampleEps(m.batch, 1, 1.0);
  return {
    decode: () => e.decode(eps, m.batch, 0.7),
    encode: async (rgba) => e.encode(rgba, m.batch),
  };
}

async function handle(m) {
  switch (m.type) {
    case 'init': {
      // relaxed: true or false picks that build; absent, the one the page would load here
      const url = buildUrl(m.threaded, m.relaxed);
      glow = await import(url);
      await glow.default();
      const config = await (await fetch(`${m.model}/model.json`)).text();
      files = { config, weights: await fetchBytes(`${m.model}/weights.safetensors`) };
      return m.threaded ? startHelpers(glow, url, m.helpers) : 0;
    }
    case 'load': {
      const e = await glow.GlowModel.load(files.config, files.weights, undefined, 'cpu', 1, m.threads);
      engines.set(m.threads, e);
      return e.adapterInfo;
    }
    case 'eps':
      return engines.get(m.threads).sampleEps(m.batch, m.seed, 1.0);
    case 'decode':
      return engines.get(m.threads).decode(m.eps, m.batch, m.temperature);
    case 'encode': {
      const r = await engines.get(m.threads).encode(m.rgba, m.batch);
      return { eps: r.eps, bitsPerDim: r.bitsPerDim };
    }
    case 'warm': {
      const c = call(m);
      const rgba = new Uint8Array((await c.decode()).buffer);
      const t0 = performance.now();
      do {
        await c.decode();
        await c.encode(rgba);
      } while (performance.now() - t0 < m.ms);
      return null;
    }
    case 'time': {
      const c = call(m);
      const rgba = new Uint8Array((await c.decode()).buffer);
      const decode = [];
      const encode = [];
      for (let i = 0; i < m.runs; i++) {
        let t = performance.now();
        await c.decode();
        decode.push(performance.now() - t);
        t = performance.now();
        await c.encode(rgba);
        encode.push(performance.now() - t);
      }
      return { decode, encode };
    }
    default:
      throw new Error(`unknown request ${m.type}`);
  }
}

self.onmessage = (e) => {
  handle(e.data).then((value) => self.postMessage({ id: e.data.id, value }), (err) => self.postMessage({ id: e.data.id, error: String(err.message || err) }));
};
