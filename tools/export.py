#!/usr/bin/env python3
"""Export a tools/train.py run as a `glow-model/1` directory (docs/FORMAT.md), checked.

    OMP_NUM_THREADS=1 .venv/bin/python tools/export.py --run-dir /root/glow-runs/NAME \
        [--out models/NAME] [--which last|best] [--samples /tmp/samples.png]

Writes `weights.safetensors` (f16, the EMA weights), `model.json` (config, preprocess,
data, metrics) and `golden.safetensors` (2 test images + 2 samples, computed by
tools/oracle.py's float64 implementation from the f16 file as written; the same tensors as
tests/fixtures/*/golden.safetensors, without `level_z`). Before anything is left in place it
checks that the f16 file read back and run through the oracle gives the same eps and
bits/dim as the trained PyTorch module holding the same f16-rounded weights (run in
float64: the two implementations must agree to ~1e-9; in float32 to ~1e-4), that decode
inverts encode, and it measures the test-set bits/dim of exactly the exported weights.
An existing `attributes` entry of model.json is kept (tools/directions.py writes it).
"""

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402
import oracle  # noqa: E402  (sets the default dtype to float64; undone below)

torch.set_default_dtype(torch.float32)


def load_run(run_dir, which="last"):
    """(args dict, cfg, GlowModel holding the EMA weights, info dict)."""
    if which == "best":
        st = torch.load(os.path.join(run_dir, "best_ema.pt"), map_location="cpu", weights_only=False)
        info = dict(step=st["step"], train_seconds=st["train_seconds"], hardware=st["hardware"],
                    selected="EMA weights at the step with the best test bits/dim seen during training")
    else:
        st = torch.load(os.path.join(run_dir, "checkpoint.pt"), map_location="cpu", weights_only=False)
        info = dict(step=st["step"], epoch=st["epoch"], train_seconds=st["train_seconds"], hardware=st["hardware"],
                    selected="EMA weights of the latest checkpoint")
    info["init"] = st.get("init")  # --init-from runs: the model directory the weights came from
    model = T.GlowModel(st["cfg"])
    model.load_state_dict({k: v.float() if v.dtype.is_floating_point else v for k, v in st["ema"].items()})
    model.mark_initialized()
    return st["args"], st["cfg"], model, info


def round_to_f16(model):
    """Round every exported parameter to f16 in place; returns name -> f16 numpy array."""
    out = {}
    with torch.no_grad():
        for name, p in model.format_tensors().items():
            h = p.detach().to(torch.float16)
            assert torch.isfinite(h).all(), f"{name} overflows f16"
            p.copy_(h.float())
            out[name] = np.ascontiguousarray(h.numpy())
    return out


def check_and_golden(out_dir, model, test_u8, n_bits, seed=20240611):
    """Compare the file (through the oracle, float64) with the module; returns golden dict."""
    torch.set_default_dtype(torch.float64)  # the oracle relies on it
    try:
        return _check_and_golden(out_dir, model, test_u8, n_bits, seed)
    finally:
        torch.set_default_dtype(torch.float32)


