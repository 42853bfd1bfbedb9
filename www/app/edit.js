// @ts-check
// Edit: move a face along attribute directions. Every direction has the same length (the
// engine normalises shipped and taught ones alike), so a slider's range means the same
// distance for each. The most used attributes are shown; the rest fold out below.

import { drawImage, prettyName } from '../glow/client.js';
import { $, canvas, el, bump, busy, showError, clearError, whenVisible } from './ui.js';

/** @typedef {import('./store.js').Store} Store */

/** Shown first, in this order, when the model has them (CelebA's names). */
const MAIN = ['Smiling', 'Male', 'Young', 'Blond_Hair', 'Black_Hair', 'Eyeglasses', 'Bald', 'Bangs',
  'Wearing_Hat', 'Heavy_Makeup', 'Mouth_Slightly_Open', 'Pale_Skin'];

/** @param {{store: Store, writeUrl: () => void}} ctx */
export function mount({ store }) {
  const section = $('edit');
  const filter = /** @type {HTMLInputElement} */ ($('attr-filter'));

  /** One slider row; `remove` adds a button that forgets a taught direction. */
  function row(/** @type {string} */ name, /** @type {number} */ index, /** @type {(() => void) | null} */ remove) {
    const id = `attr-${index}`;
    const range = el('input', { type: 'range', id, min: '-2', max: '2', step: '0.05', value: String(store.state.amounts[index] || 0) });
    const out = el('output', { for: id }, Number(range.value).toFixed(2));
    const r = el('div', { class: 'attr', 'data-name': name.toLowerCase() }, el('label', { for: id, title: name }, name), range, out);
    range.addEventListener('input', () => {
      const amounts = store.state.amounts.slice();
      amounts[index] = Number(range.value);
      out.textContent = amounts[index].toFixed(2);
      r.classList.toggle('active', amounts[index] !== 0);
      store.set({ amounts });
    });
    range.addEventListener('dblclick', () => {
      range.value = '0';
      range.dispatchEvent(new Event('input'));
    });
    if (remove) {
      const x = el('button', { type: 'button', class: 'btn small icon', title: `Remove ${name}` }, '×');
      x.addEventListener('click', remove);
      r.append(x);
    }
    return r;
  }

  function build() {
    const { attributeNames: names, shipped, client } = store.state;
    section.hidden = !client || names.length === 0;
    const shown = MAIN.map((n) => names.indexOf(n)).filter((i) => i >= 0 && i < shipped);
    const main = shown.length ? shown : [...Array(Math.min(shipped, 12)).keys()];
    const rest = [...Array(shipped).keys()].filter((i) => !main.includes(i));
    $('attrs').replaceChildren(...main.map((i) => row(prettyName(names[i]), i, null)));
    $('attrs-more').replaceChildren(...rest.map((i) => row(prettyName(names[i]), i, null)));
    $('attrs-more-box').hidden = rest.length === 0;
    $('attrs-more-count').textContent = String(rest.length);
    filter.hidden = rest.length === 0;
    filter.value = '';
    $('custom-attrs').replaceChildren(...names.slice(shipped).map((n, k) => row(n, shipped + k, () => forget(n))));
  }

  async function forget(/** @type {string} */ name) {
    const { client, attributeNames, amounts } = store.state;
    if (!client) return;
    try {
      await client.forgetDirection(name);
      const at = attributeNames.indexOf(name);
      const kept = Float32Array.from([...amounts].filter((_, i) => i !== at));
      store.set({ attributeNames: client.info.attributeNames.slice(), amounts: kept });
    } catch (e) {
      showError('edit', e);
    }
  }

  let gen = 0;
  async function render() {
    const { client, current, amounts } = store.state;
    const face = store.face(current);
    if (!client || !face || section.hidden) return;
    const my = ++gen;
    const { width, height } = client.info;
    drawImage(canvas('edit-orig'), face.rgba, width, height);
    $('edit-label').textContent = face.label;
    clearError('edit');
    try {
      const eps = amounts.some((a) => a !== 0) ? await client.manipulate(face.eps, amounts) : face.eps;
      // A newer render began meanwhile: its decode must not be superseded by this older one
      // (a render with no amounts skips `manipulate` and can overtake one that waited on it).
      if (my !== gen) return;
      const rgba = await busy(client.decode(eps, 1, { key: 'edit', priority: 1 }));
      if (my !== gen || store.state.client !== client) return;
      drawImage(canvas('edit-out'), rgba, width, height);
      bump($('edit-out'));
    } catch (e) {
      showError('edit', e);
    }
  }
  const renderSoon = whenVisible(section, render);

  $('edit-reset').addEventListener('click', () => {
    store.set({ amounts: new Float32Array(store.state.amounts.length) });
    build();
  });
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    if (q) /** @type {HTMLDetailsElement} */ ($('attrs-more-box')).open = true;
    for (const list of [$('attrs'), $('attrs-more')]) {
      for (const r of list.children) /** @type {HTMLElement} */ (r).hidden = q !== '' && !(/** @type {HTMLElement} */ (r).dataset.name || '').includes(q);
    }
  });

  store.subscribe(['client', 'attributeNames'], build);
  store.subscribe(['client', 'current', 'amounts', 'faces', 'you'], renderSoon);
}
