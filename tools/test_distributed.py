#!/usr/bin/env python3
"""Test of tools/train.py under torch.distributed (two gloo processes on the CPU).

    python tools/test_distributed.py        # from anywhere; ~30 s on one core

A tiny Glow (16x16x1 generated images, L=2, K=2, width 8, float64) is trained for a few
steps with a global batch of 7 (uneven shards: 3 + 4 images; test-set evaluation in batches
of 3, so both ranks evaluate a share):

  A  1 process, steps 0-8, then C: A resumed in 1 process, steps 8-16
  B  2 processes (RANK/WORLD_SIZE set as torchrun does), steps 0-8
  D  B's checkpoint resumed in 1 process, steps 8-16
  E  A's checkpoint resumed by `torchrun --nproc_per_node 2 tools/train.py`, steps 8-16

Checks: (a) the two ranks of B hold bit-identical parameters after every step; (b) B's
parameters match A's after every step, and B's checkpoint (EMA, Adam, data order, RNG
states, test bits/dim) matches A's; (c) D matches C after every step (a 2-process
checkpoint resumes in 1 process) and E's final checkpoint matches C's (1 -> 2 processes,
through the real launcher); rank 0 alone writes the log. Also --init-from: C's run exported
by export.py and started again from that directory holds the file's weights and, at step 0,
evaluates to the bits/dim that export.py wrote into model.json.

Tolerance for (b) and (c): 1e-9 absolute on parameters (weights are O(0.1-1)). In float64 the
runs differ only in rounding: the shards are encoded as separate smaller batches and the
gradient is summed in another order (per-rank partial sums, then the all-reduce), ~1e-16
relative each. Adam then divides by sqrt(v) + 1e-8: an absolute gradient difference d
moves a weight by at most about lr * d / 1e-8 (lr = 1e-3), so even a 1e-15 rounding
difference in a near-zero gradient element stays below 1e-9 after these steps; a wrong
shard, a lost gradient or a changed data order moves weights by ~lr = 1e-3. (The measured
difference is printed.) Ranks of one run must agree exactly (tolerance 0): they apply the
same all-reduced gradient with the same arithmetic.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train as T  # noqa: E402

TOL = 1e-9
STEPS1, STEPS2 = 8, 16  # 80 training images / 7 = 11 steps an epoch: the second half crosses an epoch
ARGS = ["--dataset", "synthetic", "--levels", "2", "--steps", "2", "--width", "8", "--batch", "7",
        "--init-batch", "32", "--warmup-steps", "3", "--lr", "1e-3", "--dtype", "float64", "--threads", "1",
        "--cpu", "--eval-batch", "3", "--eval-minutes", "1000", "--ckpt-minutes", "1000", "--log-seconds", "1000"]

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def run_here(argv):
    """A single-process run in this process (no torch.distributed); {step: parameters}."""
    rec = {}
    assert "RANK" not in os.environ or os.environ.get("WORLD_SIZE") is None
    T.main(argv, on_step=lambda step, model: rec.__setitem__(step, flat(model)))
    check("single process: torch.distributed left uninitialised", not torch.distributed.is_initialized())
    return rec


def worker(out, argv):
    rec = {}
    T.main(argv, on_step=lambda step, model: rec.__setitem__(step, flat(model)))
    torch.save(rec, out)
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env():
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def wait_all(procs, logs, timeout=300):
    t_end = time.time() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, t_end - time.time())))
        except subprocess.TimeoutExpired:
            codes.append(None)
    for p, c in zip(procs, codes):
        if c is None:
            p.kill()  # only the processes this test started
            p.wait()
    if any(c != 0 for c in codes):
        for lg in logs:
            with open(lg) as f:
                sys.stdout.write(f"---- {lg}\n" + f.read()[-3000:])
    return codes


def run_two(tmp, tag, argv):
    """Two ranks of this script's worker, the environment set as torchrun sets it."""
    port = free_port()
    procs, logs = [], []
    for r in range(2):
        env = child_env()
        env.update(RANK=str(r), WORLD_SIZE="2", LOCAL_RANK=str(r), LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        lg = os.path.join(tmp, f"{tag}.rank{r}.out")
        logs.append(lg)
        with open(lg, "w") as f:
            procs.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", os.path.join(tmp, f"{tag}.rank{r}.pt"), "--"]
                + argv, env=env, stdout=f, stderr=subprocess.STDOUT))
    codes = wait_all(procs, logs)
    check(f"{tag}: both ranks exit 0", codes == [0, 0], str(codes))
    if codes != [0, 0]:
        return None
    return [torch.load(os.path.join(tmp, f"{tag}.rank{r}.pt")) for r in range(2)]


