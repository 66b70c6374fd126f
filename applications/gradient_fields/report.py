r"""The gradient-field study in tables: the paper's Tables 1 and 2 (published MSE beside
each protocol's) and the PolyMax study, from ``docs/fields/``."""

from __future__ import annotations

from ..common import load_result, markdown_table, where
from . import PROTOCOLS

__all__ = ["field_table", "polymax_table", "results_md"]

_CAPTIONS = {"convex": "Table 1 (convex field)", "nonconvex": "Table 2 (nonconvex field)"}
_FILES = ("tables_paper.json", "tables_improved.json", "polymax_cpu.json", "polymax_gpu.json")


def field_table(tables: dict, field: str) -> str:
    r"""One of the paper's tables: each model's published MSE dB beside each protocol's."""
    protocols = [p for p in PROTOCOLS if any(p in e for e in tables[field].values())]
    header = ["model", "params", "published MSE dB"]
    header += [f"{q} protocol MSE dB" for q in protocols]
    header += [f"{q} − published" for q in protocols]
    body = []
    for m, e in tables[field].items():
        pm, ps = e["published"]["mse_db"]
        row = [m, e[protocols[0]]["params"], f"{pm:.2f} ± {ps:.2f}"]
        row += [f"{e[q]['mse_db'][0]:.2f} ± {e[q]['mse_db'][1]:.2f}" for q in protocols]
        row += [f"{e[q]['mse_db'][0] - pm:+.2f}" for q in protocols]
        body.append(row)
    return markdown_table(header, body, align="-")


def polymax_table(polymax: dict) -> str:
    r"""PolyMax: each model's test MSE dB (parameters, best learning rate) per dimension."""
    dims = sorted((k for k in polymax if k.isdigit()), key=int)
    models = list(polymax[dims[0]])
    body = [
        [d]
        + [
            f"{polymax[d][m]['test_mse_db']:.2f} ({polymax[d][m]['params']} p, "
            f"lr {polymax[d][m]['best_lr']:g})"
            for m in models
        ]
        for d in dims
    ]
    return markdown_table(["d"] + models, body, align="-")


def _polymax_protocol(p: dict) -> str:
    return f"{p['iterations']} Adam steps, batch {p['batch']}, best learning rate of {p['lrs']} by validation"


def _seeds_epochs(p: dict) -> str:
    return f"{p['trials']} seed(s), {p['epochs']} epochs"


def results_md(tables: dict | None, polymax: dict | None) -> str:
    r"""The Markdown tables of a run (``results.md``)."""
    parts = []
    if tables:
        parts.append(f"Gradient fields: {_seeds_epochs(tables['protocol'])}, test MSE dB.")
        parts += [
            f"### {_CAPTIONS[t]}\n\n{field_table(tables, t)}" for t in _CAPTIONS if t in tables
        ]
    if polymax:
        parts.append(
            f"### PolyMax: test MSE dB ({_polymax_protocol(polymax['protocol'])})\n\n"
            + polymax_table(polymax)
        )
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------- docs/benchmarks.md
def _tables() -> dict:
    r"""The paper-protocol tables with the improved protocol's entries joined."""
    tables = load_result("fields", "tables_paper.json")
    improved = load_result("fields", "tables_improved.json")
    for t in _CAPTIONS:
        for m, e in improved.get(t, {}).items():
            tables[t][m].update({k: v for k, v in e.items() if k != "published"})
    tables["protocol_improved"] = improved["protocol"]
    return tables


def _polymax() -> dict:
    r"""The PolyMax results of the CPU and the GPU run, joined."""
    polymax = load_result("fields", "polymax_cpu.json")
    gpu = load_result("fields", "polymax_gpu.json")
    polymax.update({k: v for k, v in gpu.items() if k.isdigit()})
    return polymax


def commands() -> str:
    r"""Each committed file of ``docs/fields/`` with the command that wrote it and where."""
    lines = []
    for name in _FILES:
        r = load_result("fields", name)
        lines.append(f"- `{name}`: `{r.get('command', 'not recorded')}` ({where(r)})")
    return "\n".join(lines)


def seeds_epochs() -> str:
    r"""The number of seeds and epochs of the tables."""
    return _seeds_epochs(_tables()["protocol"])


def refine_iterations() -> str:
    r"""The L-BFGS iterations of the improved protocol."""
    return str(_tables()["protocol_improved"]["refine_iterations"])


def convex() -> str:
    r"""Table 1 (convex field)."""
    return field_table(_tables(), "convex")


def nonconvex() -> str:
    r"""Table 2 (nonconvex field)."""
    return field_table(_tables(), "nonconvex")


def polymax_protocol() -> str:
    r"""The PolyMax protocol: steps, batch and learning rates."""
    return _polymax_protocol(_polymax()["protocol"])


def polymax() -> str:
    r"""The PolyMax table."""
    return polymax_table(_polymax())
