r"""BrenierMap on the optimal transport benchmarks, in tables: L2-UVP on Gaussian pairs and
on the W2 benchmark against the published values, 2D toy pairs, the losses, and the color
transfer, from ``docs/ot/``."""

from __future__ import annotations

from ..common import DOCS as _DOCS
from ..common import command_note, join_tables, load_json, load_result, markdown_table
from .published import W2_PUBLISHED, gaussian_goal

__all__ = [
    "gaussian_table",
    "w2bench_table",
    "peers_table",
    "toy2d_table",
    "losses_table",
    "tables",
]


def _fmt(v: float) -> str:
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def _find(rows: list[dict], d: int, method: str) -> dict | None:
    return next((r for r in rows if r["d"] == d and r["method"] == method), None)


def _variants(rows: list[dict]) -> list[str]:
    return sorted({r["method"] for r in rows if r["method"].startswith("BrenierMap")})


def gaussian_table(g: dict) -> str:
    r"""L2-UVP (%) and fit time of every method (rows) per dimension (columns)."""
    dims = sorted({r["d"] for r in g["rows"]})
    body = []
    for m in dict.fromkeys(r["method"] for r in g["rows"]):
        found = [_find(g["rows"], d, m) for d in dims]
        body.append(
            [m]
            + ["—" if r is None else f"{_fmt(r['l2_uvp'])} ({r['seconds']:.0f} s)" for r in found]
        )
    return markdown_table(["method"] + [f"d = {d}" for d in dims], body)


def w2bench_table(w: dict) -> str:
    r"""L2-UVP (%) of BrenierMap (per protocol or variant) and the linear map against the best
    published value per dimension, with the steps each BrenierMap fit took, and BrenierMap's
    cosine similarity."""
    rows, dims = w["rows"], sorted({r["d"] for r in w["rows"]})

    def line(label: str, method: str, cell) -> list[str]:
        return [label] + ["—" if (r := _find(rows, d, method)) is None else cell(r) for d in dims]

    variants = _variants(rows)
    body = [
        line(f"{m} L2-UVP (%)", m, lambda r: _fmt(r["l2_uvp"]))
        for m in variants + ["linear (Bures)"]
    ]
    body.append(["best published (%)"] + [f"{W2_PUBLISHED.get(d, float('nan'))}" for d in dims])
    body += [line(f"{m} steps", m, lambda r: str(r["steps"])) for m in variants]
    body.append(line("BrenierMap cosine", "BrenierMap", lambda r: f"{r['cosine']:.3f}"))
    body.append(
        line("BrenierMap fit time", "BrenierMap", lambda r: f"{r['seconds'] / 60:.1f} min")
    )
    return markdown_table([""] + [f"d = {d}" for d in dims], body)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


def peers_table(p: dict) -> str:
    r"""L2-UVP (%) of each peer per dimension and budget, with the steps its neural solvers
    took (POT's estimators run once per dimension, to completion: their fit time)."""
    rows = p["rows"]
    dims = sorted({r["d"] for r in rows})
    budgets = sorted({r["budget"] for r in rows if r["budget"] is not None})
    columns = [(d, b) for d in dims for b in budgets]

    def cell(method: str, d: int, b: float) -> str:
        r = next((r for r in rows if r["method"] == method and r["d"] == d and
                  r["budget"] in (b, None)), None)  # fmt: skip
        if r is None:
            return "—"
        if r["budget"] is None:
            return f"{_fmt(r['l2_uvp'])} ({r['seconds']:.0f} s)"
        return f"{_fmt(r['l2_uvp'])} ({r['steps']} steps)"

    methods = list(dict.fromkeys(r["method"] for r in rows if r["budget"] is not None))
    methods += [m for m in dict.fromkeys(r["method"] for r in rows) if m not in methods]
    body = [[m] + [cell(m, d, b) for d, b in columns] for m in methods]
    body.append(
        ["best published (%)"] + [f"{W2_PUBLISHED.get(d, float('nan'))}" for d, _ in columns]
    )
    return markdown_table([""] + [f"d = {d}, {_minutes(b)}" for d, b in columns], body)


def toy2d_table(t: dict) -> str:
    r""":math:`W_2` after the map, before it and between two target samples, per pair and method."""
    body = [
        [r["pair"], r["method"]]
        + [f"{r[k]:.3f}" for k in ("w2_mapped", "w2_source", "w2_floor")]
        + [f"{r['seconds']:.1f}"]
        for r in t["rows"]
    ]
    header = ["pair", "method", "W2(T#μ, ν)", "W2(μ, ν)", "W2(ν', ν)", "fit (s)"]
    return markdown_table(header, body, align="--rrrr")


def losses_table(s: dict) -> str:
    r"""Steps, L2-UVP (%), cosine similarity and time of each loss."""
    body = [
        [r["method"], r["steps"], _fmt(r["l2_uvp"]), f"{r['cosine']:.3f}", f"{r['seconds']:.0f}"]
        for r in s["rows"]
    ]
    return markdown_table(["loss", "steps", "L2-UVP (%)", "cosine", "seconds"], body)


_TABLES = {
    "gaussian": gaussian_table,
    "w2bench": w2bench_table,
    "peers": peers_table,
    "toy2d": toy2d_table,
    "losses": losses_table,
}


def tables(results: dict) -> str:
    r"""The Markdown tables of a run (``results.md``): ``{task: result}``."""
    return join_tables(results, _TABLES)


