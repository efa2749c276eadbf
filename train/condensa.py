"""Condensa-style compression of a split bundle's edge encoder (Joseph et al.,
"A Programmable Approach to Neural Network Compression", MLSys 2020): a
strategy (train/compress.py) of a few hyperparameters compresses the
encoder, a short distillation fine-tune follows, and a constrained Bayesian
optimisation (train/bayesopt.py) picks the hyperparameters that minimise the
objective under an accuracy constraint in a handful of samples.

    python3 -m train.condensa --bundle models/zoo/fmnist-es-b0.11 --objective latency \\
        --max-top1-drop 0.01 --samples 10 --out DIR [--search bo,random]

Objective "latency": the compressed encoder's ONNX graph timed by the Go
native engine (`splitstream bench engine`, median of --runs runs at the
first of --threads), divided by the uncompressed encoder's time measured
right after it, so that load on the machine cancels out; "size": the
encoder's nonzero parameters over the uncompressed one's. Constraint: top-1
on a validation split (scenes of Fashion-MNIST training garments held out of
training, train/config.py's "val"; never the test set) at least the
uncompressed student's minus --max-top1-drop.

The cloud side (decoder, trunk, heads) and the entropy tables stay the
bundle's: the latent keeps its channels, and the fine-tune distils the
uncompressed encoder's latent. Each sample is printed and appended to
DIR/trace-SEARCH.jsonl; a rerun replays the recorded samples instead of
repeating them. The best feasible sample of each search is exported with the
project's exporter (train/export.py) to DIR/bundle-SEARCH, which records its
test-set metrics; DIR/summary.json holds the comparison and DIR/*.png the plots.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import time

import numpy as np
import torch
import torch.nn as nn

from . import bayesopt as B
from . import compress as K
from . import data as D
from . import export, fromonnx, gate
from . import testset as T
from .config import CONFIG, MEAN, STD
from .entropy import EntropyBottleneck
from .models import GDN
from .pipeline import evaluate, to_input

# strategy -> (hyperparameter names, lower bounds, upper bounds)
STRATEGIES = {
    "channels": (["ratio"], [0.0], [0.85]),
    "channels-layers": (["ratio0", "ratio1"], [0.0, 0.0], [0.85, 0.85]),
    "magnitude": (["sparsity"], [0.0], [0.95]),
    "channels+magnitude": (["ratio", "sparsity"], [0.0, 0.0], [0.85, 0.9]),
}


def apply_strategy(name, encoder, x, calib, saliency="act"):
    """(compressed copy of encoder, masks or None) for strategy name at hyperparameters x."""
    if name == "channels":
        return K.structured(encoder, float(x[0]), saliency, calib), None
    if name == "channels-layers":
        return K.structured(encoder, (float(x[0]), float(x[1])), saliency, calib), None
    if name == "magnitude":
        enc = K.prune_channels(encoder, *(torch.arange(w) for w in K.widths(encoder)[:2]))  # a copy
        return enc, K.magnitude_masks(enc, float(x[0]))
    if name == "channels+magnitude":
        enc = K.structured(encoder, float(x[0]), saliency, calib)
        return enc, K.magnitude_masks(enc, float(x[1]))
    raise ValueError(f"strategy {name!r}: want one of {sorted(STRATEGIES)}")


def snapper(strategy, encoder):
    """Maps hyperparameters to the ones a strategy realises: a channel ratio to
    1 - kept / width (train/compress.kept_count; a global ratio by the first
    layer's width), other values unchanged."""
    w0, w1, _ = K.widths(encoder)
    ws = {"channels": [w0], "channels-layers": [w0, w1], "magnitude": [None], "channels+magnitude": [w0, None]}[strategy]

    def snap(x):
        return np.array([v if w is None else 1 - K.kept_count(w, float(v)) / w for v, w in zip(x, ws)])
    return snap


def encoder_of_widths(w0, w1, latent):
    """An encoder of models.Encoder's layout with hidden widths w0 and w1, for loading a saved sample."""
    enc = nn.Module()
    enc.layers = nn.Sequential(nn.Conv2d(3, w0, 5, 2, 2, bias=False), GDN(w0), nn.Conv2d(w0, w1, 5, 2, 2, bias=False),
                               GDN(w1), nn.Conv2d(w1, latent, 2, 1, 0, bias=False))
    enc.forward = enc.layers.forward
    return enc


class SplitModel(nn.Module):
    """encoder -> symbols round(y - medians) -> y_hat -> cloud -> heads: what a bundle computes."""

    def __init__(self, encoder, medians, cloud, heads):
        super().__init__()
        self.encoder, self.cloud, self.heads = encoder, cloud, heads
        self.register_buffer("medians", medians.reshape(1, -1, 1, 1))

    def forward(self, x):
        y = self.encoder(x)
        return self.heads(self.cloud(torch.round(y - self.medians) + self.medians))


def table_bytes(y, tables):
    """Bytes per image the rANS coder spends on latents y (N, C, H, W) with the
    bundle's tables, estimated from the symbol probabilities (CompressAI's
    overflow symbol plus 4-bit bypass chunks for values out of a row's range)."""
    med = torch.tensor(tables["medians"]).view(1, -1, 1, 1)
    sym = torch.round(y - med).long()
    bits = torch.zeros(y.shape[0])
    for c in range(sym.shape[1]):
        cdf = torch.tensor(tables["cdfs"][c], dtype=torch.float64)
        top = tables["cdf_lengths"][c] - 2
        v = sym[:, c] - tables["offsets"][c]
        over = (v < 0) | (v >= top)
        raw = torch.where(v < 0, -2 * v - 1, 2 * (v - top)).clamp(min=0)
        v = torch.where(over, torch.full_like(v, top), v)
        p = (cdf[v + 1] - cdf[v]) / 65536.0
        nb = torch.where(over, torch.ceil(torch.log2(raw.double() + 1) / 4) + 1, torch.zeros_like(p))
        bits += (-torch.log2(p) + 4 * nb).flatten(1).sum(1).float()
    return float(bits.mean()) / 8 + 8  # plus the rANS state flushed at the end


def _normal_priority():
    """Runs in the timing child: back to priority 0 when this process was started
    under nice (the search is; the short timing should not be), where permitted."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except PermissionError:
        pass


def bench_ms(binary, model, threads, runs):
    """Median ms per run of model in the native engine at threads (`splitstream bench engine --json`)."""
    p = subprocess.run([binary, "bench", "engine", "--model", model, "--engines", "native", "--threads", str(threads),
                        "--runs", str(runs), "--pause", "5ms", "--json"], capture_output=True, text=True,
                       preexec_fn=_normal_priority)
    if p.returncode != 0:
        raise RuntimeError(f"bench engine on {model}: {p.stderr.strip()}")
    return float(json.loads(p.stdout.splitlines()[-1])["native_ms"])


def latency_pair(binary, model, base, threads, runs, rounds=4):
    """(ms of model, ms of base), each the least of `rounds` medians, the two interleaved."""
    a, b = [], []
    for _ in range(rounds):
        a.append(bench_ms(binary, model, threads, runs))
        b.append(bench_ms(binary, base, threads, runs))
    return min(a), min(b)


class Problem:
    """Everything a sample needs: the uncompressed student, the data and the
    measuring instruments; evaluate(strategy, x) runs one sample."""

    def __init__(self, args):
        self.args = args
        with open(os.path.join(args.bundle, "manifest.json")) as f:
            self.manifest = json.load(f)
        tr = self.manifest.get("training", {})
        c = CONFIG
        self.student = fromonnx.load_student(args.bundle, self.manifest["latent"]["channels"],
                                             tr.get("encoder_width", c["encoder_width"]),
                                             tr.get("decoder_width", c["decoder_width"]),
                                             tr.get("refine_width", c["refine_width"]))
        with open(os.path.join(args.bundle, self.manifest["entropy"]["file"])) as f:
            self.tables = json.load(f)
        self.eb = EntropyBottleneck.from_tables(self.tables)
        self.cloud = nn.Sequential(self.student.decoder, self.student.trunk).eval()
        s = self.student
        self.heads = {"classify": s.heads.classify, "detect": s.heads.detect, "segment": s.heads.segment}
        train = D.cached(args.cache, "train", args.train_scenes, args.train_seed, tuple(c["train_source"]))
        self.images = to_input(train["images"])
        with torch.no_grad():
            self.targets = torch.cat([s.encoder(self.images[i:i + 200]) for i in range(0, len(self.images), 200)])
        self.val = D.cached(args.cache, "train", c["val_scenes"], c["val_seed"], tuple(c["val_source"]))
        self.calib = self.images[:256]  # saliency from training scenes, never validation ones
        self.binary = gate.binary()
        os.makedirs(os.path.join(args.out, "samples"), exist_ok=True)
        self.base_onnx = os.path.join(args.out, "samples", "uncompressed.onnx")
        self.export_encoder(s.encoder, self.base_onnx)
        self.base = self.measure_val(s.encoder)
        self.base["params"] = K.parameters(s.encoder)[0]

    def export_encoder(self, encoder, path):
        export.export_onnx(encoder, self.images[:1], path, "image", ["latent"], "encoder")

    @torch.no_grad()
    def measure_val(self, encoder):
        model = SplitModel(encoder.eval(), self.eb.medians(), self.cloud, self.student.heads).eval()
        m = evaluate(model, self.val)
        x = to_input(self.val["images"][:200])
        m["bytes_per_image_est"] = table_bytes(encoder(x), self.tables)
        return m

    def evaluate(self, strategy, x, path):
        """Compresses, fine-tunes, measures; saves the encoder to path (.pt, with its ONNX beside)."""
        a = self.args
        t0 = time.time()
        enc, masks = apply_strategy(strategy, self.student.encoder, x, self.calib, a.saliency)
        loss = K.finetune(enc, self.images, self.targets, a.steps, a.batch, a.lr, masks, seed=a.seed)
        m = self.measure_val(enc)
        onnx_path = path[:-3] + ".onnx"
        self.export_encoder(enc, onnx_path)
        w0, w1, _ = K.widths(enc)
        torch.save({"widths": [w0, w1], "state": enc.state_dict()}, path)
        ms, base_ms = latency_pair(self.binary, onnx_path, self.base_onnx, a.threads[0], a.runs)
        params, nonzero = K.parameters(enc)
        rec = {"strategy": strategy, "x": [float(v) for v in x], "widths": [w0, w1], "params": params,
               "nonzero": nonzero, "distill_loss": loss, "val": m, "ms": ms, "base_ms": base_ms,
               "threads": a.threads[0], "seconds": time.time() - t0}
        rec["f"] = ms / base_ms if a.objective == "latency" else nonzero / self.base["params"]
        rec["c"] = m["top1"]
        return rec

    def load_sample(self, path):
        saved = torch.load(path)
        enc = encoder_of_widths(*saved["widths"], self.manifest["latent"]["channels"])
        enc.load_state_dict(saved["state"])
        return enc.eval()


def run_search(problem, search, budget):
    """One search (bo or random) of budget samples, replaying DIR/trace-SEARCH.jsonl."""
    a = problem.args
    names, lo, hi = STRATEGIES[a.strategy]
    trace_path = os.path.join(a.out, f"trace-{search}.jsonl")
    done = []
    if os.path.exists(trace_path):
        with open(trace_path) as f:
            done = [json.loads(line) for line in f if line.strip()]
    threshold = problem.base["top1"] - a.max_top1_drop
    records = []

    def fn(x):
        k = len(records)
        if k < len(done) and np.allclose(done[k]["x"], x, atol=1e-9) and done[k]["strategy"] == a.strategy:
            rec = done[k]
        else:
            if k < len(done):
                raise RuntimeError(f"{trace_path}: sample {k} was {done[k]['x']}, the search now asks {list(x)}; "
                                   f"remove the trace to start again")
            rec = problem.evaluate(a.strategy, x, os.path.join(a.out, "samples", f"{search}-{k:02d}.pt"))
            with open(trace_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        rec["sample"] = k
        records.append(rec)
        hp = " ".join(f"{n} {v:.3f}" for n, v in zip(names, rec["x"]))
        v = rec["val"]
        print(f"{search} sample {k + 1}/{budget}: {hp} widths {rec['widths']} -> encoder {rec['ms']:.3f} ms vs "
              f"{rec['base_ms']:.3f} ms ({rec['threads']} thread(s), ratio {rec['ms'] / rec['base_ms']:.3f}), "
              f"val top1 {v['top1']:.3f} (need >= {threshold:.3f}) map50 {v['map50']:.3f} miou {v['miou']:.3f} "
              f"~{v['bytes_per_image_est']:.0f} B/img, objective {rec['f']:.3f}, {rec['seconds']:.0f} s", flush=True)
        return rec["f"], rec["c"]

    snap = snapper(a.strategy, problem.student.encoder)
    if search == "bo":
        samples = B.minimize(fn, lo, hi, threshold, budget, initial=a.initial, seed=a.seed, snap=snap)
    elif search == "random":
        samples = B.random_search(fn, lo, hi, budget, seed=a.seed + 1, snap=snap)
    else:
        raise ValueError(f"search {search!r}: want bo or random")
    for rec, s in zip(records, samples):
        rec["predicted"] = s["predicted"]
    return records, threshold


def export_best(problem, search, rec, folder):
    """Exports the bundle of sample rec (bundle's cloud side and tables, compressed encoder) to folder."""
    a = problem.args
    enc = problem.load_sample(os.path.join(a.out, "samples", f"{search}-{rec['sample']:02d}.pt"))
    test = T.load_testset(a.zoo)
    extra = {"training": dict(problem.manifest.get("training", {}), condensa={
        "from": problem.manifest["name"], "from_hash": problem.manifest["hash"], "strategy": rec["strategy"],
        "hyperparameters": rec["x"], "encoder_widths": rec["widths"], "search": search, "sample": rec["sample"],
        "objective": a.objective, "max_top1_drop": a.max_top1_drop, "finetune_steps": a.steps, "batch": a.batch,
        "lr": a.lr, "train_scenes": a.train_scenes, "train_seed": a.train_seed, "saliency": a.saliency,
        "val_top1": rec["val"]["top1"], "val_top1_uncompressed": problem.base["top1"]})}
    m = export.export_bundle(folder, enc, problem.eb, problem.cloud, problem.heads, test, MEAN, STD, extra=extra)
    return m


def final_latency(problem, encoders, threads, runs):
    """{name: {threads: ms}} for the encoders' ONNX files, interleaved per thread count, least of 3 medians."""
    res = {n: {} for n in encoders}
    for t in threads:
        best = {n: float("inf") for n in encoders}
        for _ in range(3):
            for n, path in encoders.items():
                best[n] = min(best[n], bench_ms(problem.binary, path, t, runs))
        for n in encoders:
            res[n][t] = best[n]
    return res


def plot(out):
    """From DIR's traces and summary.json: DIR/condensa-trace.png (objective per
    sample, feasibility, best so far; the samples in the hyperparameter space)
    and DIR/condensa-gp.png (the GPs' predictions at each proposal, made before
    it was measured, against the measurement)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    results = {}
    for search, s in summary["searches"].items():
        with open(os.path.join(out, f"trace-{search}.jsonl")) as f:
            results[search] = [json.loads(line) for line in f if line.strip()][:len(s["predicted"])]
        for k, (rec, pred) in enumerate(zip(results[search], s["predicted"])):
            rec["sample"], rec["predicted"] = k, pred
    threshold = next(iter(summary["searches"].values()))["threshold"]
    _plot_trace(plt, out, results, threshold, summary.get("objective"))
    _plot_gp(plt, out, [r for r in results.get("bo", []) if r.get("predicted")])


def _plot_trace(plt, out, results, threshold, objective):
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for (search, recs), colour in zip(results.items(), ("C0", "C1", "C2")):
        k = np.arange(1, len(recs) + 1)
        f = np.array([r["f"] for r in recs])
        ok = np.array([r["c"] >= threshold for r in recs])
        best, cur = [], np.nan
        for fi, oi in zip(f, ok):
            cur = fi if oi and not cur <= fi else cur
            best.append(cur)
        ax[0].plot(k, best, "-", color=colour, label=f"{search}: best feasible so far")
        ax[0].scatter(k[ok], f[ok], color=colour, marker="o", label=f"{search}: feasible")
        ax[0].scatter(k[~ok], f[~ok], color=colour, marker="x", label=f"{search}: infeasible")
        xs = np.array([r["x"] for r in recs])
        if xs.shape[1] == 2:
            ax[1].scatter(xs[ok, 0], xs[ok, 1], color=colour, marker="o")
            ax[1].scatter(xs[~ok, 0], xs[~ok, 1], color=colour, marker="x")
            for n, (a, b) in enumerate(xs):
                ax[1].annotate(str(n + 1), (a, b), fontsize=7, color=colour, xytext=(3, 3), textcoords="offset points")
        else:
            ax[1].scatter(xs[:, 0], [r["c"] for r in recs], color=colour, label=search)
    ax[0].set_xlabel("sample")
    ax[0].set_ylabel("encoder time, compressed / uncompressed" if objective == "latency"
                     else "objective (compressed / uncompressed)")
    ax[0].legend(fontsize=7)
    if xs.shape[1] == 2:
        ax[1].set_xlabel("ratio of layer 1's channels pruned")
        ax[1].set_ylabel("ratio of layer 2's channels pruned")
        ax[1].set_title("samples (o feasible, x not; numbered in order)", fontsize=9)
    else:
        ax[1].axhline(threshold, color="k", ls="--", lw=0.8, label="top-1 constraint")
        ax[1].set_xlabel("hyperparameter")
        ax[1].set_ylabel("validation top-1")
        ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "condensa-trace.png"), dpi=110)
    plt.close(fig)


def _plot_gp(plt, out, bo):
    if not bo:
        return
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for i, (key, what) in enumerate((("f", "objective"), ("c", "validation top-1"))):
        pts = [(r[key], r["predicted"][f"{key}_mu"], r["predicted"][f"{key}_sd"], r["sample"]) for r in bo
               if r["predicted"][f"{key}_mu"] is not None]
        if not pts:
            continue
        m, mu, sd, n = map(np.array, zip(*pts))
        ax[i].errorbar(m, mu, yerr=2 * sd, fmt="o", capsize=3)
        for a, b, k in zip(m, mu, n):
            ax[i].annotate(str(k + 1), (a, b), fontsize=7, xytext=(4, 2), textcoords="offset points")
        lo, hi = min(m.min(), (mu - 2 * sd).min()), max(m.max(), (mu + 2 * sd).max())
        ax[i].plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax[i].set_xlabel(f"measured {what}")
        ax[i].set_ylabel("GP prediction before the sample (+-2 sd)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "condensa-gp.png"), dpi=110)
    plt.close(fig)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", help="the split bundle whose encoder is compressed (required unless --replot)")
    ap.add_argument("--objective", choices=["latency", "size"], default="latency")
    ap.add_argument("--max-top1-drop", type=float, default=0.01, help="constraint: validation top-1 drop at most this")
    ap.add_argument("--samples", type=int, default=10, help="samples per search")
    ap.add_argument("--out", required=True, help="folder for traces, samples, bundles, plots")
    ap.add_argument("--search", default="bo", help="comma-separated searches: bo, random")
    ap.add_argument("--strategy", choices=sorted(STRATEGIES), default="channels-layers")
    ap.add_argument("--saliency", choices=["act", "l1"], default="act")
    ap.add_argument("--initial", type=int, default=2, help="BO: samples before the first proposal")
    ap.add_argument("--steps", type=int, default=400, help="fine-tune steps per sample")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--train-scenes", type=int, default=3000, help="scenes (training garments) to fine-tune on")
    ap.add_argument("--train-seed", type=int, default=40)
    ap.add_argument("--threads", default="1,2", help="native engine threads: the first is the objective's")
    ap.add_argument("--runs", type=int, default=100, help="timed runs per latency measurement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zoo", default="models/zoo", help="holds the test set the exported bundles are scored on")
    ap.add_argument("--cache", default="train/cache", help="generated scene cache")
    ap.add_argument("--no-export", action="store_true", help="search only")
    ap.add_argument("--replot", action="store_true", help="only redraw the plots from DIR's traces and summary.json")
    args = ap.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",")]
    args.search = [s for s in args.search.split(",") if s]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.replot:
        plot(args.out)
        return
    if not args.bundle:
        raise SystemExit("--bundle is required")
    torch.set_num_threads(CONFIG["threads"])
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    problem = Problem(args)
    b = problem.base
    print(f"uncompressed: val top1 {b['top1']:.3f} map50 {b['map50']:.3f} miou {b['miou']:.3f} "
          f"~{b['bytes_per_image_est']:.0f} B/img, {b['params']} parameters ({time.time() - t0:.0f} s to set up)",
          flush=True)
    results, summary = {}, {"objective": args.objective, "uncompressed": {"val": b}, "searches": {}}
    for search in args.search:
        ts = time.time()
        results[search], threshold = run_search(problem, search, args.samples)
        best = B.best_feasible([dict(r) for r in results[search]], threshold)
        summary["searches"][search] = {"threshold": threshold, "wall_s": time.time() - ts,
                                       "predicted": [r["predicted"] for r in results[search]],
                                       "sample_s": sum(r["seconds"] for r in results[search]),
                                       "best": best and {k: best[k] for k in ("sample", "x", "widths", "f", "c", "ms",
                                                                             "base_ms", "params", "nonzero", "val")}}
        if best is None:
            print(f"{search}: no feasible sample", flush=True)
        else:
            print(f"{search}: best feasible sample {best['sample'] + 1}: objective {best['f']:.3f}, "
                  f"val top1 {best['c']:.3f}", flush=True)
    encoders = {"uncompressed": problem.base_onnx}
    for search, s in summary["searches"].items():
        if s["best"] is None or args.no_export:
            continue
        folder = os.path.join(args.out, f"bundle-{search}")
        m = export_best(problem, search, results[search][s["best"]["sample"]], folder)
        s["bundle"] = {"folder": folder, "metrics": m["metrics"], "hash": m["hash"]}
        encoders[search] = os.path.join(folder, "encoder.onnx")
        print(f"{search}: exported {folder}: test {m['metrics']}", flush=True)
    summary["latency_ms"] = final_latency(problem, encoders, args.threads, args.runs * 2)
    for t in args.threads:
        row = ", ".join(f"{n} {v[t]:.3f} ms ({summary['latency_ms']['uncompressed'][t] / v[t]:.2f}x)"
                        for n, v in summary["latency_ms"].items())
        print(f"encoder latency, native engine, {t} thread(s): {row}", flush=True)
    summary["wall_s"] = time.time() - t0
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    plot(args.out)
    print(f"wall time {summary['wall_s'] / 60:.1f} min; {os.path.join(args.out, 'summary.json')}", flush=True)


if __name__ == "__main__":
    main()
