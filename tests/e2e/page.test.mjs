// End-to-end test of the demo page and the <glow-face> widget in headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core; WebGPU on SwiftShader).
//
//   ./build.sh build && node tests/e2e/page.test.mjs
//
// Serves dist/ itself on 127.0.0.1 (a free port), records every request the pages make
// (none may leave the origin, none may carry the uploaded photo), saves screenshots to
// test-results/, and ends with "N passed, M failed" (exit status 1 on any failure).
// Environment: GLOW_E2E_GRID (faces per side in the page tests, default 2),
// GLOW_E2E_HEADED=1 to watch, GLOW_E2E_TIMEOUT_MS (per wait, default 150000),
// GLOW_E2E_LIMIT_S (the whole run, default 600).


import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import {
  ROOT, DIST, OUT, GRID, WAIT, LIMIT_S, BROWSER, BASE_ARGS, GPU_ARGS, serve, testImage, canvasStats, composePhoto,
  renders, waitRenders, idle, check, summary, assert, watch, results, png,
} from './harness.mjs';

/** A landscape photo-like PNG (1200x800) with a face-like blob left of centre. */
function landscapeImage() {
  const buffer = png(1200, 800, (x, y) => {
    const dx = (x - 420) / 150, dy = (y - 400) / 200;
    if (dx * dx + dy * dy > 1) return [60 + (x % 97), 90 + (y % 53), 140];
    if (((x - 370) ** 2 + (y - 360) ** 2 < 300) || ((x - 470) ** 2 + (y - 360) ** 2 < 300)) return [30, 25, 20];
    return [225, 185, 160];
  });
  return { name: 'landscape.png', mimeType: 'image/png', buffer };
}

/** RGBA pixels as a one-frame Y4M video (4:2:0, full-range BT.601), for a fake camera. */
function toY4m(rgba, w, h) {
  const y = Buffer.alloc(w * h), u = Buffer.alloc((w / 2) * (h / 2)), v = Buffer.alloc((w / 2) * (h / 2));
  const clamp = (x) => Math.max(0, Math.min(255, Math.round(x)));
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const k = (j * w + i) * 4;
      y[j * w + i] = clamp(0.299 * rgba[k] + 0.587 * rgba[k + 1] + 0.114 * rgba[k + 2]);
    }
  }
  for (let j = 0; j < h / 2; j++) {
    for (let i = 0; i < w / 2; i++) {
      let r = 0, g = 0, b = 0;
      for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
        const k = ((2 * j + dy) * w + 2 * i + dx) * 4;
        r += rgba[k] / 4; g += rgba[k + 1] / 4; b += rgba[k + 2] / 4;
      }
      u[j * (w / 2) + i] = clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b);
      v[j * (w / 2) + i] = clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b);
    }
  }
  return Buffer.concat([Buffer.from(`YUV4MPEG2 W${w} H${h} F30:1 Ip A1:1 C420jpeg\n`), Buffer.from('FRAME\n'), y, u, v]);
}

