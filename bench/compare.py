#!/usr/bin/python3
"""nabla against PyTorch, side by side: for each model file, training and
inference throughput of bench/train-throughput and of the same network in
PyTorch (built from the same JSON by bench/torchmodels.py), at the same
batch size, thread count and optimizer, with the batches held as float
tensors before timing; then a table.  Each side runs in --procs separate
processes, taking turns: PyTorch's two-thread speed changes from process to
process, so the table gives the median process and PyTorch's fastest one.
nabla's GFLOP/s is also given as a fraction of the machine's FP32 FMA peak
at the width of nabla's kernels, as bench/fma-peak measures it on the same
thread count.  With --memory, the peak RSS of `nabla train` against PyTorch
training on the same examples.  With --ops, the single ops of
`train-throughput --ops` (convolutions, depthwise ones among them, linear
layers, pooling) against the same calls in PyTorch, forward and backward.
Needs Debian's python3-torch; nabla's build and tests never run it.
docs/performance.md explains every column.

    /usr/bin/python3 bench/compare.py [--models keras-cnn,lenet,cnn3,mlp] [--threads N]
        [--batch N] [--repeats R] [--steps N] [--warmup N] [--procs N] [--data DIR|random]
        [--nabla PATH] [--markdown] [--memory | --memory-only] [--limit N]
        [--nabla-tool PATH]
    /usr/bin/python3 bench/compare.py --ops [--only TEXT] [--threads N] [--batch N] [--procs N]
        [--dtype f32|f64] [--markdown]
"""
import argparse
import glob
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Training images per second of KANN (attractivechaos/kann) on the same
# networks, batch 64, measured earlier on this machine; KANN is not
# packaged, so these are quoted, not run.
KANN_REF = {"keras-cnn": 1050, "lenet": 6500, "cnn3": 1700, "mlp": 18400}


# ---- finding the programs ---------------------------------------------------

