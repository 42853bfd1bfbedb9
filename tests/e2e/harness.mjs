// Shared pieces of the end-to-end tests (page.test.mjs, widget.test.mjs): a static server
// for dist/, the Chromium flags, a test image, pixel statistics run in the page, and a
// tiny check runner that prints 'ok' / 'FAIL' lines and a summary.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST = path.join(ROOT, 'dist');
export const OUT = path.join(ROOT, 'test-results');
export const GRID = Number(process.env.GLOW_E2E_GRID || 2);
export const WAIT = Number(process.env.GLOW_E2E_TIMEOUT_MS || 150000);
export const LIMIT_S = Number(process.env.GLOW_E2E_LIMIT_S || 600);
// A real face from the shared data beside the checkout (read in place, never copied);
// a generated image stands in when it is absent.
export const CELEBA = [path.join(ROOT, '../shared/data/celeba_9k_89x109/images/000001.jpg'),
  '/work/shared/data/celeba_9k_89x109/images/000001.jpg'].find((p) => fs.existsSync(p)) || '';
export const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium';

// The WebGPU-on-SwiftShader flag set from TOOLCHAIN.md.
export const BASE_ARGS = [
  '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
  // A fake camera that needs no permission prompt, for the webcam path.
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
];
export const GPU_ARGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader'];

// ---------------------------------------------------------------------------------------
// A tiny static server for dist/ (cross-origin isolated unless asked otherwise).

export const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.svg': 'image/svg+xml', '.safetensors': 'application/octet-stream',
};

// Sent with every response unless `serve(dir, {isolate: false})`: they make the page
// cross-origin isolated (SharedArrayBuffer, so the threaded CPU engine), as
// scripts/serve.py does for ./build.sh serve.
export const ISOLATION = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

export function serve(dir, { isolate = true } = {}) {
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
        ...(isolate ? ISOLATION : {}),
      });
      if (req.method === 'HEAD') { res.end(); return; }
      fs.createReadStream(file).pipe(res);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// ---------------------------------------------------------------------------------------
// A photo made in the page: an image (its file's bytes) turned by `degrees` about its
// centre, enlarged by `scale`, placed with its centre at (x, y) on a width x height
// gradient. `smooth: false` samples nearest-neighbour (adds no blur of its own: a smoothed
// enlargement alone lowers bits/dim by about 0.12). Returns the PNG file's bytes, or with
// `rgba: true` the raw RGBA pixels.

export async function composePhoto(page, bytes, { width, height, x, y, degrees, scale, smooth = true, rgba = false }) {
  const b64 = await page.evaluate(async ({ bytes, width, height, x, y, degrees, scale, smooth, rgba }) => {
    const img = await createImageBitmap(new Blob([new Uint8Array(bytes)]));
    const c = new OffscreenCanvas(width, height);
    const g = c.getContext('2d');
    const grad = g.createLinearGradient(0, 0, width, height);
    grad.addColorStop(0, '#6a7f99');
    grad.addColorStop(1, '#c9b48f');
    g.fillStyle = grad;
    g.fillRect(0, 0, width, height);
    g.translate(x, y);
    g.rotate((degrees * Math.PI) / 180);
    g.scale(scale, scale);
    g.imageSmoothingEnabled = smooth;
    g.drawImage(img, -img.width / 2, -img.height / 2);
    const data = rgba ? g.getImageData(0, 0, width, height).data
      : new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let s = '';
    for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode(...data.subarray(i, i + 0x8000));
    return btoa(s);
  }, { bytes: [...bytes], width, height, x, y, degrees, scale, smooth, rgba });
  return Buffer.from(b64, 'base64');
}

// ---------------------------------------------------------------------------------------
// A test image: a CelebA photo read at test time, or a generated PNG.

export function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

export function png(width, height, pixel) {
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

export function testImage() {
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
export async function canvasStats(page, selector, host = null) {
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

export const renders = (page, sel) => page.evaluate((s) => Number(document.querySelector(s).dataset.renders || 0), sel);

export async function waitRenders(page, sel, above) {
  try {
    await page.waitForFunction(([s, n]) => Number(document.querySelector(s).dataset.renders || 0) > n, [sel, above], { timeout: WAIT });
  } catch (e) {
    throw new Error(`${sel} was not drawn again (still ${await renders(page, sel).catch(() => '?')} renders, ${above} before): ${e.message}`);
  }
}

/** Waits until no engine call or render is under way (glow-face.js counts them). */
export async function idle(page) {
  try {
    await page.waitForFunction(() => (document.documentElement.dataset.glowBusy || '0') === '0', null, { timeout: WAIT, polling: 100 });
  } catch (e) {
    const busy = await page.evaluate(() => document.documentElement.dataset.glowBusy).catch(() => '?');
    throw new Error(`the page never became idle (${busy} engine calls still under way): ${e.message}`);
  }
}

// ---------------------------------------------------------------------------------------
// The runner.

export const results = [];
export async function check(name, fn) {
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

export function summary() {
  const passed = results.filter((r) => r.ok).length;
  return `${passed} passed, ${results.length - passed} failed`;
}

export function assert(cond, msg) { if (!cond) throw new Error(msg); }

/** Watches a page: requests (for the privacy checks), uncaught errors, console errors. */
export function watch(page, origin, log) {
  page.on('request', (req) => {
    log.requests.push({ url: req.url(), method: req.method(), body: req.postDataBuffer() });
  });
  page.on('pageerror', (e) => log.errors.push(`pageerror: ${e.message} (${(e.stack || '').split('\n')[1] || ''})`));
  page.on('console', (m) => {
    if (m.type() === 'error') log.errors.push(`console: ${m.text()}`);
    if (/Content.Security.Policy/i.test(m.text())) log.csp.push(m.text());
  });
}


/** Waits until a <glow-face> has settled: loaded (or failed) and no decode under way. */
export async function widgetIdle(page, sel) {
  await page.waitForFunction((s) => {
    const w = document.querySelector(s);
    return !!w && (w.dataset.state === 'ready' || w.dataset.state === 'error') && w.dataset.busy === '0';
  }, sel, { timeout: WAIT, polling: 100 });
}
