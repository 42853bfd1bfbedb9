// @ts-check
// A service worker that makes the site cross-origin isolated on hosts that cannot send
// headers (GitHub Pages): it fetches each of the site's own requests as usual and hands the
// page the same response with Cross-Origin-Opener-Policy: same-origin and
// Cross-Origin-Embedder-Policy: require-corp added. Isolation gives the page
// SharedArrayBuffer, which the threaded CPU engine (pkg-mt/) needs. Nothing is cached here
// and other origins' requests are left alone (the page makes none). Registered by
// app/isolate.js only when the page is not isolated already (scripts/serve.py, or a host
// that sends the headers, needs none of this).

/** @type {any} */
const sw = self;

sw.addEventListener('install', () => sw.skipWaiting());
// Control the open page at once: it reloads itself to come back through this worker.
sw.addEventListener('activate', (/** @type {any} */ e) => e.waitUntil(sw.clients.claim()));

sw.addEventListener('fetch', (/** @type {any} */ e) => {
  /** @type {Request} */
  const req = e.request;
  if (new URL(req.url).origin !== sw.location.origin) return;
  // Chromium throws on this combination (devtools makes such requests); let it through.
  if (req.cache === 'only-if-cached' && req.mode !== 'same-origin') return;
  e.respondWith(fetch(req).then(isolated));
});

/** The same response with the two headers (redirects and opaque answers as they are). */
function isolated(/** @type {Response} */ res) {
  if (res.status === 0 || res.type === 'opaqueredirect') return res;
  const headers = new Headers(res.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}
