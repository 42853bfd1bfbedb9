// The threads benchmark (bench-threads.html; node bench/threads.mjs runs it headless):
// prints JSON into #out and sets document.body.dataset.done.
import { stats, benchWorker } from './bench-util.js';

const out = document.getElementById('out');
const q = new URLSearchParams(location.search);
const list = (k, d) => (q.get(k) || d).split(',').map(Number);

async function main() {
  if (!crossOriginIsolated) throw new Error('the page is not cross-origin isolated: serve it with COOP/COEP (scripts/serve.py)');
  const models = await (await fetch('models/index.json')).json();
  const model = q.get('model') || models[0];
  const threads = list('threads', '1,2');
  const batches = list('batches', '1,8');
  const runs = Number(q.get('runs') || 5);
  const rounds = Number(q.get('rounds') || 3);
  const warmupMs = Number(q.get('warmup_s') ?? 3) * 1000;
  const plain = benchWorker('bench-plain').call;
  const mt = benchWorker('bench-threads').call;
  const helpers = Math.max(...threads) - 1;
  await plain({ type: 'init', threaded: false, model });
  const started = await mt({ type: 'init', threaded: true, helpers, model });
  // One engine per (build, threads); the threaded engines share one pool of helpers.
  const configs = [{ build: 'plain', threads: 1, call: plain }, ...threads.map((t) => ({ build: 'threads', threads: t, call: mt }))];
  for (const c of configs) c.device = await c.call({ type: 'load', threads: c.threads });
  const result = {
    model, user_agent: navigator.userAgent, hardware_concurrency: navigator.hardwareConcurrency,
    helpers_started: started, runs_per_round: runs, rounds, warmup_s: warmupMs / 1000, results: [],
  };
  const times = new Map();
  for (const c of configs) for (const b of batches) await c.call({ type: 'warm', threads: c.threads, batch: b, ms: warmupMs });
  for (let r = 0; r < rounds; r++) {
    for (const b of batches) {
      for (const c of configs) {
        const t = await c.call({ type: 'time', threads: c.threads, batch: b, runs });
        const key = `${c.build}|${c.threads}|${b}`;
        const prev = times.get(key) || { decode: [], encode: [] };
        prev.decode.push(...t.decode);
        prev.encode.push(...t.encode);
        times.set(key, prev);
      }
      out.textContent = `round ${r + 1} of ${rounds}, batch ${b} done`;
    }
  }
  for (const c of configs) {
    for (const b of batches) {
      const t = times.get(`${c.build}|${c.threads}|${b}`);
      const per = (v) => v.map((x) => x / b);
      result.results.push({
        build: c.build, threads: c.threads, device: c.device, batch: b,
        decode_ms_per_image: stats(per(t.decode)), encode_ms_per_image: stats(per(t.encode)),
      });
    }
  }
  out.textContent = JSON.stringify(result, null, 2);
  document.body.dataset.done = '1';
}

main().catch((e) => {
  out.textContent = `error: ${e.message || e}`;
  document.body.dataset.done = 'error';
});
