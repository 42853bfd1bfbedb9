// End-to-end test of the <glow-face> widget (www/glow-face.js) on embed.html and on a small
// page of its own, in headless Chromium (playwright-core; WebGPU on SwiftShader, where the
// engine picks its CPU engine on the software adapter).
//
//   ./build.sh build && node tests/e2e/widget.test.mjs
//
// Checks lazy loading (nothing fetched, no worker, until the widget is scrolled near),
// progress events, the shared model, every attribute changed after load, themes, toBlob,
// the accessible label and live region, plain-words errors, the strict CSP, and that every
// request stays on the origin. Screenshots go to test-results/widget-*.png. Ends with
// "N passed, M failed" (exit status 1 on any failure).

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import {
  ROOT, DIST, OUT, WAIT, LIMIT_S, BROWSER, BASE_ARGS, GPU_ARGS, serve, canvasStats, check, summary,
  assert, watch, results, widgetIdle,
} from './harness.mjs';

const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'";

// A page of its own: a widget with a poster and a plain dark one, far below the fold (a 3000px canvas above
// it: the CSP allows no inline style).
const LAZY_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<title>lazy widget</title><script type="module" src="/glow-face.js"></script></head>
<body><h1>Far below</h1><div><canvas id="spacer" width="10" height="3000"></canvas></div>
<glow-face id="lazy" poster="/favicon.svg" mode="sample" seed="3" temperature="0.7"></glow-face>
<glow-face id="plain" theme="dark" mode="interpolate"></glow-face></body></html>`;

/** Records every glow-* event (target id, type, detail) in window.glowEvents. */
function recordEvents() {
  /** @type {any} */ (window).glowEvents = [];
  for (const type of ['glow-progress', 'glow-ready', 'glow-error']) {
    document.addEventListener(type, (e) => {
      const d = /** @type {CustomEvent} */ (e).detail || {};
      /** @type {any} */ (window).glowEvents.push({ type, id: /** @type {HTMLElement} */ (e.target).id, detail: JSON.parse(JSON.stringify(d)) });
    }, true);
  }
}

/** The relative luminance (0..1) of a CSS rgb() colour. */
function luminance(css) {
  const [r, g, b] = (css.match(/[\d.]+/g) || []).map(Number).map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

async function main() {
  assert(fs.existsSync(path.join(DIST, 'embed.html')), 'dist/embed.html is missing: run ./build.sh build first');
  assert(fs.existsSync(path.join(DIST, 'glow', 'client.js')), 'dist/glow/client.js is missing: run ./build.sh build first');
  fs.mkdirSync(OUT, { recursive: true });
  const server = await serve(DIST);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const log = { requests: [], errors: [], csp: [], workers: [] };
  const shot = (page, name, fullPage = true) => page.screenshot({ path: path.join(OUT, name), fullPage });
  console.log(`serving ${DIST} at ${origin}`);
  const t0 = Date.now();
  const deadline = setTimeout(() => {
    console.log(`the whole run took over ${LIMIT_S} s; stopping`);
    process.exit(1);
  }, LIMIT_S * 1000);

  const browser = await chromium.launch({ executablePath: BROWSER, headless: !process.env.GLOW_E2E_HEADED, args: [...BASE_ARGS, ...GPU_ARGS] });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, colorScheme: 'light' });
    await context.addInitScript(recordEvents);
    // Requests made by the engine's workers are reported on the context.
    // Every request of the context's pages and their workers.
    context.on('request', (req) => log.requests.push({ url: req.url(), method: req.method() }));
    const pageLog = { requests: [], errors: log.errors, csp: log.csp };
    await context.route(`${origin}/__lazy.html`, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: LAZY_PAGE }));
    const events = (page, id) => page.evaluate((i) => /** @type {any} */ (window).glowEvents.filter((e) => !i || e.id === i), id);

    // --- The widget of its own page: lazy loading and progress --------------------------
    const lazy = await context.newPage();
    watch(lazy, origin, pageLog);
    const lazyWorkers = [];
    lazy.on('worker', (w) => { lazyWorkers.push(w.url()); log.workers.push(w.url()); });
    let lazyReady = false;
    await check('a widget below the fold fetches nothing and starts no worker until it is scrolled near, then loads and draws', async () => {
      const mark = log.requests.length;
      await lazy.goto(`${origin}/__lazy.html`);
      await lazy.evaluate(() => customElements.whenDefined('glow-face'));
      await lazy.waitForTimeout(1500);
      const before = await lazy.evaluate(() => {
        const w = /** @type {any} */ (document.getElementById('lazy'));
        const img = w.shadowRoot.querySelector('[part="poster-image"]');
        const poster = w.shadowRoot.querySelector('[part="poster"]');
        return { state: w.dataset.state, renders: w.dataset.renders || '0', top: w.getBoundingClientRect().top, model: w.glowModel,
          posterShown: !poster.hidden && poster.getBoundingClientRect().height > 0, posterSrc: img.hidden ? '' : img.src, posterLoaded: img.complete && img.naturalWidth > 0,
          text: poster.textContent };
      });
      const early = log.requests.slice(mark).map((r) => r.url).filter((u) => /\/models\/|\/pkg\/|\/glow\/engine-worker/.test(u));
      assert(before.top > 900 + 200, `the widget is not below the fold (top ${before.top})`);
      assert(before.state === 'waiting', `state "${before.state}" before it was scrolled near`);
      assert(early.length === 0, `fetched before it was visible: ${early.join(', ')}`);
      assert(lazyWorkers.length === 0, `started ${lazyWorkers.length} workers before it was visible`);
      assert(before.model === null && before.renders === '0', 'it has a model or a picture before it was visible');
      assert(before.posterShown && /favicon\.svg$/.test(before.posterSrc) && before.posterLoaded, `the poster is not shown (${JSON.stringify(before)})`);
      assert(/loads when visible/i.test(before.text), `poster text "${before.text}"`);
      const ev = await events(lazy, 'lazy');
      assert(ev.length === 0, `events before it was visible: ${ev.map((e) => e.type).join(', ')}`);
      // A picture of the poster, without scrolling to it (it stays unloaded).
      await lazy.screenshot({ path: path.join(OUT, 'widget-poster.png'), fullPage: true, clip: { x: 0, y: before.top - 10, width: 560, height: 400 } });
      const t = Date.now();
      await lazy.locator('#lazy').scrollIntoViewIfNeeded();
      await lazy.waitForFunction(() => Number(document.getElementById('lazy').dataset.renders || 0) > 0, null, { timeout: WAIT });
      await widgetIdle(lazy, '#lazy');
      const urls = log.requests.slice(mark).map((r) => r.url);
      assert(urls.some((u) => /model\.json$/.test(u)), 'no model.json request after it became visible');
      assert(urls.some((u) => /weights\.safetensors/.test(u)), 'no weights request after it became visible');
      assert(lazyWorkers.length > 0, 'no engine worker after it became visible');
      const s = await canvasStats(lazy, 'canvas', '#lazy');
      assert(s.variance > 20, 'the lazily loaded widget is blank');
      lazyReady = true;
      await lazy.locator('#lazy').screenshot({ path: path.join(OUT, 'widget-lazy.png') });
      return `waited as "${before.state}" (top ${Math.round(before.top)} px); then ${lazyWorkers.length} workers, drawn ${((Date.now() - t) / 1000).toFixed(1)} s after the scroll`;
    });

    await check('glow-progress events carry a fraction in [0,1] ending at 1; glow-ready carries the backend and why', async () => {
      assert(lazyReady, 'the widget did not load');
      const ev = await events(lazy, 'lazy');
      const progress = ev.filter((e) => e.type === 'glow-progress').map((e) => e.detail);
      assert(progress.length >= 2, `${progress.length} progress events`);
      for (const p of progress) {
        assert(typeof p.fraction === 'number' && p.fraction >= 0 && p.fraction <= 1, `fraction ${p.fraction}`);
        assert(Number.isFinite(p.loaded) && Number.isFinite(p.total), `loaded ${p.loaded}, total ${p.total}`);
      }
      const last = progress[progress.length - 1];
      assert(last.fraction === 1, `the last fraction is ${last.fraction}`);
      const ready = ev.filter((e) => e.type === 'glow-ready');
      assert(ready.length === 1, `${ready.length} glow-ready events`);
      const d = ready[0].detail;
      assert(d.width > 0 && d.height > 0 && /^(webgpu|cpu)$/.test(d.backend) && d.adapter && d.reason, `glow-ready detail ${JSON.stringify(d)}`);
      const lastIndex = ev.findIndex((e) => e.type === 'glow-ready');
      assert(ev.slice(lastIndex).every((e) => e.type !== 'glow-progress'), 'progress after glow-ready');
      return `${progress.length} events, ${(last.total / 1e6).toFixed(1)} MB; ready on ${d.backend}: ${d.reason}`;
    });
    await lazy.close();

    // --- embed.html -----------------------------------------------------------------------
    const page = await context.newPage();
    watch(page, origin, pageLog);
    const pageWorkers = [];
    page.on('worker', (w) => { pageWorkers.push(w.url()); log.workers.push(w.url()); });
    let embedOk = false;
    embedOk = await check('embed.html: two widgets in view load and draw under a strict CSP; the third waits below the fold', async () => {
      const mark = log.requests.length;
      await page.goto(`${origin}/embed.html`);
      await page.waitForFunction(() => Number(document.body.dataset.ready || 0) >= 2, null, { timeout: WAIT });
      await page.waitForFunction(() => ['w-sample', 'w-interp'].every((id) => Number(document.getElementById(id).dataset.renders || 0) > 0), null, { timeout: WAIT });
      const ids = await page.$$eval('glow-face', (ws) => ws.map((w) => w.id));
      assert(ids.length === 3, `${ids.length} widgets: ${ids.join(', ')}`);
      const shared = await page.evaluate(() => {
        const [a, b] = ['w-sample', 'w-interp'].map((id) => /** @type {any} */ (document.getElementById(id)).glowModel);
        return !!a && a === b;
      });
      assert(shared, 'the two widgets of one model do not share one client');
      const weightFetches = log.requests.slice(mark).filter((r) => /weights\.safetensors/.test(r.url)).length;
      assert(weightFetches <= 1, `two widgets fetched the weights ${weightFetches} times`);
      for (const id of ['w-sample', 'w-interp']) {
        const s = await canvasStats(page, 'canvas', `#${id}`);
        assert(s.variance > 20, `widget ${id} is blank`);
        const radius = await page.evaluate((i) => getComputedStyle(document.getElementById(i).shadowRoot.querySelector('.card')).borderTopLeftRadius, id);
        assert(radius === '12px', `widget ${id} is unstyled (the CSP blocked its styles?)`);
      }
      const late = await page.evaluate(() => {
        const w = document.getElementById('w-lazy');
        return { state: w.dataset.state, renders: w.dataset.renders || '0', top: w.getBoundingClientRect().top };
      });
      assert(late.top > 900 + 200, `the third widget is not far below the fold (top ${late.top})`);
      assert(late.state === 'waiting' && late.renders === '0', `the third widget did not wait: ${JSON.stringify(late)}`);
      // The sample widget's button draws a new face.
      await widgetIdle(page, '#w-sample');
      const before = await canvasStats(page, 'canvas', '#w-sample');
      await page.evaluate(() => document.getElementById('w-sample').shadowRoot.querySelector('[part="controls"] button').click());
      await widgetIdle(page, '#w-sample');
      const after = await canvasStats(page, 'canvas', '#w-sample');
      assert(after.hash !== before.hash, 'the widget\'s button did not draw a new face');
      // The interpolate widget's slider moves between its two faces.
      await widgetIdle(page, '#w-interp');
      const mixBefore = await canvasStats(page, 'canvas', '#w-interp');
      await page.evaluate(() => {
        const r = document.getElementById('w-interp').shadowRoot.querySelector('input[aria-label="Position between the two faces"]');
        r.value = '1';
        r.dispatchEvent(new Event('input'));
      });
      await widgetIdle(page, '#w-interp');
      const mixAfter = await canvasStats(page, 'canvas', '#w-interp');
      assert(mixAfter.hash !== mixBefore.hash, 'the interpolate slider did not change the face');
      assert(await page.evaluate(() => document.getElementById('w-interp').getAttribute('mix')) === '1', 'the slider is not reflected in the mix attribute');
      return `third widget waiting at ${Math.round(late.top)} px; ${pageWorkers.length} workers`;
    });

    await check('embed.html: the third widget loads when scrolled to, sharing the model (no new download, no new worker)', async () => {
      assert(embedOk, 'embed.html did not load');
      const mark = log.requests.length;
      const workers = pageWorkers.length;
      await page.locator('#w-lazy').scrollIntoViewIfNeeded();
      await page.waitForFunction(() => Number(document.getElementById('w-lazy').dataset.renders || 0) > 0, null, { timeout: WAIT });
      await widgetIdle(page, '#w-lazy');
      const same = await page.evaluate(() => /** @type {any} */ (document.getElementById('w-lazy')).glowModel === /** @type {any} */ (document.getElementById('w-sample')).glowModel);
      assert(same, 'the third widget has a client of its own');
      const fetched = log.requests.slice(mark).filter((r) => /\/models\//.test(r.url)).map((r) => r.url);
      assert(fetched.length === 0, `it fetched ${fetched.join(', ')}`);
      assert(pageWorkers.length === workers, `it started ${pageWorkers.length - workers} workers`);
      const s = await canvasStats(page, 'canvas', '#w-lazy');
      assert(s.variance > 20, 'the third widget is blank');
      const accent = await page.evaluate(() => getComputedStyle(document.getElementById('w-lazy').shadowRoot.querySelector('button.act')).borderTopLeftRadius);
      assert(accent === '999px', `::part(button) from the page did not apply (radius ${accent})`);
    });

    await check('every attribute changed after load changes the picture (attribute, amount, temperature, seed, seed2, mode, mix)', async () => {
      assert(embedOk, 'embed.html did not load');
      const sel = '#w-lazy';
      const names = await page.evaluate(() => /** @type {any} */ (document.getElementById('w-lazy')).glowModel.info.attributeNames);
      const other = names.find((n) => n !== 'Smiling' && /^[a-z]/i.test(n));
      const steps = [
        ['attribute', other, `${other.replace(/_/g, ' ')} +1.50`],
        ['amount', '-1.5', '-1.50'],
        ['temperature', '0.4', 'temperature 0.40'],
        ['seed', '9', 'seed 9'],
        ['mode', 'interpolate', 'Blend of two faces'],
        ['seed2', '21', 'seeds 9 and 21'],
        ['mix', '0.2', '20% of the way'],
        ['mode', 'sample', 'Face sampled by Glow, seed 9, temperature 0.40'],
      ];
      const done = [];
      for (const [name, value, label] of steps) {
        await widgetIdle(page, sel);
        const before = await canvasStats(page, 'canvas', sel);
        const n = await page.evaluate((s) => Number(document.querySelector(s).dataset.renders), sel);
        await page.evaluate(([s, k, v]) => document.querySelector(s).setAttribute(k, v), [sel, name, value]);
        await widgetIdle(page, sel);
        const after = await canvasStats(page, 'canvas', sel);
        const st = await page.evaluate((s) => {
          const w = document.querySelector(s);
          return { renders: Number(w.dataset.renders), label: w.shadowRoot.querySelector('canvas').getAttribute('aria-label'), state: w.dataset.state,
            select: w.shadowRoot.querySelector('select').value };
        }, sel);
        assert(st.state === 'ready', `${name}=${value}: state ${st.state}`);
        assert(st.renders > n && after.hash !== before.hash, `${name}=${value} did not change the picture`);
        assert(st.label.toLowerCase().includes(label.toLowerCase()), `${name}=${value}: aria-label "${st.label}" lacks "${label}"`);
        if (name === 'attribute') assert(st.select === other, `the attribute menu shows ${st.select}, not ${other}`);
        done.push(name);
      }
      return done.join(', ');
    });

    await check('model and backend changed after load: the widget loads again (a bad model fails in plain words, a good one recovers)', async () => {
      assert(embedOk, 'embed.html did not load');
      await page.evaluate(() => {
        const w = document.createElement('glow-face');
        w.id = 'w-bad';
        w.setAttribute('loading', 'eager');
        w.setAttribute('model', 'models/no-such-model');
        document.querySelector('article').append(w);
      });
      await page.waitForFunction(() => document.getElementById('w-bad').dataset.state === 'error', null, { timeout: WAIT });
      const err = await page.evaluate(() => {
        const w = document.getElementById('w-bad');
        const r = w.shadowRoot;
        return { message: r.querySelector('[part="message"]').textContent, live: r.querySelector('[role="status"]').textContent,
          shown: !r.querySelector('[part="overlay"]').hidden };
      });
      const ev = (await events(page, 'w-bad')).filter((e) => e.type === 'glow-error');
      assert(err.shown && /could not be downloaded/i.test(err.message), `error shown: ${JSON.stringify(err)}`);
      assert(/could not be downloaded/i.test(err.live), `live region: "${err.live}"`);
      assert(ev.length === 1 && ev[0].detail.fatal === true && ev[0].detail.name === 'DownloadFailed' && ev[0].detail.title, `glow-error ${JSON.stringify(ev)}`);
      const good = await page.evaluate(() => /** @type {any} */ (document.getElementById('w-sample')).glowModel.info.url);
      await page.evaluate((u) => document.getElementById('w-bad').setAttribute('model', u), good);
      await page.waitForFunction(() => Number(document.getElementById('w-bad').dataset.renders || 0) > 0, null, { timeout: WAIT });
      await widgetIdle(page, '#w-bad');
      // backend="cpu": a client of its own (the key includes the backend), then back to auto.
      await page.evaluate(() => document.getElementById('w-bad').setAttribute('backend', 'cpu'));
      await page.waitForFunction(() => {
        const w = /** @type {any} */ (document.getElementById('w-bad'));
        return w.dataset.state === 'ready' && w.dataset.busy === '0' && w.glowModel && w.glowModel !== /** @type {any} */ (document.getElementById('w-sample')).glowModel;
      }, null, { timeout: WAIT });
      await page.waitForFunction(() => Number(document.getElementById('w-bad').dataset.renders) >= 2, null, { timeout: WAIT });
      const cpu = await page.evaluate(() => /** @type {any} */ (document.getElementById('w-bad')).glowModel.info.backend);
      assert(cpu === 'cpu', `backend="cpu" runs on ${cpu}`);
      await page.evaluate(() => document.getElementById('w-bad').remove());
      return `"${err.message}"`;
    });

    await check('the footer says "CPU" with the engine\'s reason where the engine chose the CPU; "no WebGPU" only without WebGPU', async () => {
      assert(embedOk, 'embed.html did not load');
      const f = await page.evaluate(() => {
        const w = /** @type {any} */ (document.getElementById('w-sample'));
        const b = w.shadowRoot.querySelector('[part="backend"]');
        return { text: b.textContent, title: b.title, info: { backend: w.glowModel.info.backend, reason: w.glowModel.info.reason, problem: w.glowModel.info.webgpuProblem } };
      });
      const notAvailable = (await events(page, 'w-sample')).filter((e) => e.type === 'glow-error' && e.detail.name === 'WebGPUNotAvailable');
      if (f.info.backend === 'webgpu') assert(f.text === 'WebGPU', `footer "${f.text}" on WebGPU`);
      else if (f.info.problem) assert(/no WebGPU/.test(f.text) && notAvailable.length === 1 && notAvailable[0].detail.fatal === false, `footer "${f.text}" without WebGPU`);
      else {
        assert(f.text === 'CPU', `footer "${f.text}" where the engine chose the CPU`);
        assert(f.title.includes(f.info.reason), `tooltip "${f.title}" lacks the reason "${f.info.reason}"`);
        assert(notAvailable.length === 0, 'a WebGPUNotAvailable error although WebGPU exists');
      }
      return `"${f.text}" (${f.title})`;
    });

    await check('toBlob() resolves to a PNG of the current picture', async () => {
      assert(embedOk, 'embed.html did not load');
      const r = await page.evaluate(async () => {
        const w = /** @type {any} */ (document.getElementById('w-sample'));
        const blob = await w.toBlob();
        const head = [...new Uint8Array(await blob.slice(0, 8).arrayBuffer())];
        const bmp = await createImageBitmap(blob);
        const c = w.shadowRoot.querySelector('canvas');
        return { type: blob.type, size: blob.size, head, w: bmp.width, h: bmp.height, cw: c.width, ch: c.height };
      });
      assert(r.type === 'image/png', `type ${r.type}`);
      assert(r.head.join(',') === '137,80,78,71,13,10,26,10', `not a PNG signature: ${r.head}`);
      assert(r.w === r.cw && r.h === r.ch, `${r.w}x${r.h}, the canvas is ${r.cw}x${r.ch}`);
      return `${r.w}x${r.h}, ${r.size} bytes`;
    });

    await check('the picture has a label describing it; a polite live region says the state', async () => {
      assert(embedOk, 'embed.html did not load');
      const a = await page.evaluate(() => {
        const w = /** @type {any} */ (document.getElementById('w-sample'));
        const r = w.shadowRoot;
        const live = r.querySelector('[role="status"]');
        return { label: r.querySelector('canvas').getAttribute('aria-label'), role: r.querySelector('canvas').getAttribute('role'),
          seed: w.seed, live: live.textContent, polite: live.getAttribute('aria-live') };
      });
      assert(a.role === 'img', `canvas role ${a.role}`);
      assert(new RegExp(`^Face sampled by Glow, seed ${a.seed}, temperature 0\\.70$`).test(a.label), `label "${a.label}"`);
      assert(a.polite === 'polite' && /^Ready: Face sampled by Glow/.test(a.live), `live region "${a.live}" (${a.polite})`);
      return a.label;
    });

    await check('themes: the visitor\'s colour scheme by default; theme="dark" / "light" override it, also when set after load', async () => {
      assert(embedOk, 'embed.html did not load');
      const bg = () => page.evaluate(() => getComputedStyle(document.getElementById('w-sample').shadowRoot.querySelector('.card')).backgroundColor);
      const setTheme = (t) => page.evaluate((v) => {
        const w = document.getElementById('w-sample');
        if (v) w.setAttribute('theme', v); else w.removeAttribute('theme');
      }, t);
      await page.evaluate(() => window.scrollTo(0, 0));
      const seen = {};
      await page.emulateMedia({ colorScheme: 'light' });
      seen.light = luminance(await bg());
      await shot(page, 'widget-embed-light.png');
      await setTheme('dark');
      seen.lightPageDarkTheme = luminance(await bg());
      await page.emulateMedia({ colorScheme: 'dark' });
      await setTheme('');
      seen.dark = luminance(await bg());
      await setTheme('light');
      seen.darkPageLightTheme = luminance(await bg());
      await setTheme('');
      await shot(page, 'widget-embed-dark.png');
      await page.emulateMedia({ colorScheme: 'light' });
      assert(seen.light > 0.8 && seen.darkPageLightTheme > 0.8, `light cards are not light: ${JSON.stringify(seen)}`);
      assert(seen.dark < 0.05 && seen.lightPageDarkTheme < 0.05, `dark cards are not dark: ${JSON.stringify(seen)}`);
      return Object.entries(seen).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
    });

    await check('no CSP violations, no uncaught errors, every request on the origin', async () => {
      assert(log.csp.length === 0, `CSP violations: ${log.csp.join(' | ')}`);
      // The one expected failure: the missing model's 404.
      const errors = log.errors.filter((e) => !/404|no-such-model/.test(e));
      assert(errors.length === 0, `errors: ${errors.slice(0, 5).join(' | ')}`);
      const off = log.requests.filter((r) => !r.url.startsWith(`${origin}/`) && !/^(data|blob):/.test(r.url));
      assert(off.length === 0, `requests off the origin: ${off.slice(0, 5).map((r) => r.url).join(', ')}`);
      return `${log.requests.length} requests, ${log.workers.length} workers`;
    });
    await page.close();
    await context.close();
  } finally {
    await browser.close();
    server.close();
    clearTimeout(deadline);
  }
  console.log(`screenshots in ${path.relative(ROOT, OUT)}/; ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  console.log(summary());
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

main().catch((e) => {
  console.log(`FAIL ${e && e.message ? e.message : e}`);
  console.log(summary());
  process.exit(1);
});
