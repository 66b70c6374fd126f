r"""Score models in tables: NLL, W2 and MMD of the GradNet and its baselines on the toy sets,
MALA against ULA, and the likelihood's cost with each divergence, from ``docs/score/``."""

from __future__ import annotations

from ..common import command_note, join_tables, load_result, markdown_table

__all__ = ["toy2d_table", "mala_table", "trace_table", "tables"]


def _mmd(v: float) -> str:
    return f"{1e3 * v:.2f}e-3"


def _toy_row(s: str, by: dict, models: list[str]) -> list[str]:
    cells = [s]
    for k in models:
        r = by.get(k, {})
        cells += [f"{r['nll_ode']:.3f}", f"{r['w2']:.3f}", _mmd(r["mmd"])] if r else ["", "", ""]
    g = by.get("gradnet", {})
    cells += [
        f"{g['nll_grid']:.3f}" if "nll_grid" in g else "",
        f"{g['nll_true']:.3f}" if "nll_true" in g else "",
        f"{g['w2_floor']:.3f}" if "w2_floor" in g else "",
        _mmd(g["mmd_floor"]) if "mmd_floor" in g else "",
        f"{g['nll_ode_mid']:.3f} / {g['nll_grid_mid']:.3f}" if "nll_ode_mid" in g else "",
    ]
    return cells


