#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh Debian 12 machine.
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need_apt+=(mesa-vulkan-drivers)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
# Both browser builds (pkg/, and pkg-mt/ with atomics) rebuild std on nightly Rust: they need
# the nightly toolchain's std sources, and pkg-mt/ its clippy (which compiles that build).
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component list --installed --toolchain nightly | grep -q '^rust-src' || rustup component add rust-src --toolchain nightly
rustup component list --installed --toolchain nightly | grep -q '^clippy' || rustup component add clippy --toolchain nightly
wasm-pack --version 2>/dev/null | grep -q ' 0.15.1$' || cargo install wasm-pack --version 0.15.1 --locked
wasm-bindgen --version 2>/dev/null | grep -q ' 0.2.130$' || cargo install wasm-bindgen-cli --version 0.2.130

# playwright-core drives Debian's chromium for the page's end-to-end test (no browser
# download); typescript and eslint check the page's JavaScript. Versions: package-lock.json.
if [ -f package.json ] && { [ ! -d node_modules/playwright-core ] || [ ! -x node_modules/.bin/tsc ] || [ ! -x node_modules/.bin/eslint ]; }; then
  npm ci --no-audit --no-fund --silent || npm install --no-audit --no-fund --silent
fi
echo "setup: done"
