r"""Convex potential flows against zuko's neural spline flow, in tables: NLL, W2 and samples
on the toy sets, the Gaussian mixture, the softmax temperature β, and the cost of a training
step (closed-form Jacobians against autograd), from the results in ``docs/flows/``."""

from __future__ import annotations

import numpy as np

from ..common import command_note, join_tables, load_result, markdown_table, where
from . import MODELS

__all__ = ["toy2d_table", "mixture_table", "beta_table", "cost_table", "tables"]


def _toy_row(s: str, by: dict, models: list[str], both: bool) -> list[str]:
    def each(fmt) -> list[str]:
        return [fmt(by[k]) if k in by else "" for k in models]

    cells = [s] + each(lambda r: f"{r['nll']:.3f}")
    if both:
        cells.append(f"{by['cpflow']['nll'] - by['nsf']['nll']:+.3f}" if len(by) == 2 else "")
    cells += each(lambda r: f"{r['w2']:.3f}") + each(lambda r: f"{r['grid_mass']:.3f}")
    cells += each(lambda r: str(r.get("far_samples", "")))
    c = by.get("cpflow", {})
    cells.append(f"{c['inversion_residual']:.1e}" if "inversion_residual" in c else "")
    t = next((r["nll_true"] for r in by.values() if "nll_true" in r), None)
    return cells + [f"{t:.3f}" if t is not None else ""]


