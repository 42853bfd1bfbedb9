"""Pixels that PIL (libjpeg-turbo, ISLOW IDCT, fancy upsampling) decodes from JPEG files, as a
fixture for tests/image_io.rs: the Rust decoder must give the same bytes.

Writes tests/fixtures/jpeg/pil_decoded.json with, for each file, its size and the sha256 and
per-channel sums of the RGB bytes that `Image.open(f).convert("RGB").tobytes()` gives, and the
Pillow and libjpeg-turbo versions that made them. Two sets of files:

  * a few CelebA files of the shared data (read from ../shared/data/... relative to the repo
    root, never copied into the repo: only their names and hashes are written);
  * small synthetic JPEGs that this script encodes with PIL into tests/fixtures/jpeg/ (odd
    sizes, 4:4:4 / 4:2:2 / 4:2:0 chroma, baseline and progressive, grayscale), so that edge
    blocks and each upsampling path are checked without the shared data.

Usage (repo root):  python tools/jpeg_hashes.py [--data DIR]   (needs pillow)
"""

import argparse
import hashlib
import json
import math
import os

import PIL
from PIL import Image, features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "jpeg")
CELEBA = ["000001.jpg", "000002.jpg", "000100.jpg", "001234.jpg", "004321.jpg", "009999.jpg"]

# name, (width, height), encoder options
SYNTHETIC = [
    ("s444_17x9.jpg", (17, 9), dict(subsampling=0, quality=90)),
    ("s422_17x9.jpg", (17, 9), dict(subsampling=1, quality=90)),
    ("s420_17x9.jpg", (17, 9), dict(subsampling=2, quality=90)),
    ("s444_45x31.jpg", (45, 31), dict(subsampling=0, quality=85)),
    ("s420_45x31.jpg", (45, 31), dict(subsampling=2, quality=85)),
    ("s420_90x67.jpg", (90, 67), dict(subsampling=2, quality=75)),
    ("s444_90x67_progressive.jpg", (90, 67), dict(subsampling=0, quality=80, progressive=True)),
    ("s420_89x109_progressive.jpg", (89, 109), dict(subsampling=2, quality=95, progressive=True)),
    ("gray_33x21.jpg", (33, 21), dict(quality=90)),
]


def synthetic_image(name, size):
    """Smooth colour ramps plus a deterministic high-frequency texture (no RNG: the same image
    on every machine), so every DCT frequency and both chroma channels carry signal."""
    w, h = size
    img = Image.new("RGB", size)
    px = []
    for y in range(h):
        for x in range(w):
            t = (x * 7919 + y * 104729 + x * y * 31) % 97  # hash-like texture, 0..96
            r = int(127 + 100 * math.sin(x / (w + 1) * 5.0) + (t - 48) * 0.6)
            g = int(40 + 180 * y / max(h - 1, 1) + ((x + y) % 5) * 6)
            b = int(128 + 110 * math.cos((x - y) / 6.0) * (1 if (x // 4 + y // 3) % 2 else -0.5))
            px.append(tuple(min(255, max(0, v)) for v in (r, g, b)))
    img.putdata(px)
    return img.convert("L") if name.startswith("gray") else img


def entry(name, path):
    img = Image.open(path)
    rgb = img.convert("RGB").tobytes()
    sums = [sum(rgb[c::3]) for c in range(3)]
    return {"name": name, "size": list(img.size), "mode": img.mode,
            "sha256": hashlib.sha256(rgb).hexdigest(), "channel_sums": sums}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "celeba_9k_89x109", "images"))
    args = ap.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)
    celeba = [entry(n, os.path.join(args.data, n)) for n in CELEBA]
    synthetic = []
    for name, size, opts in SYNTHETIC:
        path = os.path.join(OUT_DIR, name)
        synthetic_image(name, size).save(path, "JPEG", **opts)
        synthetic.append(entry(name, path))
    out = {
        "made_by": "tools/jpeg_hashes.py",
        "decoder": "PIL Image.open(f).convert('RGB').tobytes()",
        "pillow": PIL.__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "celeba_dir": "../shared/data/celeba_9k_89x109/images (relative to the repo root)",
        "celeba": celeba,
        "synthetic": synthetic,
    }
    # One file per line, so a diff after regenerating shows which files changed.
    lines = []
    for k, v in out.items():
        if isinstance(v, list):
            rows = ",\n".join("  " + json.dumps(e) for e in v)
            lines.append(f" {json.dumps(k)}: [\n{rows}\n ]")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    with open(os.path.join(OUT_DIR, "pil_decoded.json"), "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {len(celeba)} CelebA + {len(synthetic)} synthetic entries to {OUT_DIR}/pil_decoded.json")


if __name__ == "__main__":
    main()