def _check_and_golden(out_dir, model, test_u8, n_bits, seed):
    cfg_o, tensors = oracle.load_model_dir(out_dir)
    for k, v in tensors.items():
        assert v.dtype == np.float16, k
    og = oracle.Glow(cfg_o, tensors)
    # two test images: the first one and a seeded random one
    rng = np.random.default_rng(seed)
    picks = [0, int(rng.integers(1, len(test_u8)))]
    images = np.ascontiguousarray(test_u8[picks])
    x64 = og.preprocess(images)  # NHWC float64
    enc = og.encode(x64)

    # the trained module, same f16-rounded weights, in float64 and in float32
    m64 = T.GlowModel(model.cfg).double()
    m64.load_state_dict({k: v.double() if v.dtype.is_floating_point else v for k, v in model.state_dict().items()})
    with torch.no_grad():
        e64 = m64.encode(T.to_x(images, n_bits).double())
        e32 = model.encode(T.to_x(images, n_bits))
    d_eps64 = (e64["eps"] - enc["eps"]).abs().max().item()
    d_bpd64 = (e64["bpd"] - enc["bpd"]).abs().max().item()
    d_eps32 = (e32["eps"].double() - enc["eps"]).abs().max().item()
    d_bpd32 = (e32["bpd"].double() - enc["bpd"]).abs().max().item()
    print(f"check: module(float64) vs oracle(float64, file): max|d eps| {d_eps64:.2e}, max|d bpd| {d_bpd64:.2e}")
    print(f"check: module(float32) vs oracle(float64, file): max|d eps| {d_eps32:.2e}, max|d bpd| {d_bpd32:.2e}")
    assert d_eps64 < 1e-7 and d_bpd64 < 1e-9, (d_eps64, d_bpd64)
    assert d_eps32 < 2e-2 and d_bpd32 < 1e-4, (d_eps32, d_bpd32)

    back = og.decode(enc["eps"], 1.0)
    rt = (back - x64).abs().max().item()
    print(f"check: oracle decode(encode(x)) max|dx| {rt:.2e}")
    assert rt < 1e-8, rt

    D = x64[0].numel()
    srng = np.random.default_rng(seed + 1)
    sample_eps = srng.standard_normal(size=(2, D)).astype(np.float32)
    temp = np.array([0.7], dtype=np.float32)
    sample_x = og.decode(torch.from_numpy(sample_eps.astype(np.float64)), float(temp[0]))
    with torch.no_grad():
        sx64 = m64.decode(torch.from_numpy(sample_eps.astype(np.float64)), float(temp[0])).permute(0, 2, 3, 1)
    d_sx = (sx64 - sample_x).abs().max().item()
    print(f"check: module decode vs oracle decode (T=0.7) max|dx| {d_sx:.2e}")
    assert d_sx < 1e-7, d_sx
    assert torch.isfinite(sample_x).all()

    return oracle.golden_tensors(images, x64, enc, sample_eps, temp, sample_x)


def curve(run_dir, info, init, prior_curve=None):
    """The test bits/dim on the way: the earlier model's curve (its model.json `training.curve`,
    or `prior_curve` for a model exported before curves were kept), then this run's
    evaluations from its train.log up to the exported step, each at the minutes trained by
    then (those of the step logged last before it; evaluations excluded)."""
    before = list(((init or {}).get("training") or {}).get("curve") or prior_curve or [])
    steps0 = init["train_steps"] if init else 0
    minutes0 = init["train_seconds"] / 60 if init else 0.0
    minutes = 0.0  # trained by the last logged step
    points = []
    log = os.path.join(run_dir, "train.log")
    with open(log) if os.path.exists(log) else open(os.devnull) as f:
        for line in f:
            m = re.search(r" step (\d+) epoch .* ([\d.]+) min ", line)
            if m:
                minutes = float(m.group(2))
            m = re.search(r"eval step (\d+)\b.*bin centre\) ([\d.]+), dequantized ([\d.]+)", line)
            if m and 0 < int(m.group(1)) <= info["step"]:
                step = int(m.group(1))
                points.append({"minutes": round(minutes0 + minutes, 1), "step": steps0 + step,
                               "test_bpd": float(m.group(2)), "test_bpd_dequantized": float(m.group(3))})
    return before + points


