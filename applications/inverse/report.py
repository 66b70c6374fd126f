r"""The convex regularizer on inverse problems: its training, BSD68 denoising against TV and
the published CRR-NN and WCRR-NN, sparse-view CT, deblurring and the solver's convergence,
from ``docs/inverse/``."""

from __future__ import annotations

from collections.abc import Callable

from ..common import DOCS, command_note, load_json, load_result, markdown_table, where
from .published import CRR_NN_TRAINING

__all__ = ["with_tv", "denoise_table", "psnr_table", "speed_table"]

_NAN = float("nan")


def with_tv(denoise: dict, tv_run: dict | None) -> dict:
    r"""The denoising results with the TV columns of a separate TV run (``--methods tv``)."""
    if tv_run:
        for key, row in denoise["results"].items():
            tv = tv_run["results"].get(key, {})
            row.update({k: v for k, v in tv.items() if k.startswith("tv")})
    return denoise


def denoise_table(dn: dict) -> str:
    r"""Mean PSNR per noise level: noisy, TV, ours and the published CRR-NN and WCRR-NN."""
    body = []
    for key, row in dn["results"].items():
        ours, tv, crr = row["convex_regularizer"], row.get("tv", _NAN), row["crr_nn_published"]
        body.append(
            [
                key,
                f"{row['noisy']:.2f}",
                f"{tv:.2f}",
                f"{ours:.2f}",
                f"{crr:.2f}",
                f"{row['wcrr_nn_published']:.2f}",
                f"{ours - tv:+.2f}",
                f"{ours - crr:+.2f}",
            ]  # fmt: skip
        )
    head = ["sigma", "noisy", "TV", "ours (convex)", "CRR-NN (published)",
            "WCRR-NN (published)", "ours - TV", "ours - CRR-NN"]  # fmt: skip
    return markdown_table(head, body, align="r")


#: The first column of the one-row tables of the CT and deblurring tasks: the result's key
#: and the title of the method that the others improve on.
_BASELINES = {"ct": ("fbp", "FBP (scikit-image, ramp)"), "deblur": ("observed", "blurred")}


def psnr_table(result: dict, task: str) -> str:
    r"""Mean PSNR of the ``"ct"`` or ``"deblur"`` task: its baseline (FBP, or the blurred
    images), TV and ours."""
    key, title = _BASELINES[task]
    body = [[f"{result[k]:.2f}" for k in (key, "tv", "convex_regularizer")]]
    return markdown_table([title, "TV", "ours (convex)"], body, align="r")


def speed_table(result: dict) -> str:
    r"""Seconds per image, iterations and PSNR of each solver at each noise level."""
    body = []
    for key, row in result.items():
        if not (isinstance(row, dict) and "skimage_tv" in row):
            continue
        for name, label in _speed_columns(row):
            r = row[name]
            its = "" if r["iterations"] is None else f"{r['iterations']:.0f}"
            body.append([key, label, f"{r['seconds']:.3g}", its, f"{r['psnr']:.2f}"])
    head = ["sigma", "solver", "seconds per image", "iterations", "PSNR (dB)"]
    return markdown_table(head, body, align="r")


def _speed_columns(row: dict) -> list[tuple[str, str]]:
    cols = []
    for name in row:
        if name.startswith("ours_tol"):
            tol = name.removeprefix("ours_tol")
            cols += [(name, f"ours, tol {tol}"), (f"tv_tol{tol}", f"TV (Condat-Vu), tol {tol}")]
    return [*cols, ("skimage_tv", "scikit-image TV (Chambolle)")]


# ---------------------------------------------------------------------- docs/benchmarks.md
def _load(task: str) -> dict:
    return load_result("inverse", f"inverse_{task}.json")


def _denoise() -> tuple[dict, dict | None]:
    tv_run = load_json(DOCS / "inverse" / "inverse_denoise_tv.json")
    return with_tv(_load("denoise"), tv_run), tv_run


def _below(dn: dict) -> str:
    rows = dn["results"].values()
    names = [
        name
        for name, key in (("CRR-NN", "crr_nn_published"), ("TV", "tv"))
        if all(r["convex_regularizer"] < r.get(key, _NAN) for r in rows)
    ]
    return " and ".join(names) or "neither CRR-NN nor TV"


def train() -> str:
    r"""The shipped regularizer: architecture, training, tuning and command."""
    tr = _load("train")
    dn, _ = _denoise()
    validation = ", ".join(f"{v:.2f} dB at sigma = {k}" for k, v in tr["validation_psnr"].items())
    ratio = round(CRR_NN_TRAINING["iterations"] / tr["iterations"])
    return (
        f"a single-layer spline mGradNet on a {'-'.join(map(str, tr['channels']))} "
        f"multi-convolution (7x7 kernels), {tr['parameters']} parameters. Trained as a "
        f"{tr['t_steps']}-step denoiser at sigma = {tr['sigma_train']:g} for {tr['iterations']} "
        f"Adam steps of {tr['batch_size']} patches (40x40) from {tr['train_images']} BSD400 "
        f"images, {tr['train_seconds']:.0f} s on {tr['device']} ({where(tr)}). CRR-NN trains "
        f"{CRR_NN_TRAINING['iterations']:,} steps of a {CRR_NN_TRAINING['t_steps']}-step "
        f"denoiser: ours saw about 1/{ratio} of that, and is below {_below(dn)} on BSD68 at "
        f"every noise level (table below). lambda and mu were tuned per noise level on the "
        f"{tr['validation_images']} held-out training images (validation PSNR {validation}). "
        f"Command: `{tr['command']}`."
    )


def denoise_images() -> str:
    r"""The number of BSD68 test images."""
    return str(_load("denoise")["images"])


