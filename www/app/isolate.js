// @ts-check
// Cross-origin isolation for the page (SharedArrayBuffer, so the CPU engine's threads): from
// the server's COOP/COEP headers (scripts/serve.py), or on hosts that cannot send headers
// from the site's service worker, coi-sw.js, which adds them. The worker can only act on
// responses it serves, so the first visit reloads the page once, after it takes control.

const RELOADED = 'glow-isolation-reload';

/**
 * Resolves when the page may start: at once when it is isolated or cannot be (no service
 * workers, an insecure origin, a reload that did not help); otherwise it registers
 * coi-sw.js, reloads the page once, and never resolves.
 * @returns {Promise<void>}
 */
export async function isolate() {
  if (self.crossOriginIsolated) {
    sessionStorage.removeItem(RELOADED);
    return;
  }
  if (!('serviceWorker' in navigator) || !isSecureContext) return;
  // Once per tab session: if the reloaded page is still not isolated, run without threads.
  if (sessionStorage.getItem(RELOADED)) return;
  let reg;
  try {
    reg = await navigator.serviceWorker.register(new URL('../coi-sw.js', import.meta.url));
  } catch {
    reg = null;
  }
  // Blocked (private mode, a policy, an automated browser): the engine says why it runs on
  // one thread.
  if (!reg) return;
  // A new worker claims the page once it is active: wait for that (at most 5 s). An active
  // one that does not control the page (after a hard reload, which bypasses it) needs only
  // the reload; one that controls it already still needs it (this page came from the cache).
  if (!navigator.serviceWorker.controller && !reg.active) {
    const claimed = new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', () => resolve(true), { once: true }));
    if (!await Promise.race([claimed, new Promise((resolve) => setTimeout(() => resolve(false), 5000))])) return;
  }
  sessionStorage.setItem(RELOADED, '1');
  location.reload();
  await new Promise(() => {});
}