def toy2d_table(toy: dict) -> str:
    r"""NLL, W2, grid mass, far samples and inversion residual per set and model; then
    each model's parameters, mean fit time and sampling time."""
    rows = toy["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    both = set(models) == set(MODELS)
    head = ["set"] + [f"NLL {k}" for k in models] + (["CP-Flow − NSF"] if both else [])
    head += [f"W2 {k}" for k in models] + [f"mass {k}" for k in models]
    head += [f"far samples {k}" for k in models] + ["inversion residual", "NLL true"]
    body = [
        _toy_row(s, {r["model"]: r for r in rows if r["set"] == s}, models, both)
        for s in dict.fromkeys(r["set"] for r in rows)
    ]
    summary = []
    for k in models:
        rk = [r for r in rows if r["model"] == k]
        fit = np.mean([r["fit_seconds"] for r in rk])
        sampling = np.mean([r["sample_seconds_per_1k"] for r in rk])
        summary.append([k, rk[0]["params"], f"{fit:.0f}", f"{sampling:.2f}"])
    head2 = ["model", "parameters", "fit seconds (mean over sets)", "sampling s / 1k"]
    return markdown_table(head, body) + "\n\n" + markdown_table(head2, summary)


def mixture_table(mix: dict) -> str:
    r"""Each model's test NLL against the true entropy."""
    body = [
        [
            r["model"],
            r["dim"],
            r["params"],
            f"{r['nll']:.3f}",
            f"{r['nll_true']:.3f}",
            f"{r['nll'] - r['nll_true']:+.3f}",
        ]  # fmt: skip
        for r in mix["rows"]
    ]
    return markdown_table(["model", "d", "parameters", "NLL", "true entropy", "gap"], body)


def beta_table(low: dict, high: dict) -> str:
    r"""NLL and far samples per set of the flows started at β = 1 (``low``) and 20."""
    a = {r["set"]: r for r in low["rows"]}
    b = {r["set"]: r for r in high["rows"]}
    body = [
        [
            s,
            f"{a[s]['nll']:.3f}",
            f"{b[s]['nll']:.3f}",
            a[s].get("far_samples", ""),
            b[s].get("far_samples", ""),
        ]  # fmt: skip
        for s in a
        if s in b
    ]
    head = ["set", "NLL β = 1", "NLL β = 20", "far samples β = 1", "far samples β = 20"]
    return markdown_table(head, body)


def cost_table(c: dict) -> str:
    r"""Per dimension: the step times closed form against autograd (exact and stochastic),
    evaluation and sampling times, and the inversion residuals."""
    body = [
        [
            r["dim"],
            r["params"],
            f"{1e3 * r['step_s_closed']:.1f}",
            f"{1e3 * r['step_s_autograd']:.1f}",
            f"{r['step_ratio_autograd_closed']:.1f}×",
            f"{1e3 * r['step_s_stochastic']:.1f}",
            f"{1e3 * r['step_s_autograd_stochastic']:.1f}",
            f"{r['step_ratio_autograd_stochastic']:.1f}×",
            f"{r['eval_ratio_autograd_closed']:.1f}×",
            f"{r['sample_s_float64']:.2f}",
            f"{r['inverse_residual_float64']:.1e} / {r['inverse_residual_float32']:.1e}",
        ]  # fmt: skip
        for r in c["rows"]
    ]
    head = [
        "d", "parameters", "exact: closed form (ms)", "exact: autograd", "ratio",
        "stochastic: closed form (ms)", "stochastic: autograd", "ratio",
        "eval, no grad: autograd / closed", f"sampling {c['settings']['samples']} (s, float64)",
        "inversion residual (float64 / float32)",
    ]  # fmt: skip
    return markdown_table(head, body, align="r")


_TABLES = {"toy2d": toy2d_table, "mixture": mixture_table}


def tables(results: dict) -> str:
    r"""The Markdown tables of a run (``results.md``): ``{task: result}``."""
    return join_tables(results, _TABLES)


# ---------------------------------------------------------------------- docs/benchmarks.md
def _load(name: str) -> dict:
    return load_result("flows", f"flows_{name}.json")


def toy2d_setup() -> str:
    r"""The command, data, training and both models of the toy sets."""
    toy = _load("toy2d")
    p = toy["protocol"]
    params = {r["model"]: r["params"] for r in toy["rows"]}
    nsf = p["nsf"]
    return (
        f"{command_note(toy)}. {p['n_train']} training and {p['n_test']} test samples per "
        f"set; both flows trained by `otgrad.train.fit` for {p['steps']} Adam steps of "
        f"{p['batch_size']}, learning rate {p['lr']}, seed {p['seed']}, one thread per fit, "
        f"{p.get('workers', 2)} fits side by side. CP-Flow: "
        f"`ConvexPotentialFlow(2, **{p['cpflow']})`, {params.get('cpflow')} parameters; NSF: "
        f"zuko `NSF(2, transforms={nsf['transforms']}, hidden_features={tuple(nsf['hidden'])}, "
        f"bins={nsf['bins']})` on standardized data, {params.get('nsf')} parameters."
    )


def toy2d() -> str:
    r"""The tables of the toy sets, and on how many sets CP-Flow is as good as NSF."""
    toy = _load("toy2d")
    by = {(r["set"], r["model"]): r for r in toy["rows"]}
    sets = list(dict.fromkeys(r["set"] for r in toy["rows"]))
    gaps = {s: by[s, "cpflow"]["nll"] - by[s, "nsf"]["nll"] for s in sets}
    within = [s for s, g in gaps.items() if g <= 0.02]
    return (
        toy2d_table(toy)
        + f"\n\nCP-Flow within 0.02 nats of NSF (or better) on {len(within)} of {len(sets)} sets"
        + (f" ({', '.join(within)})." if within else ".")
    )


def beta_setup() -> str:
    r"""The steps and commands of the β ablation."""
    low, high = _load("toy2d_beta1"), _load("toy2d_beta20")
    return (
        f"{low['protocol']['steps']} steps each. Commands: `{low['command']}` ({where(low)}) "
        f"and `{high['command']}` ({where(high)})."
    )


def beta() -> str:
    r"""The table of the β ablation."""
    return beta_table(_load("toy2d_beta1"), _load("toy2d_beta20"))


def _mixture_rows() -> tuple[dict, dict]:
    r"""The mixture results, with the flow started at β = 1 as an extra row."""
    mix, low = _load("mixture"), _load("mixture_beta1")
    rows = mix["rows"] + [dict(r, model="cpflow, β = 1") for r in low["rows"]]
    return dict(mix, rows=rows), low


def mixture_dim() -> str:
    r"""The dimension of the mixture."""
    return str(_load("mixture")["protocol"]["dim"])


def mixture_setup() -> str:
    r"""The commands, data, training and configurations of the mixture."""
    mix, low = _mixture_rows()
    p = mix["protocol"]
    configs = "; ".join(f"{r['model']}: `{r['config']}`" for r in mix["rows"])
    return (
        f"{command_note(mix)}; {command_note(low, 'β = 1')}. {p['components']} components; "
        f"{p['n_train']} training and {p['n_test']} test samples, {p['steps']} steps of "
        f"{p['batch_size']}. {configs}."
    )


def mixture() -> str:
    r"""The table of the mixture."""
    return mixture_table(_mixture_rows()[0])


def cost_setup() -> str:
    r"""The command, machine and flow of the step-cost benchmark."""
    c = _load("cost")
    st = c["settings"]
    return (
        f"Command: `{c['command']}` on {c['device']} (torch {c['torch']}). One step = "
        f"log-density of a batch of {st['batch']} plus the backward pass to all parameters, "
        f"for a flow of {st['blocks']} `{st['net']}` blocks (hidden {st['hidden']}, "
        f"{st['layers']} modules), float32, median of {st['reps']}."
    )


def cost() -> str:
    r"""The table of the step-cost benchmark."""
    return cost_table(_load("cost"))