def maxdiff(a, b):
    return (a - b).abs().max().item()


def compare_steps(name, ref, got, steps):
    missing = [s for s in steps if s not in ref or s not in got]
    if missing:
        check(name, False, f"steps missing: {missing}")
        return
    d = max(maxdiff(ref[s], got[s]) for s in steps)
    moved = maxdiff(ref[steps[-1]], ref[steps[0]]) if len(steps) > 1 else float("nan")
    check(name, d <= TOL, f"max |d param| over steps {steps[0]}-{steps[-1]} = {d:.2e} (tol {TOL:.0e}; "
                          f"the weights themselves moved {moved:.2e} over those steps)")


def load_ckpt(run_dir):
    return torch.load(os.path.join(run_dir, "checkpoint.pt"), map_location="cpu", weights_only=False)


def compare_ckpts(name, a, b, exact_state=True):
    dm = max(maxdiff(a["model"][k].double(), b["model"][k].double()) for k in a["model"]
             if a["model"][k].dtype.is_floating_point)
    de = max(maxdiff(a["ema"][k].double(), b["ema"][k].double()) for k in a["ema"]
             if a["ema"][k].dtype.is_floating_point)
    sa, sb = a["opt"]["state"], b["opt"]["state"]
    dadam = max(maxdiff(sa[i][k].double(), sb[i][k].double()) for i in sa for k in ("exp_avg", "exp_avg_sq"))
    check(f"{name}: model, EMA, Adam moments", max(dm, de, dadam) <= TOL,
          f"max |d| model {dm:.2e}, EMA {de:.2e}, Adam {dadam:.2e}")
    same = (a["step"] == b["step"] and a["epoch"] == b["epoch"] and a["pos"] == b["pos"]
            and (a["perm"] == b["perm"]).all() and a["np_rng"] == b["np_rng"]
            and torch.equal(a["torch_rng"], b["torch_rng"]))
    check(f"{name}: step, epoch, data order and RNG states identical", same,
          f"step {a['step']}/{b['step']} epoch {a['epoch']}/{b['epoch']} pos {a['pos']}/{b['pos']}")
    ha, hb = a["history"][-1], b["history"][-1]
    dh = max(abs(ha["test_bpd_ema"] - hb["test_bpd_ema"]),
             abs(ha["test_bpd_ema_dequantized"] - hb["test_bpd_ema_dequantized"]))
    check(f"{name}: final test bits/dim (distributed evaluation)", ha["step"] == hb["step"] and dh <= 1e-9,
          f"{ha['test_bpd_ema']:.6f} / {hb['test_bpd_ema']:.6f}, |d| {dh:.1e}")


