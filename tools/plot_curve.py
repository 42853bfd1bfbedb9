#!/usr/bin/env python3
"""Draw a model's training curve (model.json `training.curve`, written by export.py) as an SVG:
test bits/dim, dequantized and at the bin centre, against hours of training.

    python3 tools/plot_curve.py models/NAME/model.json docs/img/NAME-curve.svg

Standard library only. The hours are wall-clock time in training steps on the machine that
trained the model (see model.json `metrics.hardware`), not a measure of compute.
"""

import json
import sys

W, H = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 28, 48


def nice_ticks(lo, hi, n=6):
    """Round tick values covering lo..hi, about n of them."""
    span = hi - lo
    step = 10 ** len(str(int(span / n))) if span / n >= 1 else 1.0
    for m in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50):
        if span / m <= n:
            step = m
            break
    first = step * int(lo / step)
    return [round(first + i * step, 6) for i in range(int((hi - first) / step) + 2) if first + i * step <= hi + 1e-9]


def main(src, dst):
    with open(src) as f:
        meta = json.load(f)
    curve = meta["training"]["curve"]
    xs = [p["minutes"] / 60 for p in curve]
    series = [("dequantized (the bound papers report)", "test_bpd_dequantized", "#c0392b"),
              ("bin centre (what the page shows)", "test_bpd", "#2471a3")]
    ys = [p[k] for _, k, _ in series for p in curve]
    x0, x1 = 0.0, max(xs) * 1.03
    y0, y1 = min(ys) - 0.02, max(ys) + 0.02
    sx = lambda x: LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT)  # noqa: E731
    sy = lambda y: TOP + (y1 - y) / (y1 - y0) * (H - TOP - BOTTOM)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">{meta["name"]}: test bits/dim '
           f'({meta["metrics"]["test_images"]} held-out faces) during training</text>']
    for t in nice_ticks(y0, y1):
        if y0 <= t <= y1:
            out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{LEFT - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in nice_ticks(x0, x1):
        out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{H - BOTTOM}" y2="{H - BOTTOM + 4}" stroke="#333"/>')
        out.append(f'<text x="{sx(t):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{t:g}</text>')
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{H - BOTTOM}" y2="{H - BOTTOM}" stroke="#333"/>')
    out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{H - BOTTOM}" stroke="#333"/>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 10}" text-anchor="middle">hours in training steps '
               '(wall clock, shared 2-core CPU)</text>')
    out.append(f'<text x="16" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(TOP + H - BOTTOM) / 2})">bits/dim</text>')
    for i, (label, key, colour) in enumerate(series):
        pts = " ".join(f"{sx(x):.1f},{sy(p[key]):.1f}" for x, p in zip(xs, curve))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(p[key]):.1f}" r="2.5" fill="{colour}"/>' for x, p in zip(xs, curve)]
        ly = TOP + 14 + 18 * i
        out.append(f'<line x1="{W - RIGHT - 250}" x2="{W - RIGHT - 230}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{W - RIGHT - 224}" y="{ly}">{label}</text>')
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {dst}: {len(curve)} points, {xs[-1]:.1f} h")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
