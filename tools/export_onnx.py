#!/usr/bin/env python3
"""Export a `glow-model/1` directory (docs/FORMAT.md) to ONNX, for the head-to-head
benchmark against onnxruntime-web (bench/ort.html).

    .venv/bin/python tools/export_onnx.py MODEL_DIR OUT.onnx --direction decode|encode [--check] [--generic]

By default the graph is folded as our engine folds the model (src/model/fold.rs), so that a
comparison times the runtimes, not the graphs: float32, NCHW; each step's actnorm and 1x1 conv
are one 1x1 Conv with bias (its exact inverse for decode); the actnorm after each conv of the
coupling net and the exp(3 * logs) of the zero convs are in that conv's weights and bias; the
edge-bias channel is gone: a 3x3 conv is a Conv with zero padding plus a precomputed constant
border map [1, cout, h, w] (what the edge channel's weights add at the border; our engine keeps
the same term as a table over 16 border classes). Per conv that is Conv, Add (3x3 only) and
Relu, which onnxruntime fuses. `--generic` instead exports what a generic converter of
OpenAI's Glow would produce: unfused ops (Pad, Concat of the edge-bias channel, Conv, Add, Mul,
Exp, Relu, ...) with only parameter-only expressions (exp(3 * logs), the inverse of the 1x1 conv
matrix, the logdet constant, the top prior of an all-zero input) as constants. Both give the
same function (checked by `--check`).

* decode: inputs `eps` [B, D] f32 and `temperature` [1] f32; output `x` [B, H, W, C] f32
  (continuous model values, no clamping; pixel = floor((x + 0.5) * 256) clamped to 0..255).
* encode: input `x` [B, H, W, C] f32 (bin-centre dequantized, floor(p / 2^(8-n_bits)) /
  2^n_bits - 0.5 + 0.5 / 2^n_bits); outputs `eps` [B, D], `objective` [B], `bits_per_dim` [B].

The batch dimension is dynamic unless `--batch N` fixes it (then the batch-dependent shape
computations disappear; the benchmark uses one file per batch size). `--check` runs the
exported graph with onnxruntime (CPU) on batch 1 and 16 (or N) and compares it with
tools/oracle.py's float64 implementation; exit status 1 past `--tolerance`.

Needs, besides torch/numpy/safetensors: `pip install onnx` (1.23.2 here) and, for `--check`,
`onnxruntime` (1.32.0 here). Uses the legacy TorchScript exporter (`dynamo=False`).
"""

import argparse
import math
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402  (float64 reference: loading, shapes, encode/decode)

LOGSCALE = 3.0


def f32(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float32)


def chan(v):
    """[C] -> [1, C, 1, 1] (NCHW broadcast)."""
    return v.reshape(1, -1, 1, 1)


def oihw(W):
    """HWIO numpy -> OIHW float32 tensor."""
    return f32(np.asarray(W, dtype=np.float64).transpose(3, 2, 0, 1).copy())