def main():
    t_start = time.time()
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="glow-ddp-test-")
    try:
        dA, dB, dE = (os.path.join(tmp, n) for n in ("A", "B", "E"))
        # A: one process, 0 -> STEPS1
        A = run_here(ARGS + ["--run-dir", dA, "--max-steps", str(STEPS1)])
        ckA = load_ckpt(dA)
        shutil.copytree(dA, dE)  # E resumes A's checkpoint in 2 processes
        # B: two processes, 0 -> STEPS1
        B = run_two(tmp, "B", ARGS + ["--run-dir", dB, "--max-steps", str(STEPS1)])
        steps1 = list(range(1, STEPS1 + 1))
        if B is not None:
            same = all(s in B[0] and s in B[1] and torch.equal(B[0][s], B[1][s]) for s in steps1)
            check("(a) ranks 0 and 1 bit-identical after every step", same)
            compare_steps("(b) 2 processes vs 1 process, every step", A, B[0], steps1)
            ckB = load_ckpt(dB)
            compare_ckpts("(b) checkpoints at step %d, 2 vs 1 process" % STEPS1, ckA, ckB)
            with open(os.path.join(dB, "train.log")) as f:
                n_end = sum(1 for line in f if " end step " in line)
            check("rank 0 alone writes the log", n_end == 1, f"{n_end} 'end step' line(s) in train.log")
        # C: A resumed in one process, STEPS1 -> STEPS2 (the reference)
        C = run_here(["--resume", "--run-dir", dA, "--max-steps", str(STEPS2), "--cpu", "--threads", "1"])
        steps2 = list(range(STEPS1 + 1, STEPS2 + 1))
        ckC = load_ckpt(dA)
        # D: B's 2-process checkpoint resumed in one process
        if B is not None:
            D = run_here(["--resume", "--run-dir", dB, "--max-steps", str(STEPS2), "--cpu", "--threads", "1"])
            compare_steps("(c) 2-process checkpoint resumed in 1 process, every step", C, D, steps2)
            compare_ckpts("(c) checkpoints at step %d" % STEPS2, ckC, load_ckpt(dB))
        # E: A's 1-process checkpoint resumed by torchrun with 2 processes (the real launcher)
        lg = os.path.join(tmp, "E.out")
        with open(lg, "w") as f:
            p = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                                  os.path.join(HERE, "train.py"), "--resume", "--run-dir", dE, "--max-steps",
                                  str(STEPS2), "--cpu", "--threads", "1"],
                                 env=child_env(), stdout=f, stderr=subprocess.STDOUT)
        codes = wait_all([p], [lg])
        check("torchrun --nproc_per_node 2 tools/train.py --resume exits 0", codes == [0], str(codes))
        if codes == [0]:
            ckE = load_ckpt(dE)
            check("torchrun run records 2 processes", ckE.get("world") == 2, str(ckE.get("world")))
            compare_ckpts("(c) 1-process checkpoint resumed by torchrun in 2 processes", ckC, ckE)
        # --init-from: export C's run (f16 weights + model.json metrics), start a new run from it
        import export
        meta = export.export(dA, os.path.join(tmp, "model"))
        dF = os.path.join(tmp, "F")
        run_here(["--init-from", os.path.join(tmp, "model"), "--run-dir", dF, "--max-steps", "0", "--cpu",
                  "--threads", "1", "--eval-batch", "64"])  # export evaluates in batches of 64
        ckF = load_ckpt(dF)
        from safetensors.numpy import load_file
        f16 = load_file(os.path.join(tmp, "model", "weights.safetensors"))
        g = T.GlowModel(ckF["cfg"])
        g.load_state_dict(ckF["model"])
        dw = max(maxdiff(p.detach().double(), torch.from_numpy(f16[k].astype("float64")))
                 for k, p in g.format_tensors().items())
        check("--init-from: the run starts from the file's f16 weights exactly", dw == 0.0, f"max |d| {dw:.1e}")
        h, m = ckF["history"][0], meta["metrics"]
        d0 = max(abs(h["test_bpd_ema"] - m["test_bpd"]), abs(h["test_bpd_ema_dequantized"] - m["test_bpd_dequantized"]))
        check("--init-from: step-0 test bits/dim = model.json's (rounded to 5 decimals)", h["step"] == 0 and d0 <= 6e-6,
              f"{h['test_bpd_ema']:.6f} / {h['test_bpd_ema_dequantized']:.6f} vs {m['test_bpd']} / "
              f"{m['test_bpd_dequantized']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n_ok = sum(results)
    print(f"({time.time() - t_start:.1f} s)")
    print(f"{n_ok} passed, {len(results) - n_ok} failed")
    return 0 if results and n_ok == len(results) else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        torch.set_num_threads(1)
        sys.exit(worker(sys.argv[2], sys.argv[4:]))
    sys.exit(main())
