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
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.join(ROOT, 'dist');
const OUT = path.join(ROOT, 'test-results');
const GRID = Number(process.env.GLOW_E2E_GRID || 2);
const WAIT = Number(process.env.GLOW_E2E_TIMEOUT_MS || 150000);
const LIMIT_S = Number(process.env.GLOW_E2E_LIMIT_S || 600);
// A real face from the shared data beside the checkout (read in place, never copied);
// a generated image stands in when it is absent.
const CELEBA = [path.join(ROOT, '../shared/data/celeba_9k_89x109/images/000001.jpg'),
  '/work/shared/data/celeba_9k_89x109/images/000001.jpg'].find((p) => fs.existsSync(p)) || '';
const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium';

// The WebGPU-on-SwiftShader flag set from TOOLCHAIN.md.
const BASE_ARGS = [
  '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
  // A fake camera that needs no permission prompt, for the webcam path.
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
];
const GPU_ARGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader'];

// ---------------------------------------------------------------------------------------
// A tiny static server for dist/.

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.svg': 'image/svg+xml', '.safetensors': 'application/octet-stream',
};

function serve(dir) {
  const server = http.createServer((req, res) => {
    let p;
    try {
      p = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (p.endsWith('/')) p += 'index.html';
    const file = path.join(dir, path.normalize(p));
    if (!file.startsWith(dir)) { res.writeHead(403).end(); return; }
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'); return; }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
        'content-length': st.size,
        'cache-control': 'no-cache',
      });
      if (req.method === 'HEAD') { res.end(); return; }
      fs.createReadStream(file).pipe(res);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// ---------------------------------------------------------------------------------------
// A test image: a CelebA photo read at test time, or a generated PNG.

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function png(width, height, pixel) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0;
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y);
      const o = y * (width * 3 + 1) + 1 + x * 3;
      raw[o] = r; raw[o + 1] = g; raw[o + 2] = b;
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

function testImage() {
  if (fs.existsSync(CELEBA)) return { name: '000001.jpg', mimeType: 'image/jpeg', buffer: fs.readFileSync(CELEBA) };
  // A face-like blob: skin-toned ellipse with two dark eyes on a blue background.
  const buffer = png(120, 140, (x, y) => {
    const dx = (x - 60) / 38, dy = (y - 72) / 50;
    if (dx * dx + dy * dy > 1) return [70, 110, 170];
    if (((x - 46) ** 2 + (y - 62) ** 2 < 20) || ((x - 74) ** 2 + (y - 62) ** 2 < 20)) return [30, 25, 20];
    if (Math.abs(y - 95) < 3 && Math.abs(x - 60) < 14) return [150, 60, 60];
    return [225, 185, 160];
  });
  return { name: 'face.png', mimeType: 'image/png', buffer };
}

// ---------------------------------------------------------------------------------------
// Helpers run in the page.

/** Pixel statistics of the canvases matching a selector (optionally inside a shadow host). */
async function canvasStats(page, selector, host = null) {
  return page.evaluate(([sel, hostSel]) => {
    const scope = hostSel ? document.querySelector(hostSel).shadowRoot : document;
    const canvases = [...scope.querySelectorAll(sel)];
    let n = 0, sum = 0, sum2 = 0, h = 0x811c9dc5;
    const perCanvas = [];
    for (const c of canvases) {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let ch = 0x811c9dc5;
      for (let i = 0; i < d.length; i++) {
        if ((i & 3) !== 3) { n++; sum += d[i]; sum2 += d[i] * d[i]; }
        h = Math.imul(h ^ d[i], 0x01000193);
        ch = Math.imul(ch ^ d[i], 0x01000193);
      }
      perCanvas.push((ch >>> 0).toString(16));
    }
    const mean = n ? sum / n : 0;
    return { count: canvases.length, mean, variance: n ? sum2 / n - mean * mean : 0, hash: (h >>> 0).toString(16), perCanvas };
  }, [selector, host]);
}

const renders = (page, sel) => page.evaluate((s) => Number(document.querySelector(s).dataset.renders || 0), sel);

async function waitRenders(page, sel, above) {
  await page.waitForFunction(([s, n]) => Number(document.querySelector(s).dataset.renders || 0) > n, [sel, above], { timeout: WAIT });
}

/** Waits until no engine call or render is under way (glow-face.js counts them). */
async function idle(page) {
  await page.waitForFunction(() => (document.documentElement.dataset.glowBusy || '0') === '0', null, { timeout: WAIT, polling: 100 });
}

// ---------------------------------------------------------------------------------------
// The runner.

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? ` - ${note}` : ''}`);
    return true;
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${e && e.message ? e.message.split('\n')[0] : e}`);
    return false;
  }
}

