#!/usr/bin/env python3
"""Independent float64 PyTorch oracle for the Glow engine (see docs/FORMAT.md).

Run from the repository root:

    .venv/bin/python tools/oracle.py

It builds small models with random, non-trivial weights from fixed seeds, writes them in
the `glow-model/1` directory format under tests/fixtures/NAME/, reads them back from the
files (so the goldens are computed from exactly the stored, rounded values), and writes
golden.safetensors with encode/decode results. Everything is computed in float64.

Layout conventions: all tensors are NHWC, all conv weights HWIO, exactly as in the files.
Nothing here is shared with the Rust code; it follows FORMAT.md only.
"""

import json
import math
import os
import sys

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

torch.set_default_dtype(torch.float64)
F64 = torch.float64
LOGSCALE = 3.0  # OpenAI's logscale_factor: files hold logs, the engine uses exp(3 * logs)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")


# ---------------------------------------------------------------------------------------
# Shapes


def level_shape(cfg, l):
    """(H_l, W_l, C_l) of level l's flow state (after its squeeze)."""
    h = cfg["image"]["height"] >> (l + 1)
    w = cfg["image"]["width"] >> (l + 1)
    c = 4 * cfg["image"]["channels"] * (2 ** l)
    return h, w, c


def edge(cfg):
    return 1 if cfg["edge_bias"] else 0


