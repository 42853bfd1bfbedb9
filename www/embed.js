// @ts-check
// Shows the widgets' events under the example post (and lets tests count ready widgets).
const log = /** @type {HTMLElement} */ (document.getElementById('events'));
/** @type {Map<string, string>} */
const lines = new Map();

/** @param {Event} e */
function show(e) {
  const d = /** @type {CustomEvent} */ (e).detail || {};
  const target = /** @type {HTMLElement} */ (e.target);
  const who = target.id || 'glow-face';
  if (e.type === 'glow-progress') {
    lines.set(who, `${who}: downloading, ${Math.round(100 * d.fraction)}%`);
  } else if (e.type === 'glow-ready') {
    lines.set(who, `${who}: ready, ${d.width}×${d.height} on ${d.backend} (${d.adapter}${d.reason ? `; ${d.reason}` : ''})`);
    document.body.dataset.ready = String((Number(document.body.dataset.ready) || 0) + 1);
  } else {
    lines.set(`${who} ${d.name}`, `${who}: ${d.name}: ${d.title || ''} ${d.message}`.replace(/\s+/g, ' '));
  }
  log.textContent = [...lines.values()].join('\n');
}

for (const type of ['glow-progress', 'glow-ready', 'glow-error']) document.addEventListener(type, show);
