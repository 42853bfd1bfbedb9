// Head-to-head benchmark against onnxruntime-web: serves ROOT (a built dist/: pkg/ and
// models/NAME/) with cross-origin isolation (COOP/COEP, needed for ORT's wasm threads),
// bench/ort.{html,js} from the repo and onnxruntime-web's dist/ at /ort/, opens ort.html in
// headless Chromium (WebGPU on SwiftShader) once per configuration, prints the merged JSON
// and writes a markdown summary.
//
//   node bench/ort.mjs [--root dist] [--model models/bench64] [--runs 5] [--batches 1,16]
//                      [--budget 30] [--pages webgpu,wasm1,wasm2] [--out bench/RESULTS-ort.md]
//                      [--json FILE] [--page-timeout 300] [--min-runs 3] [--warmup 3] [--gap-ms 100]
//                      [--gpu-batches B] [--gpu-runs N] [--gpu-min-runs N]   (WebGPU pages only)
//                      [--merge A.json,B.json]  (add the pages of earlier runs' --json to the summary)
//                      [--from-json FILE]       (no browser: rewrite the summary from a --json file)
//
// Pages (one browser, one page each, since ORT's wasm thread count is fixed per page):
//   webgpu: ours on WebGPU vs ORT's WebGPU execution provider (JSEP, default bundle)
//   wasm1:  ours on the CPU engine (wasm, 1 thread) vs ORT's wasm EP with numThreads=1
//   wasm2:  ours on the threaded CPU engine (pkg-mt/, 2 threads, in a worker) vs ORT's wasm EP
//           with numThreads=2 (wasm2-nospin: the same, asking ORT's threads
//           not to spin between calls; measured: no effect)
//   webgpu-ort: ORT's WebGPU EP alone (ours untimed), for batches too slow for the webgpu page
// Every timed call comes --gap-ms (default 100) after the previous call ended, with the page
// idle: onnxruntime-web's thread pool keeps a core busy for a while after its calls (with
// ORT on 2 threads, our 2-thread call right after one took twice as long as with 100 ms
// between them, or with ORT on 1 thread; `session.intra_op.allow_spinning` 0 did not change
// it: ORT-web's sessions share one global pool), so without the pause each engine would be
// timed partly on the other's leftovers.
// Before timing, each page makes untimed calls of every engine for --warmup seconds (CPU
// pages; at least one round; WebGPU pages one round), so that V8's optimising tier runs both
// engines' wasm. A warm series stops after --runs calls, or once it has taken --budget seconds and has
// at least --min-runs calls.
// Missing ONNX files (MODEL/{decode,encode}_b{B}.onnx) are exported with
// tools/export_onnx.py using $PYTHON (default .venv/bin/python).
// Env: PLAYWRIGHT_CORE (module path), ORT_WEB (the onnxruntime-web package folder; default
// bench/node_modules/onnxruntime-web, installed by `npm ci --prefix bench`).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { spawnSync } from 'node:child_process';

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const args = { root: 'dist', model: 'models/bench64', runs: '5', batches: '1,16', budget: '30', 'min-runs': '3',
  'gpu-batches': '', merge: '', 'from-json': '', 'gpu-runs': '', 'gpu-min-runs': '',
  pages: 'webgpu,wasm1,wasm2', warmup: '3', 'gap-ms': '100', out: 'bench/RESULTS-ort.md', json: '', 'page-timeout': '300' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in args) || process.argv[i + 1] === undefined) {
    console.error(`usage: node bench/ort.mjs ${Object.keys(args).map((a) => `[--${a} ${args[a] || 'X'}]`).join(' ')}`);
    process.exit(2);
  }
  args[k] = process.argv[i + 1];
}
async function runBrowser() {
  const root = path.resolve(repo, args.root);
  const ortDir = path.resolve(process.env.ORT_WEB || path.join(repo, 'bench/node_modules/onnxruntime-web'));
  if (!fs.existsSync(path.join(ortDir, 'package.json'))) throw new Error(`${ortDir} is missing: run npm ci --prefix bench (or set ORT_WEB)`);
  const ortDist = path.join(ortDir, 'dist');
  const ortVersion = JSON.parse(fs.readFileSync(path.join(ortDir, 'package.json'), 'utf8')).version;
  const gpuBatches = args['gpu-batches'] || args.batches;
  const batches = [...new Set([...args.batches.split(','), ...gpuBatches.split(',')].map(Number))].sort((a, b) => a - b);
  const modelDir = path.join(root, args.model);
  for (const f of ['model.json', 'weights.safetensors']) {
    if (!fs.existsSync(path.join(modelDir, f))) throw new Error(`${path.join(modelDir, f)} is missing: build ${args.root} first`);
  }
  for (const f of ['pkg/glow_web.js', 'bench-util.js']) {
    if (!fs.existsSync(path.join(root, f))) throw new Error(`${root}/${f} is missing: build ${args.root} first`);
  }

  // ONNX exports, one file per direction and batch size
  const python = process.env.PYTHON || path.join(repo, '.venv/bin/python');
  for (const dir of ['decode', 'encode']) {
    for (const b of batches) {
      const f = path.join(modelDir, `${dir}_b${b}.onnx`);
      if (fs.existsSync(f)) continue;
      console.error(`exporting ${f}`);
      const r = spawnSync(python, [path.join(repo, 'tools/export_onnx.py'), modelDir, f, '--direction', dir, '--batch', String(b)],
        { stdio: ['ignore', 'inherit', 'inherit'] });
      if (r.status !== 0) throw new Error(`export of ${f} failed`);
    }
  }

  const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
    '.json': 'application/json' };
  function resolve(urlPath) {
    if (urlPath === '/ort.html' || urlPath === '/ort.js') return [path.join(repo, 'bench'), path.join(repo, 'bench', urlPath)];
    if (urlPath.startsWith('/ort/')) return [ortDist, path.join(ortDist, urlPath.slice(5))];
    return [root, path.join(root, urlPath)];
  }
  const notFound = [];
  const server = http.createServer((req, res) => {
    const [base, p] = resolve(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin' };
    if (!p.startsWith(base) || !fs.existsSync(p) || fs.statSync(p).isDirectory()) {
      notFound.push(req.url);
      res.writeHead(404, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': types[path.extname(p)] || 'application/octet-stream',
      'content-length': fs.statSync(p).size });
    fs.createReadStream(p).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;

  const PAGES = {
    // ours on WebGPU alone, for batches too slow for ORT's WebGPU EP in one run
    'webgpu-glow': { ort: 'none', threads: 1, glow: 'webgpu' },
    webgpu: { ort: 'webgpu', threads: 1, glow: 'webgpu' },
    wasm1: { ort: 'wasm', threads: 1, glow: 'cpu' },
    wasm2: { ort: 'wasm', threads: 2, glow: 'cpu', glow_threads: 2 },
    // the same, asking ORT's threads not to spin after its calls (measured: no effect)
    'wasm2-nospin': { ort: 'wasm', threads: 2, glow: 'cpu', glow_threads: 2, ort_spin: 0 },
    // ours alone on the threaded CPU engine (no ORT session in the page): for the 2-thread pages' question
    'glow-cpu2': { ort: 'none', threads: 1, glow: 'cpu', glow_threads: 2 },
    // ours on 2 threads beside ORT on 1 (no ORT thread pool)
    'wasm1-glow2': { ort: 'wasm', threads: 1, glow: 'cpu', glow_threads: 2 },
    // the same beside ORT's 2-thread sessions, made (and run once) but idle while ours are timed
    'glow-cpu2-ort-idle': { ort: 'wasm', threads: 2, glow: 'cpu', glow_threads: 2, ort_time: 0 },
    // ORT WebGPU alone (ours only supplies inputs and reference outputs): for slow batches
    'webgpu-ort': { ort: 'webgpu', threads: 1, glow: 'webgpu', glow_time: 0 },
  };
  const { chromium } = await import(process.env.PLAYWRIGHT_CORE || 'playwright-core');
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader',
      '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const all = { ort_web_version: ortVersion, ort_bundle: 'ort.min.mjs (default bundle, JSEP WebGPU + wasm)', chromium: browser.version(),
    model: args.model, command: `node bench/ort.mjs ${process.argv.slice(2).join(' ')}`, load_average_before: os.loadavg(), cpus: os.cpus().length, pages: {} };
  const t0 = Date.now();
  try {
    for (const name of args.pages.split(',')) {
      const cfg = PAGES[name];
      if (!cfg) throw new Error(`unknown page ${name}: use ${Object.keys(PAGES).join(', ')}`);
      const page = await browser.newPage();
      const consoleLines = [];
      page.on('console', (m) => { if (consoleLines.length < 100) consoleLines.push(`${m.type()}: ${m.text()}`.slice(0, 400)); });
      page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
      page.on('response', (r) => { if (r.status() >= 400) consoleLines.push(`HTTP ${r.status()}: ${r.url()}`); });
      const gpu = cfg.ort === 'webgpu' || cfg.glow === 'webgpu';
      const qs = new URLSearchParams({ model: args.model, budget_s: args.budget, warmup_s: gpu ? '0' : args.warmup,
        runs: (gpu && args['gpu-runs']) || args.runs, min_runs: (gpu && args['gpu-min-runs']) || args['min-runs'],
        batches: gpu ? gpuBatches : args.batches,
        ort: cfg.ort, threads: String(cfg.threads), glow: cfg.glow, glow_threads: String(cfg.glow_threads ?? 1), ort_spin: String(cfg.ort_spin ?? 1), glow_time: String(cfg.glow_time ?? 1), ort_time: String(cfg.ort_time ?? 1), gap_ms: args['gap-ms'] });
      const tp = Date.now();
      console.error(`page ${name}: ${qs}`);
      await page.goto(`http://127.0.0.1:${port}/ort.html?${qs}`);
      let res;
      try {
        await page.waitForFunction(() => document.body.dataset.done, null, { timeout: Number(args['page-timeout']) * 1000 });
        const text = await page.textContent('#out');
        res = text.startsWith('{') ? JSON.parse(text) : { error: text };
      } catch (e) {
        const text = await page.textContent('#out').catch(() => '');
        res = { error: `page did not finish: ${e.message.split('\n')[0]}`, partial: text.startsWith('{') ? JSON.parse(text) : text };
      }
      res.page_seconds = (Date.now() - tp) / 1000;
      res.console = consoleLines;
      all.pages[name] = res;
      console.error(`page ${name}: ${res.page_seconds.toFixed(1)} s${res.error ? ` (${res.error})` : ''}`);
      await page.close();
    }
  } finally {
    all.total_browser_seconds = (Date.now() - t0) / 1000;
    all.load_average_after = os.loadavg();
    all.http_404 = notFound;
    await browser.close();
    server.close();
  }
  return all;
}

const all = args['from-json'] ? JSON.parse(fs.readFileSync(args['from-json'], 'utf8')) : await runBrowser();
if (!args['from-json']) console.log(JSON.stringify(all, null, 2));
if (args.json && !args['from-json']) fs.writeFileSync(path.resolve(args.json), JSON.stringify(all, null, 2) + '\n');
all.merged = args.merge ? args.merge.split(',').map((f) => ({ label: path.basename(f), run: JSON.parse(fs.readFileSync(f, 'utf8')) })) : [];
fs.writeFileSync(path.resolve(repo, args.out), markdown(all));
console.error(`wrote ${args.out}`);

// ---------------------------------------------------------------------------------------

function markdown(all) {
  // every page of this run and of the --merge runs, with the run it came from
  const pages = [];
  const addRun = (run, label) => {
    for (const [name, pg] of Object.entries(run.pages)) {
      const p = pg.results ? pg : pg.partial && pg.partial.results ? pg.partial : null;
      pages.push({ name: label ? `${name} (${label})` : name, p, error: pg.error, run, merged: !!label });
    }
  };
  addRun(all, '');
  for (const m of all.merged || []) addRun(m.run, m.label);
  let fromMerged = false;
  const find = (pred, b, key) => {
    for (const { p, merged } of pages) {
      if (!p || !pred(p.page)) continue;
      const r = p.results.find((x) => x.batch === b);
      const v = r && key(r);
      if (v && v.warm && !v.warm.error) return { ...v, merged };
    }
    return null;
  };
  const oursGpu = (pg) => pg.glow_backend === 'webgpu' && pg.glow_timed !== false;
  // The summary keeps to the default pages (ORT's threads spinning, its default).
  const oursCpu = (t) => (pg) => pg.glow_backend === 'cpu' && pg.glow_timed !== false && (pg.glow_threads ?? 1) === t && pg.ort_spin !== false;
  const ortGpu = (pg) => pg.ort_ep === 'webgpu';
  const ortWasm = (t) => (pg) => pg.ort_ep === 'wasm' && pg.ort_threads_requested === t && pg.ort_spin !== false;
  const fmt = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(d));
  const f = fmt;
  const la = (run) => `${run.load_average_before.map((v) => v.toFixed(1)).join('/')} → ${run.load_average_after.map((v) => v.toFixed(1)).join('/')}`;
  const first = pages.find((x) => x.p && x.p.user_agent)?.p;
  const gpuPage = pages.find((x) => x.p && x.p.webgpu_adapter && x.p.page.ort_ep === 'webgpu')?.p;
  const allBatches = [...new Set(pages.flatMap((x) => (x.p ? x.p.results.map((r) => r.batch) : [])))].sort((a, b) => a - b);
  const L = [];
  L.push('# Glow vs onnxruntime-web, same model, same headless Chromium');
  L.push('');
  L.push('Written by `node bench/ort.mjs` (bench/ort.html + bench/ort.js in the page, ONNX graphs from tools/export_onnx.py).');
  L.push('');
  if (first?.model) {
    const m = first.model;
    L.push(`* model: \`${all.model}\` — ${m.name}: ${m.image.height}x${m.image.width}x${m.image.channels}, ${m.levels} levels, ${m.steps} steps, width ${m.width}, ${m.coupling}`);
  }
  L.push(`* onnxruntime-web ${all.ort_web_version}, ${all.ort_bundle}; ONNX opset 17, float32, NCHW, static batch (one file per batch size), graphOptimizationLevel 'all', outputs read back to the CPU (as ours are)`);
  L.push(`* Chromium ${all.chromium} headless; ${first ? `hardwareConcurrency ${first.hardware_concurrency}, crossOriginIsolated ${first.cross_origin_isolated}` : ''}`);
  if (gpuPage) {
    const a = gpuPage.webgpu_adapter, o = gpuPage.ort_webgpu_adapter;
    L.push(`* WebGPU adapter (the page's, ours): vendor \`${a.vendor}\`, architecture \`${a.architecture}\`, isFallbackAdapter ${a.isFallbackAdapter}${o ? `; ORT's: vendor \`${o.vendor}\`, architecture \`${o.architecture}\`, isFallbackAdapter ${o.isFallbackAdapter}` : ''}`);
  }
  const runs = [{ label: 'this run', run: all }, ...(all.merged || [])];
  for (const { label, run } of runs) {
    L.push(`* ${label}${run.command ? ` (\`${run.command}\`)` : ''}: pages ${Object.keys(run.pages).join(', ')}; ${run.total_browser_seconds.toFixed(0)} s of browser time; load average (1/5/15 min, ${run.cpus} CPUs, shared machine) ${la(run)}`);
  }
  L.push('');
  const gaps = [...new Set(pages.map((x) => x.p && x.p.page.gap_ms).filter((g) => g !== undefined && g !== null))];
  L.push(`Within a page, ours and ORT's warm calls alternate, so both see the same load, each after ${gaps.length ? gaps.join(' or ') : 0} ms`);
  L.push('of idle page (ORT\'s thread pool stays busy for a while after its calls); the machine is shared,');
  L.push('so medians move by 2x between runs: the best-call table is the steadier comparison.');
  const summary = (title, stat) => {
    fromMerged = false;
    L.push('');
    L.push(`## ${title}, ms per image (ratio = ORT / ours: above 1 means ours is faster)`);
    L.push('');
    L.push('| direction | batch | ours WebGPU | ORT WebGPU | ratio | ours CPU 1 thread | ORT wasm 1 thread | ratio | ours CPU 2 threads | ORT wasm 2 threads | ratio |');
    L.push('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const dir of ['decode', 'encode']) {
      for (const b of allBatches) {
        const v = (pred, key) => {
          const x = find(pred, b, key);
          if (x && x.merged) fromMerged = true;
          return x ? { ms: x.warm[stat] / b, mark: x.merged ? '*' : '' } : null;
        };
        const f = (x) => (x ? `${fmt(x.ms)}${x.mark}` : '—');
        const ratio = (a, o) => (a && o ? `${(a.ms / o.ms).toFixed(2)}x` : '—');
        const og = v(oursGpu, (r) => r.glow?.[dir]);
        const ow = v(ortGpu, (r) => r[`ort_${dir}`]);
        const oc = v(oursCpu(1), (r) => r.glow?.[dir]);
        const o1 = v(ortWasm(1), (r) => r[`ort_${dir}`]);
        const oc2 = v(oursCpu(2), (r) => r.glow?.[dir]);
        const o2 = v(ortWasm(2), (r) => r[`ort_${dir}`]);
        L.push(`| ${dir} | ${b} | ${f(og)} | ${f(ow)} | ${ratio(ow, og)} | ${f(oc)} | ${f(o1)} | ${ratio(o1, oc)} | ${f(oc2)} | ${f(o2)} | ${ratio(o2, oc2)} |`);
      }
    }
    if (fromMerged) {
      L.push('');
      L.push('\\* from an earlier run merged in (listed above), where this run has no such configuration.');
    }
  };
  summary('Warm median', 'median_ms');
  summary('Best warm call', 'min_ms');
  L.push('');
  L.push('## Every configuration');
  L.push('');
  L.push('ms per call. cold = model load or session creation + the first call (inputs already fetched); its output is the one checked against ours. warm = the calls after it.');
  L.push('');
  L.push('| page | engine | direction | batch | cold | warm median | p90 | min | runs | ms/image | output check vs ours |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const { name, p, error } of pages) {
    if (!p) { L.push(`| ${name} | — | — | — | — | — | — | — | — | — | error: ${error} |`); continue; }
    const cfg = p.page;
    for (const r of p.results) {
      for (const dir of ['decode', 'encode']) {
        const g = r.glow?.[dir];
        if (g) {
          const w = g.warm || {};
          L.push(`| ${name} | ours ${r.glow.backend}${(cfg.glow_threads ?? 1) > 1 ? ` ${cfg.glow_threads} threads` : ""} | ${dir} | ${r.batch} | ${f(g.cold_ms)} | ${f(w.median_ms)} | ${f(w.p90_ms)} | ${f(w.min_ms)} | ${w.runs ?? '—'} | ${f(g.ms_per_image)} | ${w.error ? `error: ${w.error}` : 'reference'} |`);
        }
        else if (r.glow?.error) L.push(`| ${name} | ours ${cfg.glow_backend} | ${dir} | ${r.batch} | — | — | — | — | — | — | error: ${r.glow.error} |`);
        const o = r[`ort_${dir}`];
        if (!o) continue;
        let chk = '—';
        if (dir === 'decode' && o.check_vs_glow) {
          const c = o.check_vs_glow;
          chk = `${c.ok ? 'ok' : 'MISMATCH'}: max ${c.max_level_diff} level(s); ${c.equal}/${c.values} equal, ${c.off_by_1} off by 1, ${c.off_by_2} by 2, ${c.off_by_more} by more`;
        } else if (dir === 'encode' && o.check_vs_glow) {
          const c = o.check_vs_glow;
          chk = `${c.ok ? 'ok' : 'MISMATCH'}: max abs eps diff ${c.max_abs_eps_diff.toExponential(2)} (max abs eps ${c.max_abs_eps.toFixed(2)}), bits/dim diff ${c.max_abs_bpd_diff.toExponential(2)}`;
        }
        const w = o.warm || {};
        if (o.error || w.error) chk = `error: ${o.error || w.error}`;
        L.push(`| ${name} | ORT ${cfg.ort_ep}${cfg.ort_ep === 'wasm' ? ` ${cfg.ort_threads_requested} thread(s)` : ''} | ${dir} | ${r.batch} | ${f(o.cold_ms)} | ${f(w.median_ms)} | ${f(w.p90_ms)} | ${f(w.min_ms)} | ${w.runs ?? '—'} | ${f(o.ms_per_image)} | ${chk} |`);
      }
    }
  }
  L.push('');
  return L.join('\n');
}
