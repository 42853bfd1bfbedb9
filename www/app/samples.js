// @ts-check
// Samples: a grid of faces drawn from the model at a temperature, with a seed, a grid size
// and (under "Advanced") a temperature per level. Clicking a face opens it in the editor;
// + / − mark it for a taught direction.

import { drawImage } from '../glow/client.js';
import { $, input, el, bump, busy, showError, clearError, faceCanvas, scrollToSection } from './ui.js';

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./store.js').Face} Face */

/**
 * What each level of a multi-scale flow holds, finest first (level 1 of L). The finer
 * levels are sampled from a prior predicted by the coarser ones, so most of a face is
 * already fixed by the time they are drawn: their temperature moves only texture.
 * @param {number} l @param {number} L @param {number[]} layout
 */
function levelText(l, L, layout) {
  const len = layout[2 * l + 1];
  const what = l === L - 1 ? 'the whole face: pose, face shape, hair, lighting'
    : l === L - 2 ? 'features: eyes, mouth, hairline, shading'
      : l === 0 ? 'pixel-scale grain (changes a few of 255 levels)'
        : 'fine texture: skin and hair detail (small changes)';
  return { label: `Level ${l + 1}${l === L - 1 ? ' (top)' : ''}`, title: `${len.toLocaleString('en')} latent values: ${what}`, what };
}

