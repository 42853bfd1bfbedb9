// Face detection + alignment on a 12-megapixel photo in headless Chromium, with the wasm
// build in dist/ (./build.sh build first). Prints JSON. Usage: node bench/face.mjs [runs]
//
// The photo: a CelebA face (shared data beside the checkout) turned 10 degrees and enlarged
// 11x onto a 4000x3000 gradient, encoded as a JPEG, as a phone would give it. Timed, each
// the median of `runs` after one warm-up:
// * page: what the demo page does with such a file: decode it (createImageBitmap), draw it
//   at 1024 px on a canvas (MAX_SOURCE in www/app/you.js), read the pixels, find the faces,
//   cut the aligned 64x64 crop;
// * full: the engine on the full 12-megapixel pixels (find + crop), the decode not counted.
// Detection and cropping run on the CPU in wasm (src/face/) whatever the adapter: WebGPU
// is not used, so the software adapter gives the same figure as the CPU engine.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const { chromium } = await import(process.env.PLAYWRIGHT_CORE || 'playwright-core');
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const root = path.join(repo, 'dist');
const runs = Number(process.argv[2] || 5);
const face = [path.join(repo, '../shared/data/celeba_9k_89x109/images/000001.jpg')].find((p) => fs.existsSync(p));
if (!fs.existsSync(path.join(root, 'pkg/glow_web.js')) || !face) {
  console.error('needs dist/ (./build.sh build) and ../shared/data/celeba_9k_89x109');
  process.exit(2);
}
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const server = http.createServer((req, res) => {
  const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (url === '/face-bench') { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<!doctype html><title>face bench</title>'); return; }
  const p = path.join(root, url);
  if (!p.startsWith(root) || !fs.existsSync(p) || fs.statSync(p).isDirectory()) { res.writeHead(404); res.end(); return; }
  res.writeHead(200, { 'content-type': types[path.extname(p)] || 'application/octet-stream' });
  fs.createReadStream(p).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/face-bench`);
  const out = await page.evaluate(async ({ bytes, runs }) => {
    const glow = await import('/pkg/glow_web.js');
    await glow.default();
    const get = async (f) => new Uint8Array(await (await fetch(`/models/face/${f}`)).arrayBuffer());
    const finder = glow.FaceFinder.load(await get('tiny_face_detector.safetensors'), await get('face_landmark_68_tiny.safetensors'));
    const model = await (await fetch('/models/index.json')).json();
    const align = (await (await fetch(`/${model[0]}/model.json`)).json()).align;
    const template = new Float64Array([...align.left_eye, ...align.right_eye, ...align.mouth, 64, 64]);
    // The photo.
    const img = await createImageBitmap(new Blob([new Uint8Array(bytes)]));
    const c = new OffscreenCanvas(4000, 3000);
    const g = c.getContext('2d');
    const grad = g.createLinearGradient(0, 0, 4000, 3000);
    grad.addColorStop(0, '#55708c');
    grad.addColorStop(1, '#bfa98a');
    g.fillStyle = grad;
    g.fillRect(0, 0, 4000, 3000);
    g.translate(2300, 1400);
    g.rotate((10 * Math.PI) / 180);
    g.scale(11, 11);
    g.drawImage(img, -img.width / 2, -img.height / 2);
    const jpeg = await c.convertToBlob({ type: 'image/jpeg', quality: 0.9 });
    const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const now = () => performance.now();
    const page = { decode: [], draw: [], find: [], crop: [], total: [] };
    const full = { read: [], find: [], crop: [], total: [] };
    let found = null;
    for (let r = 0; r <= runs; r++) {
      // The page's path.
      let t0 = now();
      const bmp = await createImageBitmap(jpeg, { imageOrientation: 'from-image' });
      const t1 = now();
      const k = Math.min(1, 1024 / Math.max(bmp.width, bmp.height));
      const sc = new OffscreenCanvas(Math.round(bmp.width * k), Math.round(bmp.height * k));
      const sg = sc.getContext('2d', { willReadFrequently: true });
      sg.imageSmoothingQuality = 'high';
      sg.drawImage(bmp, 0, 0, sc.width, sc.height);
      const small = sg.getImageData(0, 0, sc.width, sc.height).data;
      const t2 = now();
      const faces = finder.find(small, sc.width, sc.height, template);
      const t3 = now();
      glow.alignedCrop(small, sc.width, sc.height, faces[0].transform, 64, 64);
      const t4 = now();
      if (r > 0) {
        page.decode.push(t1 - t0); page.draw.push(t2 - t1); page.find.push(t3 - t2); page.crop.push(t4 - t3); page.total.push(t4 - t0);
      }
      // The full-resolution path.
      const fg = c.getContext('2d');
      t0 = now();
      const px = fg.getImageData(0, 0, 4000, 3000).data;
      const u1 = now();
      const ff = finder.find(px, 4000, 3000, template);
      const u2 = now();
      glow.alignedCrop(px, 4000, 3000, ff[0].transform, 64, 64);
      const u3 = now();
      if (r > 0) { full.read.push(u1 - t0); full.find.push(u2 - u1); full.crop.push(u3 - u2); full.total.push(u3 - t0); }
      found = { page: faces.length, full: ff.length, box_full: [...ff[0].box].map(Math.round) };
      bmp.close();
    }
    const med = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(median(v) * 10) / 10]));
    return {
      photo: `4000x3000 JPEG, ${Math.round(jpeg.size / 1024)} KB`,
      runs,
      page_ms: med(page),
      full_resolution_ms: med(full),
      found,
      hardware_concurrency: navigator.hardwareConcurrency,
      note: 'face detection and the crop run on the CPU in wasm (single thread); WebGPU is not used',
    };
  }, { bytes: [...fs.readFileSync(face)], runs });
  out.chromium = browser.version();
  out.date = new Date().toISOString();
  console.log(JSON.stringify(out, null, 2));
} finally {
  await browser.close();
  server.close();
}