async function main() {
  assert(fs.existsSync(path.join(DIST, 'index.html')), 'dist/index.html is missing: run ./build.sh build first');
  fs.mkdirSync(OUT, { recursive: true });
  const server = await serve(DIST);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const log = { requests: [], errors: [], csp: [] };
  const image = testImage();
  const shot = (page, name) => page.screenshot({ path: path.join(OUT, name), fullPage: true });
  console.log(`serving ${DIST} at ${origin}; test image ${image.name}; grid ${GRID}x${GRID}`);

  const browser = await chromium.launch({
    executablePath: BROWSER,
    headless: !process.env.GLOW_E2E_HEADED,
    args: [...BASE_ARGS, ...GPU_ARGS],
  });
  try {
    // Reduced motion, which the page honours: its scrolls to a section are then instant. A
    // smooth one still under way could otherwise carry the view away from a slider the test
    // has just scrolled to, and the editor draws only what is on screen (a flaky failure).
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, reducedMotion: 'reduce' });
    const page = await context.newPage();
    watch(page, origin, log);
    let first = null;

    const loaded = await check('the page loads the default model and reports its backend', async () => {
      await page.goto(`${origin}/?grid=${GRID}`);
      await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: WAIT });
      const status = await page.textContent('#status');
      const backend = await page.evaluate(() => document.body.dataset.backend);
      assert(/ms per image/.test(status), `status line has no timing: "${status}"`);
      await shot(page, '01-page.png');
      return `${backend}: ${status}`;
    });
    if (!loaded) {
      console.log(`     page errors: ${log.errors.slice(0, 5).join(' | ') || 'none'}`);
      throw new Error('the page did not load; the other checks were not run');
    }

    await check('on the CPU engine, a grid is shared out to several workers, to the same pixels as one', async () => {
      const r = await page.evaluate(async () => {
        const { GlowClient } = await import('/glow/client.js');
        const models = await (await fetch('/models/index.json')).json();
        // Two workers whatever the core count, so this check runs (and can fail) on a
        // one-core machine too.
        const two = await GlowClient.open(models[0], { backend: 'cpu', workers: 2 });
        const one = await GlowClient.open(models[0], { backend: 'cpu', workers: 1 });
        const n = 4;
        const eps = await two.sampleEps(n, 7, 0.7);
        const t0 = performance.now();
        const shared = await two.decode(eps, n);
        const ms = (performance.now() - t0) / n;
        const single = await one.decode(eps, n);
        let diff = 0;
        for (let i = 0; i < single.length; i++) if (single[i] !== shared[i]) diff++;
        const workers = two.workers.length;
        two.release();
        one.release();
        return { workers, diff, ms };
      });
      assert(r.workers === 2, `${r.workers} workers on the CPU engine, asked for 2`);
      assert(r.diff === 0, `${r.diff} bytes differ between two workers' and one worker's decode`);
      return `${r.workers} workers, identical bytes, ${r.ms.toFixed(0)} ms per image`;
    });

    await check('cross-origin isolated, one CPU engine runs on 2 WebAssembly threads, to the same bytes as the single-threaded build', async () => {
      const r = await page.evaluate(async () => {
        const { GlowClient } = await import('/glow/client.js');
        const models = await (await fetch('/models/index.json')).json();
        // 2 threads whatever the core count, so this runs (and can fail) on one core too.
        const mt = await GlowClient.open(models[0], { backend: 'cpu', threads: 2 });
        const st = await GlowClient.open(models[0], { backend: 'cpu', threads: 1, workers: 1 });
        const n = 4;
        const { dim, width, height } = mt.info;
        const eps = await mt.sampleEps(n, 11, 0.7);
        const count = (/** @type {ArrayLike<number>} */ x, /** @type {ArrayLike<number>} */ y) => {
          let d = x.length === y.length ? 0 : Infinity;
          for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) d++;
          return d;
        };
        const grid = await mt.decode(eps, n); // a grid: one image per thread
        const single = await st.decode(eps, n);
        const one = await mt.decode(eps.slice(0, dim), 1); // one image: its convs split by rows
        const rgba = single.slice(0, 2 * width * height * 4);
        const em = await mt.encode(rgba, 2);
        const es = await st.encode(rgba, 2);
        const bits = (/** @type {Float32Array | Float64Array} */ v) => new Uint32Array(v.buffer, v.byteOffset, v.byteLength / 4);
        const r = {
          threads: mt.info.threads, why: mt.info.threadsWhy, adapter: mt.info.adapter, workers: mt.workers.length,
          plain: [st.info.threads, st.info.adapter],
          grid: count(grid, single), one: count(one, single.subarray(0, width * height * 4)),
          eps: count(bits(em.eps), bits(es.eps)), bpd: count(bits(em.bitsPerDim), bits(es.bitsPerDim)),
        };
        mt.release();
        st.release();
        return r;
      });
      assert(r.threads === 2 && / 2 threads/.test(r.adapter), `threaded engine: ${r.threads} threads (${r.adapter}; ${r.why})`);
      assert(r.workers === 1, `${r.workers} workers for the threaded engine`);
      assert(r.plain[0] === 1 && / 1 thread/.test(r.plain[1]), `plain engine: ${r.plain}`);
      assert(r.grid === 0 && r.one === 0, `${r.grid} bytes of a 4-image grid and ${r.one} of one image differ from the single-threaded decode`);
      assert(r.eps === 0 && r.bpd === 0, `encode: ${r.eps} eps words and ${r.bpd} bits/dim words differ`);
      return `${r.adapter}: decode (4 images, and 1) and encode identical to the plain build's`;
    });

    await check('where the browser has relaxed SIMD the page loads the FMA builds: within a level of the portable build, and encode -> decode exact', async () => {
      const r = await page.evaluate(async () => {
        const { RELAXED_SIMD, buildUrl } = await import('/glow/builds.js');
        const dir = (await (await fetch('/models/index.json')).json())[0];
        const json = await (await fetch(`/${dir}/model.json`)).text();
        const weights = new Uint8Array(await (await fetch(`/${dir}/weights.safetensors`)).arrayBuffer());
        const load = async (/** @type {boolean} */ relaxed) => {
          const glow = await import(buildUrl(false, relaxed));
          await glow.default();
          return glow.GlowModel.load(json, weights, null, 'cpu', 2, 1);
        };
        const [fma, portable] = [await load(true), await load(false)];
        const eps = fma.sampleEps(2, 5, 0.7);
        const a = await fma.decode(eps, 2, 1.0);
        const b = await portable.decode(eps, 2, 1.0);
        let differ = 0;
        let most = 0;
        for (let i = 0; i < a.length; i++) {
          const d = Math.abs(a[i] - b[i]);
          if (d) differ++;
          most = Math.max(most, d);
        }
        const ea = /** @type {any} */ (await fma.encode(a, 2));
        const eb = /** @type {any} */ (await portable.encode(a, 2));
        // decode(encode(x)) with OpenAI's postprocess (quantize) gives back x's 5-bit bins exactly
        const again = await fma.decode(ea.eps, 2, 1.0, undefined, true);
        let roundTrip = 0;
        const shift = 8 - JSON.parse(json).n_bits;
        for (let i = 0; i < a.length; i++) if (again[i] !== (i % 4 === 3 ? 255 : (a[i] >> shift) << shift)) roundTrip++;
        return { relaxed: RELAXED_SIMD, pageBuild: buildUrl(false), kernels: [fma.adapterInfo, portable.adapterInfo], values: a.length, differ, most,
          bpd: [...ea.bitsPerDim].map((v, i) => Math.abs(v - eb.bitsPerDim[i])), roundTrip };
      });
      // Chromium has shipped relaxed SIMD since version 114: a false probe here is a broken probe.
      assert(r.relaxed && /pkg-relaxed\//.test(r.pageBuild), `relaxed SIMD probe: ${r.relaxed} (${r.pageBuild})`);
      assert(/relaxed FMA/.test(r.kernels[0]) && !/relaxed/.test(r.kernels[1]), `kernels: ${r.kernels}`);
      assert(r.most <= 1 && r.differ <= r.values * 0.005, `${r.differ} of ${r.values} bytes differ from the portable build's, by up to ${r.most}`);
      assert(r.bpd.every((d) => d < 1e-5), `bits/dim differ by ${r.bpd}`);
      assert(r.roundTrip === 0, `${r.roundTrip} bytes of decode(encode(x)) are not x's bins on the FMA build`);
      return `${r.kernels[0]}: ${r.differ} of ${r.values} bytes differ (by ${r.most}), bits/dim by ${Math.max(...r.bpd).toExponential(1)}, round trip exact`;
    });

    await check('cross-origin isolated, the page runs its CPU engine on one thread per core and says so', async () => {
      const r = await page.evaluate(() => ({
        backend: document.body.dataset.backend, threads: Number(document.body.dataset.threads), cores: navigator.hardwareConcurrency,
        isolated: crossOriginIsolated, status: document.querySelector('#status')?.textContent || '', why: document.querySelector('#backend-why')?.textContent || '',
      }));
      assert(r.isolated, 'the page is not cross-origin isolated');
      if (r.backend !== 'cpu') return `skipped: the page runs on ${r.backend}`;
      const want = Math.min(r.cores, 8);
      assert(r.threads === want, `${r.threads} threads on ${r.cores} cores (${r.why})`);
      if (want > 1) assert(new RegExp(`${want} threads`).test(r.status) && /WebAssembly threads/.test(r.why), `status "${r.status}", why "${r.why}"`);
      return `${r.status} · ${r.why}`;
    });

    await check('with ?backend=webgpu the page samples on WebGPU too', async () => {
      const p2 = await context.newPage();
      watch(p2, origin, log);
      await p2.goto(`${origin}/?grid=2&backend=webgpu`);
      await p2.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: WAIT });
      assert((await p2.evaluate(() => document.body.dataset.backend)) === 'webgpu', 'backend is not webgpu');
      const st = await canvasStats(p2, '#grid canvas');
      assert(st.variance > 20, `pixel variance ${st.variance.toFixed(1)} on WebGPU`);
      const status = await p2.textContent('#status');
      await p2.close();
      return status;
    });

    // A host that sends no COOP/COEP headers (GitHub Pages): the page isolates itself with
    // its service worker, or, where service workers are blocked, runs single-threaded and
    // says why. (Another origin: its requests are not counted in the privacy check below.)
    const plain = await serve(DIST, { isolate: false });
    const plainOrigin = `http://127.0.0.1:${plain.address().port}`;
    /** Loads the page on the plain server, through a reload if the page makes one. */
    const openPlain = async (/** @type {import('playwright-core').BrowserContext} */ ctx) => {
      const p = await ctx.newPage();
      p.on('pageerror', (e) => log.errors.push(`pageerror (plain host): ${e.message}`));
      await p.goto(`${plainOrigin}/?grid=1&backend=cpu`);
      const until = Date.now() + WAIT;
      for (;;) {
        try {
          await p.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: Math.max(1, until - Date.now()) });
          break;
        } catch (e) {
          if (Date.now() > until || !/context was destroyed|navigat/i.test(String(e))) throw e; // the one reload
        }
      }
      return p.evaluate(() => ({
        isolated: crossOriginIsolated, threads: Number(document.body.dataset.threads), cores: navigator.hardwareConcurrency,
        status: document.querySelector('#status')?.textContent || '', why: document.querySelector('#backend-why')?.textContent || '',
        sw: !!navigator.serviceWorker.controller,
      }));
    };
    try {
      await check('without cross-origin isolation (no headers, no service worker) the CPU engine falls back to one thread per worker and says why', async () => {
        const ctx = await browser.newContext({ serviceWorkers: 'block' });
        try {
          const r = await openPlain(ctx);
          assert(!r.isolated, 'isolated without headers or a service worker');
          assert(r.threads === 1, `${r.threads} threads without isolation`);
          assert(/one thread/.test(r.status) && /not cross-origin isolated/.test(r.why), `status "${r.status}", why "${r.why}"`);
          return `${r.status} · ${r.why}`;
        } finally {
          await ctx.close();
        }
      });

      await check('on a host without the headers, coi-sw.js isolates the page (one reload) and the CPU engine gets its threads', async () => {
        const ctx = await browser.newContext();
        try {
          const r = await openPlain(ctx);
          assert(r.sw && r.isolated, `service worker controls the page: ${r.sw}, isolated: ${r.isolated}`);
          const want = Math.min(r.cores, 8);
          assert(r.threads === want, `${r.threads} threads on ${r.cores} cores (${r.why})`);
          return r.status;
        } finally {
          await ctx.close();
        }
      });
    } finally {
      plain.close();
    }

    await check('the sample grid is not blank', async () => {
      first = await canvasStats(page, '#grid canvas');
      assert(first.count === GRID * GRID, `${first.count} canvases in the grid`);
      assert(first.variance > 20, `pixel variance ${first.variance.toFixed(1)}`);
      assert(new Set(first.perCanvas).size === first.count || first.count === 1, 'identical faces in the grid');
      return `variance ${first.variance.toFixed(0)}`;
    });

    await check('a new seed gives new faces, and the same seed the same faces; the URL follows', async () => {
      let n = await renders(page, '#grid');
      await page.fill('#seed', '42');
      await page.dispatchEvent('#seed', 'change');
      await waitRenders(page, '#grid', n);
      const other = await canvasStats(page, '#grid canvas');
      assert(other.hash !== first.hash, 'the grid did not change with the seed');
      assert(/[?&]seed=42\b/.test(page.url()), `URL ${page.url()} does not carry the seed`);
      n = await renders(page, '#grid');
      await page.fill('#seed', '1');
      await page.dispatchEvent('#seed', 'change');
      await waitRenders(page, '#grid', n);
      const again = await canvasStats(page, '#grid canvas');
      assert(again.hash === first.hash, 'seed 1 drew different faces the second time');
    });

    await check('the temperature slider changes the faces', async () => {
      const n = await renders(page, '#grid');
      await page.$eval('#temperature', (el) => { el.value = '0.2'; el.dispatchEvent(new Event('input')); });
      await waitRenders(page, '#grid', n);
      const cold = await canvasStats(page, '#grid canvas');
      assert(cold.hash !== first.hash, 'temperature 0.2 drew the same faces');
      assert(/[?&]t=0\.20\b/.test(page.url()), 'URL does not carry the temperature');
      // Per-level temperatures (under "Advanced") go into the URL too.
      await page.click('#advanced summary');
      let m = await renders(page, '#grid');
      await page.$eval('#levels input', (el) => { el.value = '1'; el.dispatchEvent(new Event('input')); });
      await waitRenders(page, '#grid', m);
      assert(/[?&]tl=([\d.]+(%2C|,)){3}1\.00\b/.test(page.url()), `URL ${page.url()} does not carry the level temperatures`);
      const levels = await canvasStats(page, '#grid canvas');
      assert(levels.hash !== cold.hash, 'a level temperature did not change the faces');
      m = await renders(page, '#grid');
      await page.$eval('#temperature', (el) => { el.value = '0.7'; el.dispatchEvent(new Event('input')); });
      await waitRenders(page, '#grid', m);
      assert(!/[?&]tl=/.test(page.url()), 'the main temperature did not reset the level temperatures');
    });

    await check('uploading a photo shows its reconstruction, bits/dim and round-trip error', async () => {
      const n = await renders(page, '#you-result');
      await page.setInputFiles('#file', image);
      await waitRenders(page, '#you-result', n);
      const bpd = await page.textContent('#you-bpd');
      const err = await page.textContent('#you-err');
      assert(/^\d+\.\d+ bits\/dim$/.test(bpd.trim()), `bits/dim shows "${bpd}"`);
      const value = parseFloat(bpd);
      assert(value > 0 && value < 16, `bits/dim ${value} is implausible`);
      const recon = await canvasStats(page, '#you-recon');
      assert(recon.variance > 20, 'the reconstruction is blank');
      const maxErr = Number((err.match(/= (\d+)/) || [])[1]);
      // An exact round trip decodes each value to its bin centre (8q + 4 at 5 bits), which
      // is what the input panel shows; f32 rounding can land just below it: 1 level.
      assert(Number.isFinite(maxErr) && maxErr <= 1, `round-trip error "${err}"`);
      // The figure comes with what it means: a verdict and the explanation beside it.
      await page.waitForFunction(() => document.getElementById('bpd-verdict').textContent.trim() !== '', null, { timeout: WAIT });
      assert(await page.isVisible('#bpd-help'), 'the bits/dim explanation is not visible');
      assert(await page.isVisible('#bpd-marker'), 'the bits/dim scale has no marker');
      await page.locator('#you').scrollIntoViewIfNeeded();
      await shot(page, '02-your-face.png');
      return `${bpd}, ${err}`;
    });

    await check('a turned, scaled face pasted into a larger photo is found and aligned (rotated box, the training crop\'s bits/dim)', async () => {
      // The expected figure: this face's own training crop (model.json preprocess: the 64x64
      // box at (12, 26) of the 89x109 file, whole pixels), scored by the engine in the page.
      // Not the plain photo's aligned figure: this model is so sensitive to framing that a
      // whole-pixel shift of 2 px moves bits/dim by 0.11-0.17 (measured natively), and on the
      // small 89x109 file the landmarks put this face about 2 px off CelebA's own framing.
      const plain = image.name.endsWith('.jpg') ? await page.evaluate(async (bytes) => {
        const glow = await import('/pkg/glow_web.js');
        await glow.default();
        const dir = (await (await fetch('/models/index.json')).json())[0];
        const json = await (await fetch(`/${dir}/model.json`)).text();
        const weights = new Uint8Array(await (await fetch(`/${dir}/weights.safetensors`)).arrayBuffer());
        const m = await glow.GlowModel.load(json, weights, null, 'cpu', 1, 1);
        const img = await createImageBitmap(new Blob([new Uint8Array(bytes)]));
        const c = new OffscreenCanvas(64, 64);
        const g = c.getContext('2d');
        g.drawImage(img, 12, 26, 64, 64, 0, 0, 64, 64);
        const b = /** @type {any} */ (await m.bitsPerDim(g.getImageData(0, 0, 64, 64).data, 1));
        return b.binCentre[0];
      }, [...image.buffer]) : parseFloat(await page.textContent('#you-bpd'));
      assert(Number(await page.$eval('#stage', (s) => s.dataset.faces || 0)) >= 1, 'no face found in the CelebA photo');
      const n = await renders(page, '#you-result');
      // The same face, turned 18 degrees and enlarged 2.5x (nearest neighbour) on a 900x700
      // gradient, dropped on the page.
      const turned = await composePhoto(page, image.buffer, { width: 900, height: 700, x: 560, y: 330, degrees: 18, scale: 2.5, smooth: false });
      const dt = await page.evaluateHandle((bytes) => {
        const d = new DataTransfer();
        d.items.add(new File([new Uint8Array(bytes)], 'turned.png', { type: 'image/png' }));
        return d;
      }, [...turned]);
      await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
      await waitRenders(page, '#you-result', n);
      const angle = await page.$eval('#crop', (b) => parseFloat((b.style.transform.match(/rotate\(([-\d.e]+)rad\)/) || [0, 0])[1]) * 180 / Math.PI);
      const bpd = parseFloat(await page.textContent('#you-bpd'));
      await page.locator('#you').scrollIntoViewIfNeeded();
      await shot(page, '02c-aligned.png');
      assert(Math.abs(angle - 18) < 6, `the box is turned ${angle.toFixed(1)} degrees, the face 18`);
      assert(Math.abs(bpd - plain) < 0.05, `bits/dim ${bpd} aligned vs ${plain.toFixed(3)} for the face's training crop`);
      return `box turned ${angle.toFixed(1)} deg; bits/dim ${bpd} vs ${plain.toFixed(3)} for the training crop`;
    });

    await check('a photo without a face says so and keeps the manual box', async () => {
      const n = await renders(page, '#you-result');
      await page.setInputFiles('#file', { name: 'wall.png', mimeType: 'image/png', buffer: png(300, 200, (x, y) => [120 + (x % 7), 130 + (y % 5), 140]) });
      await waitRenders(page, '#you-result', n);
      const note = await page.textContent('#face-note');
      assert(/No face found/.test(note), `the note says "${note}"`);
      assert(await page.isVisible('#crop'), 'no manual box');
      return note.slice(0, 60);
    });

    await check('the crop box moves with the pointer and resizes with the wheel', async () => {
      const before = await page.$eval('#crop', (b) => [b.style.left, b.style.top, b.style.width]);
      let n = await renders(page, '#you-result');
      const box = await page.locator('#crop').boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width / 2 - 15, box.y + box.height / 2 - 10, { steps: 4 });
      await page.mouse.up();
      await waitRenders(page, '#you-result', n);
      const moved = await page.$eval('#crop', (b) => [b.style.left, b.style.top, b.style.width]);
      assert(moved[0] !== before[0] || moved[1] !== before[1], 'dragging did not move the crop box');
      n = await renders(page, '#you-result');
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.wheel(0, 200);
      await waitRenders(page, '#you-result', n);
      const zoomed = await page.$eval('#crop', (b) => b.style.width);
      assert(zoomed !== moved[2], 'the wheel did not resize the crop box');
      return `left ${before[0]} -> ${moved[0]}, width ${moved[2]} -> ${zoomed}`;
    });

    await check('drag and drop, and the camera, feed the encoder too', async () => {
      // A drop of a generated PNG on the section.
      let n = await renders(page, '#you-result');
      const bytes = [...png(40, 48, (x, y) => [x * 6, y * 5, 128])];
      const dt = await page.evaluateHandle((b) => {
        const d = new DataTransfer();
        d.items.add(new File([new Uint8Array(b)], 'dropped.png', { type: 'image/png' }));
        return d;
      }, bytes);
      await page.dispatchEvent('#drop', 'dragover', { dataTransfer: dt });
      await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
      await waitRenders(page, '#you-result', n);
      const size = await page.$eval('#source', (c) => `${c.width}x${c.height}`);
      assert(size === '40x48', `the dropped image did not become the source (source is ${size})`);
      // Chromium's fake camera (--use-fake-device-for-media-stream).
      if (await page.isHidden('#camera')) return 'dropped a PNG; no camera API';
      n = await renders(page, '#you-result');
      await page.click('#camera');
      await page.waitForFunction(() => document.getElementById('video').videoWidth > 0, null, { timeout: 20000 });
      await shot(page, '02b-camera.png');
      await page.click('#snap');
      await waitRenders(page, '#you-result', n);
      const cam = await page.$eval('#source', (c) => `${c.width}x${c.height}`);
      assert(cam !== '40x48', 'the camera frame did not become the source');
      return `dropped 40x48 PNG, camera frame ${cam}`;
    });

    await check('an attribute slider changes the edited face', async () => {
      if (await page.isHidden('#edit')) {
        console.log('     note: the default model has no attribute directions; skipped');
        return 'skipped (no attributes)';
      }
      // Clicking a face brings the editor into view.
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.click('#grid .tile:nth-child(1) canvas');
      await page.waitForFunction(() => {
        const r = document.getElementById('edit').getBoundingClientRect();
        return r.top < window.innerHeight && r.bottom > 0;
      }, null, { timeout: 10000 });
      await page.locator('#edit').scrollIntoViewIfNeeded(); // sections draw when seen
      await page.waitForFunction(() => Number(document.querySelector('#edit-out').dataset.renders || 0) > 0, null, { timeout: WAIT });
      await idle(page);
      const before = await canvasStats(page, '#edit-out');
      const n = await renders(page, '#edit-out');
      await page.locator('#attrs .attr input').first().scrollIntoViewIfNeeded();
      const name = await page.$eval('#attrs .attr input', (el) => { el.value = '2'; el.dispatchEvent(new Event('input')); return el.id; });
      await waitRenders(page, '#edit-out', n);
      const after = await canvasStats(page, '#edit-out');
      assert(after.hash !== before.hash, `moving "${name}" left the picture unchanged`);
      await page.locator('#edit').scrollIntoViewIfNeeded();
      await shot(page, '03-edit.png');
      await page.click('#edit-reset');
      return `moved "${name}"`;
    });

    await check('the blend strip and slider show faces between A and B', async () => {
      await page.locator('#interp').scrollIntoViewIfNeeded();
      await page.waitForFunction(() => Number(document.querySelector('#strip').dataset.renders || 0) > 0, null, { timeout: WAIT });
      const strip = await canvasStats(page, '#strip canvas');
      assert(strip.count === 8 && strip.variance > 20, 'the strip is blank');
      assert(new Set(strip.perCanvas).size > 1, 'every frame of the strip is the same');
      await idle(page);
      const before = await canvasStats(page, '#interp-mix');
      const n = await renders(page, '#interp-mix');
      await page.$eval('#mix', (el) => { el.value = '0'; el.dispatchEvent(new Event('input')); });
      await waitRenders(page, '#interp-mix', n);
      const after = await canvasStats(page, '#interp-mix');
      assert(after.hash !== before.hash, 'the blend slider did not change the picture');
      await page.locator('#interp').scrollIntoViewIfNeeded();
      await shot(page, '04-blend.png');
    });

    await check('a home-made direction from marked faces becomes a working slider', async () => {
      if (GRID * GRID < 2) return 'skipped (grid of one)';
      await page.click('#grid .tile:nth-child(1) .mark.with', { force: true });
      await page.click('#grid .tile:nth-child(2) .mark.without', { force: true });
      assert(await page.isEnabled('#dir-make'), 'the "Make a slider" button stays disabled');
      await page.fill('#dir-name', 'test direction');
      await page.click('#dir-make');
      await page.waitForSelector('#custom-attrs .attr input', { timeout: WAIT });
      await page.click('#grid .tile:nth-child(3) canvas').catch(() => page.click('#grid .tile:nth-child(1) canvas'));
      await page.locator('#edit').scrollIntoViewIfNeeded();
      await page.waitForFunction(() => Number(document.querySelector('#edit-out').dataset.renders || 0) > 0, null, { timeout: WAIT });
      // Let the renders queued by the clicks finish, then move the new slider.
      await idle(page);
      const before = await canvasStats(page, '#edit-out');
      const n = await renders(page, '#edit-out');
      await page.locator('#custom-attrs .attr input').scrollIntoViewIfNeeded();
      await page.$eval('#custom-attrs .attr input', (el) => { el.value = '2'; el.dispatchEvent(new Event('input')); });
      await waitRenders(page, '#edit-out', n);
      const after = await canvasStats(page, '#edit-out');
      assert(after.hash !== before.hash, 'the new slider did not change the face');
      await page.locator('#teach').scrollIntoViewIfNeeded();
      await shot(page, '05-teach.png');
    });

    await check('a second visit loads the weights from Cache Storage, not the network', async () => {
      const mark = log.requests.length;
      await page.reload();
      await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: WAIT });
      const cached = await page.evaluate(() => document.body.dataset.cached);
      const weights = log.requests.slice(mark).filter((r) => /\.safetensors(\?|$)/.test(r.url));
      assert(cached === '1', 'the page says the model was downloaded again');
      assert(weights.length === 0, `weights fetched again: ${weights.map((r) => r.url).join(', ')}`);
    });

    await check('the model picker switches to every other shipped model', async () => {
      const urls = await page.$$eval('#model option', (os) => os.map((o) => o.value));
      if (urls.length < 2) return 'skipped (one model shipped)';
      const notes = [];
      for (const url of [...urls.slice(1), urls[0]]) {
        await page.selectOption('#model', url);
        await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: WAIT });
        const s = await canvasStats(page, '#grid canvas');
        assert(s.variance > 20, `${url}: blank grid`);
        const named = new URL(page.url()).searchParams.get('model');
        assert(named === (url === urls[0] ? null : url), `URL ${page.url()} does not name ${url}`);
        notes.push(url.split('/').pop());
        if (url !== urls[0]) await shot(page, `09-model-${url.split('/').pop()}.png`);
      }
      return notes.join(', ');
    });

    await check('another model loads from a folder on this device and by URL', async () => {
      // A folder (read in the engine's worker; the privacy check below sees no upload).
      await page.click('.other-model summary');
      await page.setInputFiles('#model-folder', path.join(ROOT, 'models/mnist-32x32-small'));
      await page.waitForFunction(() => document.body.dataset.ready === '1' && /your folder/.test(document.querySelector('#model').selectedOptions[0].textContent), null, { timeout: WAIT });
      const folder = await canvasStats(page, '#grid canvas');
      assert(folder.variance > 20, 'the folder model drew a blank grid');
      // Any model directory's URL (here an absolute one on this server).
      await page.fill('#model-url', `${origin}/models/mnist-32x32-small`);
      await page.click('#other-model button[type=submit]');
      await page.waitForFunction((u) => document.body.dataset.ready === '1' && new URL(location.href).searchParams.get('model') === u, `${origin}/models/mnist-32x32-small`, { timeout: WAIT });
      const byUrl = await canvasStats(page, '#grid canvas');
      assert(byUrl.hash === folder.hash, 'the same model by URL drew different faces than from the folder');
      const urls = await page.$$eval('#model option', (os) => os.map((o) => o.value));
      await page.selectOption('#model', urls[0]);
      await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: WAIT });
    });

    await check('on a phone (390x844), after a landscape photo, nothing is wider than the screen', async () => {
      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      const p = await phone.newPage();
      watch(p, origin, log);
      await p.goto(`${origin}/`);
      await p.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: WAIT });
      const n = await renders(p, '#you-result');
      await p.setInputFiles('#file', landscapeImage());
      await waitRenders(p, '#you-result', n);
      await p.locator('#you').scrollIntoViewIfNeeded();
      const r = await p.evaluate(() => {
        const inside = (sel) => {
          const b = document.querySelector(sel).getBoundingClientRect();
          return b.left >= -0.5 && b.right <= window.innerWidth + 0.5 && b.width > 0;
        };
        return {
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          handle: inside('#crop-handle'),
          result: inside('#you-recon') && inside('#you-result'),
          buttons: ['#you-edit', '#you-a', '#you-b', '#file'].filter((s) => !inside(s.startsWith('#file') ? '.file-btn' : s)),
        };
      });
      await p.screenshot({ path: path.join(OUT, '06-phone.png'), fullPage: false });
      await phone.close();
      assert(r.overflow <= 1, `the page is ${r.overflow}px wider than the screen`);
      assert(r.handle, 'the crop handle is off screen');
      assert(r.result, 'the result is off screen');
      assert(r.buttons.length === 0, `buttons off screen: ${r.buttons.join(', ')}`);
    });

    await check('a file that is not an image gets its message inside "Your face"', async () => {
      await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') });
      await page.waitForSelector('#you > .section-error:not([hidden])', { timeout: 10000 });
      const text = await page.textContent('#you > .section-error');
      assert(/image/i.test(text), `the message says "${text}"`);
      return text.slice(0, 70);
    });

    // A face for a fake camera: the CelebA face turned 15 degrees and enlarged 3x on a
    // 640x480 gradient, composed in the page and written as a Y4M video (Chromium plays it as
    // the camera with --use-file-for-fake-video-capture).
    const y4m = path.join(OUT, 'camera-face.y4m');
    if (image.name.endsWith('.jpg')) {
      const rgba = await composePhoto(page, image.buffer, { width: 640, height: 480, x: 360, y: 230, degrees: 15, scale: 3, rgba: true });
      fs.writeFileSync(y4m, toY4m(rgba, 640, 480));
    }

    await context.close();

    await check('the webcam: the box follows the face in the live video, and the photo taken is aligned', async () => {
      if (!fs.existsSync(y4m)) return 'SKIPPED: no CelebA face to film';
      const cam = await chromium.launch({ executablePath: BROWSER, headless: !process.env.GLOW_E2E_HEADED,
        args: [...BASE_ARGS, '--disable-gpu', `--use-file-for-fake-video-capture=${y4m}`] });
      try {
        const ctx = await cam.newContext({ viewport: { width: 1280, height: 900 } });
        const p = await ctx.newPage();
        watch(p, origin, log);
        await p.goto(`${origin}/?grid=1`);
        await p.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: WAIT });
        await p.click('#camera');
        await p.waitForSelector('#camera-box:not([hidden])', { timeout: WAIT });
        const angle = await p.$eval('#camera-box', (b) => Number(b.dataset.angle));
        const note = await p.textContent('#camera-note');
        await p.locator('#you').scrollIntoViewIfNeeded();
        await shot(p, '02d-camera-tracking.png');
        // The video is shown mirrored, so the face turned +15 degrees is turned -15 on screen.
        assert(Math.abs(angle + 15) < 6, `the live box is turned ${angle.toFixed(1)} degrees, the face -15 on screen`);
        // The box's centre is on the face (x mirrored: 640 - 360 = 280 of 640, y about 230 of 480).
        const b = await p.$eval('#camera-box', (e) => { const r = e.getBoundingClientRect(); const v = e.parentElement.getBoundingClientRect(); return [(r.x + r.width / 2 - v.x) / v.width, (r.y + r.height / 2 - v.y) / v.height]; });
        assert(Math.abs(b[0] - 280 / 640) < 0.08 && Math.abs(b[1] - 230 / 480) < 0.12, `the live box's centre is at ${b.map((v) => v.toFixed(2))} of the video`);
        const n = await renders(p, '#you-result');
        await p.click('#snap');
        await waitRenders(p, '#you-result', n);
        const crop = await p.$eval('#crop', (e) => parseFloat((e.style.transform.match(/rotate\(([-\d.e]+)rad\)/) || [0, 0])[1]) * 180 / Math.PI);
        assert(Math.abs(crop + 15) < 6, `the photo's box is turned ${crop.toFixed(1)} degrees`);
        await ctx.close();
        return `live box turned ${angle.toFixed(1)} deg at ${b.map((v) => v.toFixed(2))}; photo box ${crop.toFixed(1)} deg; "${note.slice(0, 40)}"`;
      } finally {
        await cam.close();
      }
    });

    // A browser without WebGPU's flags and without a GPU: what a visitor without WebGPU has.
    // (Hiding navigator.gpu with an init script would not reach the engine's worker.)
    const nogpu = await chromium.launch({ executablePath: BROWSER, headless: !process.env.GLOW_E2E_HEADED, args: [...BASE_ARGS, '--disable-gpu'] });

    await check('without WebGPU the page says so and still samples on the CPU', async () => {
      const ctx = await nogpu.newContext({ viewport: { width: 1280, height: 900 } });
      const p = await ctx.newPage();
      watch(p, origin, log);
      await p.goto(`${origin}/?grid=1`);
      await p.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: WAIT });
      const notice = await p.textContent('#notice');
      assert(await p.isVisible('#notice'), 'no notice about the missing WebGPU');
      assert(/WebGPU/.test(notice) && /CPU/.test(notice), `notice says "${notice}"`);
      assert((await p.evaluate(() => document.body.dataset.backend)) === 'cpu', 'backend is not cpu');
      const s = await canvasStats(p, '#grid canvas');
      assert(s.variance > 20, 'the CPU sample is blank');
      await shot(p, '08-no-webgpu.png');
      await ctx.close();
      return notice.slice(0, 80);
    });

    await check('a forced WebGPU failure shows plain words inside "Samples", with a way out', async () => {
      const ctx = await nogpu.newContext({ viewport: { width: 1280, height: 900 } });
      const p = await ctx.newPage();
      watch(p, origin, log);
      await p.goto(`${origin}/?backend=webgpu&grid=1`);
      await p.waitForSelector('#samples > .section-error:not([hidden])', { timeout: WAIT });
      const text = await p.textContent('#samples > .section-error strong');
      assert(/WebGPU is not available/.test(text), `the message says "${text}"`);
      assert(!/vulkan|noop|wgpu/i.test(text), `raw wgpu text in the message: "${text}"`);
      // Its button switches to the CPU engine, which works.
      await p.click('#samples > .section-error button');
      await p.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: WAIT });
      await shot(p, '08b-webgpu-failed.png');
      await ctx.close();
      return text;
    });
    await nogpu.close();

    for (const [label, query] of [['CPU engine', ''], ['software WebGPU adapter', '&backend=webgpu']]) {
      await check(`no main-thread task over 50 ms during a 16-face sample and ten slider moves (${label})`, async () => {
        const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
        // Long tasks, and the scripts of long animation frames (to name whose a long task
        // was). The interactions below run inside the page and wait there (MutationObserver,
        // no polling): playwright's own polling and script injection run on the same thread
        // and once showed up as a long task of their own on a slow CI machine.
        await ctx.addInitScript(() => {
          window.__longtasks = [];
          window.__frames = [];
          new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longtasks.push({ t: e.startTime, ms: Math.round(e.duration) }); })
            .observe({ type: 'longtask', buffered: true });
          try {
            new PerformanceObserver((l) => {
              for (const e of l.getEntries()) {
                window.__frames.push({ t: e.startTime, end: e.startTime + e.duration, scripts: e.scripts.map((s) => `${s.invoker || s.invokerType} ${s.sourceURL.split('/').pop()} ${Math.round(s.duration)} ms`) });
              }
            }).observe({ type: 'long-animation-frame', buffered: true });
          } catch { /* no long-animation-frame entries in this browser */ }
          /** Resolves when `read()` becomes true, checked on every attribute change under the document. */
          window.__until = (read) => new Promise((resolve) => {
            if (read()) { resolve(); return; }
            const mo = new MutationObserver(() => { if (read()) { mo.disconnect(); resolve(); } });
            mo.observe(document.documentElement, { attributes: true, subtree: true });
          });
          /** Runs `act`, waits until the page is idle, and returns the long tasks meanwhile (with the scripts of the frames they overlap). */
          window.__measure = async (act) => {
            window.__longtasks = [];
            window.__frames = [];
            await act();
            await window.__until(() => (document.documentElement.dataset.glowBusy || '0') === '0');
            await new Promise((r) => setTimeout(r, 200)); // let the observers deliver
            return window.__longtasks.map(({ t, ms }) => {
              const scripts = window.__frames.filter((f) => f.t <= t + ms && f.end >= t).flatMap((f) => f.scripts);
              return `${ms}${scripts.length ? ` (${scripts.join(', ')})` : ''}`;
            });
          };
        });
        const p = await ctx.newPage();
        watch(p, origin, log);
        await p.goto(`${origin}/?grid=4${query}`);
        await p.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: WAIT });
        await idle(p);
        await p.evaluate(() => window.__measure(async () => {})); // compiles this path before the first window
        const sampling = await p.evaluate(() => window.__measure(async () => {
          const grid = document.querySelector('#grid');
          const n = Number(grid.dataset.renders || 0);
          const seed = document.querySelector('#seed');
          seed.value = '99';
          seed.dispatchEvent(new Event('change'));
          await window.__until(() => Number(grid.dataset.renders || 0) > n);
        }));
        await p.locator('#edit').scrollIntoViewIfNeeded();
        await p.waitForFunction(() => Number(document.querySelector('#edit-out').dataset.renders || 0) > 0, null, { timeout: WAIT });
        await idle(p);
        const sliding = await p.evaluate(() => window.__measure(async () => {
          const slider = document.querySelector('#attrs .attr input');
          for (let i = 1; i <= 10; i++) {
            slider.value = (i / 5).toFixed(2);
            slider.dispatchEvent(new Event('input'));
            await new Promise((r) => setTimeout(r, 60));
          }
        }));
        const backend = await p.evaluate(() => document.body.dataset.backend);
        await ctx.close();
        const worst = Math.max(0, ...[...sampling, ...sliding].map((s) => parseInt(s, 10)));
        assert(worst <= 50, `long tasks: sampling [${sampling.join('; ')}] ms, sliders [${sliding.join('; ')}] ms`);
        return `${backend}: longest task ${worst} ms (${sampling.length + sliding.length} over 50 ms)`;
      });
    }
  } finally {
    await browser.close();
    server.close();
  }

  await check('privacy: every request stayed on the page\'s origin and none carried the photo', async () => {
    const needle = image.buffer.subarray(Math.floor(image.buffer.length / 2), Math.floor(image.buffer.length / 2) + 48);
    const foreign = log.requests.filter((r) => !r.url.startsWith(`${origin}/`) && !/^(data|blob):/.test(r.url));
    assert(foreign.length === 0, `requests to other origins: ${foreign.map((r) => r.url).join(', ')}`);
    const sending = log.requests.filter((r) => !['GET', 'HEAD'].includes(r.method) || (r.body && r.body.length));
    assert(sending.length === 0, `requests with a body: ${sending.map((r) => `${r.method} ${r.url}`).join(', ')}`);
    const leaks = log.requests.filter((r) => r.body && r.body.includes(needle));
    assert(leaks.length === 0, 'a request carried the uploaded image');
    return `${log.requests.length} requests, all to ${origin}`;
  });

  await check('no uncaught errors in the pages', async () => {
    assert(log.errors.length === 0, log.errors.slice(0, 5).join(' | '));
  });

  console.log(`screenshots in ${path.relative(ROOT, OUT)}/`);
  console.log(summary());
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

// A hung browser must not hang CI: give up after GLOW_E2E_LIMIT_S seconds (default 600).
setTimeout(() => {
  results.push({ name: 'time limit', ok: false });
  console.log(`FAIL the whole test ran past ${LIMIT_S} s`);
  console.log(summary());
  process.exit(1);
}, LIMIT_S * 1000).unref();

main().catch((e) => {
  console.log(`FAIL ${e && e.message ? e.message.split('\n')[0] : e}`);
  results.push({ name: 'setup', ok: false });
  console.log(summary());
  process.exit(1);
});