def export(run_dir, out_dir=None, which="last", samples=None, name=None, temperature=0.7, prior_curve=None):
    torch.set_num_threads(1)
    args, cfg, model, info = load_run(run_dir, which)
    name = name or args["name"]
    out_dir = out_dir or os.path.join(T.REPO, "models", name)
    os.makedirs(out_dir, exist_ok=True)
    model.eval()
    f16 = round_to_f16(model)

    data = T.load_dataset(args["dataset"], run_dir)
    t0 = time.time()
    test_bpd = T.evaluate(model, data["test"], cfg["n_bits"])
    test_bpd_noisy = T.evaluate(model, data["test"], cfg["n_bits"], dequantize=True)
    print(f"test bits/dim of the exported f16 weights ({len(data['test'])} images): bin centre "
          f"{test_bpd:.4f}, uniform dequantization {test_bpd_noisy:.4f} ({time.time() - t0:.0f} s)")

    meta = T.model_json(cfg, name, args["dataset"])
    old_json = os.path.join(out_dir, "model.json")
    if os.path.exists(old_json):
        with open(old_json) as f:
            old = json.load(f)
        if "attributes" in old and os.path.exists(os.path.join(out_dir, old["attributes"]["file"])):
            meta["attributes"] = old["attributes"]
        if "align" in old:
            # the face template (glow align-template): measured on the training crops, which
            # a re-export of the same data and framing does not change
            meta["align"] = old["align"]
    init = info["init"]
    prior_steps = init["train_steps"] if init else 0
    prior_seconds = init["train_seconds"] if init else 0.0
    meta["metrics"] = {
        "test_bpd": round(test_bpd, 5),
        "test_bpd_dequantized": round(test_bpd_noisy, 5),
        "test_images": int(len(data["test"])),
        "train_images": int(len(data["train"])),
        "train_seconds": round(prior_seconds + float(info["train_seconds"]), 1),
        "train_steps": prior_steps + int(info["step"]),
        "batch": int(args["batch"]),
        "hardware": info["hardware"],
        "parameters": int(sum(v.size for v in f16.values())),
        "weights_dtype": "f16",
        "notes": info["selected"] + ". Both test numbers are measured on these f16 weights: test_bpd "
                 "with the engine's deterministic bin-centre input (what the page shows; not a bound on "
                 "the discrete likelihood), test_bpd_dequantized with OpenAI's uniform dequantization "
                 "(one seeded noise draw; the variational bound that papers report). train_seconds is wall-clock "
                 "time spent in training steps (evaluations excluded) on a 2-core machine shared with other "
                 "jobs, so it overstates the compute",
    }
    optimizer = (f"Adam lr {args['lr']} with {args['warmup_steps']}-step linear warm-up, "
                 f"grad-norm clip {args['clip']}, EMA decay {args['ema_decay']}")
    meta["training"] = {
        "trainer": "tools/train.py",
        "optimizer": optimizer,
        "init": "actnorm data-dependent on a first batch of " + str(args["init_batch"]) +
                " images; invconv random rotation; zero-initialised last convs and priors",
    }
    if init:
        # continued from an exported model (train.py --init-from): keep that model's record
        before = init.get("training") or {}
        meta["training"]["optimizer"] = (
            f"steps 0-{prior_steps}: {before.get('optimizer', 'see the earlier export')}; then steps "
            f"{prior_steps}-{prior_steps + int(info['step'])} continued from those (exported, f16) weights "
            f"with a fresh {optimizer}")
        meta["training"]["init"] = before.get("init", meta["training"]["init"])
        if init.get("hardware"):
            meta["metrics"]["hardware"] = f"steps 0-{prior_steps}: {init['hardware']}; then {info['hardware']}"

    meta["training"]["curve"] = curve(run_dir, info, init, prior_curve)

    # write to temporary names, check, then move into place
    wtmp = os.path.join(out_dir, "weights.safetensors.tmp")
    save_file(f16, wtmp)
    os.replace(wtmp, os.path.join(out_dir, "weights.safetensors"))
    with open(old_json + ".tmp", "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    os.replace(old_json + ".tmp", old_json)
    golden = check_and_golden(out_dir, model, data["test"], cfg["n_bits"])
    print(f"golden bpd {golden['bpd'].tolist()}")
    save_file({k: np.ascontiguousarray(v) for k, v in golden.items()}, os.path.join(out_dir, "golden.safetensors"))

    for f in ("weights.safetensors", "golden.safetensors", "model.json"):
        os.chmod(os.path.join(out_dir, f), 0o644)
    size = os.path.getsize(os.path.join(out_dir, "weights.safetensors"))
    print(f"exported {name} to {out_dir}: {meta['metrics']['parameters']} parameters, "
          f"weights.safetensors {size / 1e6:.2f} MB, test bpd {test_bpd:.4f}, "
          f"{(prior_seconds + info['train_seconds']) / 60:.1f} min trained ({prior_steps + info['step']} steps)")
    if samples:
        with torch.no_grad():
            grid = T.sample_grid(model, 36 if cfg["channels"] == 3 else 64, temperature, seed=7)
        T.save_png(grid, samples, scale=2 if cfg["height"] >= 64 else 3)
        print(f"samples at T={temperature} written to {samples}")
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--out", default=None, help="model directory (default models/NAME)")
    ap.add_argument("--name", default=None)
    ap.add_argument("--which", choices=["last", "best"], default="last")
    ap.add_argument("--samples", default=None, help="write a PNG grid of samples here")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--prior-curve", default=None,
                    help="JSON list of {minutes, step, test_bpd, test_bpd_dequantized}: the test bits/dim on the "
                         "way to the model this run started from (--init-from), where its model.json has no curve")
    a = ap.parse_args()
    prior = None
    if a.prior_curve:
        with open(a.prior_curve) as f:
            prior = json.load(f)
    export(a.run_dir, a.out, a.which, a.samples, a.name, a.temperature, prior)
    return 0


if __name__ == "__main__":
    sys.exit(main())
