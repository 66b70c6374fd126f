"""Scale: BrenierMap fit throughput on a million samples, data-parallel scaling, and the
cost of the training loop before and after a change, measured side by side.

1. ``brenier``: ``BrenierMap`` (semi-dual, default network) fitted on 10^6 samples at
   d = 64 (batch 4096): samples per second of the training loop, setup time, peak
   memory (resident set on CPU, allocated on CUDA), and the map's error after the run
   (L2-UVP against the true map, which is known here: T(x) = A x + tanh(x)/2, A SPD).
2. ``scaling``: the same fit (2 * 10^5 samples) under ``torchrun`` on 1 and 2 processes
   (gloo, one thread each, the same global batch), and on 1 process with 2 threads.
3. ``overhead``: the default CPU path, this checkout against another one (``--baseline``,
   a directory holding an older ``otgrad`` package): ``otgrad.train.fit`` on a tiny model
   (where the loop's own cost shows most) and a default ``BrenierMap`` fit, alternating
   the two versions in fresh processes (each: a warm-up, then the median of three runs)
   and keeping the median over rounds; and both versions in one process (the baseline
   imported under another name), alternating, which removes process-to-process variation.

Usage (from the repository's root)::

    python -m applications.speed.scale                       # writes docs/benchmarks/scale_cpu.json
    python -m applications.speed.scale --baseline /tmp/base  # with the before/after section, where
        # mkdir /tmp/base && git archive f995618 otgrad | tar -x -C /tmp/base
    python -m applications.speed.scale --device cuda
    python -m applications.speed.scale --quick               # seconds; what the tests run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np
import torch

from ..common import ROOT as _ROOT
from ..common import benchmark_parser, command_line, save_benchmark

__all__ = ["problem", "brenier_run", "scaling", "overhead", "side_by_side", "main"]

PROG = "applications.speed.scale"
ROOT = str(_ROOT)


def problem(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source samples X ~ N(0, I), the SPD matrix A, and Y = T(X) = A X + tanh(X)/2."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    A = (q * rng.uniform(0.5, 2.0, d)) @ q.T
    X = rng.standard_normal((n, d), dtype=np.float32)
    return X, A.astype(np.float32), true_map(X, A.astype(np.float32))


def true_map(X: np.ndarray, A: np.ndarray) -> np.ndarray:
    """The Brenier map T(x) = A x + tanh(x)/2 of the problem, in chunks."""
    out = np.empty_like(X)
    chunk = 1 << 16
    for i in range(0, len(X), chunk):
        c = X[i : i + chunk]
        out[i : i + chunk] = c @ A + 0.5 * np.tanh(c)
    return out


def peak_rss_mb() -> float:
    """The peak resident set of this process, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def brenier_run(
    n: int, d: int, steps: int, batch: int, device: torch.device, threads: int | None = None
) -> dict:
    """Fits BrenierMap on n samples in d dimensions; throughput, memory and error."""
    from otgrad.ot import BrenierMap
    from otgrad.train import is_main_process, world

    if threads:
        torch.set_num_threads(threads)
    X, A, Y = problem(n, d)
    data_mb = (X.nbytes + Y.nbytes) / 2**20
    rss0 = peak_rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    est = BrenierMap(steps=steps, batch_size=batch, seed=0, device=device, progress=False)
    est.fit(X, Y)
    total = time.perf_counter() - t0
    loop = est.history_.seconds
    Xt, _, _ = problem(10_000, d, seed=1)
    err = ((est.transform(Xt) - true_map(Xt, A)) ** 2).sum(-1).mean()
    Yt = true_map(Xt, A)
    uvp = 100 * err / ((Yt - Yt.mean(0)) ** 2).sum(-1).mean()
    row = dict(
        n=n,
        dim=d,
        steps=est.history_.steps,
        batch=batch,
        processes=world()[1],
        threads=torch.get_num_threads(),
        fit_seconds=total,
        loop_seconds=loop,
        setup_seconds=total - loop,
        samples_per_second=est.history_.steps * batch / loop,
        ms_per_step=1e3 * loop / est.history_.steps,
        l2_uvp_percent=float(uvp),
        data_mb=data_mb,
        peak_rss_mb=peak_rss_mb(),
        rss_before_fit_mb=rss0,
    )
    if device.type == "cuda":
        row["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    if is_main_process():
        print(
            f"BrenierMap n={n} d={d} batch={batch} x{row['processes']} proc "
            f"{row['threads']} thr: {row['samples_per_second']:.0f} samples/s "
            f"({row['ms_per_step']:.1f} ms/step), setup {row['setup_seconds']:.1f} s, "
            f"peak RSS {row['peak_rss_mb']:.0f} MB (data {data_mb:.0f} MB), "
            f"L2-UVP {uvp:.2f} % after {row['steps']} steps",
            flush=True,
        )
    return row


def scaling(n: int, d: int, steps: int, batch: int) -> list[dict]:
    """The same fit under torchrun on 1 and 2 processes (one thread), and 1 x 2 threads."""
    rows = []
    for procs, threads in ((1, 1), (2, 1), (1, 2)):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "row.json")
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            env.pop("WORLD_SIZE", None)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            cmd += [f"--nproc_per_node={procs}", "-m", PROG, "--worker", out]
            cmd += [f"--worker-args={n},{d},{steps},{batch},{threads}"]
            subprocess.run(cmd, check=True, env=env, cwd=ROOT)
            with open(out) as f:
                rows.append(json.load(f))
    base = rows[0]["samples_per_second"]
    for r in rows:
        r["speedup_vs_1x1"] = r["samples_per_second"] / base
    return rows