# ---------------------------------------------------------------------- docs/benchmarks.md
def _load(task: str) -> dict:
    return load_result("ot", f"ot_{task}.json")


def _merged(task: str, extra_name: str) -> tuple[dict, dict | None]:
    r"""A task's result with the BrenierMap-variant rows of a second run joined."""
    r, extra = _load(task), load_json(_DOCS / "ot" / extra_name)
    if extra:
        r["rows"] += [x for x in extra["rows"] if x["method"].startswith("BrenierMap (")]
    return r, extra


def gaussian_setup() -> str:
    r"""The commands and sample sizes of the Gaussian pairs."""
    g, extra = _merged("gaussian", "ot_gaussian_lr.json")
    text = command_note(g)
    if extra:
        text += "; " + command_note(extra, "the learning-rate variant")
    p = g["protocol"]
    return f"{text}. {p['n_train']} training samples of each and {p['n_test']} test points."


def _verdict(rows: list[dict], method: str) -> str:
    mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["d"])
    lin = {r["d"]: r["l2_uvp"] for r in rows if r["method"] == "linear (Bures)"}
    ok = [r["d"] for r in mine if r["l2_uvp"] <= gaussian_goal(r["d"])]
    miss = [r["d"] for r in mine if r["d"] not in ok]
    worse = [r["d"] for r in mine if r["l2_uvp"] > lin.get(r["d"], float("inf"))]
    steps = ", ".join(f"{r['steps']} (d = {r['d']})" for r in mine)
    return (
        f"`{method}` ({steps} steps): goal met at d = {ok or 'none'}, missed at d = "
        f"{miss or 'none'}; worse than the linear baseline fitted on the same samples "
        f"at d = {worse or 'none'}."
    )


def gaussian() -> str:
    r"""The goal per BrenierMap variant, and the table of the Gaussian pairs."""
    g, _ = _merged("gaussian", "ot_gaussian_lr.json")
    verdicts = "\n".join(f"- {_verdict(g['rows'], m)}" for m in _variants(g["rows"]))
    return verdicts + "\n\n" + gaussian_table(g)


def w2bench_setup() -> str:
    r"""The command of the W2 benchmark run and its time budget per fit."""
    w = _load("w2bench")
    budget = w["protocol"].get("budget_seconds")
    per_fit = (
        f" {budget / 60:g} minutes per fit on one thread, two fits side by side." if budget else ""
    )
    return command_note(w) + "." + per_fit


def _below(rows: list[dict], method: str) -> tuple[list[int], list[int]]:
    mine = {r["d"]: r for r in rows if r["method"] == method}
    below = sorted(d for d, r in mine.items() if r["l2_uvp"] < W2_PUBLISHED.get(d, 0))
    return below, sorted(set(mine) - set(below))


def w2bench_goal() -> str:
    r"""Where each protocol is below the best published value (and d = 128 on the fixed sets
    against its own goal)."""
    rows = _load("w2bench")["rows"]
    lines = []
    for m, label in (
        ("BrenierMap", "Fixed sets"),
        ("BrenierMap (fresh samples)", "Fresh samples"),
    ):
        if not any(r["method"] == m for r in rows):
            continue
        below, above = _below(rows, m)
        lines.append(
            f"{label}: below at d = {below or 'none'}, not below at d = {above or 'none'}"
        )
    top = _find(rows, 128, "BrenierMap")
    if top is not None:
        lines.append(f"fixed sets at d = 128: {_fmt(top['l2_uvp'])} % (goal ≤ 4 %)")
    return "; ".join(lines) + "."


def w2bench() -> str:
    r"""The table of the W2 benchmark."""
    return w2bench_table(_load("w2bench"))


def peers_setup() -> str:
    r"""The command of the peer table, and the peers it skipped."""
    p = _load("peers")
    skipped = p["protocol"].get("skipped") or []
    note = f" Skipped: {'; '.join(skipped)}." if skipped else ""
    return command_note(p) + "." + note


def peers() -> str:
    r"""The peer table."""
    return peers_table(_load("peers"))


def toy2d_setup() -> str:
    r"""The command and sample sizes of the 2D toy pairs."""
    t = _load("toy2d")
    p = t["protocol"]
    return (
        f"{command_note(t)}. {p['n_train']} training samples of each; W2 between "
        f"{p['n_test']} fresh source points mapped and {p['n_test']} fresh target points "
        "(exact, POT)."
    )


def toy2d() -> str:
    r"""The table and the figures of the 2D toy pairs."""
    t = _load("toy2d")
    figures = [f"![{r['pair']}](ot/{r['figure']})" for r in t["rows"] if r.get("figure")]
    return "\n\n".join([toy2d_table(t)] + figures)


def losses_setup() -> str:
    r"""The command and time budget of the loss comparison."""
    s = _load("losses")
    return f"{command_note(s)}. Time budget: {s['protocol']['seconds']:.0f} s per loss, one core."


def losses() -> str:
    r"""The table of the loss comparison."""
    return losses_table(_load("losses"))


def color() -> str:
    r"""The numbers and the figure of the color transfer."""
    c = _load("color")
    return (
        f"{command_note(c)}. {c['n_train']} pixels of each, fit {c['seconds']:.0f} s. W2 between "
        f"3000 pixels of each: {c['w2_source']:.3f} before, {c['w2_mapped']:.3f} after "
        f"(linear map: {c['w2_linear']:.3f}).\n\n![color transfer](ot/{c['figure']})"
    )
