r"""The speed of the library in tables: the closed-form calculus against autograd, training
steps against their arithmetic floor (CPU and GPU, eager and compiled), the quadrature
potential, BrenierMap at scale, the training loop's own cost and the log-determinant by
the determinant lemma, from ``docs/benchmarks/``."""

from __future__ import annotations

from collections.abc import Callable

from ..common import load_result, markdown_table
from . import MODELS

__all__ = ["calculus_table", "training_table", "floor_table", "quadrature_table"]


# ---------------------------------------------------------------------- tables
def calculus_table(rows: list[dict]) -> str:
    r"""Closed-form trace and log-determinant against autograd, per batch and dimension."""
    body = [
        [
            c["batch"],
            c["dim"],
            c["hidden"],
            c["params"],
            f"{c['trace_closed']:.3f}",
            f"{c['trace_autograd']:.3f}",
            f"**{c['trace_speedup']:.1f}×**",
            f"{c['logdet_closed']:.3f}",
            f"{c['logdet_autograd']:.3f}",
            f"**{c['logdet_speedup']:.1f}×**",
        ]  # fmt: skip
        for c in rows
    ]
    head = ["batch", "d", "h", "params", "trace closed (ms)", "trace autograd (ms)", "speed-up",
            "logdet closed (ms)", "logdet autograd (ms)", "speed-up"]  # fmt: skip
    return markdown_table(head, body, align="r")


def _models(rows: list[dict]) -> list[str]:
    return [m for m in MODELS if m in rows[0]]


def training_table(rows: list[dict]) -> str:
    r"""Time of one Adam step per model (parameters) and the ratios of the mGradNets to the
    MLP field and the ICNN gradient."""
    models = _models(rows)
    ratios = ["C / MLP", "C / ICNN"] + (["M / MLP", "M / ICNN"] if "mGradNet-M" in models else [])
    body = [
        [t["dim"]]
        + [f"{t[m]:.2f} ({t[f'{m} params']} p)" for m in models]
        + [f"**{t[r]:.2f}**" for r in ratios]
        for t in rows
    ]
    return markdown_table(["d"] + [f"{m} (ms)" for m in models] + ratios, body, align="r")


def floor_table(rows: list[dict]) -> str:
    r"""Per model: the step's matrix-product GFLOP, the arithmetic floor and the gap to it."""
    models = _models(rows)
    body = [
        [t["dim"]]
        + [
            f"{t[f'{m} GFLOP']:.2f}, {t[f'{m} floor ms']:.2f}, {t[m] / t[f'{m} floor ms']:.1f}×"
            for m in models
        ]
        for t in rows
    ]
    return markdown_table(["d"] + [f"{m}: GFLOP, floor ms, gap" for m in models], body, align="r")


def quadrature_table(rows: list[dict]) -> str:
    r"""Largest relative error of the quadrature potential's gradient per scale and nodes."""
    nodes = sorted({q["nodes"] for q in rows})
    body = [
        [s] + [f"{q['max_relative_error']:.1e}" for q in rows if q["input_scale"] == s]
        for s in sorted({q["input_scale"] for q in rows})
    ]
    return markdown_table(["input scale"] + [f"{n} nodes" for n in nodes], body, align="r")


# ---------------------------------------------------------------------- core speed
def _core(device: str) -> dict:
    return load_result("benchmarks", f"core_speed_{device}.json")


def _from(name: str, render: Callable[[dict], str], doc: str) -> Callable[[], str]:
    r"""A placeholder: ``render`` of the core-speed results ``core_speed_<name>.json``."""

    def placeholder() -> str:
        return render(_core(name))

    placeholder.__doc__ = doc
    return placeholder


def _device(r: dict) -> str:
    return f"Device: {r['device']}; torch {r['torch']}; {r['dtype']}.\n\nCommand: `{r['command']}`"


def _gemm_rate(r: dict) -> str:
    rate = r.get("gemm_gflops")
    return f"Measured matrix-product rate: {rate:.0f} GFLOP/s." if rate else ""


