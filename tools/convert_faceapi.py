#!/usr/bin/env python3
"""Converts two networks of the npm package @vladmandic/face-api 1.7.15 (MIT) into the
safetensors files under models/face/ that src/face/ loads.

    mkdir -p /tmp/faceapi && cd /tmp/faceapi && npm pack @vladmandic/face-api@1.7.15 && tar xzf vladmandic-face-api-1.7.15.tgz
    python3 tools/convert_faceapi.py /tmp/faceapi/package models/face

Standard library only. For each net it reads `model/<net>-weights_manifest.json` and the
`.bin` shards it lists (tfjs's weights format: the tensors' bytes concatenated in manifest
order across the shards), and writes `<out>/<net>.safetensors` with the tensors under their
face-api names ("conv0/filters", ...), shapes as in the manifest (HWIO convs, [in, out] fc).

Storage follows what the package holds, losslessly:
* uint8-quantized tensors (all of them in 1.7.15) are stored as their U8 codes, plus a
  `<name>.quant` F64 [2] tensor holding (scale, min); the loader computes
  `f32(code * scale + min)` in f64, exactly what tfjs's `decodeWeights` does. This is 4x
  smaller than f32 (and 2x smaller than f16) and gives bit-identical weights.
* uint16-quantized and float16 tensors are dequantized to F32 (none in 1.7.15).
* float32 tensors are copied as F32.
"""
import json
import math
import os
import struct
import sys

NETS = ["tiny_face_detector_model", "face_landmark_68_tiny_model"]
OUT_NAMES = {"tiny_face_detector_model": "tiny_face_detector", "face_landmark_68_tiny_model": "face_landmark_68_tiny"}


def half_to_float(h):
    return struct.unpack("<e", struct.pack("<H", h))[0]


def read_net(model_dir, net):
    with open(os.path.join(model_dir, net + "-weights_manifest.json")) as f:
        manifest = json.load(f)
    tensors = []  # (name, dtype, shape, bytes)
    for group in manifest:
        data = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            name, shape, dtype = w["name"], [int(s) for s in w["shape"]], w["dtype"]
            n = math.prod(shape)
            q = w.get("quantization")
            if dtype != "float32":
                raise SystemExit(f"{net}: {name}: dtype {dtype} is not handled (only float32 weights)")
            if q is None:
                raw = data[off:off + 4 * n]
                off += 4 * n
                tensors.append((name, "F32", shape, raw))
            elif q["dtype"] == "uint8":
                raw = data[off:off + n]
                off += n
                tensors.append((name, "U8", shape, raw))
                tensors.append((name + ".quant", "F64", [2], struct.pack("<2d", q["scale"], q["min"])))
            elif q["dtype"] == "uint16":
                codes = struct.unpack(f"<{n}H", data[off:off + 2 * n])
                off += 2 * n
                vals = [c * q["scale"] + q["min"] for c in codes]
                tensors.append((name, "F32", shape, struct.pack(f"<{n}f", *vals)))
            elif q["dtype"] == "float16":
                codes = struct.unpack(f"<{n}H", data[off:off + 2 * n])
                off += 2 * n
                tensors.append((name, "F32", shape, struct.pack(f"<{n}f", *[half_to_float(c) for c in codes])))
            else:
                raise SystemExit(f"{net}: {name}: quantization {q['dtype']} is not handled")
            if len(tensors[-1][3]) == 0 or off > len(data):
                raise SystemExit(f"{net}: {name}: the shards end early")
        if off != len(data):
            raise SystemExit(f"{net}: {len(data) - off} bytes left over after the last tensor")
    return tensors


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    off = 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, raw in tensors:
            f.write(raw)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    pkg, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(pkg, "package.json")) as f:
        meta = json.load(f)
    if meta["name"] != "@vladmandic/face-api":
        raise SystemExit(f"{pkg} is {meta['name']}, not @vladmandic/face-api")
    os.makedirs(out, exist_ok=True)
    for net in NETS:
        tensors = read_net(os.path.join(pkg, "model"), net)
        params = sum(math.prod(s) for n, _, s, _ in tensors if not n.endswith(".quant"))
        path = os.path.join(out, OUT_NAMES[net] + ".safetensors")
        write_safetensors(path, tensors, {
            "format": "face-api-weights/1",
            "source": f"npm {meta['name']}@{meta['version']}, model/{net}-weights_manifest.json",
            "licence": "MIT (see LICENSE-face-api.txt)",
        })
        print(json.dumps({"net": net, "out": path, "tensors": len(tensors), "parameters": params, "bytes": os.path.getsize(path)}))


if __name__ == "__main__":
    main()