/** @param {{store: Store, writeUrl: () => void}} ctx */
export function mount({ store }) {
  const grid = $('grid');

  function buildGrid() {
    const { client, gridSide } = store.state;
    grid.replaceChildren();
    if (!client) return;
    const { width, height } = client.info;
    grid.style.setProperty('--cols', String(gridSide));
    for (let i = 0; i < gridSide * gridSide; i++) {
      const c = faceCanvas(width, height);
      c.tabIndex = 0;
      c.setAttribute('role', 'button');
      c.setAttribute('aria-label', `Face ${i + 1}: edit it`);
      const pick = () => {
        store.set({ current: { kind: 'grid', index: i } });
        const editor = $('edit');
        if (!editor.hidden) scrollToSection(editor);
      };
      c.addEventListener('click', pick);
      c.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
      const marks = el('div', { class: 'marks' });
      for (const [kind, sym, label] of [['with', '+', 'has the feature'], ['without', '−', 'does not have the feature']]) {
        const b = el('button', { type: 'button', class: `mark ${kind}`, title: `Mark: ${label}`, 'aria-label': `Face ${i + 1} ${label}` }, sym);
        b.addEventListener('click', (e) => { e.stopPropagation(); mark(i, /** @type {'with' | 'without'} */ (kind)); });
        marks.append(b);
      }
      grid.append(el('div', { class: 'tile loading', role: 'listitem' }, c, marks));
    }
    highlight();
  }

  /** Toggles a face's mark (a face is in one list at most). */
  function mark(/** @type {number} */ i, /** @type {'with' | 'without'} */ kind) {
    const face = store.state.faces[i];
    if (!face) return;
    const other = kind === 'with' ? 'without' : 'with';
    const m = store.state.marks;
    const list = m[kind].includes(face) ? m[kind].filter((f) => f !== face) : [...m[kind], face];
    store.set({ marks: { ...m, [kind]: list, [other]: m[other].filter((f) => f !== face) } });
  }

  function highlight() {
    const { current, faces, marks } = store.state;
    [...grid.children].forEach((tile, i) => {
      const f = faces[i];
      tile.classList.toggle('selected', current.kind === 'grid' && current.index === i);
      tile.classList.toggle('marked-with', !!f && marks.with.includes(f));
      tile.classList.toggle('marked-without', !!f && marks.without.includes(f));
    });
  }

  let gen = 0;
  async function sample() {
    const { client, gridSide, seed, temperature, perLevel } = store.state;
    if (!client) return;
    const my = ++gen;
    const n = gridSide * gridSide;
    const { dim, width, height } = client.info;
    clearError('samples');
    for (const t of grid.children) t.classList.add('loading');
    grid.dataset.seed = String(seed);
    const t0 = performance.now();
    try {
      const eps = await client.sampleEps(n, seed, temperature, perLevel || undefined);
      /** @type {Face[]} */
      const faces = [];
      const rgba = await busy(client.decode(eps, n, {
        key: 'grid',
        onChunk: (px, first, count) => {
          if (my !== gen || store.state.client !== client) return;
          for (let k = 0; k < count; k++) {
            const tile = grid.children[first + k];
            drawImage(/** @type {HTMLCanvasElement} */ (tile.firstChild), px, width, height, k);
            tile.classList.remove('loading');
          }
        },
      }));
      if (my !== gen || store.state.client !== client) return;
      const size = width * height * 4;
      for (let i = 0; i < n; i++) {
        faces.push({ label: `Sample ${i + 1} (seed ${seed})`, eps: eps.slice(i * dim, (i + 1) * dim), rgba: rgba.slice(i * size, (i + 1) * size) });
      }
      store.set({ faces, msPerImage: (performance.now() - t0) / n });
      bump(grid);
      document.body.dataset.ready = '1'; // the page's "loaded and drawn" marker (tests wait for it)
    } catch (e) {
      showError('samples', e);
    }
  }

  // Controls.
  const temp = input('temperature');
  const seed = input('seed');
  const size = /** @type {HTMLSelectElement} */ ($('grid-size'));
  const levels = $('levels');

  function buildLevels() {
    const { client } = store.state;
    levels.replaceChildren();
    if (!client) return;
    const L = client.info.levels;
    for (let l = L - 1; l >= 0; l--) {
      const t = levelText(l, L, client.info.layout);
      const id = `level-${l}`;
      const range = el('input', { type: 'range', id, min: '0', max: '1', step: '0.01' });
      const out = el('output', { for: id });
      range.addEventListener('input', () => {
        const s = store.state;
        const per = (s.perLevel || Array(L).fill(s.temperature)).slice();
        per[l] = Number(range.value);
        store.set({ perLevel: per });
      });
      levels.append(el('div', { class: 'level', 'data-level': String(l) },
        el('label', { for: id, title: t.title }, t.label), range, out, el('p', { class: 'sub' }, t.what)));
    }
    syncControls();
  }

  function syncControls() {
    const { temperature, perLevel, seed: s, gridSide, client } = store.state;
    temp.value = String(temperature);
    $('temperature-out').textContent = temperature.toFixed(2);
    seed.value = String(s);
    size.value = String(gridSide);
    const L = client ? client.info.levels : 0;
    const t = perLevel || Array(L).fill(temperature);
    for (const row of levels.children) {
      const l = Number(/** @type {HTMLElement} */ (row).dataset.level);
      const r = /** @type {HTMLInputElement} */ (row.querySelector('input'));
      r.value = String(t[l]);
      /** @type {HTMLOutputElement} */ (row.querySelector('output')).value = t[l].toFixed(2);
    }
    if (perLevel) /** @type {HTMLDetailsElement} */ ($('advanced')).open = true;
  }

  temp.addEventListener('input', () => store.set({ temperature: Number(temp.value), perLevel: null }));
  seed.addEventListener('change', () => {
    const v = Number(seed.value);
    store.set({ seed: Number.isFinite(v) && v >= 0 ? Math.floor(v) >>> 0 : 1 });
  });
  $('reroll').addEventListener('click', () => store.set({ seed: (Math.random() * 2 ** 31) >>> 0 }));
  size.addEventListener('change', () => store.set({ gridSide: Number(size.value) }));
  $('levels-reset').addEventListener('click', () => store.set({ perLevel: null }));
  $('share').addEventListener('click', async () => {
    const note = $('share-note');
    try {
      await navigator.clipboard.writeText(location.href);
      note.textContent = 'Link copied.';
    } catch {
      note.textContent = location.href;
    }
    setTimeout(() => { note.textContent = ''; }, 4000);
  });

  store.subscribe(['client'], (s) => {
    buildGrid();
    buildLevels();
    fillAbout();
    if (s.client) sample();
  });
  store.subscribe(['gridSide'], () => { buildGrid(); sample(); });
  store.subscribe(['seed', 'temperature', 'perLevel'], () => { syncControls(); sample(); });
  store.subscribe(['current', 'faces', 'marks'], highlight);
  syncControls();

  /** "About this model": data, licence and the measured numbers from model.json. */
  function fillAbout() {
    const { client } = store.state;
    if (!client) return;
    const i = client.info;
    const c = i.config;
    const m = c.metrics || {};
    const data = c.data || {};
    /** @type {[string, string][]} */
    const rows = [];
    if (data.name) rows.push(['Data', data.name]);
    if (data.licence) rows.push(['Licence', data.licence]);
    if (Number.isFinite(m.test_bpd_dequantized)) rows.push(['Test bits/dim', `${m.test_bpd_dequantized.toFixed(3)} dequantized${Number.isFinite(m.test_bpd) ? ` (${m.test_bpd.toFixed(3)} at bin centres)` : ''}`]);
    if (Number.isFinite(m.parameters)) rows.push(['Parameters', m.parameters.toLocaleString('en')]);
    if (Number.isFinite(m.train_seconds)) rows.push(['Training', `${(m.train_seconds / 60).toFixed(0)} min${m.hardware ? ` on ${m.hardware}` : ''}`]);
    rows.push(['Download', `${(i.bytes / 1e6).toFixed(2)} MB${i.cached ? ' (from this browser\'s cache)' : ''}`]);
    if (i.attributeNames.length) rows.push(['Attributes', `${i.attributeNames.length} directions`]);
    $('model-info').textContent = `${i.name}: ${i.width}×${i.height} ${i.channels === 1 ? 'greyscale' : 'RGB'}, ${i.levels} levels × ${c.steps} steps, ${c.coupling} coupling, ${c.n_bits}-bit.`;
    $('about-list').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }
}