def find_program(rel):
    """build/REL, then REL in the source tree (an in-tree build), then the
    newest build*/REL."""
    cands = [os.path.join(REPO, "build", rel), os.path.join(REPO, rel)]
    cands += sorted(glob.glob(os.path.join(REPO, "build*", rel)), key=os.path.getmtime,
                    reverse=True)
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def cpu_info():
    """The CPU's model name and the widest kernels nabla can run on it
    (lib/cpu.c's rule: AVX-512 needs F, BW, VL and DQ; AVX2 needs FMA)."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() == "model name" and model == "unknown":
                    model = val.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        widest = "avx512"
    elif {"avx2", "fma"} <= flags:
        widest = "avx2"
    else:
        widest = "baseline"
    return model, widest


def fma_peak(a, width):
    """bench/fma-peak --json on --threads threads: (GFLOP/s at width, or
    None, and a note for the header)."""
    prog = os.path.join(os.path.dirname(a.nabla), "fma-peak")
    prog = prog if os.access(prog, os.X_OK) else find_program("bench/fma-peak")
    if not prog:
        return None, "bench/fma-peak not found (build it): no fraction-of-peak column"
    out, err, rc, _, _ = run_child([prog, "--threads", str(a.threads), "--json"])
    try:
        gflops = json.loads(out.strip().splitlines()[-1])["gflops"][width][str(a.threads)]
    except (ValueError, IndexError, KeyError):
        return None, (f"{prog} gave no {width} figure on {a.threads} threads (exit {rc}): "
                      "no fraction-of-peak column")
    return gflops, (f"{gflops:.1f} GFLOP/s ({width}, {a.threads} thread"
                    f"{'s' if a.threads > 1 else ''}, {prog})")


def run_child(argv, env=None):
    """Runs argv to its end; returns (stdout, stderr, returncode, peak RSS in
    MiB, seconds), the RSS of this child alone (wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        secs = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return out.read(), err.read(), p.returncode, ru.ru_maxrss / 1024.0, secs


def torch_env(threads):
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = "1"  # ATen's own pool does the threading
    env["OMP_NUM_THREADS"] = str(threads)
    return env


# ---- the PyTorch side (run in a child per model: --worker) -------------------

def worker(a):
    import warnings
    warnings.filterwarnings("ignore", "The given NumPy array is not writable")
    import numpy as np
    import torch
    import torch.nn as nn
    import torchmodels as tm

    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    torch.set_num_threads(a.threads)
    spec = tm.load(a.worker)
    tr = tm.training(spec)
    torch.manual_seed(tr["seed"])
    net = tm.build(spec)
    opt = tm.optimizer(spec, net.parameters())
    hinge = spec.get("loss", {}).get("type") == "hinge"
    loss_fn = (lambda f, y: torch.clamp(1 - y * f.view(-1), min=0).mean()) if hinge \
        else nn.CrossEntropyLoss()
    norm = tr.get("normalize")
    classes = tr.get("classes")
    batch = a.batch or tr["batch_size"]
    gen = torch.Generator().manual_seed(tr["seed"] + 2)

    def target(labels):
        y = torch.as_tensor(labels, dtype=torch.long)
        return (y == 1).float() * 2 - 1 if hinge else y

    def to_float(images):
        x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255)  # one copy
        return x.sub_(norm["mean"]).div_(norm["std"]) if norm else x

    def mapped(images, labels):
        if not classes:
            return images, labels
        keep = np.isin(labels, classes)
        lut = np.full(256, -1, np.int64)
        lut[classes] = np.arange(len(classes))
        return images[keep], lut[labels[keep]]

    if a.mode == "throughput":
        pool = []
        if a.data == "random":
            nout = 2 if hinge else spec["layers"][-1].get("out_features", 10)
            for _ in range(64):
                x = torch.rand(batch, *spec["input"], generator=gen)
                pool.append((x, target(torch.randint(nout, (batch,), generator=gen))))
            images = None
        else:
            images, labels = mapped(*tm.fashion_mnist(True, a.data or tm.DATA))
            perm = torch.randperm(len(images), generator=gen).numpy()
            for p in range(min(64, -(-len(images) // batch))):
                idx = perm[np.arange(p * batch, (p + 1) * batch) % len(images)]
                pool.append((to_float(images[idx]).reshape(batch, *spec["input"]),
                             target(labels[idx])))

        def train_step(k):
            x, y = pool[k % len(pool)]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.item()
            loss.backward()
            opt.step()

        def infer_step(k):
            x, _ = pool[k % len(pool)]
            net(x).argmax(1)

        def timed(step):
            k = 0
            for _ in range(a.warmup):
                step(k)
                k += 1
            rates = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                for _ in range(a.steps):
                    step(k)
                    k += 1
                rates.append(a.steps * batch / (time.perf_counter() - t0))
            rates.sort()
            n = len(rates)
            med = rates[n // 2] if n % 2 else 0.5 * (rates[n // 2 - 1] + rates[n // 2])
            return {"median": med, "min": rates[0], "max": rates[-1]}

        net.train()
        result = {"train": timed(train_step)}
        net.eval()
        with torch.inference_mode():
            result["inference"] = timed(infer_step)
    else:
        # `nabla train --epochs 1 --limit N` in PyTorch: the first N training
        # examples less the validation split, one shuffled epoch, then the
        # validation examples and the first N/4 test examples evaluated.
        images, labels = mapped(*tm.fashion_mnist(True, a.data or tm.DATA))
        test_images, test_labels = mapped(*tm.fashion_mnist(False, a.data or tm.DATA))
        if a.mode == "float":  # the whole set converted up front, as is usual
            images, test_images = to_float(images), to_float(test_images)
            take = lambda imgs, idx: imgs[idx]
        else:  # uint8 kept, each batch converted as it is drawn (nabla's way)
            take = lambda imgs, idx: to_float(imgs[idx])
        n = min(a.limit, len(images))
        nval = int(n * tr["validation_split"])
        ntrain = n - nval
        ntest = min(max(a.limit // 4, 1), len(test_images))
        net.train()
        perm = torch.randperm(ntrain, generator=gen).numpy()
        for s in range(0, ntrain, batch):
            idx = perm[s:s + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(take(images, idx)), target(labels[idx]))
            loss.item()
            loss.backward()
            opt.step()
        net.eval()
        with torch.inference_mode():
            for imgs, lbls, lo, hi in ((images, labels, ntrain, n),
                                       (test_images, test_labels, 0, ntest)):
                for s in range(lo, hi, batch):
                    idx = np.arange(s, min(s + batch, hi))
                    loss_fn(net(take(imgs, idx)), target(lbls[idx])).item()
        result = {"steps": -(-ntrain // batch)}
    result["rss_import"] = rss_import
    result["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))


def ops_worker(a):
    """Times each case of a.ops_worker (JSON, parsed from train-throughput
    --ops) as bench_op in train-throughput.c does: the op's call, then
    backward from the sum of its output; three warm-up calls, then at least
    10 and 0.4 s of them (at most 400); the medians, in ms."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    dtype = torch.float64 if a.dtype == "f64" else torch.float32
    out = []
    for c in json.loads(a.ops_worker):
        n = c["batch"]
        if c["kind"] == "conv":
            x = torch.rand(n, c["c"], c["h"], c["w"], dtype=dtype)
            w = torch.randn(c["o"], c["c"] // c["groups"], c["k"], c["k"], dtype=dtype) * 0.1
            b = torch.randn(c["o"], dtype=dtype) * 0.1
            op = lambda: F.conv2d(x, w, b, stride=c["stride"], padding=c["pad"],
                                  groups=c["groups"])
        elif c["kind"] == "linear":
            x = torch.rand(n, c["c"], dtype=dtype)
            w = torch.randn(c["o"], c["c"], dtype=dtype) * 0.1
            b = torch.randn(c["o"], dtype=dtype) * 0.1
            op = lambda: F.linear(x, w, b)
        else:
            x = torch.rand(n, c["c"], c["h"], c["w"], dtype=dtype)
            w = b = None
            op = lambda: F.max_pool2d(x, c["k"])
        x.requires_grad_(c["dx"])
        for t in (w, b):
            if t is not None:
                t.requires_grad_(True)
        fwd, bwd, spent, i = [], [], 0.0, -3
        while len(fwd) < 400 and (len(fwd) < 10 or spent < 0.4):
            for t in (x, w, b):
                if t is not None:
                    t.grad = None
            t0 = time.perf_counter()
            y = op()
            t1 = time.perf_counter()
            loss = y.sum()
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            if i >= 0:
                fwd.append(t1 - t0)
                bwd.append(t3 - t2)
                spent += t3 - t0
            i += 1
        med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else \
            0.5 * (sorted(v)[len(v) // 2 - 1] + sorted(v)[len(v) // 2])
        out.append({"fwd": med(fwd) * 1e3, "bwd": med(bwd) * 1e3})
    print(json.dumps(out))


# "64x16x28x28 -> 16 3x3 pad 1 s2 g16", "64x1600 -> 64", "64x32x26x26 2x2"
OP_ROW = re.compile(r"^(.{16}) (\S.*?)\s+(yes|no)\s+([0-9.]+)\s+[0-9.]+ \S+\s+([0-9.]+)\s", re.M)


def parse_op(name, shape, dx):
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)x(\d+) -> (\d+) (\d+)x\d+( pad (\d+))?( s(\d+))?"
                     r"( g(\d+))?", shape)
    if m:
        return {"name": name, "kind": "conv", "batch": int(m[1]), "c": int(m[2]),
                "h": int(m[3]), "w": int(m[4]), "o": int(m[5]), "k": int(m[6]),
                "pad": int(m[8] or 0), "stride": int(m[10] or 1), "groups": int(m[12] or 1),
                "dx": dx}
    m = re.fullmatch(r"(\d+)x(\d+) -> (\d+)", shape)
    if m:
        return {"name": name, "kind": "linear", "batch": int(m[1]), "c": int(m[2]),
                "o": int(m[3]), "dx": dx}
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)x(\d+) (\d+)x\d+", shape)
    if m:
        return {"name": name, "kind": "pool", "batch": int(m[1]), "c": int(m[2]),
                "h": int(m[3]), "w": int(m[4]), "k": int(m[5]), "dx": dx}
    sys.exit(f"compare.py: cannot read the op shape {shape!r} of train-throughput --ops")


def compare_ops(a, median):
    """nabla's and PyTorch's median call time of each op, in --procs
    processes a side taking turns: the median process of each, and
    PyTorch's fastest."""
    argv = [a.nabla, "--ops", "--threads", str(a.threads), "--dtype", a.dtype]
    if a.only:
        argv += ["--only", a.only]
    if a.batch:
        argv += ["--batch", str(a.batch)]
    runs, cases = [], None
    for k in range(a.procs):
        print(f"  ops {k + 1}/{a.procs}: nabla...", end="", flush=True, file=sys.stderr)
        out, err, rc, _, _ = run_child(argv)
        if rc != 0:
            sys.exit(f"compare.py: {' '.join(argv)} failed:\n{err}")
        rows = [(m[1].strip(), m[2].strip(), m[3] == "yes", float(m[4]), float(m[5]))
                for m in OP_ROW.finditer(out)]
        if not rows:
            sys.exit(f"compare.py: no op in the output of {' '.join(argv)}")
        if cases is None:
            cases = [parse_op(*r[:3]) for r in rows]
        print(" PyTorch...", end="", flush=True, file=sys.stderr)
        pargv = [sys.executable, os.path.abspath(__file__), "--ops-worker", json.dumps(cases),
                 "--threads", str(a.threads), "--dtype", a.dtype]
        pout, perr, prc, _, _ = run_child(pargv, torch_env(a.threads))
        if prc != 0:
            sys.exit(f"compare.py: PyTorch ops failed:\n{perr}")
        runs.append(([(r[3], r[4]) for r in rows], json.loads(pout.strip().splitlines()[-1])))
        print(" done", file=sys.stderr)
    trows = []
    for i, c in enumerate(cases):
        row = [c["name"], rows[i][1], "yes" if c["dx"] else "no"]
        for j, key in enumerate(("fwd", "bwd")):
            nb = median([r[0][i][j] for r in runs])
            pt = median([r[1][i][key] for r in runs])
            fast = min(r[1][i][key] for r in runs)
            row += [f"{nb:.3f}", f"{pt:.3f}", f"{fast:.3f}", f"{fast / nb:.2f}"]
        trows.append(row)
    print(f"\nops ({a.dtype}), median ms of one call (the median of {a.procs} processes' "
          "medians); speed-up = PyTorch's fastest process / nabla")
    print(table(["op", "shape", "dx", "nabla fwd", "PyTorch fwd", "fastest", "speed-up",
                 "nabla bwd", "PyTorch bwd", "fastest", "speed-up"], trows, a.markdown))


def run_torch(a, model, mode):
    argv = [sys.executable, os.path.abspath(__file__), "--worker", model, "--mode", mode,
            "--threads", str(a.threads), "--batch", str(a.batch), "--steps", str(a.steps),
            "--warmup", str(a.warmup), "--repeats", str(a.repeats), "--limit", str(a.limit)]
    if a.data:
        argv += ["--data", a.data]
    out, err, rc, rss, secs = run_child(argv, torch_env(a.threads))
    if rc != 0:
        sys.exit(f"compare.py: PyTorch {model} ({mode}) failed:\n{err}")
    r = json.loads(out.strip().splitlines()[-1])
    r["rss_child"], r["seconds"] = rss, secs
    return r


# ---- the nabla side -------------------------------------------------------------

NUM = r"([0-9.]+)"


def run_nabla(a, model):
    argv = [a.nabla, os.path.join(REPO, "models", model + ".json"), "--threads", str(a.threads),
            "--batch", str(a.batch), "--steps", str(a.steps), "--warmup", str(a.warmup),
            "--repeats", str(a.repeats)]
    if a.data:
        argv += ["--data", a.data]
    out, err, rc, _, _ = run_child(argv)
    if rc != 0:
        sys.exit(f"compare.py: {' '.join(argv)} failed:\n{err}")
    r = {"output": out}
    for what in ("train", "inference"):
        m = re.search(rf"^{what}:\s+{NUM} img/s median \(min {NUM}, max {NUM}\)", out, re.M)
        r[what] = {"median": float(m[1]), "min": float(m[2]), "max": float(m[3])}
        r[what]["gflops"] = float(re.search(rf"^{what}:.*; {NUM} GFLOP/s", out, re.M)[1])
    r["rss"] = float(re.search(rf"peak RSS: {NUM} MiB", out)[1])
    m = re.search(rf"allocations per warm step: train {NUM}, inference {NUM}", out)
    r["allocs"] = (float(m[1]), float(m[2]))
    return r


def run_nabla_train(a, model):
    with tempfile.TemporaryDirectory(prefix="nabla-mem-") as out_dir:
        argv = [a.nabla_tool, "train", os.path.join(REPO, "models", model + ".json"),
                "--epochs", "1", "--limit", str(a.limit), "--threads", str(a.threads),
                "--batch-size", str(a.batch), "--out", out_dir]
        if a.data:
            argv += ["--data", a.data]
        out, err, rc, rss, secs = run_child(argv)
    if rc != 0:
        sys.exit(f"compare.py: {' '.join(argv)} failed:\n{err}")
    return {"rss": rss, "seconds": secs}


# ---- tables -----------------------------------------------------------------------

def table(head, rows, markdown):
    cells = [head] + [[str(c) for c in r] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in cells]
        lines.insert(1, "|" + "|".join(" --- " if i == 0 else " ---: " for i in range(len(head)))
                     + "|")
        return "\n".join(lines)
    w = [max(len(r[i]) for r in cells) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))
    return "\n".join([fmt(cells[0]), fmt(["-" * x for x in w])] + [fmt(r) for r in cells[1:]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="keras-cnn,lenet,cnn3,mlp",
                    help="comma-separated names of models/*.json (sequential form)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=50, help="timed steps per repeat")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--procs", type=int, default=3,
                    help="processes per side and model; the table takes the median process")
    ap.add_argument("--data", help="a folder of Fashion-MNIST's IDX files, or 'random'")
    ap.add_argument("--nabla", help="bench/train-throughput (default: build/bench/, or found)")
    ap.add_argument("--markdown", action="store_true", help="print tables in Markdown")
    ap.add_argument("--memory", action="store_true",
                    help="also compare the peak RSS of `nabla train` and PyTorch training")
    ap.add_argument("--limit", type=int, default=12800,
                    help="--memory: training examples (nabla train --limit)")
    ap.add_argument("--nabla-tool", help="--memory: the nabla command (default: beside --nabla)")
    ap.add_argument("--memory-only", action="store_true",
                    help="the memory comparison alone (implies --memory)")
    ap.add_argument("--ops", action="store_true",
                    help="single ops (train-throughput --ops) instead of models")
    ap.add_argument("--only", help="--ops: the ops whose name contains this text")
    ap.add_argument("--dtype", default="f32", choices=["f32", "f64"], help="--ops: element type")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--ops-worker", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="throughput", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        sys.dont_write_bytecode = True  # no __pycache__ in the source tree
        sys.path.insert(0, HERE)
        return worker(a)
    if a.ops_worker:
        return ops_worker(a)

    sys.stdout.reconfigure(line_buffering=True)  # the tables in order with stderr's progress
    a.nabla = a.nabla or find_program("bench/train-throughput")
    if not a.nabla:
        sys.exit("compare.py: bench/train-throughput not found (build it, or give --nabla)")
    if (a.memory or a.memory_only) and a.data == "random":
        sys.exit("compare.py: --memory trains on a data set, not --data random")
    if a.ops:
        a.memory = a.memory_only = False
    models = [] if a.ops else [m for m in a.models.split(",") if m]
    print(f"batch {a.batch}, {a.threads} threads, {a.repeats} repeats of {a.steps} steps "
          f"after {a.warmup}; data {a.data or 'fashion-mnist'}; nabla: {a.nabla}", flush=True)
    # nabla's kernels: NABLA_CPU when set (train-throughput refuses kernels
    # the CPU lacks, and prints the ones it runs), else the widest.
    cpu_model, widest = cpu_info()
    names = ["baseline", "avx2", "avx512"]
    env_cpu = os.environ.get("NABLA_CPU", "")
    if env_cpu and not (env_cpu in names and names.index(env_cpu) <= names.index(widest)):
        sys.exit(f"compare.py: NABLA_CPU={env_cpu}: not kernels this CPU runs "
                 f"(baseline, avx2 or avx512, up to {widest})")
    if env_cpu:
        kernels, kernels_note = env_cpu, f"{env_cpu} (NABLA_CPU)"
    else:
        kernels, kernels_note = widest, f"{widest}, the widest (NABLA_CPU unset)"
    peak, peak_note = (None, "") if a.memory_only else fma_peak(a, kernels)
    print(f"CPU: {cpu_model}; widest vector width: {widest}; nabla kernels: {kernels_note}"
          + (f"; FMA peak: {peak_note}" if peak_note else ""), flush=True)
    of_peak = lambda gf: [f"{gf / peak:.3f}"] if peak else []

    def median(v):
        v = sorted(v)
        n = len(v)
        return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])

    if a.ops:
        return compare_ops(a, median)

    rows, irows, details = [], [], []
    for model in [] if a.memory_only else models:
        nbs, pts = [], []
        for k in range(a.procs):
            print(f"  {model} {k + 1}/{a.procs}: nabla...", end="", flush=True, file=sys.stderr)
            nbs.append(run_nabla(a, model))
            print(" PyTorch...", end="", flush=True, file=sys.stderr)
            pts.append(run_torch(a, model, "throughput"))
            print(" done", file=sys.stderr)
        nb = {key: median([r[key]["median"] for r in nbs]) for key in ("train", "inference")}
        pt = {key: median([r[key]["median"] for r in pts]) for key in ("train", "inference")}
        pt_fast = max(r["train"]["median"] for r in pts)
        pt_ifast = max(r["inference"]["median"] for r in pts)
        gf = {key: median([r[key]["gflops"] for r in nbs]) for key in ("train", "inference")}
        kann = KANN_REF.get(model)
        best = max(pt["train"], kann or 0)
        rows.append([model, f"{nb['train']:.0f}", f"{pt['train']:.0f}",
                     f"{nb['train'] / pt['train']:.2f}", f"{pt_fast:.0f}",
                     f"{nb['train'] / pt_fast:.2f}", f"{kann}" if kann else "-",
                     f"{nb['train'] / best:.2f}", f"{gf['train']:.1f}"] + of_peak(gf["train"]))
        irows.append([model, f"{nb['inference']:.0f}", f"{pt['inference']:.0f}",
                      f"{nb['inference'] / pt['inference']:.2f}", f"{pt_ifast:.0f}",
                      f"{nb['inference'] / pt_ifast:.2f}", f"{gf['inference']:.1f}"]
                     + of_peak(gf["inference"]) +
                     [f"{max(r['rss'] for r in nbs):.0f}", f"{max(r['rss'] for r in pts):.0f}",
                      f"{max(r['allocs'][0] for r in nbs):g}"])
        each = lambda rs, key: ", ".join(f"{r[key]['median']:.0f}" for r in rs)
        details.append(f"{model}: nabla train {each(nbs, 'train')}, inference "
                       f"{each(nbs, 'inference')}; PyTorch train {each(pts, 'train')}, "
                       f"inference {each(pts, 'inference')} img/s; PyTorch RSS after import "
                       f"{pts[0]['rss_import']:.0f} MiB")

    if rows:
        print(f"\ntraining, images/s (the median of {a.procs} processes' medians)")
        print(table(["model", "nabla", "PyTorch", "nabla/PyTorch", "PyTorch fastest",
                     "nabla/fastest", "KANN (ref)", "nabla/best", "nabla GFLOP/s"]
                    + ["fraction of peak"] * bool(peak), rows, a.markdown))
        print("\ninference, images/s (median), and peak RSS of each process, MiB")
        print(table(["model", "nabla", "PyTorch", "nabla/PyTorch", "PyTorch fastest",
                     "nabla/fastest", "nabla GFLOP/s"] + ["fraction of peak"] * bool(peak)
                    + ["nabla RSS", "PyTorch RSS", "nabla allocs/step"], irows, a.markdown))
        print("\neach process's median:")
        for d in details:
            print("  " + d)

    if a.memory or a.memory_only:
        a.nabla_tool = a.nabla_tool or next(
            (p for p in [os.path.join(os.path.dirname(os.path.dirname(a.nabla)), "tools", "nabla")]
             if os.access(p, os.X_OK)), None) or find_program("tools/nabla")
        if not a.nabla_tool:
            sys.exit("compare.py: tools/nabla not found (give --nabla-tool)")
        mrows = []
        for model in models:
            print(f"  {model}: nabla train...", end="", flush=True, file=sys.stderr)
            nb = run_nabla_train(a, model)
            print(" PyTorch...", end="", flush=True, file=sys.stderr)
            u8 = run_torch(a, model, "uint8")
            fl = run_torch(a, model, "float")
            print(" done", file=sys.stderr)
            mrows.append([model, str(u8["steps"]), f"{nb['rss']:.0f}", f"{u8['rss_child']:.0f}",
                          f"{fl['rss_child']:.0f}", f"{u8['rss_import']:.0f}",
                          f"{nb['seconds']:.1f}", f"{u8['seconds']:.1f}", f"{fl['seconds']:.1f}"])
        print(f"\nmemory: one epoch on {a.limit} examples (nabla train --epochs 1 --limit "
              f"{a.limit}), peak RSS in MiB and wall seconds of each process")
        print(table(["model", "steps", "nabla train", "PyTorch uint8", "PyTorch float",
                     "PyTorch import", "nabla s", "uint8 s", "float s"], mrows, a.markdown))


if __name__ == "__main__":
    main()
