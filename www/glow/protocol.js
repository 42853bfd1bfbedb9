// The messages between GlowClient (client.js, on the page) and the engine worker
// (engine-worker.js). Types only; nothing here runs.
//
// Page -> worker                           Worker -> page
//   {type:'open', id, source, backend, batch, threads}
//                                            {type:'progress', id, loaded, total}
//   {type:'adopt', id, files, backend, threads} {type:'opened', id, info, files?}
//   {type:'call', id, op, args, priority}    {type:'chunk', id, first, count, rgba}
//   {type:'cancel', id}                      {type:'done', id, value}
//                                            {type:'error', id, error: {name, message}}
//
// 'open' downloads a model directory (through Cache Storage), or reads one from a folder the
// visitor picked (File objects; nothing is uploaded), and loads it; 'adopt' loads
// one from bytes another worker already has (without WebAssembly threads, the CPU engine
// runs one worker per core). `threads` is the CPU engine's threads in that worker: 0 for
// one per core (the threaded build, pkg-mt/, where the page is cross-origin isolated), 1 for
// the plain build.
// Engine calls ('decode', 'encode', 'bitsPerDim') queue one at a time, highest priority
// first; a decode of several images runs a chunk at a time and answers each chunk as it
// is done, so a higher-priority call (a slider move) overtakes a long one (a blend strip)
// between chunks, and a 'cancel' stops it there. Latent math (sampleEps, manipulate, mix,
// interpolate, teach, forget, quantizeInput) is answered at once: it never waits for the GPU.

/**
 * @typedef {'auto' | 'webgpu' | 'cpu'} BackendChoice
 *
 * @typedef {Object} ModelInfo
 * @property {string} url           the model directory's absolute URL (or the picked folder's name)
 * @property {string} name
 * @property {number} width
 * @property {number} height
 * @property {number} channels
 * @property {number} dim           values per image in eps
 * @property {number} levels
 * @property {number[]} layout      [offset0, length0, offset1, length1, ...] per level
 * @property {'webgpu' | 'cpu'} backend
 * @property {string} reason        why this backend (from the engine)
 * @property {string} gpuWeights    on WebGPU how the conv weights are stored, e.g. "f16 (11084544 bytes)"; '' on the CPU engine
 * @property {string} adapter       a readable adapter (or CPU) name
 * @property {boolean} software     whether the WebGPU adapter is a software one
 * @property {string} webgpuProblem why WebGPU cannot be used here ('' when it can)
 * @property {string[]} attributeNames
 * @property {any} config           model.json
 * @property {number} bytes         bytes downloaded (or read from the cache)
 * @property {boolean} cached       whether every file came from Cache Storage
 * @property {number} batch         images per engine call
 * @property {number} threads       the CPU engine's threads in this worker (0 on WebGPU)
 * @property {string} threadsWhy    why that many threads ('' on WebGPU)
 *
 * @typedef {{ config: string, weights: Uint8Array, attributes?: Uint8Array }} ModelFiles
 *
 * @typedef {{ name: string, message: string }} WireError
 *
 * @typedef {'decode' | 'encode' | 'bitsPerDim' | 'sampleEps' | 'manipulate' | 'mix' |
 *   'interpolate' | 'teachDirection' | 'forgetDirection' | 'quantizeInput' | 'detectFaces' |
 *   'alignedCrop'} Op
 *
 * @typedef {{url: string} | {files: File[]}} ModelSource
 *   a model directory's URL, or the files of a folder the visitor picked
 *
 * @typedef {{type: 'open', id: number, source: ModelSource, backend: BackendChoice, batch: number, threads: number}
 *   | {type: 'adopt', id: number, files: ModelFiles, backend: BackendChoice, threads: number}
 *   | {type: 'call', id: number, op: Op, args: any[], priority: number}
 *   | {type: 'cancel', id: number}} ToWorker
 *
 * @typedef {ToWorker extends infer T ? (T extends ToWorker ? Omit<T, 'id'> : never) : never} ToWorkerBody
 *   a message before the client numbers it
 *
 * @typedef {{type: 'progress', id: number, loaded: number, total: number}
 *   | {type: 'opened', id: number, info: ModelInfo, files?: ModelFiles}
 *   | {type: 'chunk', id: number, first: number, count: number, rgba: Uint8ClampedArray}
 *   | {type: 'done', id: number, value: any}
 *   | {type: 'error', id: number, error: WireError}} FromWorker
 */

export {};
