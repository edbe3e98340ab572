#!/usr/bin/env python3
"""peers.py - the problems natten-bench times, run through libnatten (natten-bench
itself, as a subprocess) and through what a PyTorch user would pick instead,
printed together in natten-bench's table (or CSV) format:

  libnatten rows    natten-bench --csv on the same problem (every backend of
                    the build on --device; --natten-args passes more flags,
                    --no-natten leaves them out)

  torch-sdpa        scaled_dot_product_attention over all tokens (dense; not NA
                    unless the window covers the whole extent)
  torch-flex        FlexAttention with a neighbourhood block mask, tokens in
                    row-major order
  torch-flex-tiled  the same with tokens permuted so that every 128-token block
                    is a spatial tile (FlexAttention's best case)
  torch-gather      NA written with gather + softmax in plain PyTorch, chunked
                    over queries to bound memory

    bench/peers.py -i 56 56 -w 7 -n 4 -d 32 --dtype float16 --backward
    bench/peers.py --suite gpu                # problems from natten-bench --dry-run
    bench/peers.py --suite gpu --natten-args "--max-call 2 --backend cuda-tc"
    bench/peers.py --suite anchors --csv > peers.csv; bench/plot peers.csv

The mask is the spec's (shared/spec/NEIGHBORHOOD_ATTENTION.md §1.2-1.4):
windows inside dilation groups, borders slide inwards, causal windows end at the
query, stride shares the leader's window.  Results are checked against the
gather implementation in float64 (on the CPU) when the problem is small enough.
Needs torch (FlexAttention: torch >= 2.5); fused forward only (no RPB).
"""
import argparse
import csv
import itertools
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time

COLUMNS = [
    "label", "rank", "extent", "window", "dilation", "stride", "causal", "batch", "heads",
    "heads_kv", "dim", "dim_value", "dtype", "rpb", "threads", "backend", "ran_on", "device", "op",
    "dir", "runs", "median_ms", "min_ms", "max_ms", "flops", "gflops", "bytes", "gbps",
    "mem_bytes", "scratch_bytes", "max_err", "norm_err", "tol", "verified_on", "speedup_vs_naive",
    "peak_fraction", "bw_fraction", "status",
]
TOL = {"float64": 1e-10, "float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
METHODS = ["torch-sdpa", "torch-flex", "torch-flex-tiled", "torch-gather"]


# ---------------------------------------------------------------- problems

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-i", "--input-size", type=int, nargs="+", default=[56, 56])
    ap.add_argument("-w", "--window", type=int, nargs="+", default=[7])
    ap.add_argument("-b", "--batch", type=int, default=1)
    ap.add_argument("-n", "--heads", type=int, default=4)
    ap.add_argument("--heads-kv", type=int)
    ap.add_argument("-d", "--dim", type=int, default=32)
    ap.add_argument("--dim-value", type=int)
    ap.add_argument("--dilation", type=int, nargs="+", default=[1])
    ap.add_argument("--stride", type=int, nargs="+", default=[1])
    ap.add_argument("--causal", type=int, nargs="*")
    ap.add_argument("--dtype", help="float32 | float64 | float16 | bfloat16 (default float32; with --suite, the suite's)")
    ap.add_argument("--backward", action="store_true", help="also time backward and forward+backward")
    ap.add_argument("--suite", help="natten-bench suite (cpu, gpu, anchors)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--natten-bench", default=None,
                    help="path of natten-bench (default: the build tree above this script, ./natten-bench, PATH)")
    ap.add_argument("--no-natten", action="store_true", help="leave out libnatten's rows (natten-bench)")
    ap.add_argument("--natten-args", default="",
                    help="more natten-bench flags for its rows, e.g. \"--backend cuda-tc --max-call 2\"")
    ap.add_argument("--op", default="fna", choices=["fna"],
                    help="fna only (accepted so that natten-bench's problem flags work here unchanged)")
    ap.add_argument("--method", default="all", help="comma list of %s, or all" % ", ".join(METHODS))
    ap.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda if available)")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--no-compile", action="store_true", help="FlexAttention without torch.compile (slow)")
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--verify-limit", type=float, default=2e8,
                    help="verify when B*H*N*prod(K)*D is at most this (default 2e8)")
    ap.add_argument("--gather-limit", type=float, default=2e10,
                    help="skip torch-gather when B*H*N*prod(K)*D exceeds this (default 2e10)")
    ap.add_argument("--peak", action="store_true", help="measure dense bf16/fp16 matmul TFLOP/s on the device")
    ap.add_argument("--csv", action="store_true")
    ap.add_argument("--csv-out", help="also write the CSV to this file")
    ap.add_argument("--seed", type=int, default=42)
    return ap.parse_args()