def denoise_commands() -> str:
    r"""The commands of the regularizer's and of TV's denoising runs."""
    dn, tv_run = _denoise()
    text = command_note(dn)
    return text + (f"; {command_note(tv_run, 'TV')}." if tv_run else ".")


def denoise() -> str:
    r"""The denoising table."""
    return denoise_table(_denoise()[0])


#: The setup of the CT and deblurring tasks: their name and a sentence formatted with the
#: fields of their result.
_SETUPS = {
    "ct": (
        "CT",
        "{images} phantoms of `ct/train`, {size}x{size}, {angles} angles, sinogram noise std "
        "{noise:g}",
    ),
    "deblur": (
        "deblurring",
        "{images} BSD68 crops of {crop}x{crop}, Gaussian blur std {blur_sigma:g} px, noise "
        "{noise:g}/255",
    ),
}


def _task(task: str) -> tuple[Callable[[], str], Callable[[], str]]:
    r"""The placeholders ``<task>_setup`` (the data, sizes and noise) and ``<task>`` (the
    command and the table) of the CT or the deblurring task."""
    name, sentence = _SETUPS[task]

    def setup() -> str:
        return sentence.format_map(_load(task))

    def table() -> str:
        r = _load(task)
        return f"{command_note(r)}.\n\n{psnr_table(r, task)}"

    setup.__doc__ = f"The data, sizes and noise of the {name} task."
    table.__doc__ = f"The command and the table of the {name} task."
    return setup, table


ct_setup, ct = _task("ct")
deblur_setup, deblur = _task("deblur")


def convergence() -> str:
    r"""Monotonicity, objective gaps and the two initializations of the convergence study."""
    cv = _load("convergence")
    gd, fista, restart = cv["gradient descent"], cv["FISTA"], cv["FISTA + restart"]
    best = min(min(gd), min(fista), min(restart))
    monotone = all(b <= a for a, b in zip(gd, gd[1:], strict=False))
    a, b = cv["iterations_to_1e-9"]
    return (
        f"plain gradient descent {'never increases it' if monotone else 'increases it at some iterations'} "
        f"({len(gd) - 1} iterations checked); the gap after {len(gd) - 1} iterations: gradient "
        f"descent {gd[-1] - best:.1e}, FISTA {fista[-1] - best:.1e}, FISTA with restart "
        f"{restart[-1] - best:.1e} (converged after {len(restart) - 1} iterations). From the "
        "noisy image and from zero the solver reaches the same minimizer: relative distance "
        f"{cv['two_inits_relative_distance']:.1e} after {a} / {b} iterations. {command_note(cv)}."
    )


def speed_setup() -> str:
    r"""The images, their size and the threads of the speed task."""
    r = _load("speed")
    return f"{r['images']} BSD68 crops of {r['size']}x{r['size']}, {r['threads']} CPU threads"


def speed() -> str:
    r"""The command and the table of the speed task."""
    r = _load("speed")
    return f"{command_note(r)}.\n\n{speed_table(r)}"


def train_speed() -> str:
    r"""The commands and the table of seconds per training iteration per architecture, on the
    CPU and (where measured) on a GPU."""
    cpu = _load("train_speed")
    gpu = load_json(DOCS / "inverse" / "inverse_train_speed_cuda.json") or {"networks": []}
    on_gpu = {_network_key(n): n["seconds_per_iteration"] for n in gpu["networks"]}
    body = []
    for n in cpu["networks"]:
        seconds = on_gpu.get(_network_key(n))
        body.append(
            [n["arch"], "-".join(map(str, n["channels"])), str(n.get("layers", "")),
             str(n.get("modules", "")), f"{n['parameters']:,}", f"{n['seconds_per_iteration']:.2f}",
             "" if seconds is None else f"{seconds:.3f}"]
        )  # fmt: skip
    head = ["network", "channels", "layers", "modules", "parameters", "CPU s / iteration",
            "GPU s / iteration"]  # fmt: skip
    notes = command_note(cpu, "CPU")
    if gpu["networks"]:
        notes += "; " + command_note(gpu, "GPU")
    return f"{notes}.\n\n{markdown_table(head, body, align='r')}"


def _network_key(n: dict) -> tuple:
    return n["arch"], tuple(n["channels"]), n.get("layers"), n.get("modules")


def architectures() -> str:
    r"""The command and the table architecture x parameters x PSNR per noise level x training
    iterations x seconds per iteration (from the train-speed task's matching network), or a
    line saying that no full-budget run has finished yet."""
    r = load_json(DOCS / "inverse" / "inverse_architectures.json")
    if r is None:
        return (
            "No full-budget training run has finished yet (they run in sessions on two CPU "
            "cores; see the training guide in `docs/inverse.md`)."
        )
    speed = load_json(DOCS / "inverse" / "inverse_train_speed.json") or {"networks": []}
    per_iteration = {
        (n["arch"], tuple(n["channels"])): n["seconds_per_iteration"] for n in speed["networks"]
    }
    sigmas = list(r["runs"][0]["bsd68_psnr"])
    body = []
    for row in r["runs"]:
        seconds = per_iteration.get((row["arch"], tuple(row["channels"])))
        body.append(
            [row["arch"], "-".join(map(str, row["channels"])), f"{row['parameters']:,}",
             f"{row['iterations']:,}", "" if seconds is None else f"{seconds:.2f}"]
            + [f"{row['validation_psnr'][k]:.2f}" for k in sigmas]
            + [f"{row['bsd68_psnr'][k]:.2f}" for k in sigmas]
        )  # fmt: skip
    head = ["network", "channels", "parameters", "iterations", "CPU s / iteration"]
    head += [f"validation σ={k}" for k in sigmas] + [f"BSD68 σ={k}" for k in sigmas]
    return f"{command_note(r)}.\n\n{markdown_table(head, body, align='r')}"
