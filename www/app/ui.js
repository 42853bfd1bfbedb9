// @ts-check
// Small DOM helpers shared by the page's sections.

import { explain, isSuperseded } from '../glow/client.js';

/** The element with this id (the page's markup is fixed, so a missing one is a bug). */
export function $(/** @type {string} */ id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} is missing from index.html`);
  return e;
}

/** @param {string} id */
export const input = (id) => /** @type {HTMLInputElement} */ ($(id));
/** @param {string} id */
export const canvas = (id) => /** @type {HTMLCanvasElement} */ ($(id));
/** @param {string} id */
export const button = (id) => /** @type {HTMLButtonElement} */ ($(id));

/**
 * Makes an element: el('button', {class: 'btn', type: 'button'}, 'text', child).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {Record<string, string>} [attrs] @param {(Node | string)[]} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

/** Counts the draws of an element in data-renders (the tests wait on it). */
export function bump(/** @type {HTMLElement} */ e) {
  e.dataset.renders = String((Number(e.dataset.renders) || 0) + 1);
}

let active = 0;
/**
 * Counts the page's engine work under way in <html data-glow-busy> (tests wait for "0").
 * @template T @param {Promise<T>} p @returns {Promise<T>}
 */
export function busy(p) {
  active++;
  document.documentElement.dataset.glowBusy = String(active);
  const done = () => {
    active = Math.max(0, active - 1);
    document.documentElement.dataset.glowBusy = String(active);
  };
  p.then(done, done);
  return p;
}

/**
 * Shows an error inside the section where it happened, in plain words, with the engine's
 * own message in a fold below. A call superseded by a newer one is not an error.
 * @param {string} section  the section element's id
 * @param {unknown} e
 * @param {{label: string, run: () => void}} [action]  a button offering the way out
 */
export function showError(section, e, action) {
  if (isSuperseded(e)) return;
  console.warn(e);
  const box = sectionError(section);
  const { title, detail } = explain(e);
  const parts = [el('strong', {}, title)];
  if (action) {
    const b = el('button', { type: 'button', class: 'btn small' }, action.label);
    b.addEventListener('click', action.run);
    parts.push(b);
  }
  if (detail && detail !== title) parts.push(el('details', {}, el('summary', {}, 'Details'), el('code', {}, detail)));
  box.replaceChildren(...parts);
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest' });
}

export function clearError(/** @type {string} */ section) {
  sectionError(section).hidden = true;
}

function sectionError(/** @type {string} */ section) {
  const s = $(section);
  let box = /** @type {HTMLElement | null} */ (s.querySelector(':scope > .section-error'));
  if (!box) {
    box = el('div', { class: 'section-error', role: 'alert' });
    box.hidden = true;
    const head = s.querySelector(':scope > .card-head');
    if (head) head.after(box);
    else s.prepend(box);
  }
  return box;
}

/**
 * Runs `run` now if the element is on screen (or near), else once it scrolls into view:
 * a slow engine is kept busy with what the visitor looks at.
 * @param {Element} section @param {() => void} run @returns {() => void}
 */
export function whenVisible(section, run) {
  let visible = false;
  let dirty = false;
  new IntersectionObserver((entries) => {
    visible = entries.some((e) => e.isIntersecting);
    if (visible && dirty) {
      dirty = false;
      run();
    }
  }, { rootMargin: '150px' }).observe(section);
  return () => {
    if (visible) run();
    else dirty = true;
  };
}

/**
 * Scrolls a section to the top of the screen: smoothly, unless the visitor asked the system
 * for reduced motion (then at once, as every scroll should be for them).
 * @param {Element} section
 */
export function scrollToSection(section) {
  const reduce = matchMedia('(prefers-reduced-motion: reduce)').matches;
  section.scrollIntoView({ behavior: reduce ? 'auto' : 'smooth', block: 'start' });
}

/** A canvas of the model's size for a face. */
export function faceCanvas(/** @type {number} */ w, /** @type {number} */ h, cls = 'pix') {
  const c = el('canvas', { class: cls });
  c.width = w;
  c.height = h;
  return c;
}