def toy2d_table(toy: dict) -> str:
    r"""NLL, W2 and MMD of every model per set, with the data-against-data levels."""
    rows = toy["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    head = ["set"] + [f"{m} {k}" for k in models for m in ("NLL", "W2", "MMD")]
    head += ["NLL grid (gradnet)", "NLL true", "W2 data", "MMD data", "σ = 0.1: ODE / grid"]
    body = [
        _toy_row(s, {r["model"]: r for r in rows if r["set"] == s}, models)
        for s in dict.fromkeys(r["set"] for r in rows)
    ]
    return markdown_table(head, body)


def mala_table(mala: dict) -> str:
    r""":math:`W_2` of ULA and MALA per step size, MALA's acceptance and the times."""
    nan = float("nan")
    body = [
        [
            f"{r['step']:g}",
            f"{r['ula_w2']:.3f}",
            f"{r['mala_w2']:.3f}",
            f"{r['mala_acceptance']:.2f}",
            f"{r.get('ula_seconds', nan):.1f}",
            f"{r.get('mala_seconds', nan):.1f}",
        ]  # fmt: skip
        for r in mala["rows"]
    ]
    head = ["step h", "W2 ULA", "W2 MALA", "MALA acceptance", "time ULA (s)", "time MALA (s)"]
    return (
        markdown_table(head, body, align="r")
        + f"\n\nW2 between the starting samples and the reference: {mala['start_w2']:.3f}"
    )


def trace_table(speed: dict) -> str:
    r"""Microseconds per sample of the ODE likelihood with each divergence, and its error."""
    body = [
        [
            r.get("model", "gradnet-lse"),
            r["d"],
            f"{r['exact_us_per_sample']:.0f}",
            f"{r['autograd_us_per_sample']:.0f}",
            f"{r['hutchinson_us_per_sample']:.0f}",
            f"{r['autograd_over_exact']:.1f}×",
            f"{r['hutchinson_over_exact']:.1f}×",
            f"{r.get('autograd_max_abs_diff', 0):.1e}, {r.get('hutchinson_max_abs_diff', 0):.2f}",
        ]  # fmt: skip
        for r in speed["rows"]
    ]
    head = ["model", "d", "exact (µs/sample)", "autograd", "Hutchinson", "autograd / exact",
            "Hutchinson / exact", "max abs. error of log p: autograd, Hutchinson"]  # fmt: skip
    return markdown_table(head, body, align="r")


_TABLES = {"toy2d": toy2d_table, "mala": mala_table, "trace": trace_table}


def tables(results: dict) -> str:
    r"""The Markdown tables of a run (``results.md``): ``{task: result}``."""
    return join_tables(results, _TABLES)


# ---------------------------------------------------------------------- docs/benchmarks.md
def toy2d_setup() -> str:
    r"""The command, sizes, likelihood and sampler of the toy sets, and the parameters."""
    toy = load_result("score", "score_toy2d.json")
    p = toy["protocol"]
    params = {r["model"]: r["params"] for r in toy["rows"]}
    return (
        f"{command_note(toy)}. {p['n_train']} training samples, {p['steps']} steps of "
        f"{p['batch_size']}, {p['schedule']}; NLL (nats) of {p['n_test']} "
        f"test points by the {p['nll']}; {p['n_test']} samples by the {p['sampler']} against "
        f"{p['n_test']} fresh data points. Parameters: "
        + ", ".join(f"{k} {v}" for k, v in params.items())
        + "."
    )


def _flow_nll() -> dict[str, float]:
    r"""This project's convex potential flow's test NLL per toy set (``docs/flows/``), or
    nothing if that result is missing."""
    try:
        flows = load_result("flows", "flows_toy2d.json")
    except FileNotFoundError:
        return {}
    return {r["set"]: r["nll"] for r in flows["rows"] if r["model"] == "cpflow"}


def _wins(by: dict, models: list[str], sets: list[str]) -> list[str]:
    lines = []
    for other in (m for m in models if m != "gradnet" and "gradnet" in models):
        nll = sum(by[s, "gradnet"]["nll_ode"] < by[s, other]["nll_ode"] for s in sets)
        w2 = sum(by[s, "gradnet"]["w2"] < by[s, other]["w2"] for s in sets)
        lines.append(
            f"GradNet better than {other}: NLL on {nll} of {len(sets)} sets, "
            f"W2 on {w2} of {len(sets)}."
        )
    baselines = [m for m in ("mlp", "gradmlp") if m in models]
    if "gradnet" in models and len(baselines) == 2:
        nll = sum(
            all(by[s, "gradnet"]["nll_ode"] <= by[s, b]["nll_ode"] for b in baselines)
            for s in sets
        )
        lines.append(f"GradNet NLL at or below both MLP baselines on {nll} of {len(sets)} sets.")
    return lines


def goals_table(toy: dict) -> str:
    r"""Per set, the GradNet's W2 against 1.25 × the data-against-data level and its NLL
    against the convex potential flow's (the goals of ``docs/score.md``)."""
    flow = _flow_nll()
    body = []
    for r in (r for r in toy["rows"] if r["model"] == "gradnet"):
        ratio = r["w2"] / r["w2_floor"] if "w2_floor" in r else float("nan")
        f = flow.get(r["set"])
        body.append([
            r["set"], f"{r['w2']:.3f}", f"{r.get('w2_floor', float('nan')):.3f}",
            f"{ratio:.2f}", "yes" if ratio <= 1.25 else "no",
            f"{r['nll_ode']:.3f}", f"{f:.3f}" if f is not None else "",
            f"{r['nll_ode'] - f:+.3f}" if f is not None else "",
        ])  # fmt: skip
    head = ["set", "W2 gradnet", "W2 data", "ratio", "≤ 1.25×", "NLL gradnet", "NLL CP-Flow",
            "gap"]  # fmt: skip
    return markdown_table(head, body, align="r")


def cost_table(toy: dict) -> str:
    r"""Mean fit, sampling and score-evaluation times per model (one thread)."""
    rows = toy["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))

    def mean(k: str, key: str) -> float:
        v = [r[key] for r in rows if r["model"] == k and key in r]
        return sum(v) / len(v) if v else float("nan")

    ref = mean("mlp", "score_us_per_point")
    body = [
        [k, f"{mean(k, 'fit_seconds'):.0f}", f"{mean(k, 'sample_seconds'):.1f}",
         f"{mean(k, 'score_us_per_point'):.2f}", f"{mean(k, 'score_us_per_point') / ref:.2f}×"]
        for k in models
    ]  # fmt: skip
    head = ["model", "fit (s)", "sampling (s)", "score (µs / point)", "score / mlp's"]
    return markdown_table(head, body, align="r")


def toy2d() -> str:
    r"""The table of the toy sets, how often the GradNet wins, the goals and the costs."""
    toy = load_result("score", "score_toy2d.json")
    rows = toy["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    by = {(r["set"], r["model"]): r for r in rows}
    sets = list(dict.fromkeys(r["set"] for r in rows))
    steps = toy["protocol"]["steps"]
    parts = [toy2d_table(toy), "\n".join(_wins(by, models, sets))]
    if "gradnet" in models and all("w2_floor" in by[s, "gradnet"] for s in sets):
        parts.append(goals_table(toy))
    if all("score_us_per_point" in r for r in rows):
        parts.append(
            f"Costs, mean over the sets ({steps} training steps; sampling: "
            f"{toy['protocol']['n_test']} points; score: one evaluation at "
            f"{toy['protocol']['n_test']} points, "
            f"{toy['protocol'].get('score_time', 'best of 5')}; one thread):\n\n" + cost_table(toy)
        )
    else:
        fit: dict[str, list[float]] = {}
        for r in rows:
            fit.setdefault(r["model"], []).append(r["fit_seconds"])
        times = ", ".join(f"{k} {sum(v) / len(v):.0f} s" for k, v in fit.items())
        parts.append(f"Mean fit time per set ({steps} steps, one thread): {times}.")
    return "\n\n".join(part for part in parts if part)


def mala_setup() -> str:
    r"""The command and the chains of the MALA study."""
    mala = load_result("score", "score_mala.json")
    p = mala["protocol"]
    return (
        f"{command_note(mala)}. Target: the GradNet's learned density p_σ on {p['set']} at "
        f"σ = {p['sigma']}; {p['n']} chains of {p['chain_steps']} steps of size h (data units²)."
    )


def mala() -> str:
    r"""The table of the MALA study."""
    return mala_table(load_result("score", "score_mala.json"))


def trace_setup() -> str:
    r"""The command, model, points and solver of the likelihood timing."""
    speed = load_result("score", "score_trace.json")
    p = speed["protocol"]
    return f"{command_note(speed)}. {p['model']}, {p['n']} points, {p['solver']}, {p['repeats']}."


def trace() -> str:
    r"""The table of the likelihood timing."""
    return trace_table(load_result("score", "score_trace.json"))
