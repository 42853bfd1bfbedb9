// @ts-check
// Your face: a photo (file, drop, paste or camera) in a crop box with the model's aspect,
// resized to the model's size, encoded to its exact latent, reconstructed, and scored in
// bits/dim with a scale that says what the number means.

import { drawImage, isSuperseded } from '../glow/client.js';
import { $, el, input, canvas, button, busy, bump, showError, clearError, scrollToSection } from './ui.js';

/** @typedef {import('./store.js').Store} Store */

const MAX_SOURCE = 1024;
// Live webcam tracking reads frames this large (long side) and at most this often: the
// detector takes tens of ms on such a frame in wasm, and the box only needs to keep up with
// a head, not with every frame.
const TRACK_SIDE = 480;
const TRACK_MS = 150;

/** @param {{store: Store, writeUrl: () => void}} ctx */
export function mount({ store }) {
  /**
   * The photo, and the crop box on it: centre, width (source pixels) and rotation (radians,
   * clockwise on screen). `rgba` is the photo's pixels, read once, for the engine.
   * @typedef {{cx: number, cy: number, w: number, angle: number}} Crop
   * @type {{canvas: HTMLCanvasElement, rgba: Uint8ClampedArray, crop: Crop | null} | null}
   */
  let source = null;
  const info = () => {
    const c = store.state.client;
    return c ? c.info : null;
  };

  async function fromBlob(/** @type {Blob | null} */ blob) {
    clearError('you');
    if (!blob || (blob.type && !blob.type.startsWith('image/'))) {
      showError('you', Object.assign(new Error(`"${blob && 'name' in blob ? blob.name : 'that file'}" is not an image`), { name: 'BadImage' }));
      return;
    }
    /** @type {ImageBitmap | HTMLImageElement} */
    let image;
    try {
      image = await createImageBitmap(blob, { imageOrientation: 'from-image' });
    } catch {
      try {
        image = await viaImg(blob);
      } catch {
        showError('you', Object.assign(new Error('the browser could not decode this file'), { name: 'BadImage' }));
        return;
      }
    }
    setSource(image, image.width, image.height, false);
    if ('close' in image) image.close();
  }

  function viaImg(/** @type {Blob} */ blob) {
    return /** @type {Promise<HTMLImageElement>} */ (new Promise((resolve, reject) => {
      const url = URL.createObjectURL(blob);
      const img = new Image();
      img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
      img.onerror = () => { URL.revokeObjectURL(url); reject(new Error('decode')); };
      img.src = url;
    }));
  }

  /** Copies an image (capped at MAX_SOURCE px) into the crop stage and encodes it. */
  function setSource(/** @type {CanvasImageSource} */ image, /** @type {number} */ w, /** @type {number} */ h, /** @type {boolean} */ mirror) {
    const k = Math.min(1, MAX_SOURCE / Math.max(w, h));
    const c = canvas('source');
    c.width = Math.max(1, Math.round(w * k));
    c.height = Math.max(1, Math.round(h * k));
    const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
    ctx.save();
    if (mirror) { ctx.translate(c.width, 0); ctx.scale(-1, 1); }
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(image, 0, 0, c.width, c.height);
    ctx.restore();
    source = { canvas: c, rgba: ctx.getImageData(0, 0, c.width, c.height).data, crop: null };
    $('drop-empty').hidden = true;
    $('camera-panel').hidden = true;
    $('stage').hidden = false;
    $('crop-controls').hidden = false;
    fit();
    resetCrop();
    findFaces();
  }

  /**
   * Finds the faces in the photo and puts the box on the largest, aligned the way the
   * model's training faces were (model.json `align`); the others can be picked by clicking
   * their outlines. Without a template, or without a face, the manual box stays.
   */
  async function findFaces() {
    const client = store.state.client;
    const src = source;
    const marks = $('faces');
    marks.replaceChildren();
    $('face-note').textContent = '';
    if (!client || !src) return;
    const i = client.info;
    if (!i.config.align) {
      $('face-note').textContent = 'This model has no alignment template: place the box by hand.';
      encode();
      return;
    }
    $('face-note').textContent = 'Looking for a face…';
    let faces;
    try {
      faces = await busy(client.detectFaces(src.rgba, src.canvas.width, src.canvas.height, { key: 'faces', priority: 1 }));
    } catch (e) {
      $('face-note').textContent = '';
      showError('you', e);
      encode();
      return;
    }
    if (source !== src) return;
    const usable = faces.filter((f) => f.transform);
    if (!usable.length) {
      $('face-note').textContent = 'No face found in this photo: place the box on the face by hand (drag it, resize it with the corner or the wheel, turn it with the slider).';
      $('stage').dataset.faces = '0';
      encode();
      return;
    }
    const { width: W, height: H } = src.canvas;
    const pick = (/** @type {number} */ k) => {
      src.crop = boxOf(/** @type {number[]} */ (usable[k].transform), i.width, i.height);
      [...marks.children].forEach((m, j) => m.classList.toggle('picked', j === k));
      place();
      encode();
    };
    usable.forEach((f, k) => {
      const [x, y, w, h] = f.box;
      const m = el('button', { type: 'button', class: 'face-mark', title: `Face ${k + 1}: align to this one`, 'aria-label': `Face ${k + 1}` });
      m.style.left = `${(100 * x) / W}%`;
      m.style.top = `${(100 * y) / H}%`;
      m.style.width = `${(100 * w) / W}%`;
      m.style.height = `${(100 * h) / H}%`;
      m.addEventListener('click', () => pick(k));
      marks.append(m);
    });
    $('stage').dataset.faces = String(usable.length);
    $('face-note').textContent = usable.length > 1
      ? `${usable.length} faces found: the largest is aligned; click another outline to use it instead.`
      : 'Face found and aligned like the model\'s training faces. You can still move, resize and turn the box.';
    pick(0);
  }

  /** Shows the photo as large as the drop area allows, never wider than it. */
  function fit() {
    if (!source) return;
    const c = source.canvas;
    const drop = $('drop');
    const style = getComputedStyle(drop);
    const maxW = drop.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const maxH = Math.min(440, window.innerHeight * 0.6);
    const k = Math.min(maxW / c.width, maxH / c.height);
    if (!(k > 0)) return;
    c.style.width = `${Math.floor(c.width * k)}px`;
    c.style.height = `${Math.floor(c.height * k)}px`;
  }

  /**
   * A fresh crop box with the model's aspect: the training crop when the photo has the
   * training images' shape (model.json preprocess), else centred at 80% of the short side.
   */
  function resetCrop() {
    const i = info();
    if (!source || !i) return;
    const { width: W, height: H } = source.canvas;
    const aspect = i.width / i.height;
    const pre = i.config.preprocess || {};
    const [sw, sh] = Array.isArray(pre.source_size) ? pre.source_size.map(Number) : [];
    const [cx, cy, cw, ch] = Array.isArray(pre.crop) ? pre.crop.map(Number) : [];
    if (sw > 0 && sh > 0 && cw > 0 && ch > 0 && Math.abs(W / H - sw / sh) < 0.01 && Math.abs(cw / ch - aspect) < 0.01) {
      const k = W / sw;
      source.crop = { cx: (cx + cw / 2) * k, cy: (cy + ch / 2) * k, w: cw * k, angle: 0 };
    } else {
      source.crop = { cx: W / 2, cy: H / 2, w: Math.min(W, H * aspect) * 0.8, angle: 0 };
    }
    place();
  }

  function place() {
    const i = info();
    if (!source || !source.crop || !i) return;
    const { width: W, height: H } = source.canvas;
    const aspect = i.width / i.height;
    const c = source.crop;
    // The box may reach past the photo (a face near an edge); outside is black, as in a
    // padded training crop. Its centre stays on the photo.
    const maxW = Math.max(W, H * aspect) * 1.5;
    c.w = Math.min(maxW, Math.max(8, c.w));
    c.cx = Math.min(W, Math.max(0, c.cx));
    c.cy = Math.min(H, Math.max(0, c.cy));
    const box = $('crop');
    showBox(box, c, W, H, aspect);
    input('crop-size').value = String(Math.min(1, c.w / Math.min(W, H * aspect)));
    input('crop-angle').value = String(Math.round((c.angle * 180) / Math.PI));
    $('crop-angle-out').textContent = `${Math.round((c.angle * 180) / Math.PI)}°`;
    box.setAttribute('aria-valuetext', `${Math.round(c.w)} pixels wide at ${Math.round(c.cx)}, ${Math.round(c.cy)}, turned ${Math.round((c.angle * 180) / Math.PI)} degrees`);
  }

  function zoom(/** @type {number} */ f) {
    const i = info();
    if (!source || !source.crop || !i) return;
    source.crop.w *= f;
    place();
  }

  /**
   * Where the eyes of a training image sit in the model's frame, as fractions: from
   * model.json's preprocess, an explicit `eye_line`, or for crops of aligned CelebA (eye
   * centres at about (0.388, 0.512) and (0.612, 0.512) of the image) from its crop.
   */
  /** Puts a box element on crop `c` of a W x H picture, in percent of the picture. */
  function showBox(/** @type {HTMLElement} */ box, /** @type {Crop} */ c, /** @type {number} */ W, /** @type {number} */ H, /** @type {number} */ aspect) {
    const h = c.w / aspect;
    box.style.left = `${(100 * (c.cx - c.w / 2)) / W}%`;
    box.style.top = `${(100 * (c.cy - h / 2)) / H}%`;
    box.style.width = `${(100 * c.w) / W}%`;
    box.style.height = `${(100 * h) / H}%`;
    box.style.transform = c.angle ? `rotate(${c.angle}rad)` : '';
  }

  function placeEyeGuide() {
    const i = info();
    if (!i) return;
    const pre = i.config.preprocess || {};
    const ok = (/** @type {number} */ v) => Number.isFinite(v) && v > 0 && v < 1;
    let y = 0.45;
    /** @type {number[] | null} */
    let xs = null;
    const [x0, y0, w, h] = Array.isArray(pre.crop) ? pre.crop.map(Number) : [];
    const [sw, sh] = Array.isArray(pre.source_size) ? pre.source_size.map(Number) : [];
    const al = i.config.align;
    if (al && Array.isArray(al.left_eye) && Array.isArray(al.right_eye)) {
      // The measured template: where the detector finds the eyes in training crops.
      y = (al.left_eye[1] + al.right_eye[1]) / 2 / i.height;
      xs = [al.left_eye[0] / i.width, al.right_eye[0] / i.width];
    } else if (ok(Number(pre.eye_line))) y = Number(pre.eye_line);
    else if (/align_celeba/i.test(String(pre.source || '')) && w > 0 && h > 0 && sw > 0 && sh > 0) {
      const ey = (0.512 * sh - y0) / h;
      const ex = [0.388, 0.612].map((f) => (f * sw - x0) / w);
      if (ok(ey) && ex.every(ok)) { y = ey; xs = ex; }
    }
    $('eye-line').style.top = `${100 * y}%`;
    $('eye-line').hidden = i.channels === 1;
    $('eye-line').querySelectorAll('.eye').forEach((d, k) => {
      const e = /** @type {HTMLElement} */ (d);
      e.hidden = !xs;
      if (xs) e.style.left = `${100 * xs[k]}%`;
    });
  }

  /**
   * The similarity [a, b, tx, ty] (q = [a -b; b a] p + t) taking photo pixels into the
   * model's frame for a crop box: the inverse of the box's rotation, scaled to the model.
   * @param {Crop} c @param {number} wm @param {number} hm
   */
  function cropTransform(c, wm, hm) {
    const s = wm / c.w;
    const a = s * Math.cos(c.angle);
    const b = -s * Math.sin(c.angle);
    return [a, b, wm / 2 - (a * c.cx - b * c.cy), hm / 2 - (b * c.cx + a * c.cy)];
  }

  /** The crop box a similarity (photo -> model frame) describes. @returns {Crop} */
  function boxOf(/** @type {number[]} */ t, /** @type {number} */ wm, /** @type {number} */ hm) {
    const [a, b, tx, ty] = t;
    const d = a * a + b * b;
    // The inverse map of the frame's centre is the box's centre.
    const x = wm / 2 - tx;
    const y = hm / 2 - ty;
    return { cx: (a * x + b * y) / d, cy: (-b * x + a * y) / d, w: wm / Math.sqrt(d), angle: Math.atan2(-b, a) };
  }

  /**
   * The crop, resampled by the engine from the photo's pixels (antialiased: a plain canvas
   * resize blurs or aliases enough to move bits/dim by 0.05-0.27), as the model sees it.
   */
  async function cropPixels(/** @type {import('../glow/client.js').GlowClient} */ client) {
    const i = client.info;
    const src = /** @type {NonNullable<typeof source>} */ (source);
    const t = cropTransform(/** @type {Crop} */ (src.crop), i.width, i.height);
    const px = await client.alignedCrop(src.rgba, src.canvas.width, src.canvas.height, t, i.width, i.height);
    if (i.channels === 1) {
      const invert = input('invert').checked;
      for (let k = 0; k < px.length; k += 4) {
        const g = Math.round(0.299 * px[k] + 0.587 * px[k + 1] + 0.114 * px[k + 2]);
        px[k] = px[k + 1] = px[k + 2] = invert ? 255 - g : g;
      }
    }
    return px;
  }

  let gen = 0;
  async function encode() {
    const client = store.state.client;
    if (!client || !source || !source.crop) return;
    const my = ++gen;
    const { width, height, channels, dim } = client.info;
    clearError('you');
    $('you-result').classList.add('working');
    try {
      const px = await cropPixels(client);
      const quant = await client.quantizeInput(px);
      drawImage(canvas('you-input'), quant, width, height);
      const enc = await busy(client.encode(px, 1, { key: 'you-encode', priority: 1 }));
      const recon = await busy(client.decode(enc.eps, 1, { key: 'you-recon', priority: 1 }));
      if (my !== gen || store.state.client !== client) return;
      drawImage(canvas('you-recon'), recon, width, height);
      let err = 0;
      for (let k = 0; k < recon.length; k += 4) {
        for (let c = 0; c < channels; c++) err = Math.max(err, Math.abs(recon[k + c] - quant[k + c]));
      }
      const bpd = enc.bitsPerDim[0];
      $('you-bpd').textContent = `${bpd.toFixed(3)} bits/dim`;
      $('you-bpd').title = `${(bpd * dim).toFixed(0)} bits for the whole ${width}×${height} image`;
      $('you-err').textContent = `max |Δ| = ${err} / 255`;
      store.set({ you: { label: 'Your photo', eps: enc.eps, rgba: recon }, current: { kind: 'you' } });
      // OpenAI's figure: the mean over 4 seeded uniform dequantization draws.
      const both = await busy(client.bitsPerDim(px, 1, 4, 0, { key: 'you-bpd' }));
      if (my !== gen) return;
      showScore(both.dequantized[0]);
      $('you-result').classList.remove('working');
      bump($('you-result'));
    } catch (e) {
      if (my === gen) $('you-result').classList.remove('working');
      showError('you', e);
    }
  }

  /** The dequantized figure, and where it falls on the scale beside it. */
  function showScore(/** @type {number} */ deq) {
    const i = info();
    $('you-bpd-deq').textContent = `${deq.toFixed(3)} bits/dim`;
    const max = 3;
    const at = Math.min(1, Math.max(0, deq / max));
    const marker = $('bpd-marker');
    marker.hidden = false;
    marker.style.left = `${(100 * at).toFixed(1)}%`;
    const typical = i && i.config.metrics ? Number(i.config.metrics.test_bpd_dequantized) : NaN;
    let verdict = '';
    if (Number.isFinite(typical)) {
      verdict = deq < typical - 0.35 ? 'far below a typical face: a flat or smooth image is easy to predict, face or not.'
        : deq <= typical + 0.25 ? 'about what the model gives the faces it was tested on.'
          : deq <= typical + 0.8 ? 'above a typical face: less face-like to this model (framing, lighting, or not a face).'
            : 'far above a typical face: this model finds the image very unlike its training faces.';
    }
    $('bpd-verdict').textContent = verdict ? `This image: ${verdict}` : '';
  }

  function clear() {
    const i = info();
    for (const id of ['you-input', 'you-recon']) {
      const c = canvas(id);
      c.width = i ? i.width : 1;
      c.height = i ? i.height : 1;
    }
    for (const id of ['you-bpd', 'you-err', 'you-bpd-deq']) $(id).textContent = '–';
    $('bpd-verdict').textContent = '';
    $('bpd-marker').hidden = true;
  }

  function setupScale() {
    const i = info();
    const band = $('bpd-band');
    const typical = i && i.config.metrics ? Number(i.config.metrics.test_bpd_dequantized) : NaN;
    band.hidden = !Number.isFinite(typical);
    if (Number.isFinite(typical)) {
      band.style.left = `${(100 * (typical - 0.15) / 3).toFixed(1)}%`;
      band.style.width = `${(100 * 0.3 / 3).toFixed(1)}%`;
      $('bpd-typical').textContent = typical.toFixed(2);
    }
  }

  // Inputs: file, drop, paste, camera.
  const file = input('file');
  file.addEventListener('change', () => { if (file.files && file.files[0]) fromBlob(file.files[0]); });
  const section = $('you');
  section.addEventListener('dragover', (e) => {
    if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) {
      e.preventDefault();
      $('drop').classList.add('over');
    }
  });
  section.addEventListener('dragleave', (e) => { if (!section.contains(/** @type {Node | null} */ (e.relatedTarget))) $('drop').classList.remove('over'); });
  section.addEventListener('drop', (e) => {
    e.preventDefault();
    $('drop').classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) fromBlob(f);
  });
  window.addEventListener('paste', (e) => {
    const item = e.clipboardData && [...e.clipboardData.items].find((x) => x.type.startsWith('image/'));
    if (item) fromBlob(item.getAsFile());
  });
  input('invert').addEventListener('change', encode);
  $('you-edit').addEventListener('click', () => {
    store.set({ current: { kind: 'you' } });
    if (!$('edit').hidden) scrollToSection($('edit'));
  });
  $('you-a').addEventListener('click', () => store.set({ a: { kind: 'you' } }));
  $('you-b').addEventListener('click', () => store.set({ b: { kind: 'you' } }));

  if (navigator.mediaDevices && typeof navigator.mediaDevices.getUserMedia === 'function') {
    $('camera').hidden = false;
    /** @type {MediaStream | null} */
    let stream = null;
    const video = /** @type {HTMLVideoElement} */ ($('video'));
    // Each camera session has a number; the tracking loop of an older one stops.
    let session = 0;
    const stop = () => {
      session++;
      if (stream) for (const t of stream.getTracks()) t.stop();
      stream = null;
      video.srcObject = null;
      $('camera-box').hidden = true;
      $('camera-note').textContent = '';
      $('camera-panel').hidden = true;
      if (!source) $('drop-empty').hidden = false;
      else $('stage').hidden = false;
    };
    /**
     * While the camera runs: finds the face in the current frame a few times a second and
     * shows, on the (mirrored) video, the box that "Take photo" will align to it.
     */
    const track = async (/** @type {number} */ me) => {
      const small = document.createElement('canvas');
      const ctx = /** @type {CanvasRenderingContext2D} */ (small.getContext('2d', { willReadFrequently: true }));
      const boxEl = $('camera-box');
      while (me === session) {
        const started = performance.now();
        const client = store.state.client;
        const i = client ? client.info : null;
        if (client && i && i.config.align && video.videoWidth) {
          const k = Math.min(1, TRACK_SIDE / Math.max(video.videoWidth, video.videoHeight));
          const W = Math.max(1, Math.round(video.videoWidth * k));
          const H = Math.max(1, Math.round(video.videoHeight * k));
          if (small.width !== W || small.height !== H) { small.width = W; small.height = H; }
          // Mirrored like the video on screen and like the photo "Take photo" makes.
          ctx.setTransform(-1, 0, 0, 1, W, 0);
          ctx.drawImage(video, 0, 0, W, H);
          ctx.setTransform(1, 0, 0, 1, 0, 0);
          /** @type {{transform: number[] | null}[] | null} */
          let faces = null;
          try {
            faces = await client.detectFaces(ctx.getImageData(0, 0, W, H).data, W, H, { key: 'camera-faces', priority: 2 });
          } catch (e) {
            if (!isSuperseded(e)) { showError('you', e); return; }
          }
          if (me !== session) return;
          const f = faces && faces.find((x) => x.transform);
          if (faces) {
            boxEl.hidden = !f;
            $('camera-note').textContent = f ? 'Face found: the box follows it. Take the photo when it sits right.' : 'No face in view yet.';
          }
          if (f) {
            const b = boxOf(/** @type {number[]} */ (f.transform), i.width, i.height);
            showBox(boxEl, b, W, H, i.width / i.height);
            boxEl.dataset.angle = String((b.angle * 180) / Math.PI);
          }
        }
        await new Promise((r) => setTimeout(r, Math.max(16, TRACK_MS - (performance.now() - started))));
      }
    };
    $('camera').addEventListener('click', async () => {
      clearError('you');
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user', width: { ideal: 1280 } }, audio: false });
      } catch (e) {
        showError('you', Object.assign(new Error(`The camera is not available: ${/** @type {Error} */ (e).message || /** @type {Error} */ (e).name}`), { name: 'CameraUnavailable' }));
        return;
      }
      video.srcObject = stream;
      $('drop-empty').hidden = true;
      $('stage').hidden = true;
      $('camera-panel').hidden = false;
      track(++session);
    });
    $('camera-cancel').addEventListener('click', stop);
    $('snap').addEventListener('click', () => {
      if (!video.videoWidth) return;
      setSource(video, video.videoWidth, video.videoHeight, true);
      stop();
    });
  }

  // The crop box: drag to move, the corner handle or the wheel to resize, keys to nudge.
  new ResizeObserver(() => fit()).observe($('drop'));
  const box = $('crop');
  const stage = $('stage');
  /** @type {{id: number, x0: number, y0: number, crop: Crop, resize: boolean, k: number} | null} */
  let drag = null;
  const scale = () => (source ? source.canvas.width / stage.getBoundingClientRect().width : 1);
  box.addEventListener('pointerdown', (e) => {
    if (!source || !source.crop || e.button > 0) return;
    e.preventDefault();
    box.setPointerCapture(e.pointerId);
    drag = { id: e.pointerId, x0: e.clientX, y0: e.clientY, crop: { ...source.crop }, resize: e.target === $('crop-handle'), k: scale() };
    box.classList.add('dragging');
  });
  box.addEventListener('pointermove', (e) => {
    const i = info();
    if (!drag || e.pointerId !== drag.id || !source || !source.crop || !i) return;
    const dx = (e.clientX - drag.x0) * drag.k;
    const dy = (e.clientY - drag.y0) * drag.k;
    const c = source.crop;
    if (drag.resize) {
      // The corner handle grows the box about its centre, along the box's own axes.
      const along = dx * Math.cos(c.angle) + dy * Math.sin(c.angle);
      const across = -dx * Math.sin(c.angle) + dy * Math.cos(c.angle);
      c.w = drag.crop.w + 2 * Math.max(along, across * (i.width / i.height));
    } else {
      c.cx = drag.crop.cx + dx;
      c.cy = drag.crop.cy + dy;
    }
    place();
  });
  const end = (/** @type {PointerEvent} */ e) => {
    if (!drag || e.pointerId !== drag.id) return;
    drag = null;
    box.classList.remove('dragging');
    encode();
  };
  box.addEventListener('pointerup', end);
  box.addEventListener('pointercancel', end);
  let timer = 0;
  const encodeSoon = () => { clearTimeout(timer); timer = window.setTimeout(encode, 250); };
  stage.addEventListener('wheel', (e) => {
    if (!source) return;
    e.preventDefault();
    zoom(Math.exp(e.deltaY * 0.0015));
    encodeSoon();
  }, { passive: false });
  input('crop-size').addEventListener('input', () => {
    const i = info();
    if (!source || !source.crop || !i) return;
    const maxW = Math.min(source.canvas.width, source.canvas.height * (i.width / i.height));
    zoom((Number(input('crop-size').value) * maxW) / source.crop.w);
    encodeSoon();
  });
  input('crop-angle').addEventListener('input', () => {
    if (!source || !source.crop) return;
    source.crop.angle = (Number(input('crop-angle').value) * Math.PI) / 180;
    place();
    encodeSoon();
  });
  box.addEventListener('keydown', (e) => {
    if (!source || !source.crop) return;
    const step = (e.shiftKey ? 10 : 2) * scale();
    const c = source.crop;
    /** @type {Record<string, number[]>} */
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) {
      c.cx += moves[e.key][0];
      c.cy += moves[e.key][1];
    } else if (e.key === '[' || e.key === ']') {
      c.angle += ((e.key === ']' ? 1 : -1) * Math.PI) / 180;
    } else if (e.key === '+' || e.key === '=') zoom(1 / 1.05);
    else if (e.key === '-') zoom(1.05);
    else return;
    e.preventDefault();
    place();
    encodeSoon();
  });

  store.subscribe(['client'], (s) => {
    const i = s.client ? s.client.info : null;
    if (!i) return;
    $('you-input-cap').textContent = `What the model sees (${i.width}×${i.height}, ${i.config.n_bits}-bit)`;
    $('invert-row').hidden = i.channels !== 1;
    placeEyeGuide();
    setupScale();
    clear();
    if (source) { resetCrop(); findFaces(); }
  });
  store.subscribe(['you'], (s) => {
    for (const id of ['you-edit', 'you-a', 'you-b']) button(id).disabled = !s.you;
  });
}