class GlowOnnx(torch.nn.Module):
    def __init__(self, cfg, tensors, direction, batch=None, folded=True):
        super().__init__()
        assert direction in ("decode", "encode")
        self.folded = folded
        self.cfg = cfg
        self.direction = direction
        self.eb = bool(cfg["edge_bias"])
        self.batch = batch  # None: dynamic batch
        self.affine = cfg["coupling"] == "affine"
        self.L = cfg["levels"]
        self.K = cfg["steps"]
        p = {k: np.asarray(v, dtype=np.float64) for k, v in tensors.items()}
        self.c0 = cfg["image"]["channels"]
        self.H, self.W = cfg["image"]["height"], cfg["image"]["width"]
        self.D = self.H * self.W * self.c0
        self.params = {}  # name -> float32 tensor, registered as buffers below
        logdet = 0.0

        def add(name, value):
            t = value if isinstance(value, torch.Tensor) else f32(value)
            key = name.replace(".", "_")
            self.register_buffer(key, t)  # exported as a named initializer
            self.params[name] = key

        for l in range(self.L):
            h, w, C = oracle.level_shape(cfg, l)
            if folded:
                logdet += self.add_folded_level(add, p, l, h, w, C)
                continue
            for k in range(self.K):
                pre = f"L{l}.S{k}."
                b, logs = p[pre + "actnorm.b"], p[pre + "actnorm.logs"]
                Wi = p[pre + "invconv.W"]  # [in, out]: y = x . W
                logdet += h * w * (LOGSCALE * logs.sum() + np.linalg.slogdet(Wi)[1])
                add(pre + "actnorm.b", chan(f32(b)))
                if direction == "encode":
                    add(pre + "actnorm.scale", chan(f32(np.exp(LOGSCALE * logs))))
                    add(pre + "invconv", f32(Wi.T.copy()).reshape(C, C, 1, 1))  # OIHW
                else:
                    add(pre + "actnorm.inv_scale", chan(f32(np.exp(-LOGSCALE * logs))))
                    add(pre + "invconv", f32(np.linalg.inv(Wi).T.copy()).reshape(C, C, 1, 1))
                add(pre + "f.l1.W", oihw(p[pre + "f.l1.W"]))
                add(pre + "f.l1.b", chan(f32(p[pre + "f.l1.actnorm.b"])))
                add(pre + "f.l1.scale", chan(f32(np.exp(LOGSCALE * p[pre + "f.l1.actnorm.logs"]))))
                add(pre + "f.l2.W", oihw(p[pre + "f.l2.W"]))
                add(pre + "f.l2.b", chan(f32(p[pre + "f.l2.actnorm.b"])))
                add(pre + "f.l2.scale", chan(f32(np.exp(LOGSCALE * p[pre + "f.l2.actnorm.logs"]))))
                add(pre + "f.last.W", oihw(p[pre + "f.last.W"]))
                add(pre + "f.last.b", chan(f32(p[pre + "f.last.b"])))
                add(pre + "f.last.scale", chan(f32(np.exp(LOGSCALE * p[pre + "f.last.logs"]))))
            if l < self.L - 1:
                add(f"L{l}.prior.W", oihw(p[f"L{l}.prior.W"]))
                add(f"L{l}.prior.b", chan(f32(p[f"L{l}.prior.b"])))
                add(f"L{l}.prior.scale", chan(f32(np.exp(LOGSCALE * p[f"L{l}.prior.logs"]))))
            if self.eb:
                # the edge-bias channel: 1 on the zero-padded border, 0 inside
                m = np.ones((batch or 1, 1, h + 2, w + 2))
                m[..., 1:h + 1, 1:w + 1] = 0.0
                add(f"mask{l}", f32(m))
        # top prior: the conv of an all-zero input is a parameter-only constant
        hL, wL, Ct = oracle.level_shape(cfg, self.L - 1)
        if cfg["learn_top"]:
            dt = torch.get_default_dtype()
            torch.set_default_dtype(torch.float64)  # oracle.py works in float64
            mean, logs = oracle.Glow(cfg, tensors).top_prior(1)  # [1, h, w, Ct]
            torch.set_default_dtype(dt)
            mean = mean.permute(0, 3, 1, 2).numpy()
            logs = logs.permute(0, 3, 1, 2).numpy()
        else:
            mean = np.zeros((1, Ct, hL, wL))
            logs = np.zeros((1, Ct, hL, wL))
        add("top.mean", f32(mean))
        add("top.logs", f32(logs))
        add("top.std", f32(np.exp(logs)))
        self.logdet_const = float(logdet)

    def add_folded_level(self, add, p, l, h, w, C):
        """The folded parameters of level l (as src/model/fold.rs, in float64); returns the
        level's logdet."""
        logdet = 0.0
        eb = self.eb

        def conv(pre, W, b, logs):
            """(conv(x) + b) * exp(3 logs): scale folded into weight and bias; for a 3x3 conv
            with edge bias, the edge channel's contribution as a constant border map."""
            s = np.exp(LOGSCALE * logs)
            Wo = np.asarray(W, dtype=np.float64).transpose(3, 2, 0, 1)  # HWIO -> OIHW
            if Wo.shape[2] == 3 and eb:
                edge, Wo = Wo[:, -1:], Wo[:, :-1]
                m = np.ones((1, 1, h + 2, w + 2))
                m[..., 1:h + 1, 1:w + 1] = 0.0
                border = F.conv2d(torch.from_numpy(m), torch.from_numpy(edge.copy())).numpy()
                add(pre + ".border", f32(border * s.reshape(1, -1, 1, 1)))
            add(pre + ".W", f32(Wo * s.reshape(-1, 1, 1, 1)))
            add(pre + ".b", f32(b * s))

        for k in range(self.K):
            pre = f"L{l}.S{k}."
            b, logs = p[pre + "actnorm.b"], p[pre + "actnorm.logs"]
            Wi = p[pre + "invconv.W"]  # [in, out]: y = x . W
            logdet += h * w * (LOGSCALE * logs.sum() + np.linalg.slogdet(Wi)[1])
            # y = ((x + b) * s) . W = x . A + c with A = diag(s) W, c = (b * s) . W; inverse
            # x = y . A^-1 - c . A^-1.
            s = np.exp(LOGSCALE * logs)
            A = s[:, None] * Wi
            c = (b * s) @ Wi
            if self.direction == "encode":
                M, bias = A, c
            else:
                M = np.linalg.inv(Wi) / s[None, :]
                bias = -c @ M
            add(pre + "affine.W", f32(M.T.copy()).reshape(C, C, 1, 1))
            add(pre + "affine.b", f32(bias))
            conv(pre + "f.l1", p[pre + "f.l1.W"], p[pre + "f.l1.actnorm.b"], p[pre + "f.l1.actnorm.logs"])
            conv(pre + "f.l2", p[pre + "f.l2.W"], p[pre + "f.l2.actnorm.b"], p[pre + "f.l2.actnorm.logs"])
            conv(pre + "f.last", p[pre + "f.last.W"], p[pre + "f.last.b"], p[pre + "f.last.logs"])
        if l < self.L - 1:
            conv(f"L{l}.prior", p[f"L{l}.prior.W"], p[f"L{l}.prior.b"], p[f"L{l}.prior.logs"])
        return logdet

    def t(self, name):
        return getattr(self, self.params[name])

    def fconv(self, x, pre, relu=False):
        """A folded conv: Conv (zero padding) with bias, + border map, (relu)."""
        W = self.t(pre + ".W")
        y = F.conv2d(x, W, self.t(pre + ".b"), padding=W.shape[2] // 2)
        if pre + ".border" in self.params:
            y = y + self.t(pre + ".border")
        return torch.relu(y) if relu else y

    # -- building blocks (NCHW) ---------------------------------------------------------

    def conv3x3(self, x, W, l):
        if not self.eb:
            return F.conv2d(x, W, padding=1)
        mask = self.t(f"mask{l}")
        if self.batch is None:
            mask = mask.expand(x.shape[0], 1, mask.shape[2], mask.shape[3])
        xp = F.pad(x, (1, 1, 1, 1))
        xp = torch.cat([xp, mask], dim=1)
        return F.conv2d(xp, W)

    def nn_f(self, l, k, z1):
        pre = f"L{l}.S{k}."
        if self.folded:
            h = self.fconv(z1, pre + "f.l1", relu=True)
            h = self.fconv(h, pre + "f.l2", relu=True)
            return self.fconv(h, pre + "f.last")
        h = self.conv3x3(z1, self.t(pre + "f.l1.W"), l)
        h = torch.relu((h + self.t(pre + "f.l1.b")) * self.t(pre + "f.l1.scale"))
        h = F.conv2d(h, self.t(pre + "f.l2.W"))
        h = torch.relu((h + self.t(pre + "f.l2.b")) * self.t(pre + "f.l2.scale"))
        h = self.conv3x3(h, self.t(pre + "f.last.W"), l)
        return (h + self.t(pre + "f.last.b")) * self.t(pre + "f.last.scale")

    def split_prior(self, l, z1):
        if self.folded:
            h = self.fconv(z1, f"L{l}.prior")
        else:
            h = self.conv3x3(z1, self.t(f"L{l}.prior.W"), l)
            h = (h + self.t(f"L{l}.prior.b")) * self.t(f"L{l}.prior.scale")
        return h[:, 0::2], h[:, 1::2]

    @staticmethod
    def squeeze(x):
        """NCHW [n, c, h, w] -> [n, 4c, h/2, w/2], channel c*4 + dy*2 + dx."""
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // 2, 2, w // 2, 2)  # n, c, y, dy, x, dx
        x = x.permute(0, 1, 3, 5, 2, 4)  # n, c, dy, dx, y, x
        return x.reshape(n, c * 4, h // 2, w // 2)

    @staticmethod
    def unsqueeze(x):
        n, c4, h, w = x.shape
        x = x.reshape(n, c4 // 4, 2, 2, h, w)  # n, c, dy, dx, y, x
        x = x.permute(0, 1, 4, 2, 5, 3)  # n, c, y, dy, x, dx
        return x.reshape(n, c4 // 4, h * 2, w * 2)

    @staticmethod
    def gaussian_logp(z, mean, logs):
        lp = -0.5 * (math.log(2 * math.pi) + 2.0 * logs + (z - mean) ** 2 * torch.exp(-2.0 * logs))
        return lp.reshape(lp.shape[0], -1).sum(dim=1)

    # -- directions ---------------------------------------------------------------------

    def encode(self, x):
        n = x.shape[0]
        z = x.permute(0, 3, 1, 2)  # NHWC -> NCHW
        logdet = torch.zeros_like(z[:, 0, 0, 0]) + self.logdet_const
        logp = torch.zeros_like(logdet)
        eps_parts = []
        for l in range(self.L):
            z = self.squeeze(z)
            C = z.shape[1]
            for k in range(self.K):
                pre = f"L{l}.S{k}."
                if self.folded:
                    z = F.conv2d(z, self.t(pre + "affine.W"), self.t(pre + "affine.b"))
                else:
                    z = (z + self.t(pre + "actnorm.b")) * self.t(pre + "actnorm.scale")
                    z = F.conv2d(z, self.t(pre + "invconv"))
                z1, z2 = z[:, : C // 2], z[:, C // 2:]
                h = self.nn_f(l, k, z1)
                if self.affine:
                    shift = h[:, 0::2]
                    scale = torch.sigmoid(h[:, 1::2] + 2.0)
                    z2 = (z2 + shift) * scale
                    logdet = logdet + torch.log(scale).reshape(n, -1).sum(dim=1)
                else:
                    z2 = z2 + h
                z = torch.cat([z1, z2], dim=1)
            if l < self.L - 1:
                z1, z2 = z[:, : C // 2], z[:, C // 2:]
                mean, logs = self.split_prior(l, z1)
                logp = logp + self.gaussian_logp(z2, mean, logs)
                e = (z2 - mean) * torch.exp(-logs)
                eps_parts.append(e.permute(0, 2, 3, 1).reshape(n, -1))
                z = z1
        mean, logs = self.t("top.mean"), self.t("top.logs")
        logp = logp + self.gaussian_logp(z, mean.expand_as(z), logs.expand_as(z))
        e = (z - mean) / self.t("top.std")
        eps_parts.append(e.permute(0, 2, 3, 1).reshape(n, -1))
        eps = torch.cat(eps_parts, dim=1)
        objective = logdet + logp - self.D * math.log(2 ** self.cfg["n_bits"])
        bpd = objective * (-1.0 / (self.D * math.log(2.0)))
        return eps, objective, bpd

    def decode(self, eps, temperature):
        n = eps.shape[0]
        cfg = self.cfg
        sizes = []
        for l in range(self.L - 1):
            h, w, c = oracle.level_shape(cfg, l)
            sizes.append((h, w, c // 2))
        sizes.append(oracle.level_shape(cfg, self.L - 1))
        pieces, off = [], 0
        for (h, w, c) in sizes:
            pieces.append(eps[:, off:off + h * w * c].reshape(n, h, w, c).permute(0, 3, 1, 2))
            off += h * w * c
        z = self.t("top.mean") + self.t("top.std") * (pieces[-1] * temperature)
        for l in reversed(range(self.L)):
            if l < self.L - 1:
                mean, logs = self.split_prior(l, z)
                z = torch.cat([z, mean + torch.exp(logs) * (pieces[l] * temperature)], dim=1)
            C = z.shape[1]
            for k in reversed(range(self.K)):
                pre = f"L{l}.S{k}."
                z1, z2 = z[:, : C // 2], z[:, C // 2:]
                h = self.nn_f(l, k, z1)
                if self.affine:
                    shift = h[:, 0::2]
                    scale = torch.sigmoid(h[:, 1::2] + 2.0)
                    z2 = z2 / scale - shift
                else:
                    z2 = z2 - h
                z = torch.cat([z1, z2], dim=1)
                if self.folded:
                    z = F.conv2d(z, self.t(pre + "affine.W"), self.t(pre + "affine.b"))
                else:
                    z = F.conv2d(z, self.t(pre + "invconv"))
                    z = z * self.t(pre + "actnorm.inv_scale") - self.t(pre + "actnorm.b")
            z = self.unsqueeze(z)
        return z.permute(0, 2, 3, 1)  # NCHW -> NHWC

    def forward(self, a, temperature=None):
        if self.direction == "encode":
            return self.encode(a)
        return self.decode(a, temperature)


def export(model_dir, out, direction, opset=17, batch=None, folded=True):
    cfg, tensors = oracle.load_model_dir(model_dir)
    mod = GlowOnnx(cfg, tensors, direction, batch, folded).eval()
    torch.set_default_dtype(torch.float32)
    H, W, c0 = cfg["image"]["height"], cfg["image"]["width"], cfg["image"]["channels"]
    D = H * W * c0
    b = batch or 2
    if direction == "decode":
        args = (torch.zeros(b, D), torch.tensor([0.7]))
        names_in, names_out = ["eps", "temperature"], ["x"]
        axes = {"eps": {0: "batch"}, "x": {0: "batch"}}
    else:
        args = (torch.zeros(b, H, W, c0),)
        names_in, names_out = ["x"], ["eps", "objective", "bits_per_dim"]
        axes = {"x": {0: "batch"}, "eps": {0: "batch"}, "objective": {0: "batch"}, "bits_per_dim": {0: "batch"}}
    if batch:
        axes = None  # static shapes: every shape computation folds away
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the legacy exporter, on purpose
    warnings.filterwarnings("ignore", message=".*Only steps=1 can be constant folded.*")  # h[:, 0::2]
    with torch.no_grad():
        torch.onnx.export(mod, args, out, input_names=names_in, output_names=names_out,
                          dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
    import onnx
    m = onnx.load(out)
    onnx.checker.check_model(m)
    ops = {}
    for node in m.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    print(f"{out}: {direction}, {'folded' if folded else 'generic'}, batch {batch or 'dynamic'}, opset {opset}, {len(m.graph.node)} nodes, {os.path.getsize(out) / 1e6:.1f} MB")
    print("  ops:", ", ".join(f"{k} {v}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1])))
    return cfg, tensors


def check(path, cfg, tensors, direction, batches=(1, 16)):
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    model = oracle.Glow(cfg, tensors)  # float64
    H, W, c0 = cfg["image"]["height"], cfg["image"]["width"], cfg["image"]["channels"]
    D = H * W * c0
    rng = np.random.default_rng(1234)
    worst = 0.0
    for b in batches:
        eps = rng.standard_normal((b, D)).astype(np.float32)
        T = 0.7
        x64 = model.decode(torch.from_numpy(eps.astype(np.float64)), T)
        if direction == "decode":
            (x,) = sess.run(None, {"eps": eps, "temperature": np.array([T], np.float32)})
            d = np.abs(x - x64.numpy()).max()
            px_ref = np.clip(np.floor((x64.numpy() + 0.5) * 256), 0, 255)
            px = np.clip(np.floor((x + 0.5) * 256), 0, 255)
            print(f"  decode batch {b}: max|x - oracle| = {d:.2e} (x range [{x64.min():.3f}, {x64.max():.3f}]), "
                  f"pixels differing: {(px != px_ref).sum()} of {px.size}, max {np.abs(px - px_ref).max():.0f}")
            worst = max(worst, d)
        else:
            # dequantized images: bin centres of the sampled images (the real encode input)
            nb = cfg["n_bits"]
            pix = np.clip(np.floor((x64.numpy() + 0.5) * 256), 0, 255).astype(np.uint8)
            xin = model.preprocess(pix)
            ref = model.encode(xin)
            e, obj, bpd = sess.run(None, {"x": xin.numpy().astype(np.float32)})
            de = np.abs(e - ref["eps"].numpy()).max()
            do = np.abs(obj - ref["objective"].numpy()).max()
            dr = np.abs(obj - ref["objective"].numpy()).max() / np.abs(ref["objective"].numpy()).max()
            db = np.abs(bpd - ref["bpd"].numpy()).max()
            print(f"  encode batch {b} (n_bits {nb}): max|eps - oracle| = {de:.2e} (max|eps| {ref['eps'].abs().max():.2f}), "
                  f"max|objective - oracle| = {do:.2e} (rel {dr:.1e}), max|bpd - oracle| = {db:.2e} (bpd {ref['bpd'][0]:.4f})")
            worst = max(worst, de, db)
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--direction", choices=["decode", "encode"], required=True)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--batch", type=int, default=None, help="export for this batch size only (static shapes); "
                    "default: dynamic batch")
    ap.add_argument("--generic", action="store_true", help="unfolded ops, as a generic converter writes them "
                    "(Pad + Concat of the edge channel per 3x3 conv, separate actnorms)")
    ap.add_argument("--check", action="store_true", help="compare with oracle.py (float64) via onnxruntime CPU")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    cfg, tensors = export(a.model_dir, a.out, a.direction, a.opset, a.batch, folded=not a.generic)
    torch.set_default_dtype(torch.float64)  # oracle.py works in float64
    if a.check:
        worst = check(a.out, cfg, tensors, a.direction, (a.batch,) if a.batch else (1, 16))
        print(f"  worst difference {worst:.2e} (tolerance {a.tolerance:g})")
        if not worst < a.tolerance:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