OVERHEAD = r"""
import json, statistics, time, torch
torch.set_num_threads(1)
import numpy as np
from otgrad.nn import GradNetM
from otgrad.train import fit
from otgrad.ot import BrenierMap
x = torch.randn(4096, 2, generator=torch.Generator().manual_seed(0)); y = 2 * x + torch.tanh(x)
mse = lambda m, a, b: ((m(a) - b) ** 2).sum(-1).mean()
def tiny(steps):
    torch.manual_seed(0); net = GradNetM(2, 8, 4)
    t = time.perf_counter(); fit(net, mse, (x, y), epochs=steps // 16, batch_size=256, seed=0)
    return (time.perf_counter() - t) / (steps // 16 * 16)
rng = np.random.default_rng(0); X = rng.normal(size=(4000, 2)); Y = X @ np.diag([2.0, 0.5]) + 1
def brenier(steps):
    t = time.perf_counter(); BrenierMap(steps=steps, seed=0, device="cpu", progress=False).fit(X, Y)
    return (time.perf_counter() - t) / steps
tiny(32), brenier(2)  # warm-up
out = {"fit_tiny_ms_per_step": 1e3 * statistics.median(tiny(STEPS) for _ in range(3)),
       "brenier_d2_ms_per_step": 1e3 * statistics.median(brenier(BSTEPS) for _ in range(3))}
print(json.dumps(out))
"""


SIDE_BY_SIDE = r"""
import json, statistics, sys, time, torch
torch.set_num_threads(1)
import numpy as np
sys.path.insert(0, TMPDIR)
import otgrad_baseline.nn, otgrad_baseline.ot, otgrad_baseline.train
import otgrad.nn, otgrad.ot, otgrad.train
versions = {"this checkout": otgrad, "baseline": otgrad_baseline}
x = torch.randn(4096, 2, generator=torch.Generator().manual_seed(0)); y = 2 * x + torch.tanh(x)
mse = lambda m, a, b: ((m(a) - b) ** 2).sum(-1).mean()
rng = np.random.default_rng(0); X = rng.normal(size=(4000, 2)); Y = X @ np.diag([2.0, 0.5]) + 1
def tiny(pkg, steps):
    torch.manual_seed(0); net = pkg.nn.GradNetM(2, 8, 4)
    t = time.perf_counter(); pkg.train.fit(net, mse, (x, y), epochs=steps // 16, batch_size=256, seed=0)
    return 1e3 * (time.perf_counter() - t) / (steps // 16 * 16)
def brenier(pkg, steps):
    t = time.perf_counter()
    pkg.ot.BrenierMap(steps=steps, seed=0, device="cpu", progress=False).fit(X, Y)
    return 1e3 * (time.perf_counter() - t) / steps
for pkg in versions.values():
    tiny(pkg, 32), brenier(pkg, 2)  # warm-up
out = {k: {"fit_tiny_ms_per_step": [], "brenier_d2_ms_per_step": []} for k in versions}
for _ in range(ROUNDS):
    for k, pkg in versions.items():
        out[k]["fit_tiny_ms_per_step"].append(tiny(pkg, STEPS))
        out[k]["brenier_d2_ms_per_step"].append(brenier(pkg, BSTEPS))
print(json.dumps(out))
"""


