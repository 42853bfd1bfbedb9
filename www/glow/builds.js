// @ts-check
// Which of the engine's four wasm builds (build.sh) to load here: plain (pkg/) or threaded
// (pkg-mt/), each with relaxed SIMD (`-relaxed`) where this browser validates it. The relaxed
// builds' CPU kernel uses `f32x4.relaxed_madd`, one FMA instruction where the CPU has one
// (README "Speed"); a browser without relaxed SIMD refuses such a module as a whole, so the
// choice is made before loading, by validating a one-instruction module.

/** A module of one function `() -> v128` that returns `f32x4.relaxed_madd` of three zero vectors. */
const zero = [0xfd, 0x0c, ...new Array(16).fill(0)]; // v128.const 0
const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x85, 0x02, 0x0b]; // no locals; f32x4.relaxed_madd (0xfd 0x105); end
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, body.length + 2, 0x01, body.length, ...body, // code section
]);

/** Whether this browser runs relaxed SIMD. */
export const RELAXED_SIMD = (() => {
  try {
    return WebAssembly.validate(PROBE);
  } catch {
    return false;
  }
})();

/**
 * The URL of the build's JS module (its wasm sits beside it).
 * @param {boolean} threaded  the threaded build (pkg-mt/), else the plain one (pkg/)
 * @param {boolean} [relaxed]  relaxed SIMD (default: where this browser has it)
 */
export function buildUrl(threaded, relaxed = RELAXED_SIMD) {
  return new URL(`../pkg${threaded ? '-mt' : ''}${relaxed ? '-relaxed' : ''}/glow_web.js`, import.meta.url).href;
}
