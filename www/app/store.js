// @ts-check
// The page's state in one place, and who wants to hear of its changes. Sections read
// `store.state`, change it only through `store.set`, and subscribe to the keys they draw.

/**
 * @typedef {import('../glow/client.js').GlowClient} GlowClient
 * @typedef {{label: string, eps: Float32Array, rgba: Uint8ClampedArray}} Face
 * @typedef {{kind: 'grid', index: number} | {kind: 'you'}} FaceRef
 *
 * @typedef {Object} State
 * @property {GlowClient | null} client   the open model (null while loading)
 * @property {string[]} models            model directory URLs (models/index.json)
 * @property {string} modelUrl
 * @property {'auto' | 'webgpu' | 'cpu'} backend
 * @property {number} seed
 * @property {number} temperature
 * @property {number[] | null} perLevel   one temperature per level, or null to follow `temperature`
 * @property {number} gridSide            faces per side of the sample grid
 * @property {Face[]} faces               the sample grid's faces (eps at temperature 1)
 * @property {Face | null} you            the visitor's photo, encoded
 * @property {FaceRef} current            the face being edited
 * @property {FaceRef} a                  blend ends
 * @property {FaceRef} b
 * @property {Float32Array} amounts       one per attribute (shipped, then taught)
 * @property {string[]} attributeNames
 * @property {number} shipped             how many of attributeNames ship with the model
 * @property {{with: Face[], without: Face[]}} marks   faces marked for a taught direction
 * @property {number | null} msPerImage
 */

/** @typedef {(state: State, changed: Set<keyof State>) => void} Listener */

export class Store {
  /** @param {State} initial */
  constructor(initial) {
    /** @type {State} */
    this.state = initial;
    /** @type {{keys: Set<keyof State>, fn: Listener}[]} */
    this.listeners = [];
  }

  /** Merges `patch` into the state and tells those listening to a key that changed. */
  set(/** @type {Partial<State>} */ patch) {
    /** @type {Set<keyof State>} */
    const changed = new Set();
    for (const k of /** @type {(keyof State)[]} */ (Object.keys(patch))) {
      if (this.state[k] !== patch[k]) changed.add(k);
    }
    if (!changed.size) return;
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) {
      if ([...l.keys].some((k) => changed.has(k))) l.fn(this.state, changed);
    }
  }

  /**
   * Calls `fn` whenever one of `keys` changes.
   * @param {(keyof State)[]} keys @param {Listener} fn
   */
  subscribe(keys, fn) {
    const l = { keys: new Set(keys), fn };
    this.listeners.push(l);
    return () => { this.listeners = this.listeners.filter((x) => x !== l); };
  }

  /** The face a reference points at (null when it is gone). */
  face(/** @type {FaceRef} */ ref) {
    return ref.kind === 'you' ? this.state.you : this.state.faces[ref.index] || null;
  }
}
