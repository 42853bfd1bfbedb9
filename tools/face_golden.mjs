// Golden outputs of face-api itself for the face port's test (tests/face.rs): runs
// @vladmandic/face-api 1.7.15's TinyFaceDetector (defaults: inputSize 416, scoreThreshold 0.5)
// and FaceLandmark68TinyNet on the scenes of tests/fixtures/face/scenes.json, on tfjs's plain
// JavaScript CPU backend, and writes tests/fixtures/face/golden.json. Run once, by hand,
// outside CI (it needs face-api and tfjs installed somewhere outside the repository):
//
//   mkdir -p /tmp/faceapi/run && cd /tmp/faceapi/run && npm init -y &&
//     npm install @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 @vladmandic/face-api@1.7.15
//   FACE_SCENES_OUT=/tmp/faceapi/scenes cargo test --test face -- --ignored write_scenes
//   node tools/face_golden.mjs /tmp/faceapi/run /tmp/faceapi/scenes /tmp/faceapi/package/model
//
// (the last argument is the package's model/ folder: `npm pack @vladmandic/face-api@1.7.15` and
// untar it, or node_modules/@vladmandic/face-api/model). The scenes are composed by the Rust test
// (JPEG decoding bit-identical to PIL's) and handed over as raw RGB, with their SHA-256 recorded
// so the test knows it checks the same pixels.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

const [installDir, scenesDir, modelDir] = process.argv.slice(2);
if (!modelDir) {
  console.error('usage: node tools/face_golden.mjs FACE_API_INSTALL_DIR SCENES_DIR MODEL_DIR');
  process.exit(2);
}
const require = createRequire(join(installDir, 'package.json'));
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const { tf } = faceapi;
const repo = new URL('..', import.meta.url).pathname;

await tf.setBackend('cpu');
await tf.ready();
await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
await faceapi.nets.faceLandmark68TinyNet.loadFromDisk(modelDir);

const spec = JSON.parse(readFileSync(join(repo, 'tests/fixtures/face/scenes.json'), 'utf8'));
const pkg = JSON.parse(readFileSync(require.resolve('@vladmandic/face-api/package.json'), 'utf8'));
const round = (v) => Math.round(v * 1e6) / 1e6;
const out = {
  about: 'face-api results on the scenes of scenes.json (tools/face_golden.mjs). box: detection.box [x, y, width, height] in scene pixels; '
    + 'landmarks: face-api\'s landmarks.positions (shifted by the unfloored box corner); landmarks_in_crop: unshiftedLandmarks.positions, '
    + 'relative to the crop face-api cut (the box clipped to the scene, each of x, y, width, height floored). Values rounded to 1e-6.',
  face_api: `${pkg.name}@${pkg.version}`,
  tfjs: tf.version.tfjs,
  backend: tf.getBackend(),
  options: { inputSize: 416, scoreThreshold: 0.5 },
  scenes: [],
};
for (const scene of spec.scenes) {
  const rgb = readFileSync(join(scenesDir, `${scene.name}.rgb`));
  if (rgb.length !== scene.width * scene.height * 3) throw new Error(`${scene.name}: ${rgb.length} bytes`);
  const t = tf.tensor3d(new Uint8Array(rgb), [scene.height, scene.width, 3], 'int32');
  const found = await faceapi.detectAllFaces(t, new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 }))
    .withFaceLandmarks(true);
  t.dispose();
  out.scenes.push({
    name: scene.name,
    rgb_sha256: createHash('sha256').update(rgb).digest('hex'),
    faces: found.map((f) => ({
      box: [f.detection.box.x, f.detection.box.y, f.detection.box.width, f.detection.box.height].map(round),
      score: round(f.detection.score),
      landmarks: f.landmarks.positions.map((p) => [round(p.x), round(p.y)]),
      landmarks_in_crop: f.unshiftedLandmarks.positions.map((p) => [round(p.x), round(p.y)]),
    })),
  });
  console.error(`${scene.name}: ${found.length} face(s)`, found.map((f) => f.detection.score.toFixed(4)).join(' '));
}
writeFileSync(join(repo, 'tests/fixtures/face/golden.json'), `${JSON.stringify(out)}\n`);
