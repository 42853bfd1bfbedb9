// @ts-check
// Teach a direction: faces marked + (have a feature) and − (do not) give a direction, the
// difference of their mean latents, which becomes a slider in the editor.

import { drawImage } from '../glow/client.js';
import { $, input, button, faceCanvas, showError, clearError, scrollToSection } from './ui.js';

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./store.js').Face} Face */

/** @param {{store: Store, writeUrl: () => void}} ctx */
export function mount({ store }) {
  function render() {
    const { client, marks } = store.state;
    for (const kind of /** @type {const} */ (['with', 'without'])) {
      const list = marks[kind];
      $(`${kind}-list`).replaceChildren(...(client ? list.map((f) => {
        const c = faceCanvas(client.info.width, client.info.height, 'pix thumb');
        drawImage(c, f.rgba, client.info.width, client.info.height);
        c.title = 'Click to remove';
        c.addEventListener('click', () => store.set({ marks: { ...store.state.marks, [kind]: store.state.marks[kind].filter((x) => x !== f) } }));
        return c;
      }) : []));
      $(`${kind}-count`).textContent = String(list.length);
    }
    button('dir-make').disabled = !(marks.with.length && marks.without.length);
  }

  const concat = (/** @type {Face[]} */ list, /** @type {number} */ dim) => {
    const out = new Float32Array(list.length * dim);
    list.forEach((f, i) => out.set(f.eps, i * dim));
    return out;
  };

  $('dir-make').addEventListener('click', async () => {
    const { client, marks, amounts } = store.state;
    if (!client) return;
    clearError('teach');
    const name = input('dir-name').value.trim() || `direction ${store.state.attributeNames.length - store.state.shipped + 1}`;
    try {
      const r = await client.teachDirection(name, concat(marks.with, client.info.dim), concat(marks.without, client.info.dim));
      const more = new Float32Array(r.attributeNames.length);
      more.set(amounts);
      store.set({ attributeNames: r.attributeNames.slice(), amounts: more });
      scrollToSection($('edit'));
    } catch (e) {
      showError('teach', e);
    }
  });
  $('dir-clear').addEventListener('click', () => store.set({ marks: { with: [], without: [] } }));
  store.subscribe(['marks', 'client'], render);
}