def floor_large() -> str:
    r"""How close the steps are to their floor at the largest dimension (CPU)."""
    big = _core("cpu")["training_step"][-1]
    flops = big["mGradNet-C GFLOP"] / big["MLP field GFLOP"]
    return (
        f"at d = {big['dim']} the steps are near their arithmetic floor (mGradNet-C "
        f"{big['mGradNet-C'] / big['mGradNet-C floor ms']:.1f}×, MLP "
        f"{big['MLP field'] / big['MLP field floor ms']:.1f}×), and mGradNet-C does "
        f"{flops:.1f}× the MLP's matrix-product FLOPs at equal parameter count"
    )


def floor_mid() -> str:
    r"""How far mGradNet-C is from its floor at d = 32 (CPU)."""
    rows = _core("cpu")["training_step"]
    mid = next((t for t in rows if t["dim"] == 32), rows[0])
    gap = mid["mGradNet-C"] / mid["mGradNet-C floor ms"]
    return f"At d = {mid['dim']} mGradNet-C is {gap:.0f}× its floor"


def _rerun(run: dict) -> str:
    rows = run["training_step_compiled"]
    return (
        "Another run of the compiled step (`docs/benchmarks/core_speed_cuda_compiled_run1.json`, "
        f"{run['device']}) gave C / MLP "
        + ", ".join(f"{t['C / MLP']:.2f} (d = {t['dim']})" for t in rows)
        + " and C / ICNN "
        + ", ".join(f"{t['C / ICNN']:.2f}" for t in rows)
        + "."
    )


def _table(name: str, key: str, table: Callable[[list[dict]], str], doc: str) -> Callable[[], str]:
    return _from(name, lambda r: table(r[key]), doc)


def _command(name: str, doc: str) -> Callable[[], str]:
    return _from(name, lambda r: f"`{r['command']}`", doc)


gpu_device = _from("cuda", _device, "The GPU, torch version and command of the GPU tables.")
gpu_calculus = _table("cuda", "calculus", calculus_table, "The calculus table on the GPU.")
gpu_gemm_rate = _from("cuda", _gemm_rate, "The GPU's measured matrix-product rate, if recorded.")
gpu_training = _table("cuda", "training_step", training_table, "The eager steps on the GPU.")
gpu_compiled_command = _command("cuda_compiled", "The command of the compiled steps (GPU).")
gpu_compiled = _table(
    "cuda_compiled", "training_step_compiled", training_table, "The compiled steps on the GPU."
)
gpu_rerun = _from("cuda_compiled_run1", _rerun, "The ratios of another compiled run (GPU).")
cpu_device = _from("cpu", _device, "The CPU, torch version and command of the CPU tables.")
cpu_calculus = _table("cpu", "calculus", calculus_table, "The calculus table on the CPU.")
cpu_gemm_rate = _from("cpu", _gemm_rate, "The CPU's measured matrix-product rate.")
cpu_training = _table("cpu", "training_step", training_table, "The eager steps on the CPU.")
cpu_floor = _table("cpu", "training_step", floor_table, "The arithmetic-floor table (CPU).")
cpu_compiled_command = _command("cpu", "The command of the compiled steps (CPU).")
cpu_compiled = _table(
    "cpu", "training_step_compiled", training_table, "The compiled steps on the CPU."
)
quadrature = _table("cpu", "quadrature", quadrature_table, "The quadrature-accuracy table.")


# ---------------------------------------------------------------------- scale
def _scale() -> dict:
    return load_result("benchmarks", "scale_cpu.json")


def _run_line(r: dict) -> str:
    return f"Device: {r['device']}; torch {r['torch']}. Command: `{r['command']}`"


def scale_device() -> str:
    r"""The machine, torch version and command of the scale benchmark."""
    return _run_line(_scale())


def scale_brenier() -> str:
    r"""The throughput, memory and error of the large BrenierMap fit."""
    r = _scale()
    b = r["brenier"]
    mem = f"{b['peak_rss_mb']:.0f} MB RSS"
    if "peak_cuda_mb" in b:
        mem += f", {b['peak_cuda_mb']:.0f} MB CUDA"
    row = [f"{b['n']:,}", b["dim"], b["batch"], b["steps"], f"{b['samples_per_second']:,.0f}",
           f"{b['ms_per_step']:.1f}", f"{b['setup_seconds']:.1f}", mem,
           f"{b['rss_before_fit_mb']:.0f} MB RSS", f"{b['data_mb']:.0f} MB",
           f"{b['l2_uvp_percent']:.2f} %"]  # fmt: skip
    head = ["n", "d", "batch", "steps", "samples/s", "ms/step", "setup (s)", "peak memory",
            "before the fit", "data", "L2-UVP"]  # fmt: skip
    table = markdown_table(head, [row], align="rrrrrrr-rrr")
    note = f"This row: `{r['brenier_command']}`.\n\n" if r.get("brenier_command") else ""
    return note + table


