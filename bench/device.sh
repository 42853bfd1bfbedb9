#!/usr/bin/env bash
# The real-GPU run: native `glow bench` of the shipped face model (64 px) and of a model of
# OpenAI's CelebA-HQ size (256 px, 6 levels x 32 steps, width 512, random weights) at batch
# 1 and 16, through wgpu (Vulkan; GL where Vulkan finds only a software adapter), then the
# browser bench in Chromium if Chromium and a GPU are there. Every result is a JSON file
# naming its adapter, under $OUT (default bench/results/device-<time>/), plus summary.txt.
#
#   bench/device.sh            the whole run
#   bench/device.sh --quick    one run each at batch 1, and at 256 px only the first step of
#                              level 0 (bench/celebahq256-slice.json): the same code paths in
#                              minutes on lavapipe, where the whole 256 px model takes more
#                              than the 540 s allowed per bench
#
# Uses $GLOW_BIN, else target/release/glow, else builds it (cargo). Needs nothing else; the
# browser part also needs node, node_modules/playwright-core and a built dist/.
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
OUT="${OUT:-bench/results/device-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
log() { echo "$*" | tee -a "$OUT/summary.txt"; }

GLOW="${GLOW_BIN:-target/release/glow}"
if [ ! -x "$GLOW" ]; then
  log "building $GLOW"
  cargo build --release --bin glow >"$OUT/build.log" 2>&1 || { log "build failed: see $OUT/build.log"; exit 1; }
fi
log "machine: $(uname -srm), $(nproc) cores; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"

# Which wgpu backend reaches a hardware adapter: the default (Vulkan first), else GL.
# (An empty WGPU_BACKEND would ask wgpu for no backend at all: set it only when named.)
probe() { env ${1:+WGPU_BACKEND=$1} timeout 120 "$GLOW" bench --model models/mnist-32x32-small --backend gpu --batch 1 --runs 1 2>/dev/null | grep -m1 '"adapter"'; }
# BACKENDS: default or gl (a hardware adapter through that backend), or software (none found:
# the default backend's software adapter is measured).
BACKENDS=""
default=$(probe "" || true)
log "default adapter: ${default:-none}"
if [ -n "$default" ] && ! echo "$default" | grep -q 'Cpu'; then
  BACKENDS="default"
else
  gl=$(probe gl || true)
  log "GL adapter: ${gl:-none}"
  if [ -n "$gl" ] && ! echo "$gl" | grep -q 'Cpu'; then BACKENDS="gl"; else BACKENDS="software"; log "no hardware adapter: measuring the software one"; fi
fi

# bench NAME MODEL_ARGS BATCH RUNS: one `glow bench` on the GPU and one on the CPU engine.
bench() {
  local name=$1 model=$2 batch=$3 runs=$4 wb=""
  [ "$BACKENDS" = "gl" ] && wb=gl
  for engine in gpu cpu; do
    # The CPU engine does not batch: its figures are taken at batch 1 (and at 256 px not in
    # --quick mode: two warm-ups and a run of encode and decode take minutes there).
    if [ "$engine" = cpu ] && { [ "$batch" != 1 ] || { [ $QUICK = 1 ] && [ "$name" = celebahq256 ]; }; }; then continue; fi
    local f="$OUT/$name-b$batch-$engine.json"
    local t0=$SECONDS
    # shellcheck disable=SC2086
    if env ${wb:+WGPU_BACKEND=$wb} timeout 540 "$GLOW" bench $model --backend "$engine" --batch "$batch" --runs "$runs" >"$f" 2>"$f.stderr"; then
      log "$name batch $batch $engine: $(grep -o '"ms_per_image": [0-9.]*' "$f" | head -2 | tr '\n' ' ')($((SECONDS - t0)) s) on $(grep -m1 -o '"adapter": "[^"]*"' "$f")"
    else
      log "$name batch $batch $engine: failed or timed out ($((SECONDS - t0)) s): $(tail -1 "$f.stderr")"
    fi
  done
}

if [ $QUICK = 1 ]; then
  bench celeba64 "--model models/celeba-64x64-additive" 1 1
  bench celebahq256-slice "--model bench/celebahq256-slice.json --random" 1 1
else
  bench celeba64 "--model models/celeba-64x64-additive --profile --kernels" 1 10
  bench celeba64 "--model models/celeba-64x64-additive" 16 10
  bench celebahq256 "--model bench/celebahq256.json --random --profile" 1 3
  bench celebahq256 "--model bench/celebahq256.json --random" 16 2
fi

# The browser: Chromium's WebGPU on the real GPU (no SwiftShader flags), if all is there.
# (Without a hardware adapter natively, Chromium without SwiftShader has none either: skipped.)
if [ "$BACKENDS" = software ]; then
  log "browser bench skipped: no hardware adapter (the page's software-adapter figures come from bench/browser.mjs)"
elif command -v chromium >/dev/null && [ -d node_modules/playwright-core ] && [ -f dist/bench.html ]; then
  if REAL_GPU=1 timeout 300 node bench/browser.mjs models/celeba-64x64-additive 5 1,16 webgpu,cpu >"$OUT/browser-celeba64.json" 2>"$OUT/browser.stderr"; then
    log "browser: $(grep -o '"adapter[^,]*' "$OUT/browser-celeba64.json" | head -1)"
  else
    log "browser bench failed: $(grep -m1 -i 'error' "$OUT/browser.stderr" || tail -1 "$OUT/browser.stderr")"
  fi
else
  log "browser bench skipped (needs chromium, node_modules/playwright-core and dist/)"
fi
log "results in $OUT"
