#!/usr/bin/env bash
# The project's one entry point.
#   ./build.sh serve   build the static site into dist/ and serve it on http://localhost:8080
#   ./build.sh build   build the static site into dist/ (any static host can serve it)
#   ./build.sh test    install what is missing, then run every test (native, browser, page)
#   ./build.sh bench   native benchmark of the default model (JSON)
set -euo pipefail
cd "$(dirname "$0")"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
PORT="${PORT:-8080}"

# The models that ship with the page (directories under models/), default first.
shipped_models() {
  if [ -f models/SHIPPED ]; then grep -v '^#' models/SHIPPED | sed '/^$/d'; fi
}

# The wasm builds of the crate, all on nightly Rust with std rebuilt for their target
# features (rust-src, installed by scripts/setup.sh): `wasm_build OUT TARGET_DIR FEATURES
# [rustc arguments]`. RUSTFLAGS replaces .cargo/config.toml's rustflags, hence simd128 again.
# The rustc arguments go to this crate only (`cargo rustc`), so changing them does not rebuild
# std and the dependencies. WRAPPER, if set, is the rustc wrapper (clippy-driver).
wasm_build() {
  local out=$1 dir=$2 features=$3
  shift 3
  RUSTFLAGS="-C target-feature=$features" RUSTC_WORKSPACE_WRAPPER="${WRAPPER:-}" \
    cargo +nightly rustc --release --lib --target wasm32-unknown-unknown -Z build-std=std,panic_abort \
      --target-dir "$dir" -- "$@"
  wasm-bindgen --target web --out-dir "$out" "$dir/wasm32-unknown-unknown/release/glow_web.wasm"
}

# Each wasm build comes twice: as is, and with relaxed SIMD (`-relaxed`), whose
# `f32x4.relaxed_madd` V8 compiles to one FMA instruction (README "Relaxed SIMD": the CPU
# engine 1.20-1.31x faster by medians). A browser without relaxed SIMD refuses that module as a
# whole, so the page loads the `-relaxed` build only where a probe validates
# (www/glow/builds.js). clippy-driver compiles the relaxed builds, so the relaxed-only kernel
# is linted as it builds.
clippy_driver() { rustup which --toolchain nightly clippy-driver; }

# The plain build (pkg/: one thread; WebGPU, and the CPU engine where the page is not
# cross-origin isolated). Built like pkg-mt/ rather than by stable's wasm-pack with its
# prebuilt std: measured in one page, calls alternating, the same engine decoded 1.25-1.35x
# faster this way (medians of 30 calls, two runs; identical pixels).
build_plain() {
  wasm_build pkg target/plain +simd128 -D warnings
  WRAPPER="$(clippy_driver)" wasm_build pkg-relaxed target/plain-relaxed +simd128,+relaxed-simd -D warnings
}

# The threaded CPU engine for the browser (pkg-mt/, README "Speed"): std rebuilt with atomics,
# one shared memory imported by every thread's instance (up to 4 GiB, as the plain build may
# grow to), and the TLS exports that wasm-bindgen needs to give each thread its own
# thread-locals and stack. clippy-driver compiles it, so the threaded-only code (cfg
# target_feature = "atomics") is linted in the same build.
MT_LINK=(-C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296
  -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size
  -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base)
build_mt() {
  WRAPPER="$(clippy_driver)" wasm_build pkg-mt target/mt +atomics,+bulk-memory,+simd128 -D warnings "${MT_LINK[@]}"
  WRAPPER="$(clippy_driver)" wasm_build pkg-mt-relaxed target/mt-relaxed +atomics,+bulk-memory,+simd128,+relaxed-simd \
    -D warnings "${MT_LINK[@]}"
}

build_site() {
  build_plain
  build_mt
  rm -rf dist && mkdir -p dist/models
  cp -r www/. dist/
  for p in pkg pkg-relaxed pkg-mt pkg-mt-relaxed; do
    mkdir -p "dist/$p" && cp "$p/glow_web.js" "$p/glow_web_bg.wasm" "dist/$p/"
  done
  for m in $(shipped_models); do
    mkdir -p "dist/models/$m"
    for f in model.json weights.safetensors attributes.safetensors; do
      [ -f "models/$m/$f" ] && cp "models/$m/$f" "dist/models/$m/"
    done
  done
  # The face detector and landmark nets the page aligns photos with (loaded on the first photo).
  mkdir -p dist/models/face
  cp models/face/*.safetensors models/face/LICENSE-face-api.txt dist/models/face/ 2>/dev/null || true
  # The page reads the list of models (default first) from here.
  { echo "["; first=1; for m in $(shipped_models); do
      [ $first = 1 ] || echo ","; first=0; printf '  "models/%s"' "$m"; done; echo; echo "]"; } > dist/models/index.json
  echo "built dist/ ($(du -sh dist | cut -f1))"
}

case "${1:-}" in
  build)
    bash scripts/setup.sh
    build_site
    ;;
  serve)
    bash scripts/setup.sh
    build_site
    # With the COOP/COEP headers that let the page use WebAssembly threads.
    exec python3 scripts/serve.py --port "$PORT" dist
    ;;
  test)
    bash scripts/setup.sh
    echo "== lint (clippy, native and wasm32, warnings are errors)"
    cargo clippy --all-targets -- -D warnings
    cargo clippy --target wasm32-unknown-unknown --all-targets -- -D warnings
    echo "== threaded wasm build (nightly, shared memory; linted by clippy as it builds)"
    build_mt
    echo "== JavaScript: type check (tsc, against the engine's wasm-bindgen types) and eslint"
    build_plain
    npx --no-install tsc -p tsconfig.json
    npx --no-install eslint .
    echo "== native tests (lavapipe and the CPU engine)"
    cargo test
    echo "== the prepared real-GPU run, quick, on this machine's adapter (bench/device.sh)"
    device_out=$(mktemp -d)
    OUT="$device_out" bash bench/device.sh --quick
    if grep -q "failed" "$device_out/summary.txt"; then echo "bench/device.sh --quick: a bench failed (above)"; exit 1; fi
    echo "== browser tests (headless Chromium WebGPU)"
    CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=600 \
      wasm-pack test --headless --chrome
    echo "== page end-to-end (headless Chromium)"
    build_site
    node tests/e2e/page.test.mjs
    node tests/e2e/widget.test.mjs
    ;;
  bench)
    cargo run --release --bin glow -- bench --model "models/$(shipped_models | head -1)" --batch "${2:-1}"
    ;;
  *)
    sed -n '2,7p' "$0"; exit 2
    ;;
esac