def scaling_setup() -> str:
    r"""The fit of the scaling runs."""
    sc = _scale()["scaling"][0]
    return (
        f"the same fit on {sc['n']:,} samples, d = {sc['dim']}, global batch {sc['batch']}, "
        f"{sc['steps']} steps"
    )


def scaling() -> str:
    r"""Throughput and speed-up per number of processes and threads."""
    body = [
        [
            f"{x['processes']} × {x['threads']}",
            f"{x['samples_per_second']:,.0f}",
            f"{x['ms_per_step']:.1f}",
            f"{x['speedup_vs_1x1']:.2f}×",
            f"{x['l2_uvp_percent']:.2f} %",
        ]  # fmt: skip
        for x in _scale()["scaling"]
    ]
    head = ["processes × threads", "samples/s", "ms/step", "speed-up over 1 × 1", "L2-UVP"]
    return markdown_table(head, body)


def baseline() -> str:
    r"""The older version the loop's cost was compared with."""
    r = _scale()
    return (r.get("provenance") or {}).get("baseline") or f"`{r['overhead']['baseline_path']}`"


_WORKLOADS = {
    "fit_tiny_ms_per_step": "`train.fit`, GradNetM(2, 8, 4), batch 256",
    "brenier_d2_ms_per_step": "`BrenierMap` default fit, d = 2, 4000 samples",
}
_PROTOCOLS = (("overhead", "fresh processes"), ("overhead_one_process", "one process"))


def overhead() -> str:
    r"""Per workload and protocol: this checkout against the baseline, ms per step."""
    r = _scale()
    body = []
    for key, label in _WORKLOADS.items():
        for sec, proto in ((s, p) for s, p in _PROTOCOLS if s in r):
            v = r[sec][key]
            ratios = [
                a / b for a, b in zip(v["rounds this checkout"], v["rounds baseline"], strict=True)
            ]
            body.append(
                [
                    label,
                    proto,
                    r[sec]["rounds"],
                    f"{v['this checkout']:.3f}",
                    f"{v['baseline']:.3f}",
                    f"{v['ratio']:.3f}",
                    f"{min(ratios):.2f}–{max(ratios):.2f}",
                ]  # fmt: skip
            )
    head = ["workload", "protocol", "rounds", "this checkout (ms/step)", "before (ms/step)",
            "ratio of medians", "per-round ratios"]  # fmt: skip
    return markdown_table(head, body, align="--rrrr-")


# ---------------------------------------------------------------------- log-determinant
def _logdet() -> dict:
    return load_result("benchmarks", "logdet_lowrank_cpu.json")


def logdet_device() -> str:
    r"""The machine, torch version and command of the log-determinant benchmark."""
    return _run_line(_logdet())


def logdet() -> str:
    r"""The determinant lemma against the dense Cholesky, per dimension."""
    body = [
        [
            x["batch"],
            x["dim"],
            x["rank"],
            f"{x['lowrank_ms']:.2f}",
            f"{x['dense_ms']:.2f}",
            f"**{x['speedup']:.1f}×**",
            f"{x['largest_intermediate_bytes_lowrank'] / 2**20:.1f} MiB / "
            f"{x['largest_intermediate_bytes_dense'] / 2**20:.0f} MiB",
            f"{x['max_abs_diff']:.1e}; {x['max_abs_diff_f64']:.1e}",
        ]  # fmt: skip
        for x in _logdet()["rows"]
    ]
    head = ["batch", "d", "R", "lemma (ms)", "dense Cholesky (ms)", "speed-up",
            "largest intermediate (lemma / dense)", "max abs. difference (float32; float64)"]  # fmt: skip
    return markdown_table(head, body, align="rrrrrr--")
