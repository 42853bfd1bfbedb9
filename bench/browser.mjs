// Runs www/bench.html in headless Chromium (WebGPU on SwiftShader) against a built dist/
// and prints its JSON. Usage: node bench/browser.mjs [models/NAME] [runs] [batches] [backends]
// (DIST=folder serves another build folder; PROFILE=1 adds per-dispatch timestamp-query
// times of the WebGPU backend, summed per level and layer; KERNELS=1 adds the adapter's matmul
// limit and the level-0 conv classes as fractions of it).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const { chromium } = await import(process.env.PLAYWRIGHT_CORE || 'playwright-core');
const root = path.resolve(process.env.DIST || path.resolve(process.argv[1], '../../dist'));
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const server = http.createServer((req, res) => {
  const p = path.join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  if (!p.startsWith(root) || !fs.existsSync(p) || fs.statSync(p).isDirectory()) { res.writeHead(404); res.end(); return; }
  res.writeHead(200, { 'content-type': types[path.extname(p)] || 'application/octet-stream' });
  fs.createReadStream(p).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // REAL_GPU=1 (bench/device.sh): the machine's own GPU instead of SwiftShader.
  args: [...(process.env.REAL_GPU
    ? ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=vulkan', '--ignore-gpu-blocklist']
    : ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader']),
    '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  const q = new URLSearchParams();
  if (process.argv[2]) q.set('model', process.argv[2]);
  if (process.argv[3]) q.set('runs', process.argv[3]);
  if (process.argv[4]) q.set('batches', process.argv[4]);
  if (process.argv[5]) q.set('backends', process.argv[5]);
  if (process.env.PROFILE) q.set('profile', '1');
  if (process.env.KERNELS) q.set('kernels', '1');
  await page.goto(`http://127.0.0.1:${port}/bench.html?${q}`);
  await page.waitForFunction(() => document.body.dataset.done, null, { timeout: 600_000 });
  console.log(await page.textContent('#out'));
} finally {
  await browser.close();
  server.close();
}
