// @ts-check
// Blend: faces between A and B along a great circle of the latent space (spherical
// interpolation keeps the latents' norm, so each face in between looks like a sample at
// the ends' temperature): a slider and a strip of eight steps.

import { drawImage } from '../glow/client.js';
import { $, canvas, input, bump, busy, showError, clearError, whenVisible, faceCanvas } from './ui.js';

/** @typedef {import('./store.js').Store} Store */

const STRIP = 8;

/** @param {{store: Store, writeUrl: () => void}} ctx */
export function mount({ store }) {
  const section = $('interp');
  const strip = $('strip');
  const mix = input('mix');

  function build() {
    const { client } = store.state;
    strip.replaceChildren();
    if (!client) return;
    for (let i = 0; i < STRIP; i++) {
      const c = faceCanvas(client.info.width, client.info.height);
      c.title = `Step ${i + 1} of ${STRIP}`;
      c.addEventListener('click', () => {
        mix.value = String(i / (STRIP - 1));
        renderMix();
      });
      strip.append(c);
    }
  }

  function ends() {
    const { client, a, b } = store.state;
    const fa = store.face(a);
    const fb = store.face(b);
    return client && fa && fb ? { client, fa, fb } : null;
  }

  async function renderMix() {
    const e = ends();
    if (!e) return;
    const { width, height } = e.client.info;
    try {
      const eps = await e.client.mix(e.fa.eps, e.fb.eps, Number(mix.value));
      const rgba = await busy(e.client.decode(eps, 1, { key: 'mix', priority: 1 }));
      if (store.state.client !== e.client) return;
      drawImage(canvas('interp-mix'), rgba, width, height);
      bump($('interp-mix'));
    } catch (err) {
      showError('interp', err);
    }
  }

  async function renderStrip() {
    const e = ends();
    if (!e) return;
    const { width, height } = e.client.info;
    drawImage(canvas('interp-a'), e.fa.rgba, width, height);
    drawImage(canvas('interp-b'), e.fb.rgba, width, height);
    clearError('interp');
    try {
      const frames = await e.client.interpolate(e.fa.eps, e.fb.eps, STRIP);
      // Low priority: a slider move elsewhere overtakes the strip between its images.
      await busy(e.client.decode(frames, STRIP, {
        key: 'strip',
        priority: 0,
        onChunk: (rgba, first, count) => {
          if (store.state.client !== e.client) return; // the model was switched meanwhile
          for (let k = 0; k < count; k++) drawImage(/** @type {HTMLCanvasElement} */ (strip.children[first + k]), rgba, width, height, k);
        },
      }));
      bump(strip);
    } catch (err) {
      showError('interp', err);
    }
  }

  const render = whenVisible(section, () => { renderStrip(); renderMix(); });
  mix.addEventListener('input', renderMix);
  $('set-a').addEventListener('click', () => store.set({ a: store.state.current }));
  $('set-b').addEventListener('click', () => store.set({ b: store.state.current }));
  $('swap').addEventListener('click', () => store.set({ a: store.state.b, b: store.state.a }));
  store.subscribe(['client'], build);
  store.subscribe(['a', 'b', 'faces', 'you'], render);
}
