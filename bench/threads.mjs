// The CPU engine's threads in the browser: runs www/bench-threads.html in headless Chromium
// against a built dist/ (./build.sh build), served cross-origin isolated (COOP/COEP), and
// prints its JSON: ms per image for the plain build (one thread) and the threaded build
// (pkg-mt/) on each thread count, decode and encode, per batch.
//   node bench/threads.mjs [threads=1,2] [batches=1,8] [runs=5] [rounds=3]
// (DIST=folder serves another build folder; MODEL=models/NAME another model.)
import path from 'node:path';
import { serve, BASE_ARGS } from '../tests/e2e/harness.mjs';

const { chromium } = await import(process.env.PLAYWRIGHT_CORE || 'playwright-core');
const root = path.resolve(process.env.DIST || path.resolve(process.argv[1], '../../dist'));
const server = await serve(root);
const port = server.address().port;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: BASE_ARGS });
try {
  const page = await browser.newPage();
  const q = new URLSearchParams();
  const [threads, batches, runs, rounds] = process.argv.slice(2);
  if (threads) q.set('threads', threads);
  if (batches) q.set('batches', batches);
  if (runs) q.set('runs', runs);
  if (rounds) q.set('rounds', rounds);
  if (process.env.MODEL) q.set('model', process.env.MODEL);
  await page.goto(`http://127.0.0.1:${port}/bench-threads.html?${q}`);
  await page.waitForFunction(() => document.body.dataset.done, null, { timeout: 1_800_000 });
  console.log(await page.textContent('#out'));
} finally {
  await browser.close();
  server.close();
}
