#!/usr/bin/env python3
"""Attribute directions in eps space for a CelebA model (OpenAI's method).

    OMP_NUM_THREADS=1 .venv/bin/python tools/directions.py --model models/NAME [--run-dir DIR]

Encodes every training image (the identity-disjoint split of tools/train.py; the test
identities are not used) with the engine's deterministic encoding (bin-centre
dequantization, no flip), and for each of the 40 CelebA attributes takes
mean(eps | attribute = +1) - mean(eps | attribute = -1). Writes
`attributes.safetensors` (one tensor `directions` [40, D], f16) and the
`"attributes": {"file", "names"}` entry of model.json (docs/FORMAT.md). The weights used
are the f16 values of the model directory, widened to float32.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402


def model_from_dir(model_dir):
    meta, cfg, model = T.load_model_dir(model_dir)
    model.eval()
    return meta, cfg, model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory (models/NAME)")
    ap.add_argument("--run-dir", default=None, help="where the preprocessed CelebA cache lives (optional)")
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(1)

    meta, cfg, model = model_from_dir(a.model)
    assert meta["image"] == {"height": 64, "width": 64, "channels": 3}, "directions are for the CelebA 64x64 models"
    data = T.load_dataset("celeba", a.run_dir)
    attr_names, table = T.celeba_attributes()
    train_u8 = data["train"]
    files = [data["names"][i] for i in data["train_idx"]]
    A = np.stack([table[f] for f in files]) > 0  # [N, 40] bool
    N, D = len(files), model.D
    pos_sum = torch.zeros(len(attr_names), D, dtype=torch.float64)
    all_sum = torch.zeros(D, dtype=torch.float64)
    t0 = time.time()
    bpd_sum = 0.0
    with torch.no_grad():
        for i in range(0, N, a.batch):
            enc = model.encode(T.to_x(train_u8[i:i + a.batch], cfg["n_bits"]))
            eps = enc["eps"].double()
            bpd_sum += enc["bpd"].double().sum().item()
            pos_sum += torch.from_numpy(A[i:i + a.batch].astype(np.float64)).t() @ eps
            all_sum += eps.sum(0)
            if (i // a.batch) % 20 == 0:
                print(f"  {i + len(eps)}/{N} images encoded ({time.time() - t0:.0f} s)", flush=True)
    n_pos = torch.from_numpy(A.sum(0).astype(np.float64))
    n_neg = N - n_pos
    assert (n_pos > 0).all() and (n_neg > 0).all()
    mean_pos = pos_sum / n_pos[:, None]
    mean_neg = (all_sum[None, :] - pos_sum) / n_neg[:, None]
    directions = (mean_pos - mean_neg).float()
    save_file({"directions": np.ascontiguousarray(directions.numpy().astype(np.float16))},
              os.path.join(a.model, "attributes.safetensors"))
    os.chmod(os.path.join(a.model, "attributes.safetensors"), 0o644)
    meta["attributes"] = {
        "file": "attributes.safetensors",
        "names": attr_names,
        "method": f"mean eps of positives minus mean eps of negatives over the {N} training images "
                  "(bin-centre encoding, no flips), OpenAI's method; f16",
        "positives": [int(v) for v in n_pos.tolist()],
    }
    tmp = os.path.join(a.model, "model.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(a.model, "model.json"))
    norms = directions.norm(dim=1)
    print(f"train bits/dim (bin centre) {bpd_sum / N:.4f}; {len(attr_names)} directions of length {D}")
    for name, n, p in zip(attr_names, norms.tolist(), n_pos.tolist()):
        print(f"  {name:20s} |d| {n:7.2f}  positives {int(p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