function summary() {
  const passed = results.filter((r) => r.ok).length;
  return `${passed} passed, ${results.length - passed} failed`;
}

function assert(cond, msg) { if (!cond) throw new Error(msg); }

/** Watches a page: requests (for the privacy checks), uncaught errors, console errors. */
function watch(page, origin, log) {
  page.on('request', (req) => {
    log.requests.push({ url: req.url(), method: req.method(), body: req.postDataBuffer() });
  });
  page.on('pageerror', (e) => log.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') log.errors.push(`console: ${m.text()}`);
    if (/Content.Security.Policy/i.test(m.text())) log.csp.push(m.text());
  });
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
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
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

    await check('on the CPU engine, several images decode in workers, to the same pixels as on the main thread', async () => {
      const r = await page.evaluate(async () => {
        const glow = await import('/glow-face.js');
        const models = await (await fetch('/models/index.json')).json();
        // Two workers whatever the core count, so this check runs (and can fail) on a
        // one-core machine too.
        const shared = await glow.loadModel(models[0], { backend: 'cpu', workers: 2 });
        if (!shared.pool || !(await shared.pool.ready)) return { workers: 0 };
        const n = 4;
        const eps = shared.sampleEps(n, 7, 0.7);
        const size = shared.width * shared.height * 4;
        const onWorkers = new Uint8Array(n * size);
        const res = await shared.decodeChunked(eps, n, (rgba, first) => onWorkers.set(rgba, first * size));
        const onMain = await shared.decode(eps, n, 1);
        let diff = 0;
        for (let i = 0; i < onMain.length; i++) if (onMain[i] !== onWorkers[i]) diff++;
        const workers = shared.pool.workers.length;
        glow.release(shared);
        return { workers, diff, ms: res.msPerImage };
      });
      assert(r.workers > 0, 'no worker pool on the CPU engine');
      assert(r.diff === 0, `${r.diff} bytes differ between the workers' and the main thread's decode`);
      return `${r.workers} workers, identical bytes, ${r.ms.toFixed(0)} ms per image`;
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
      assert(/[?&]tl=1\.00(%2C|,)/.test(page.url()), `URL ${page.url()} does not carry the level temperatures`);
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
      await page.locator('#you').scrollIntoViewIfNeeded();
      await shot(page, '02-your-face.png');
      return `${bpd}, ${err}`;
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
      await page.locator('#edit').scrollIntoViewIfNeeded(); // sections draw when seen
      await page.waitForFunction(() => Number(document.querySelector('#edit-out').dataset.renders || 0) > 0, null, { timeout: WAIT });
      await idle(page);
      const before = await canvasStats(page, '#edit-out');
      const n = await renders(page, '#edit-out');
      const name = await page.$eval('#attrs .attr input', (el) => { el.value = '2'; el.dispatchEvent(new Event('input')); return el.getAttribute('aria-label'); });
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

    await check('a narrow (phone) viewport lays the page out in one column', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.locator('#interp').scrollIntoViewIfNeeded();
      await page.waitForFunction(() => Number(document.querySelector('#interp-mix').dataset.renders || 0) > 0, null, { timeout: WAIT });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      await shot(page, '06-phone.png');
      await page.setViewportSize({ width: 1280, height: 900 });
      assert(overflow <= 1, `the page is ${overflow}px wider than the screen`);
    });

    await check('embed.html shows two working widgets under a strict CSP', async () => {
      const epage = await context.newPage();
      watch(epage, origin, log);
      const mark = log.requests.length;
      await epage.goto(`${origin}/embed.html`);
      await epage.waitForFunction(() => Number(document.body.dataset.ready || 0) >= 2, null, { timeout: WAIT });
      await epage.waitForFunction(() => [...document.querySelectorAll('glow-face')].every((w) => Number(w.dataset.renders || 0) > 0), null, { timeout: WAIT });
      const ids = await epage.$$eval('glow-face', (ws) => ws.map((w) => w.id));
      assert(ids.length === 2, `${ids.length} widgets`);
      const models = await epage.evaluate(() => new Set([...document.querySelectorAll('glow-face')].map((w) => w.glowModel)).size);
      assert(models === 1, `${models} model instances for two widgets of one model`);
      const weightFetches = log.requests.slice(mark).filter((r) => /weights\.safetensors/.test(r.url)).length;
      assert(weightFetches <= 1, `two widgets fetched the weights ${weightFetches} times`);
      for (const id of ids) {
        const s = await canvasStats(epage, 'canvas', `#${id}`);
        assert(s.variance > 20, `widget ${id} is blank`);
        const radius = await epage.evaluate((i) => getComputedStyle(document.getElementById(i).shadowRoot.querySelector('.card')).borderTopLeftRadius, id);
        assert(radius === '12px', `widget ${id} is unstyled (the CSP blocked its styles?)`);
      }
      // The sample widget's button draws a new face.
      await idle(epage);
      const before = await canvasStats(epage, 'canvas', '#w-sample');
      const n = await epage.evaluate(() => Number(document.getElementById('w-sample').dataset.renders));
      await epage.evaluate(() => document.getElementById('w-sample').shadowRoot.querySelector('button').click());
      await epage.waitForFunction((k) => Number(document.getElementById('w-sample').dataset.renders) > k, n, { timeout: WAIT });
      const after = await canvasStats(epage, 'canvas', '#w-sample');
      assert(after.hash !== before.hash, 'the widget\'s button did not draw a new face');
      // The interpolate widget's slider moves between its two faces.
      await idle(epage);
      const m = await epage.evaluate(() => Number(document.getElementById('w-interp').dataset.renders));
      const mixBefore = await canvasStats(epage, 'canvas', '#w-interp');
      await epage.evaluate(() => {
        const r = document.getElementById('w-interp').shadowRoot.querySelectorAll('input[type=range]');
        const mix = r[r.length - 1];
        mix.value = '1';
        mix.dispatchEvent(new Event('input'));
      });
      await epage.waitForFunction((k) => Number(document.getElementById('w-interp').dataset.renders) > k, m, { timeout: WAIT });
      const mixAfter = await canvasStats(epage, 'canvas', '#w-interp');
      assert(mixAfter.hash !== mixBefore.hash, 'the interpolate slider did not change the face');
      await shot(epage, '07-embed.png');
      // A manipulate-mode widget added by script (the page's CSP allows no inline code).
      const attrs = await epage.evaluate(() => document.getElementById('w-sample').glowModel.attributeNames.length);
      if (attrs) {
        await epage.evaluate(() => {
          const w = document.createElement('glow-face');
          w.id = 'w-manip';
          w.setAttribute('mode', 'manipulate');
          w.setAttribute('seed', '5');
          document.querySelector('article').append(w);
        });
        await epage.waitForFunction(() => Number(document.getElementById('w-manip').dataset.renders || 0) > 0, null, { timeout: WAIT });
        await idle(epage);
        const k = await epage.evaluate(() => Number(document.getElementById('w-manip').dataset.renders));
        const manBefore = await canvasStats(epage, 'canvas', '#w-manip');
        await epage.evaluate(() => {
          const a = document.getElementById('w-manip').shadowRoot.querySelector('input[aria-label="Attribute amount"]');
          a.value = '2';
          a.dispatchEvent(new Event('input'));
        });
        await epage.waitForFunction((j) => Number(document.getElementById('w-manip').dataset.renders) > j, k, { timeout: WAIT });
        const manAfter = await canvasStats(epage, 'canvas', '#w-manip');
        assert(manAfter.hash !== manBefore.hash, 'the manipulate widget\'s slider did not change the face');
        await epage.locator('#w-manip').scrollIntoViewIfNeeded();
        await shot(epage, '07b-embed-manipulate.png');
      }
      assert(log.csp.length === 0, `CSP violations: ${log.csp.join(' | ')}`);
      await epage.close();
    });

    await context.close();

    await check('without WebGPU the page says so and still samples on the CPU', async () => {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      // Hide WebGPU the way a browser without it looks.
      await ctx.addInitScript(() => {
        Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
        try { delete Navigator.prototype.gpu; } catch { /* defined above */ }
      });
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
