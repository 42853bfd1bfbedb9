// Shows the widgets' events under the example post (and lets tests read them).
const log = document.getElementById('events');
const seen = [];
for (const type of ['glow-ready', 'glow-error']) {
  document.addEventListener(type, (e) => {
    const d = e.detail || {};
    const who = e.target.id || 'glow-face';
    seen.push(type === 'glow-ready'
      ? `${who}: ready, ${d.width}×${d.height} on ${d.backend} (${d.adapter})`
      : `${who}: ${d.name}: ${d.message}`);
    log.textContent = seen.join(' · ');
    if (type === 'glow-ready') {
      document.body.dataset.ready = String((Number(document.body.dataset.ready) || 0) + 1);
    }
  });
}