def axes(v, rank, name):
    if len(v) == 1:
        return list(v) * rank
    if len(v) != rank:
        sys.exit("peers.py: %s: give 1 or %d values" % (name, rank))
    return list(v)


def find_bench(a):
    """natten-bench: --natten-bench, else the build tree this script sits in, ./, PATH."""
    if a.natten_bench:
        return a.natten_bench
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for c in (os.path.join(here, "natten-bench"), os.path.join(os.getcwd(), "natten-bench")):
        if os.access(c, os.X_OK):
            return c
    return shutil.which("natten-bench")


def problems_from_args(a):
    if a.suite:
        exe = find_bench(a) or "natten-bench"
        cmd = [exe, "--suite", a.suite, "--dry-run", "--json"] + (["--quick"] if a.quick else [])
        if a.dtype:
            cmd += ["--dtype", a.dtype]
        try:
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit("peers.py: cannot get the suite from natten-bench (%s); use --natten-bench PATH" % e)
        probs = json.loads(out)["problems"]
        for p in probs:
            p["ops"] = [o for o in p["ops"] if o == "fna"]
        return [p for p in probs if p["ops"]]
    rank = len(a.input_size)
    return [{
        "label": "", "rank": rank, "extent": a.input_size, "window": axes(a.window, rank, "-w"),
        "dilation": axes(a.dilation, rank, "--dilation"), "stride": axes(a.stride, rank, "--stride"),
        "causal": axes(a.causal if a.causal else [1 if a.causal is not None else 0], rank, "--causal"),
        "batch": a.batch, "heads": a.heads, "heads_kv": a.heads_kv or a.heads, "dim": a.dim,
        "dim_value": a.dim_value or a.dim, "dtype": a.dtype or "float32", "rpb": 0, "threads": 0,
        "backward": int(a.backward), "ops": ["fna"],
    }]


def describe(p):
    s = "%d-D %s, window %s" % (p["rank"], "x".join(map(str, p["extent"])), "x".join(map(str, p["window"])))
    if any(d != 1 for d in p["dilation"]):
        s += ", dilation " + "x".join(map(str, p["dilation"]))
    if any(d != 1 for d in p["stride"]):
        s += ", stride " + "x".join(map(str, p["stride"]))
    if any(p["causal"]):
        s += ", causal " + "x".join(map(str, p["causal"]))
    s += ", B %d, H %d" % (p["batch"], p["heads"])
    if p["heads_kv"] != p["heads"]:
        s += " (kv %d)" % p["heads_kv"]
    s += ", D %d" % p["dim"]
    if p["dim_value"] != p["dim"]:
        s += " (v %d)" % p["dim_value"]
    return s + ", " + p["dtype"]


def flops(p, d):
    n = math.prod(p["extent"]) * p["batch"] * p["heads"] * math.prod(p["window"])
    D, Dv = p["dim"], p["dim_value"]
    f, b = 2 * (D + Dv), 2 * (3 * D + 2 * Dv)
    return n * {"fwd": f, "bwd": b, "fwd+bwd": f + b}[d]


