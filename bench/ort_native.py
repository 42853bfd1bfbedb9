#!/usr/bin/env python3
"""Native head-to-head: onnxruntime (CPU execution provider) against our CPU engine
(`glow bench --backend cpu`), same model, decode and encode, per batch size and thread count.
Run through bench/ort-native.sh, which makes the venv, builds glow and exports the graphs.

    .venv/bin/python bench/ort_native.py --model M --onnx DIR --glow target/release/glow \
        [--batches 1,8] [--threads 1,2] [--rounds 5] [--runs 5]

DIR holds {decode,encode}_b{B}.onnx from tools/export_onnx.py (folded by default, see there).
Before timing, batch 1's decoded pixels from onnxruntime are compared with `glow decode` of the
same eps on our CPU engine. Timing: per (batch, threads), --rounds rounds, each of --runs timed
calls of onnxruntime (after 2 warm-up calls) and then one `glow bench --runs` (its own 2 warm-ups),
so that both see the same spells of a shared machine's speed (one long run of each was fair
only by luck: this VM's speed moves 2x within minutes). Per engine: the median over the rounds
of each round's median, and the best call; ms per image and GFLOP/s (the model's FLOP count, as
`glow bench` prints it). Prints one JSON object; the markdown table goes to stderr.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort


def call_ms(f, runs):
    """Two warm-up calls, then `runs` timed calls: (median, best) in ms."""
    f()
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times)), float(min(times))


def ort_session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def glow_json(glow, args):
    r = subprocess.run([glow, *args], check=True, capture_output=True, text=True)
    return r


def check_against_glow(a, cfg, d):
    """Batch 1: onnxruntime's decoded pixels against `glow decode` on our CPU engine."""
    from PIL import Image

    eps = np.random.default_rng(7).standard_normal((1, d)).astype(np.float32)
    s = ort_session(os.path.join(a.onnx, "decode_b1.onnx"), 1)
    (x,) = s.run(None, {"eps": eps, "temperature": np.array([0.7], np.float32)})
    theirs = np.clip(np.floor((x[0] + 0.5) * 256), 0, 255)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "eps.npy"), eps)
        png = os.path.join(tmp, "x.png")
        glow_json(a.glow, ["decode", "--model", a.model, "--backend", "cpu", "--temperature", "0.7",
                           os.path.join(tmp, "eps.npy"), "--out", png])
        ours = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64)
    c = cfg["image"]["channels"]
    ours = ours[..., :c] if c == 3 else ours[..., :1]
    diff = np.abs(ours - theirs)
    return {"pixels": int(diff.size), "differing": int((diff > 0).sum()), "max_levels": float(diff.max())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--glow", required=True)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=5, help="timed calls per engine and round")
    a = ap.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    with open(os.path.join(a.model, "model.json")) as f:
        cfg = json.load(f)
    H, W, c0 = cfg["image"]["height"], cfg["image"]["width"], cfg["image"]["channels"]
    d = H * W * c0
    info = json.loads(glow_json(a.glow, ["info", "--model", a.model]).stdout)
    gflop = info.get("gflop_per_image")
    out = {"model": cfg["name"], "onnxruntime": ort.__version__, "gflop_per_image": gflop,
           "check": check_against_glow(a, cfg, d), "rows": []}
    print(f"check: {out['check']}", file=sys.stderr)
    for b in batches:
        rng = np.random.default_rng(1)
        eps = rng.standard_normal((b, d)).astype(np.float32)
        temp = np.array([0.7], np.float32)
        for t in threads:
            dec = ort_session(os.path.join(a.onnx, f"decode_b{b}.onnx"), t)
            enc = ort_session(os.path.join(a.onnx, f"encode_b{b}.onnx"), t)
            (x,) = dec.run(None, {"eps": eps, "temperature": temp})
            # encode input: the decoded images at their bins' centres, as our engine gets them
            nb = cfg["n_bits"]
            pix = np.clip(np.floor((x + 0.5) * 256), 0, 255)
            xin = (np.floor(pix / 2 ** (8 - nb)) / 2 ** nb - 0.5 + 0.5 / 2 ** nb).astype(np.float32)
            row = {"batch": b, "threads": t, "rounds": a.rounds, "runs_per_round": a.runs}
            rounds = {k: [] for k in ("ort_decode", "ort_encode", "ours_decode", "ours_encode")}
            for _ in range(a.rounds):
                rounds["ort_decode"].append(call_ms(lambda: dec.run(None, {"eps": eps, "temperature": temp}), a.runs))
                rounds["ort_encode"].append(call_ms(lambda: enc.run(None, {"x": xin}), a.runs))
                ours = json.loads(glow_json(a.glow, ["bench", "--model", a.model, "--backend", "cpu", "--batch", str(b),
                                                     "--threads", str(t), "--runs", str(a.runs)]).stdout)
                for what in ("decode", "encode"):
                    w = ours[what]["warm"]
                    rounds[f"ours_{what}"].append((w["median_ms"], w["min_ms"]))
                row["ours_adapter"] = ours["adapter"]
            for k, v in rounds.items():
                row[f"{k}_ms"] = float(np.median([m for m, _ in v])) / b
                row[f"{k}_best_ms"] = min(best for _, best in v) / b
            out["rows"].append(row)
            print(f"batch {b} threads {t}: {json.dumps(row)}", file=sys.stderr)
    gf = (lambda ms: f"{gflop / (ms * 1e-3):.1f}") if gflop else (lambda ms: "-")
    print("\n| | batch | threads | onnxruntime ms/image (best) | GFLOP/s | ours ms/image (best) | GFLOP/s | ours faster by (best calls) |",
          file=sys.stderr)
    print("|---|---|---|---|---|---|---|---|", file=sys.stderr)
    for r in out["rows"]:
        for what in ("decode", "encode"):
            o, u = r[f"ort_{what}_ms"], r[f"ours_{what}_ms"]
            ob, ub = r[f"ort_{what}_best_ms"], r[f"ours_{what}_best_ms"]
            print(f"| {what} | {r['batch']} | {r['threads']} | {o:.1f} ({ob:.1f}) | {gf(o)} | {u:.1f} ({ub:.1f}) | {gf(u)} "
                  f"| {o / u:.2f}x ({ob / ub:.2f}x) |", file=sys.stderr)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