def side_by_side(baseline: str, rounds: int, steps: int, bsteps: int) -> dict:
    """Both versions in one process (the baseline imported as ``otgrad_baseline``),
    alternating: the loop's own cost without process-to-process variation."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(os.path.join(baseline, "otgrad"), os.path.join(tmp, "otgrad_baseline"))
        code = SIDE_BY_SIDE.replace("TMPDIR", repr(tmp)).replace("ROUNDS", str(rounds))
        code = code.replace("BSTEPS", str(bsteps)).replace("STEPS", str(steps))
        env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
        r = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd="/"
        )
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    times = json.loads(r.stdout.strip().splitlines()[-1])
    out = {"rounds": rounds}
    for key in ("fit_tiny_ms_per_step", "brenier_d2_ms_per_step"):
        new = statistics.median(times["this checkout"][key])
        old = statistics.median(times["baseline"][key])
        out[key] = {
            "this checkout": new,
            "baseline": old,
            "ratio": new / old,
            "rounds this checkout": times["this checkout"][key],
            "rounds baseline": times["baseline"][key],
        }
        print(
            f"{key} (one process): this checkout {new:.3f} ms, baseline {old:.3f} ms "
            f"({new / old:.3f}x)"
        )
    return out


def overhead(baseline: str, rounds: int, steps: int, bsteps: int) -> dict:
    """This checkout against ``baseline``, alternating in fresh processes."""
    code = OVERHEAD.replace("BSTEPS", str(bsteps)).replace("STEPS", str(steps))
    times = {"this checkout": [], "baseline": []}
    for _ in range(rounds):
        for name, path in (("this checkout", ROOT), ("baseline", baseline)):
            env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
            r = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd="/"
            )
            if r.returncode:
                raise RuntimeError(r.stderr[-2000:])
            times[name].append(json.loads(r.stdout.strip().splitlines()[-1]))
    out = {"rounds": rounds, "baseline_path": baseline}
    for key in ("fit_tiny_ms_per_step", "brenier_d2_ms_per_step"):
        new = statistics.median(t[key] for t in times["this checkout"])
        old = statistics.median(t[key] for t in times["baseline"])
        out[key] = {
            "this checkout": new,
            "baseline": old,
            "ratio": new / old,
            "rounds this checkout": [t[key] for t in times["this checkout"]],
            "rounds baseline": [t[key] for t in times["baseline"]],
        }
        print(f"{key}: this checkout {new:.3f} ms, baseline {old:.3f} ms ({new / old:.3f}x)")
    return out


def _worker(args: argparse.Namespace) -> None:
    r"""One process of the scaling section, under torchrun."""
    from otgrad.train import is_main_process

    n, d, steps, batch, threads = (int(v) for v in args.worker_args.split(","))
    row = brenier_run(n, d, steps, batch, torch.device("cpu"), threads)
    if is_main_process():
        with open(args.worker, "w") as f:
            json.dump(row, f)


def build_parser() -> argparse.ArgumentParser:
    r"""The command line's options."""
    parser = benchmark_parser(PROG, __doc__.split("\n")[0])
    parser.add_argument("--sections", default="brenier,scaling,overhead")
    parser.add_argument("--baseline", default=None, help="directory with an older otgrad")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-args", default=None, help=argparse.SUPPRESS)
    return parser


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _run(args: argparse.Namespace, device: torch.device) -> dict:
    sections, q = set(args.sections.split(",")), args.quick
    if q:
        n, d, steps, batch = 20_000, 8, 10, 256
    else:
        n, d, steps, batch = 1_000_000, 64, 2000 if device.type == "cuda" else 100, 4096
    steps = args.steps or steps
    results: dict = {}
    if "brenier" in sections:
        results["brenier"] = brenier_run(n, d, steps, batch, device)
    if "scaling" in sections:
        results["scaling"] = scaling(
            n if q else 200_000, d, max(steps // 2, 5) if q else 60, batch
        )
        for r in results["scaling"]:
            print(
                f"{r['processes']} process(es) x {r['threads']} thread(s): "
                f"{r['samples_per_second']:.0f} samples/s ({r['speedup_vs_1x1']:.2f}x)"
            )
    if "overhead" in sections and args.baseline:
        results["overhead"] = overhead(
            args.baseline, 1 if q else 5, 64 if q else 2000, 5 if q else 200
        )
        results["overhead_one_process"] = side_by_side(
            args.baseline, 1 if q else 8, 64 if q else 1600, 5 if q else 200
        )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    r"""Runs the benchmark with the options ``argv`` (default: the command line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.worker:
        return _worker(args)
    device = torch.device(args.device)
    name = _device_name(device)
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    command = command_line(PROG, argv)
    results = {"device": name, "torch": torch.__version__, "command": command}
    results.update(_run(args, device))
    name = f"scale_{device.type}{'_quick' if args.quick else ''}.json"
    save_benchmark(
        results, args.out or os.path.join(ROOT, "docs", "benchmarks", name), command, device
    )


if __name__ == "__main__":
    main()