def expected_shapes(cfg):
    """name -> shape, exactly per FORMAT.md."""
    E = edge(cfg)
    w = cfg["width"]
    shapes = {}
    for l in range(cfg["levels"]):
        _, _, C = level_shape(cfg, l)
        Cf = C if cfg["coupling"] == "affine" else C // 2
        for k in range(cfg["steps"]):
            p = f"L{l}.S{k}."
            shapes[p + "actnorm.b"] = [C]
            shapes[p + "actnorm.logs"] = [C]
            shapes[p + "invconv.W"] = [C, C]
            shapes[p + "f.l1.W"] = [3, 3, C // 2 + E, w]
            shapes[p + "f.l1.actnorm.b"] = [w]
            shapes[p + "f.l1.actnorm.logs"] = [w]
            shapes[p + "f.l2.W"] = [1, 1, w, w]
            shapes[p + "f.l2.actnorm.b"] = [w]
            shapes[p + "f.l2.actnorm.logs"] = [w]
            shapes[p + "f.last.W"] = [3, 3, w + E, Cf]
            shapes[p + "f.last.b"] = [Cf]
            shapes[p + "f.last.logs"] = [Cf]
        if l < cfg["levels"] - 1:
            shapes[f"L{l}.prior.W"] = [3, 3, C // 2 + E, C]
            shapes[f"L{l}.prior.b"] = [C]
            shapes[f"L{l}.prior.logs"] = [C]
    if cfg["learn_top"]:
        _, _, Ct = level_shape(cfg, cfg["levels"] - 1)
        shapes["top.W"] = [3, 3, 2 * Ct + E, 2 * Ct]
        shapes["top.b"] = [2 * Ct]
        shapes["top.logs"] = [2 * Ct]
    return shapes


# ---------------------------------------------------------------------------------------
# Building blocks (NHWC, float64)


def squeeze(x):
    """[N, H, W, C] -> [N, H/2, W/2, 4C], output channel c*4 + dy*2 + dx."""
    n, h, w, c = x.shape
    x = x.reshape(n, h // 2, 2, w // 2, 2, c)  # n, y, dy, x, dx, c
    x = x.permute(0, 1, 3, 5, 2, 4)  # n, y, x, c, dy, dx
    return x.reshape(n, h // 2, w // 2, c * 4)


def unsqueeze(x):
    n, h, w, c4 = x.shape
    c = c4 // 4
    x = x.reshape(n, h, w, c, 2, 2)  # n, y, x, c, dy, dx
    x = x.permute(0, 1, 4, 2, 5, 3)  # n, y, dy, x, dx, c
    return x.reshape(n, h * 2, w * 2, c)


def conv3x3(x, W, edge_bias):
    """TF-style 'SAME' 3x3 cross-correlation, stride 1, NHWC x, HWIO W.

    With edge_bias the input is zero padded by one pixel and gets one more channel
    (last) that is 1 on the padded border and 0 inside; otherwise plain zero padding.
    Written as explicit im2col so the tap order is obvious:
    out[y, x, o] = sum_{ky, kx, i} xpad[y + ky, x + kx, i] * W[ky, kx, i, o].
    """
    n, h, w, c = x.shape
    xp = torch.zeros(n, h + 2, w + 2, c + (1 if edge_bias else 0), dtype=x.dtype)
    xp[:, 1:h + 1, 1:w + 1, :c] = x
    if edge_bias:
        xp[..., c] = 1.0
        xp[:, 1:h + 1, 1:w + 1, c] = 0.0
    assert W.shape[0] == 3 and W.shape[1] == 3 and W.shape[2] == xp.shape[3], (W.shape, xp.shape)
    taps = [xp[:, ky:ky + h, kx:kx + w, :] for ky in range(3) for kx in range(3)]
    cols = torch.cat(taps, dim=3)  # channel index = (ky*3 + kx) * Cin + i
    return cols @ W.reshape(9 * W.shape[2], W.shape[3])


def conv3x3_reference(x, W, edge_bias):
    """Same conv via torch.nn.functional.conv2d, used only as a self-check."""
    n, h, w, c = x.shape
    xn = x.permute(0, 3, 1, 2)
    xn = torch.nn.functional.pad(xn, (1, 1, 1, 1))
    if edge_bias:
        mask = torch.nn.functional.pad(torch.zeros(n, 1, h, w, dtype=x.dtype), (1, 1, 1, 1), value=1.0)
        xn = torch.cat([xn, mask], dim=1)
    y = torch.nn.functional.conv2d(xn, W.permute(3, 2, 0, 1))
    return y.permute(0, 2, 3, 1)


def actnorm(x, b, logs):
    return (x + b) * torch.exp(LOGSCALE * logs)


def actnorm_inv(y, b, logs):
    return y * torch.exp(-LOGSCALE * logs) - b


def zero_conv(x, W, b, logs, edge_bias):
    return (conv3x3(x, W, edge_bias) + b) * torch.exp(LOGSCALE * logs)


def coupling_net(p, prefix, z1, edge_bias):
    h = conv3x3(z1, p[prefix + "f.l1.W"], edge_bias)
    h = torch.relu(actnorm(h, p[prefix + "f.l1.actnorm.b"], p[prefix + "f.l1.actnorm.logs"]))
    W2 = p[prefix + "f.l2.W"]
    h = h @ W2.reshape(W2.shape[2], W2.shape[3])
    h = torch.relu(actnorm(h, p[prefix + "f.l2.actnorm.b"], p[prefix + "f.l2.actnorm.logs"]))
    return zero_conv(h, p[prefix + "f.last.W"], p[prefix + "f.last.b"], p[prefix + "f.last.logs"], edge_bias)


def gaussian_logp(z, mean, logs):
    """Per-image sum of log N(z; mean, exp(logs))."""
    lp = -0.5 * (math.log(2 * math.pi) + 2.0 * logs + (z - mean) ** 2 * torch.exp(-2.0 * logs))
    return lp.reshape(lp.shape[0], -1).sum(dim=1)


# ---------------------------------------------------------------------------------------
# The model


class Glow:
    def __init__(self, cfg, params):
        self.cfg = cfg
        self.eb = bool(cfg["edge_bias"])
        self.p = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in params.items()}

    def step_forward(self, l, k, z):
        p, pre = self.p, f"L{l}.S{k}."
        n, h, w, C = z.shape
        logdet = torch.zeros(n)
        # actnorm
        z = actnorm(z, p[pre + "actnorm.b"], p[pre + "actnorm.logs"])
        logdet = logdet + h * w * LOGSCALE * p[pre + "actnorm.logs"].sum()
        # invertible 1x1 conv, row vector times W[in, out]
        W = p[pre + "invconv.W"]
        z = z @ W
        logdet = logdet + h * w * torch.linalg.slogdet(W)[1]
        # coupling
        z1, z2 = z[..., : C // 2], z[..., C // 2:]
        hh = coupling_net(p, pre, z1, self.eb)
        if self.cfg["coupling"] == "additive":
            z2 = z2 + hh
        else:
            shift = hh[..., 0::2]
            scale = torch.sigmoid(hh[..., 1::2] + 2.0)
            z2 = (z2 + shift) * scale
            logdet = logdet + torch.log(scale).reshape(n, -1).sum(dim=1)
        return torch.cat([z1, z2], dim=3), logdet

    def step_reverse(self, l, k, z):
        p, pre = self.p, f"L{l}.S{k}."
        C = z.shape[3]
        z1, z2 = z[..., : C // 2], z[..., C // 2:]
        hh = coupling_net(p, pre, z1, self.eb)
        if self.cfg["coupling"] == "additive":
            z2 = z2 - hh
        else:
            shift = hh[..., 0::2]
            scale = torch.sigmoid(hh[..., 1::2] + 2.0)
            z2 = z2 / scale - shift
        z = torch.cat([z1, z2], dim=3)
        z = z @ torch.linalg.inv(p[pre + "invconv.W"])
        return actnorm_inv(z, p[pre + "actnorm.b"], p[pre + "actnorm.logs"])

    def split_prior(self, l, z1):
        p = self.p
        h = zero_conv(z1, p[f"L{l}.prior.W"], p[f"L{l}.prior.b"], p[f"L{l}.prior.logs"], self.eb)
        return h[..., 0::2], h[..., 1::2]

    def top_prior(self, n):
        L = self.cfg["levels"]
        Hl, Wl, Ct = level_shape(self.cfg, L - 1)
        if not self.cfg["learn_top"]:
            zero = torch.zeros(n, Hl, Wl, Ct)
            return zero, zero.clone()
        h = zero_conv(torch.zeros(n, Hl, Wl, 2 * Ct), self.p["top.W"], self.p["top.b"], self.p["top.logs"], self.eb)
        return h[..., :Ct], h[..., Ct:]

    def preprocess(self, images_u8):
        nb = self.cfg["n_bits"]
        bins = 2 ** nb
        x = torch.floor(torch.from_numpy(images_u8.astype(np.float64)) / 2 ** (8 - nb))
        return x / bins - 0.5 + 0.5 / bins

    def encode(self, x):
        """x [N, H, W, c0] float64 -> dict(eps [N, D], logdet, logp, objective, bpd, level_z)."""
        cfg = self.cfg
        n = x.shape[0]
        D = x[0].numel()
        logdet = torch.zeros(n)
        logp = torch.zeros(n)
        eps_parts = []
        z_parts = []  # the factored-out z (not standardized), for the Jacobian self-check
        level_z = None
        z = x
        for l in range(cfg["levels"]):
            z = squeeze(z)
            for k in range(cfg["steps"]):
                z, ld = self.step_forward(l, k, z)
                logdet = logdet + ld
            if l == 0:
                level_z = z.reshape(n, -1).clone()
            if l < cfg["levels"] - 1:
                C = z.shape[3]
                z1, z2 = z[..., : C // 2], z[..., C // 2:]
                mean, logs = self.split_prior(l, z1)
                logp = logp + gaussian_logp(z2, mean, logs)
                eps_parts.append(((z2 - mean) / torch.exp(logs)).reshape(n, -1))
                z_parts.append(z2.reshape(n, -1))
                z = z1
        mean, logs = self.top_prior(n)
        logp = logp + gaussian_logp(z, mean, logs)
        eps_parts.append(((z - mean) / torch.exp(logs)).reshape(n, -1))
        z_parts.append(z.reshape(n, -1))
        eps = torch.cat(eps_parts, dim=1)
        objective = logdet + logp - D * math.log(2 ** cfg["n_bits"])
        bpd = -objective / (D * math.log(2.0))
        return dict(eps=eps, logdet=logdet, logp=logp, objective=objective, bpd=bpd, level_z=level_z,
                    z=torch.cat(z_parts, dim=1))

    def decode(self, eps, temperature=1.0):
        """eps [N, D] float64 -> x [N, H, W, c0] float64 (continuous, no clamping)."""
        cfg = self.cfg
        L = cfg["levels"]
        n = eps.shape[0]
        # cut eps into per-level pieces, in level order
        sizes = []
        for l in range(L - 1):
            h, w, c = level_shape(cfg, l)
            sizes.append((h, w, c // 2))
        sizes.append(level_shape(cfg, L - 1))
        pieces, off = [], 0
        for (h, w, c) in sizes:
            pieces.append(eps[:, off:off + h * w * c].reshape(n, h, w, c))
            off += h * w * c
        assert off == eps.shape[1]

        mean, logs = self.top_prior(n)
        z = mean + torch.exp(logs) * temperature * pieces[L - 1]
        for l in reversed(range(L)):
            if l < L - 1:
                mean, logs = self.split_prior(l, z)
                z2 = mean + torch.exp(logs) * temperature * pieces[l]
                z = torch.cat([z, z2], dim=3)
            for k in reversed(range(cfg["steps"])):
                z = self.step_reverse(l, k, z)
            z = unsqueeze(z)
        return z


# ---------------------------------------------------------------------------------------
# Random fixture models


def random_params(cfg, seed):
    """float64 numpy arrays with non-trivial values, shapes per FORMAT.md."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in expected_shapes(cfg).items():
        parts = name.split(".")
        if name.endswith("invconv.W"):
            C = shape[0]
            q, r = np.linalg.qr(rng.normal(size=(C, C)))
            q = q * np.sign(np.diag(r))  # a proper random orthogonal matrix
            W = q @ np.diag(np.exp(rng.normal(0.0, 0.2, size=C))) + 0.1 * rng.normal(size=(C, C)) / math.sqrt(C)
            s = np.linalg.svd(W, compute_uv=False)
            assert s[-1] > 0.2 and s[0] / s[-1] < 20.0, s
            out[name] = W
        elif name.endswith("actnorm.b"):
            out[name] = rng.normal(0.0, 0.1, size=shape)
        elif name.endswith("actnorm.logs"):
            out[name] = rng.normal(0.0, 0.05, size=shape)
        elif name.endswith("f.l1.W") or name.endswith("f.l2.W"):
            fan_in = shape[0] * shape[1] * shape[2]
            out[name] = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
        elif parts[-2] in ("last", "prior") or parts[0] == "top":
            # zero-convs: f.last.*, L{l}.prior.*, top.*
            out[name] = rng.normal(0.0, 0.05, size=shape)
        else:
            raise AssertionError(name)
    return out


def test_images(cfg, seed):
    """uint8 [3, H, W, c0]: smooth blob/gradient, uniform noise, near-constant with edges."""
    H, W, c0 = cfg["image"]["height"], cfg["image"]["width"], cfg["image"]["channels"]
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(H) / (H - 1), np.arange(W) / (W - 1), indexing="ij")
    imgs = np.zeros((3, H, W, c0), dtype=np.uint8)
    # 0: gradient plus a gaussian blob, a different mix per channel
    for c in range(c0):
        blob = np.exp(-(((yy - 0.4 - 0.1 * c) ** 2 + (xx - 0.6) ** 2) / 0.05))
        v = 0.25 * xx + 0.2 * (1 - yy) * (c + 1) / c0 + 0.55 * blob
        imgs[0, ..., c] = np.clip(np.round(255 * v), 0, 255).astype(np.uint8)
    # 1: uniform random
    imgs[1] = rng.integers(0, 256, size=(H, W, c0), dtype=np.uint8)
    # 2: constant-ish (light noise) with a bright rectangle and a dark stripe
    base = np.full((H, W, c0), 120, dtype=np.int32) + rng.integers(-3, 4, size=(H, W, c0))
    base[H // 4: H // 2, W // 4: 3 * W // 4, :] = 230
    base[:, W - W // 4:, 0] = 20
    imgs[2] = np.clip(base, 0, 255).astype(np.uint8)
    return imgs


FIXTURE_SPECS = [
    # name, image (h, w, c), n_bits, levels, steps, width, coupling, edge_bias, learn_top, seed, f16
    ("tiny_additive", (16, 16, 3), 5, 3, 2, 12, "additive", True, True, 1001, False),
    ("tiny_affine", (16, 16, 3), 5, 3, 2, 12, "affine", True, True, 1002, False),
    ("tiny_affine_f16", (16, 16, 3), 5, 3, 2, 12, "affine", True, True, 1002, True),
    ("tiny_gray", (8, 8, 1), 8, 3, 3, 8, "additive", False, False, 1004, False),
]


def make_config(name, image, n_bits, levels, steps, width, coupling, edge_bias, learn_top):
    return {
        "format": "glow-model/1",
        "name": name,
        "image": {"height": image[0], "width": image[1], "channels": image[2]},
        "n_bits": n_bits,
        "levels": levels,
        "steps": steps,
        "width": width,
        "coupling": coupling,
        "edge_bias": edge_bias,
        "learn_top": learn_top,
        "weights": "weights.safetensors",
        "data": {"name": "random weights (test fixture)", "licence": "none"},
    }


def load_model_dir(path):
    """Read a model directory back, checking every tensor against FORMAT.md."""
    with open(os.path.join(path, "model.json")) as f:
        cfg = json.load(f)
    assert cfg["format"] == "glow-model/1"
    H, W = cfg["image"]["height"], cfg["image"]["width"]
    assert H % (2 ** cfg["levels"]) == 0 and W % (2 ** cfg["levels"]) == 0
    assert cfg["image"]["channels"] in (1, 3) and cfg["coupling"] in ("additive", "affine")
    tensors = load_file(os.path.join(path, cfg.get("weights", "weights.safetensors")))
    want = expected_shapes(cfg)
    assert set(tensors) == set(want), sorted(set(tensors) ^ set(want))
    for k, shape in want.items():
        assert list(tensors[k].shape) == shape, (k, tensors[k].shape, shape)
        assert tensors[k].dtype in (np.float32, np.float16), (k, tensors[k].dtype)
    return cfg, tensors


# ---------------------------------------------------------------------------------------
# Self-checks


def check_primitives():
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.normal(size=(2, 4, 6, 5)))
    assert torch.equal(unsqueeze(squeeze(x)), x)
    s = squeeze(x)
    # channel c*4 + dy*2 + dx of pixel (y, x) is input pixel (2y+dy, 2x+dx), channel c
    for (y, xx, c, dy, dx) in [(0, 0, 0, 0, 1), (1, 2, 4, 1, 0), (1, 1, 2, 1, 1)]:
        assert s[1, y, xx, c * 4 + dy * 2 + dx] == x[1, 2 * y + dy, 2 * xx + dx, c]
    for eb in (False, True):
        Wc = torch.from_numpy(rng.normal(size=(3, 3, 5 + eb, 7)))
        d = (conv3x3(x, Wc, eb) - conv3x3_reference(x, Wc, eb)).abs().max().item()
        assert d < 1e-12, d
    print("primitives: squeeze/unsqueeze and conv3x3 (im2col vs F.conv2d, both paddings) ok")


def check_logdet_by_jacobian():
    """The analytic logdet must equal log|det dz/dx| of the whole flow, computed by autograd
    on small models (both couplings, both paddings)."""
    for coupling, eb, lt, image in [("affine", True, True, (8, 8, 3)), ("additive", False, False, (8, 8, 1)),
                                    ("affine", False, True, (8, 4, 1))]:
        cfg = make_config("jac", image, 5, 2, 2, 6, coupling, eb, lt)
        params = random_params(cfg, 55)
        model = Glow(cfg, {k: v.astype(np.float32) for k, v in params.items()})
        x = model.preprocess(test_images(cfg, 3))[1:2]
        D = x.numel()
        J = torch.autograd.functional.jacobian(lambda v: model.encode(v.reshape(x.shape))["z"].reshape(-1),
                                               x.reshape(-1))
        assert J.shape == (D, D)
        ld = torch.linalg.slogdet(J)[1].item()
        got = model.encode(x)["logdet"].item()
        assert abs(ld - got) < 1e-8, (coupling, eb, ld, got)
        print(f"logdet vs autograd Jacobian ({coupling}, edge_bias={eb}, {image}): {got:.10f} vs {ld:.10f} ok")


def golden_tensors(images, x, enc, sample_eps, temperature, sample_x):
    """The tensors of a golden.safetensors (tools/README.md), shared with tools/export.py:
    the test images and their model values, encode results, and the decoded samples."""
    return {
        "images": np.ascontiguousarray(images),
        "x": x.numpy().astype(np.float32),
        "eps": enc["eps"].numpy().astype(np.float32),
        "logdet": enc["logdet"].numpy().astype(np.float64),
        "logp": enc["logp"].numpy().astype(np.float64),
        "objective": enc["objective"].numpy().astype(np.float64),
        "bpd": enc["bpd"].numpy().astype(np.float64),
        "sample_eps": sample_eps,
        "sample_temperature": temperature,
        "sample_x": sample_x.numpy().astype(np.float32),
    }


def main():
    check_primitives()
    check_logdet_by_jacobian()
    os.makedirs(FIXTURES, exist_ok=True)
    summary = []
    for (name, image, n_bits, levels, steps, width, coupling, eb, lt, seed, f16) in FIXTURE_SPECS:
        cfg = make_config(name, image, n_bits, levels, steps, width, coupling, eb, lt)
        params = random_params(cfg, seed)
        store_dtype = np.float16 if f16 else np.float32
        # the f16 fixture holds exactly f16(f32 weights of its twin), so the two files agree
        stored = {k: np.ascontiguousarray(v.astype(np.float32).astype(store_dtype)) for k, v in params.items()}

        d = os.path.join(FIXTURES, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        save_file(stored, os.path.join(d, "weights.safetensors"))

        # compute from what was written, widened to float64
        cfg, tensors = load_model_dir(d)
        for k in tensors:
            assert tensors[k].dtype == store_dtype and np.array_equal(tensors[k], stored[k])
        model = Glow(cfg, tensors)

        images = test_images(cfg, seed + 17)
        x = model.preprocess(images)
        enc = model.encode(x)
        D = x[0].numel()
        assert enc["eps"].shape == (images.shape[0], D), enc["eps"].shape
        assert D == cfg["image"]["height"] * cfg["image"]["width"] * cfg["image"]["channels"]
        assert torch.isfinite(enc["bpd"]).all() and torch.isfinite(enc["eps"]).all()

        # round trip in float64
        x_back = model.decode(enc["eps"], 1.0)
        rt = (x_back - x).abs().max().item()
        assert rt < 1e-10, (name, rt)

        # samples
        srng = np.random.default_rng(seed + 99)
        sample_eps = srng.standard_normal(size=(2, D)).astype(np.float32)
        T = np.array([0.7], dtype=np.float32)
        sample_x = model.decode(torch.from_numpy(sample_eps.astype(np.float64)), float(T[0]))
        assert torch.isfinite(sample_x).all()
        # and the samples encode back to their eps (scaled by T)
        back = model.encode(sample_x)["eps"]
        srt = (back - float(T[0]) * torch.from_numpy(sample_eps.astype(np.float64))).abs().max().item()
        assert srt < 1e-9, (name, srt)

        # the additive flow has a constant logdet
        if coupling == "additive":
            assert (enc["logdet"] - enc["logdet"][0]).abs().max().item() < 1e-9

        golden = golden_tensors(images, x, enc, sample_eps, T, sample_x)
        golden["level_z"] = enc["level_z"].numpy().astype(np.float32)
        save_file({k: np.ascontiguousarray(v) for k, v in golden.items()}, os.path.join(d, "golden.safetensors"))

        eps = enc["eps"]
        print(f"{name}: D={D} roundtrip max|dx|={rt:.2e} sample re-encode max|d|={srt:.2e}")
        print(f"  bpd       = {[round(v, 6) for v in enc['bpd'].tolist()]}")
        print(f"  logdet    = {[round(v, 6) for v in enc['logdet'].tolist()]}")
        print(f"  logp      = {[round(v, 6) for v in enc['logp'].tolist()]}")
        print(f"  mean|eps| = {eps.abs().mean().item():.4f}  max|eps| = {eps.abs().max().item():.4f}"
              f"  max|level_z| = {enc['level_z'].abs().max().item():.4f}"
              f"  sample_x range = [{sample_x.min().item():.3f}, {sample_x.max().item():.3f}]")
        summary.append(name)
    print("all fixtures written and checked:", ", ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
