#!/usr/bin/env bash
# Native comparison with onnxruntime, one command from the repo root:
#   bash bench/ort-native.sh [MODEL_DIR] [BATCHES] [THREADS]
# (defaults: models/celeba-64x64-additive 1,8 1,2). Creates .venv from bench/requirements.txt if
# it has no onnxruntime, builds `glow` (release), exports the model folded to ONNX
# (tools/export_onnx.py --check: against the float64 oracle) into target/onnx/, then runs
# bench/ort_native.py: onnxruntime's CPU provider against our CPU engine, decode and encode,
# per batch and thread count. Figures depend on what else runs: pause other work first.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-models/celeba-64x64-additive}"
BATCHES="${2:-1,8}"
THREADS="${3:-1,2}"
PY=.venv/bin/python

if ! [ -x "$PY" ] || ! "$PY" -c "import onnxruntime, onnx, torch" 2>/dev/null; then
  echo "== creating .venv (bench/requirements.txt; torch from PyPI is ~3 GB)" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q -r bench/requirements.txt
fi

echo "== building glow (release)" >&2
cargo build --release --bin glow -q

OUT="target/onnx/$(basename "$MODEL")"
mkdir -p "$OUT"
for dir in decode encode; do
  for b in ${BATCHES//,/ }; do
    f="$OUT/${dir}_b${b}.onnx"
    # Re-export when the model or the exporter is newer than the file.
    if ! [ -f "$f" ] || [ "$MODEL/weights.safetensors" -nt "$f" ] || [ tools/export_onnx.py -nt "$f" ]; then
      "$PY" tools/export_onnx.py "$MODEL" "$f" --direction "$dir" --batch "$b" --check >&2
    fi
  done
done

"$PY" bench/ort_native.py --model "$MODEL" --onnx "$OUT" --glow target/release/glow --batches "$BATCHES" --threads "$THREADS"