# ------------------------------------------------------- the NA mask, in torch

def window_1d(torch, L, K, d, s, causal, device):
    """Per query index i: group g, and window [a, b) in group coordinates."""
    i = torch.arange(L, device=device)
    g, u = i % d, i // d
    n = (L - g + d - 1) // d
    if causal:
        p = torch.minimum((u // s) * s + s - 1, n - 1)
        a = torch.clamp(p - K + 1, min=0)
        b = u + 1
    else:
        p = torch.minimum((u // s) * s + s // 2, n - 1)
        a = torch.minimum(torch.clamp(p - K // 2, min=0), n - K)
        b = a + K
    return g, a, b


def neighbours(torch, p, device):
    """Key index [N, W] and validity [N, W] of every query's window slots."""
    S, K = p["extent"], p["window"]
    r = len(S)
    idx = torch.zeros([1] * (2 * r), dtype=torch.long, device=device)
    ok = torch.ones([1] * (2 * r), dtype=torch.bool, device=device)
    for ax in range(r):
        g, a, b = window_1d(torch, S[ax], K[ax], p["dilation"][ax], p["stride"][ax], p["causal"][ax], device)
        t = torch.arange(K[ax], device=device)
        pos = a[:, None] + t[None, :]                     # group coordinate of slot t
        key = pos * p["dilation"][ax] + g[:, None]
        valid = pos < b[:, None]
        key = torch.where(valid, key, g[:, None])         # any in-range index; masked anyway
        shape = [1] * (2 * r)
        shape[ax], shape[r + ax] = S[ax], K[ax]
        idx = idx * S[ax] + key.view(shape)
        ok = ok & valid.view(shape)
    N, W = math.prod(S), math.prod(K)
    return idx.reshape(N, W), ok.reshape(N, W)


def coords(flat, S):
    out = []
    for ext in reversed(S):
        out.append(flat % ext)
        flat = flat // ext
    return out[::-1]


def make_mask_mod(torch, p, device, perm=None):
    """FlexAttention mask_mod; perm maps a (tiled) position to the row-major token."""
    S = p["extent"]
    wins = [window_1d(torch, S[ax], p["window"][ax], p["dilation"][ax], p["stride"][ax], p["causal"][ax], device)
            for ax in range(len(S))]
    dil = p["dilation"]

    def mask_mod(b, h, q_idx, kv_idx):
        if perm is not None:
            q_idx, kv_idx = perm[q_idx], perm[kv_idx]
        qc, kc = coords(q_idx, S), coords(kv_idx, S)
        m = None
        for ax, (g, a, e) in enumerate(wins):
            kg = kc[ax] // dil[ax]
            c = (kc[ax] % dil[ax] == g[qc[ax]]) & (kg >= a[qc[ax]]) & (kg < e[qc[ax]])
            m = c if m is None else m & c
        return m

    return mask_mod


def tile_shape(S, tokens=128):
    """Per-axis tile (product = tokens) dividing every extent; most cubic first."""
    best = None

    def rec(ax, left, cur):
        nonlocal best
        if ax == len(S):
            if left == 1:
                score = max(cur) / min(cur)
                if best is None or score < best[0]:
                    best = (score, list(cur))
            return
        t = 1
        while t <= left:
            if left % t == 0 and S[ax] % t == 0:
                rec(ax + 1, left // t, cur + [t])
            t *= 2

    rec(0, tokens, [])
    return best[1] if best else None


def tiled_perm(torch, S, tile, device):
    """perm[new position] = row-major token index, tiles in row-major order."""
    grid = torch.arange(math.prod(S), device=device).view(*S)
    r = len(S)
    shape = []
    for ext, t in zip(S, tile):
        shape += [ext // t, t]
    x = grid.view(*shape)
    order = [2 * i for i in range(r)] + [2 * i + 1 for i in range(r)]
    return x.permute(*order).reshape(-1).contiguous()


# ------------------------------------------------------------ the methods

def gather_na(torch, q, k, v, idx, ok, scale, chunk):
    """q [B,N,H,D], k [B,N,Hk,D], v [B,N,Hk,Dv] -> out [B,N,H,Dv]."""
    B, N, H, D = q.shape
    rep = H // k.shape[2]
    outs = []
    for c0 in range(0, N, chunk):
        ii, mm = idx[c0:c0 + chunk], ok[c0:c0 + chunk]
        kk, vv = k[:, ii], v[:, ii]                     # [B, c, W, Hk, *]
        if rep > 1:
            kk, vv = kk.repeat_interleave(rep, dim=3), vv.repeat_interleave(rep, dim=3)
        s = torch.einsum("bchd,bcwhd->bchw", q[:, c0:c0 + chunk], kk) * scale
        s = s.masked_fill(~mm[None, :, None, :], float("-inf"))
        outs.append(torch.einsum("bchw,bcwhd->bchd", torch.softmax(s.float(), -1).to(q.dtype), vv))
    return torch.cat(outs, 1)


class Runner:
    def __init__(self, torch, p, device, args):
        self.torch, self.p, self.device, self.args = torch, p, device, args
        self.dt = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                   "bfloat16": torch.bfloat16}[p["dtype"]]
        g = torch.Generator(device="cpu").manual_seed(args.seed)
        B, N, H, Hk = p["batch"], math.prod(p["extent"]), p["heads"], p["heads_kv"]
        D, Dv = p["dim"], p["dim_value"]

        def rnd(*shape):
            return (torch.rand(*shape, generator=g) * 2 - 1).to(self.dt).to(device)

        self.q, self.k, self.v = rnd(B, N, H, D), rnd(B, N, Hk, D), rnd(B, N, Hk, Dv)
        self.dout = rnd(B, N, H, Dv)
        self.scale = D ** -0.5
        self.idx = self.ok = None  # the gather method's window table, built when it runs

    def chunk(self, elt_bytes, budget=1 << 30):
        """Queries per gather step so that the gathered k/v stay within budget bytes."""
        p = self.p
        per_query = p["batch"] * math.prod(p["window"]) * p["heads"] * max(p["dim"], p["dim_value"]) * elt_bytes * 4
        return max(1, min(math.prod(p["extent"]), budget // max(1, per_query)))

    def method(self, name):
        """(f, prep, post, why): f runs the method on tensors in its own layout, prep turns a
        [B, N, H, D] row-major tensor into that layout once (outside the timing), post turns an
        output back; why says why the method cannot run (f is then None)."""
        torch, p = self.torch, self.p

        def heads_first(t):
            return t.transpose(1, 2).contiguous()

        def back(o):
            return o.transpose(1, 2)

        if name == "torch-sdpa":
            F = torch.nn.functional
            kw = {"enable_gqa": True} if p["heads_kv"] != p["heads"] else {}

            def f(q, k, v):
                return F.scaled_dot_product_attention(q, k, v, scale=self.scale, **kw)
            return f, heads_first, back, None
        if name == "torch-gather":
            work = p["batch"] * p["heads"] * math.prod(p["extent"]) * math.prod(p["window"]) * p["dim"]
            if work > self.args.gather_limit:
                return None, None, None, "skipped: gather-based NA would take too long (--gather-limit)"

            if self.idx is None:
                self.idx, self.ok = neighbours(torch, p, self.device)
            step = self.chunk(torch.finfo(self.dt).bits // 8)

            def g(q, k, v):
                return gather_na(torch, q, k, v, self.idx, self.ok, self.scale, step)
            return g, (lambda t: t), (lambda o: o), None
        if name.startswith("torch-flex"):
            try:
                from torch.nn.attention.flex_attention import create_block_mask, flex_attention
            except ImportError as e:
                return None, None, None, "FlexAttention unavailable: %s" % e
            if p["dim_value"] != p["dim"]:
                return None, None, None, "FlexAttention needs Dv = D"
            perm = None
            N = math.prod(p["extent"])
            if name == "torch-flex-tiled":
                tile = tile_shape(p["extent"])
                if tile is None:
                    return None, None, None, "no 128-token tile divides the extent"
                perm = tiled_perm(torch, p["extent"], tile, self.device)
            mask_mod = make_mask_mod(torch, p, self.device, perm)
            try:
                bm = create_block_mask(mask_mod, None, None, N, N, device=self.device, _compile=True)
            except TypeError:
                bm = create_block_mask(mask_mod, None, None, N, N, device=self.device)
            fa = flex_attention if self.args.no_compile else torch.compile(flex_attention, dynamic=False)
            gqa = p["heads_kv"] != p["heads"]
            inv = None if perm is None else torch.argsort(perm)

            def f(q, k, v):
                return fa(q, k, v, block_mask=bm, scale=self.scale, enable_gqa=gqa)

            def prep(t):
                # tiled: the tokens stay in tile order through the network (a careful user's
                # layout), so the permutation is not part of the attention's time
                return heads_first(t if perm is None else t[:, perm])

            def post(o):
                o = back(o)
                return o if inv is None else o[:, inv]
            return f, prep, post, None
        return None, None, None, "unknown method"


# ------------------------------------------------------ libnatten's own rows

def natten_rows(p, device, args):
    """natten-bench --csv on problem p: (rows as dicts, None) or ([], why)."""
    exe = find_bench(args)
    if exe is None:
        return [], "no natten-bench found (--natten-bench PATH, or --no-natten)"
    j = lambda v: [str(x) for x in v]
    cmd = [exe, "-i"] + j(p["extent"]) + ["-w"] + j(p["window"]) + ["--dilation"] + j(p["dilation"]) + \
        ["--stride"] + j(p["stride"]) + ["--causal"] + j(p["causal"]) + \
        ["-b", str(p["batch"]), "-n", str(p["heads"]), "--heads-kv", str(p["heads_kv"]), "-d", str(p["dim"]),
         "--dim-value", str(p["dim_value"]), "--dtype", p["dtype"], "--op", "fna", "--csv",
         "--device", "cpu" if device.type == "cpu" else "cuda:%d" % (device.index or 0)]
    if p["backward"]:
        cmd.append("--backward")
    if p.get("threads"):
        cmd += ["--threads", str(p["threads"])]
    if args.warmup is not None:
        cmd += ["--warmup", str(args.warmup)]
    if args.repeat is not None:
        cmd += ["--repeat", str(args.repeat)]
    if args.no_verify:
        cmd.append("--no-verify")
    cmd += shlex.split(args.natten_args)
    try:
        run = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        return [], "cannot run %s: %s" % (exe, e)
    if run.returncode not in (0, 1):
        return [], "natten-bench exited %d: %s" % (run.returncode, (run.stderr.strip().splitlines() or [""])[-1][:300])
    rows = []
    for r in csv.DictReader(run.stdout.splitlines()):
        r["label"] = p["label"]
        for k in ("median_ms", "min_ms", "max_ms"):
            try:
                r["_" + k[:3]] = float(r[k]) * 1e-3 if r.get(k) not in (None, "", "-1") else None
            except ValueError:
                r["_" + k[:3]] = None
        try:
            r["_bytes"] = float(r["bytes"])
            r["flops"] = float(r["flops"])
        except (KeyError, ValueError):
            r["_bytes"], r["flops"] = 0.0, 0.0
        try:
            r["_mem"] = float(r["mem_bytes"]) if r.get("mem_bytes") not in (None, "", "-1") else None
            r["_err"] = float(r["max_err"]) if r.get("max_err") not in (None, "", "-1") else None
        except ValueError:
            r["_mem"] = r["_err"] = None
        r["_natten"] = True
        rows.append(r)
    if not rows:
        return [], "natten-bench gave no rows: %s" % (run.stderr.strip()[:300] or "?")
    return rows, None


# ----------------------------------------------------------------- timing

class Clock:
    def __init__(self, torch, device):
        self.torch, self.cuda = torch, device.type == "cuda"

    def time(self, fn):
        t = self.torch
        if self.cuda:
            e0, e1 = t.cuda.Event(enable_timing=True), t.cuda.Event(enable_timing=True)
            e0.record()
            fn()
            e1.record()
            e1.synchronize()
            return e0.elapsed_time(e1) * 1e-3
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def timed(clock, setup, fn, args, cuda):
    warm = args.warmup if args.warmup is not None else (5 if cuda else 1)
    lo = args.repeat or (20 if cuda else 5)
    hi = args.repeat or (1000 if cuda else 200)
    # the first call compiles (FlexAttention) and tells how slow this is
    st = setup()
    t0 = time.perf_counter()
    fn(st)
    if cuda:
        import torch
        torch.cuda.synchronize()
    if time.perf_counter() - t0 > 2 and not args.repeat:
        warm, lo = 0, 3
    for _ in range(warm - 1):
        st = setup()
        fn(st)
    ts, total = [], 0.0
    while len(ts) < hi and (len(ts) < lo or (not args.repeat and total < 1.0)):
        st = setup()
        dt = clock.time(lambda: fn(st))
        ts.append(dt)
        total += dt
        if not args.repeat and len(ts) >= 3 and total > 5:
            break
    ts.sort()
    n = len(ts)
    med = ts[n // 2] if n % 2 else 0.5 * (ts[n // 2 - 1] + ts[n // 2])
    return n, med, ts[0], ts[-1]


def fmt_time(s):
    if s is None:
        return "-"
    return "%.1f us" % (s * 1e6) if s < 1e-3 else "%.3f ms" % (s * 1e3) if s < 1 else "%.3f s" % s


def fmt_rate(v, unit):
    if v is None:
        return "-"
    return "%.1f T%s" % (v * 1e-12, unit) if v >= 1e12 else "%.1f G%s" % (v * 1e-9, unit) if v >= 1e9 \
        else "%.1f M%s" % (v * 1e-6, unit)


def fmt_bytes(b):
    if b is None:
        return "-"
    return "%.2f GiB" % (b / 2**30) if b >= 2**30 else "%.1f MiB" % (b / 2**20) if b >= 2**20 \
        else "%.1f KiB" % (b / 1024)


def matmul_peak(torch, device):
    out = []
    for dt in (torch.bfloat16, torch.float16):
        n = 8192 if device.type == "cuda" else 1024
        a = torch.randn(n, n, device=device, dtype=dt)
        b = torch.randn(n, n, device=device, dtype=dt)
        clock = Clock(torch, device)
        for _ in range(3):
            a @ b
        ts = sorted(clock.time(lambda: a @ b) for _ in range(10))
        out.append((str(dt).replace("torch.", ""), 2 * n ** 3 / ts[len(ts) // 2]))
    return out


# ------------------------------------------------------------------- main

def main():
    args = parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("peers.py: torch is not installed")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    methods = METHODS if args.method == "all" else args.method.split(",")
    for m in methods:
        if m not in METHODS:
            sys.exit("peers.py: unknown method %s (%s)" % (m, ", ".join(METHODS)))
    probs = problems_from_args(args)
    hw = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    out = csv.writer(sys.stdout) if args.csv else None
    if out:
        out.writerow(COLUMNS)
    side = None
    if args.csv_out:
        side_file = open(args.csv_out, "w", newline="")
        side = csv.writer(side_file)
        side.writerow(COLUMNS)
    if not out:
        print("peers.py: torch %s | %s | %s" % (torch.__version__, hw, time.strftime("%Y-%m-%d %H:%M:%S %Z")))
        if args.peak:
            for dt, r in matmul_peak(torch, device):
                print("dense %s matmul: %.1f TFLOP/s" % (dt, r * 1e-12))
        print("times: median/min/max (CUDA events / perf_counter); FLOP/s: NA FLOPs (4 B H N prod(K) D "
              "forward) for every method, dense SDPA included; x natten: median over the fastest "
              "libnatten backend's (same direction)")
    failed = False
    t_start = time.time()
    for p in probs:
        lib, why = ([], None) if args.no_natten else natten_rows(p, device, args)
        if why and args.natten_bench:
            sys.exit("peers.py: %s" % why)
        # each method's rows are written as soon as it finishes, so that a run stopped
        # part-way (a time limit, a compile that does not end) keeps what it measured
        rows = []
        for part in itertools.chain([lib], run_problem(torch, p, device, methods, args)):
            rows += part
            if side:
                for r in part:
                    side.writerow([r.get(c, "") for c in COLUMNS])
                side_file.flush()
            if out:
                for r in part:
                    out.writerow([r.get(c, "") for c in COLUMNS])
                sys.stdout.flush()
            if part:
                print("peers.py: %s %s done at %.1f s" % (p["label"] or describe(p), part[0]["backend"]
                      if part is not lib else "libnatten", time.time() - t_start), file=sys.stderr, flush=True)
        if not out:
            print("\n== %s%s" % (p["label"] + ": " if p["label"] else "", describe(p)))
            if why:
                print("   (no libnatten rows: %s)" % why)
            print("%-18s %-4s %-7s %11s %11s %11s %12s %11s %10s %9s %8s  %s" % (
                "backend", "op", "dir", "median", "min", "max", "FLOP/s", "GB/s", "memory", "max err",
                "x natten", "status"))
            for d in ("fwd", "bwd", "fwd+bwd"):
                sel = [r for r in rows if r["dir"] == d]
                best = [r["_med"] for r in sel if r.get("_natten") and r.get("_med")
                        and str(r["status"]).startswith("ok")]
                best = min(best) if best else None
                for r in sel:
                    med = r.get("_med")
                    name = r["backend"] + ("@" + r["device"] if r.get("_natten") and r["device"] != "cpu" else "")
                    print("%-18s %-4s %-7s %11s %11s %11s %12s %11s %10s %9s %8s  %s" % (
                        name, r["op"], r["dir"], fmt_time(med), fmt_time(r.get("_min")),
                        fmt_time(r.get("_max")), fmt_rate(r["flops"] / med if med else None, "FLOP/s"),
                        fmt_rate(r["_bytes"] / med if med else None, "B/s"), fmt_bytes(r.get("_mem")),
                        "%.2e" % r["_err"] if r.get("_err") is not None else "-",
                        "%.2fx" % (med / best) if med and best else "-", r["status"]))
        failed |= any(str(r["status"]).startswith(("WRONG", "error", "FALLBACK")) for r in rows)
        sys.stdout.flush()
    return 1 if failed else 0


def run_problem(torch, p, device, methods, args):
    """Yields each method's rows (a list per method) as soon as they are measured."""
    R = Runner(torch, p, device, args)
    cuda = device.type == "cuda"
    clock = Clock(torch, device)
    dirs = ["fwd", "bwd", "fwd+bwd"] if p["backward"] else ["fwd"]
    base = {
        "label": p["label"], "rank": p["rank"], "extent": "x".join(map(str, p["extent"])),
        "window": "x".join(map(str, p["window"])), "dilation": "x".join(map(str, p["dilation"])),
        "stride": "x".join(map(str, p["stride"])), "causal": "x".join(map(str, p["causal"])),
        "batch": p["batch"], "heads": p["heads"], "heads_kv": p["heads_kv"], "dim": p["dim"],
        "dim_value": p["dim_value"], "dtype": p["dtype"], "rpb": 0, "threads": 0, "device": str(device),
        "op": "fna",
    }
    tensors = sum(t.numel() * t.element_size() for t in (R.q, R.k, R.v)) + R.dout.numel() * R.dout.element_size()
    ref = None
    n_work = p["batch"] * p["heads"] * math.prod(p["extent"]) * math.prod(p["window"]) * p["dim"]
    if not args.no_verify and n_work <= args.verify_limit:
        c = [t.detach().double().cpu() for t in (R.q, R.k, R.v)]
        idx, ok = neighbours(torch, p, torch.device("cpu"))
        ref = gather_na(torch, c[0], c[1], c[2], idx, ok, R.scale, R.chunk(8, 1 << 28))
    full = all(k == s for k, s in zip(p["window"], p["extent"])) and not any(p["causal"]) \
        and all(d == 1 for d in p["dilation"])
    for name in methods:
        rows = []
        try:
            fn, prep, post, why = R.method(name)
        except Exception as e:  # e.g. the block mask does not fit
            fn, why = None, "error: %s" % (str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
        if fn is not None:
            qkv = [prep(t) for t in (R.q, R.k, R.v)]
            dout = prep(R.dout)
        for d in dirs:
            row = dict(base, backend=name, ran_on=name, dir=d, flops=flops(p, d), status="ok")
            row["_bytes"] = tensors if d == "fwd" else 2 * tensors
            row["bytes"] = row["_bytes"]
            rows.append(row)
            if fn is None:
                row["status"] = why if why.startswith(("skipped", "error")) else "unsupported: " + why
                continue
            try:
                measure(torch, R, fn, post, qkv, dout, name, d, row, ref, full, clock, cuda, args)
            except Exception as e:  # a peer failing (OOM, compile error) is a row, not a crash
                row["status"] = "error: %s" % (str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
                if cuda:
                    torch.cuda.empty_cache()
        yield rows


def measure(torch, R, fn, post, qkv, dout, name, d, row, ref, full, clock, cuda, args):
    p = R.p
    if d == "fwd":
        with torch.no_grad():
            o = post(fn(*qkv))
        if ref is not None and (name != "torch-sdpa" or full):
            err = (o.double().cpu() - ref).abs().max().item()
            row.update(_err=err, max_err=err, norm_err=err / max(1.0, ref.abs().max().item()),
                       tol=TOL[p["dtype"]], verified_on="full problem")
            if not row["norm_err"] <= row["tol"]:
                row["status"] = "WRONG: error %.3g > tol %.0e" % (err, row["tol"])
        elif name == "torch-sdpa" and not full:
            row["status"] = "ok (dense: all tokens, not NA)"
        else:
            row["status"] = "ok (not verified)"
    else:
        row["status"] = "ok (gradients not verified)"

    def grads():
        return [t.detach().requires_grad_(True) for t in qkv]

    if d == "fwd":
        def setup():
            return None

        def run(_):
            with torch.no_grad():
                fn(*qkv)
    elif d == "bwd":
        def setup():
            o = fn(*grads())
            if cuda:
                torch.cuda.synchronize()
            return o

        def run(o):
            o.backward(dout)
    else:
        def setup():
            return grads()

        def run(leaves):
            fn(*leaves).backward(dout)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(R.device)
    n, med, lo, hi = timed(clock, setup, run, args, cuda)
    row.update(runs=n, _med=med, _min=lo, _max=hi, median_ms=med * 1e3, min_ms=lo * 1e3, max_ms=hi * 1e3,
               gflops=row["flops"] / med * 1e-9, gbps=row["_bytes"] / med * 1e-9)
    if cuda:
        row["_mem"] = row["mem_bytes"] = torch.cuda.max_memory_allocated(R.device)


if __name__ == "__main__":
    sys.exit(main())
