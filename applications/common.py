r"""Helpers shared by the applications: worker pools, result files, Markdown tables,
provenance, command-line checks, figures and timing."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_context
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "ROOT",
    "DOCS",
    "pool_map",
    "save_json",
    "load_json",
    "load_result",
    "write_result",
    "write_report",
    "task_main",
    "join_tables",
    "markdown_table",
    "provenance",
    "machine",
    "where",
    "command_note",
    "command_line",
    "split_list",
    "check_choices",
    "check_positive",
    "add_toy_options",
    "check_toy_options",
    "positive_float",
    "study_parser",
    "add_run_options",
    "benchmark_parser",
    "save_benchmark",
    "run_benchmark",
    "new_figure",
    "scatter",
    "keep_freed_memory",
    "benchmark_argv",
    "timeit",
    "median_seconds",
    "device_name",
]

#: The root of the checkout (the applications run from it).
ROOT = pathlib.Path(__file__).resolve().parents[1]
#: The documentation folder, where the committed results live.
DOCS = ROOT / "docs"


# ---------------------------------------------------------------------- running tasks
def pool_map(fn: Callable[[Any], Any], tasks: Sequence, workers: int, desc: str) -> list:
    r"""Applies ``fn`` to every task, in ``workers`` spawned processes (in order of completion)."""
    from tqdm.auto import tqdm

    results = []
    bar = tqdm(total=len(tasks), desc=desc, disable=None)
    if workers <= 1:
        for t in tasks:
            results.append(fn(t))
            bar.update(1)
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as ex:
            futures = [ex.submit(fn, t) for t in tasks]
            for fut in as_completed(futures):
                results.append(fut.result())
                bar.update(1)
    bar.close()
    return results


# ---------------------------------------------------------------------- result files
def save_json(obj: Any, path: str | os.PathLike) -> None:
    r"""Writes ``obj`` as indented JSON (creating the folder); dataclasses become dicts."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(
            obj,
            fh,
            indent=1,
            default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o),
        )


def load_json(path: str | os.PathLike) -> Any:
    r"""The JSON content of ``path``, or ``None`` when the file does not exist."""
    path = pathlib.Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def load_result(folder: str, name: str) -> dict:
    r"""The committed result ``docs/<folder>/<name>``; raises ``FileNotFoundError`` with
    the path when it is missing."""
    path = DOCS / folder / name
    if not path.exists():
        raise FileNotFoundError(f"no results: {path.relative_to(ROOT)} is missing")
    return json.loads(path.read_text())


def write_result(
    result: dict,
    path: str | os.PathLike,
    command: str,
    device: str | torch.device | None = None,
) -> dict:
    r"""Stamps ``result`` with the command and :func:`provenance` and writes it as JSON."""
    result["command"] = command
    result["provenance"] = provenance(command, device)
    save_json(result, path)
    return result


def write_report(out: str | os.PathLike, text: str) -> None:
    r"""Writes the Markdown tables of a run to ``out/results.md`` and prints them."""
    pathlib.Path(out, "results.md").write_text(text)
    print(text)


def task_main(
    prog: str,
    build_parser: Callable[[], argparse.ArgumentParser],
    check: Callable[[argparse.Namespace], list[str]],
    run_task: Callable[[str, argparse.Namespace], dict | None],
    prefix: str,
    tables: Callable[[dict], str],
) -> Callable[[Sequence[str] | None], int]:
    r"""The ``main`` of the study ``python -m prog``, with one result file per task.

    ``main(argv)`` parses the options ``argv`` (default: the command line) with the parser
    ``build_parser()``, checks them (``check(args)`` returns the tasks), runs each task
    (``run_task(task, args)``; ``None`` skips it), writes ``--out/<prefix>_<task>.json``
    (with the command and :func:`provenance`) and the tables ``tables({task: result})`` to
    ``--out/results.md``, and returns the exit status.
    """

    def main(argv: Sequence[str] | None = None) -> int:
        r"""Runs the tasks of ``argv`` (default: the command line); returns the exit status."""
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        tasks = check(args)
        os.makedirs(args.out, exist_ok=True)
        command = command_line(prog, argv)
        results = {}
        for task in tasks:
            r = run_task(task, args)
            if r is not None:
                path = os.path.join(args.out, f"{prefix}_{task}.json")
                results[task] = write_result(r, path, command, getattr(args, "device", None))
        write_report(args.out, tables(results))
        return 0

    return main


# ---------------------------------------------------------------------- tables
def join_tables(results: dict, tables: dict[str, Callable[[dict], str]]) -> str:
    r"""The tables ``tables[task](result)`` of the tasks in ``results``, in the order of
    ``tables``, separated by blank lines (the text of ``results.md``)."""
    return "\n\n".join(f(results[k]) for k, f in tables.items() if k in results) + "\n"


_RULES = {"-": "---", "l": ":---", "r": "---:", "c": ":---:"}


def markdown_table(
    header: Sequence[Any], rows: Iterable[Sequence[Any]], align: str | None = None
) -> str:
    r"""A Markdown table (without a trailing newline).

    Arguments:
        header: The column titles.
        rows: The rows, as many cells each as ``header`` (converted with ``str``).
        align: One character per column: ``-`` (default), ``l``, ``r`` or ``c``; a single
            character applies to every column. Default: ``-`` for the first column and
            ``r`` for the others.

    Example:
        >>> print(markdown_table(["d", "ms"], [[2, "0.5"]]))
        | d | ms |
        |---|---:|
        | 2 | 0.5 |
    """
    header = [str(h) for h in header]
    n = len(header)
    align = align or "-" + "r" * (n - 1)
    if len(align) == 1:
        align *= n
    if len(align) != n or set(align) - set(_RULES):
        raise ValueError(f"align must be {n} characters of {''.join(_RULES)}, got {align!r}")
    lines = [_row(header), "|" + "|".join(_RULES[a] for a in align) + "|"]
    for row in rows:
        cells = [str(c) for c in row]
        if len(cells) != n:
            raise ValueError(f"a row has {len(cells)} cells, the header {n}: {cells}")
        lines.append(_row(cells))
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


# ---------------------------------------------------------------------- provenance
def provenance(
    command: str | None = None, device: str | torch.device | None = None
) -> dict[str, Any]:
    r"""Where and how a result was produced, recorded into every result file.

    Returns:
        The machine (platform, CPU model, cores), the torch version and its CPU threads,
        the CUDA device's name when ``device`` is a CUDA device, the load average, the date
        (UTC), the git commit of the checkout (when available) and the command line.
    """
    dev = torch.device(device) if device is not None else None
    cuda = dev is not None and dev.type == "cuda" and torch.cuda.is_available()
    return {
        "machine": {
            "platform": platform.platform(),
            "cpu": _cpu_model(),
            "vector_units": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(),
        },
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(dev) if cuda else None,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "command": command or shlex.join(["python", *sys.argv]),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        r = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (r.stdout.strip() or None) if r.returncode == 0 else None


def machine(result: dict) -> str:
    r"""The machine a result ran on, in words, from its ``provenance`` (or the older
    ``protocol["machine"]`` and ``device`` fields); ``"machine not recorded"`` otherwise."""
    p = result.get("provenance") or {}
    m = p.get("machine")
    if isinstance(m, dict):
        text = f"{m.get('cpu', 'CPU')}, {m.get('cores', '?')} cores"
        return f"{p['cuda_device']} ({text})" if p.get("cuda_device") else text
    if isinstance(m, str):
        return m
    for value in ((result.get("protocol") or {}).get("machine"), result.get("device")):
        if isinstance(value, str):
            return value
    return "machine not recorded"


def where(result: dict) -> str:
    r"""The :func:`machine` of a result, followed by its provenance note if it has one."""
    note = (result.get("provenance") or {}).get("note")
    return f"{machine(result)}; {note}" if note else machine(result)


def command_note(result: dict, label: str = "Command") -> str:
    r"""``label: `command` (machine)``: the command line of a result and where it ran."""
    return f"{label}: `{result.get('command', 'not recorded')}` ({where(result)})"


# ---------------------------------------------------------------------- command lines
def command_line(module: str, argv: Sequence[str]) -> str:
    r"""The shell command ``python -m module argv...`` (quoted)."""
    return shlex.join(["python", "-m", module, *argv])


def split_list(text: str, cast: Callable[[str], Any] = str) -> list:
    r"""The items of a comma-separated option (empty items dropped), each through ``cast``."""
    return [cast(t) for t in text.split(",") if t]


def check_choices(prog: str, what: str, values: Iterable[str], allowed: Iterable[str]) -> None:
    r"""Exits with a message naming the values of ``values`` not in ``allowed``."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise SystemExit(f"{prog}: unknown {what} {unknown}")


def check_positive(prog: str, args: argparse.Namespace, names: Iterable[str]) -> None:
    r"""Exits with a message if one of the options ``names`` is set and below 1."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"{prog}: --{name.replace('_', '-')} must be positive")


def add_toy_options(parser: argparse.ArgumentParser, models: Sequence[str], steps: int) -> None:
    r"""Adds ``--sets`` (the FFJORD toy sets), ``--models`` (default: all of ``models``) and
    ``--steps`` (default ``steps``) to the parser of a toy-set study."""
    from otgrad.data.toy2d import FFJORD_SETS

    parser.add_argument("--sets", default=",".join(FFJORD_SETS), help="comma-separated toy sets")
    parser.add_argument("--models", default=",".join(models), help=", ".join(models))
    parser.add_argument(
        "--steps", type=int, default=None, help=f"training steps (default {steps})"
    )


def check_toy_options(
    prog: str, args: argparse.Namespace, tasks: Sequence[str], models: Sequence[str]
) -> list[str]:
    r"""Checks ``--tasks``, ``--sets``, ``--models``, ``--steps`` and ``--workers`` of a
    toy-set study; returns the tasks."""
    from otgrad.data.toy2d import TOY2D

    chosen = split_list(args.tasks)
    check_choices(prog, "tasks", chosen, tasks)
    check_choices(prog, "sets", split_list(args.sets), TOY2D)
    check_choices(prog, "models", split_list(args.models), models)
    check_positive(prog, args, ("workers", "steps"))
    return chosen


def positive_float(text: str) -> float:
    r"""An ``argparse`` type: a finite positive number."""
    v = float(text)
    if not (v > 0) or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def study_parser(
    prog: str, description: str, out: str, tasks: Sequence[str] = (), default: str | None = None
) -> argparse.ArgumentParser:
    r"""The parser of ``python -m prog``: ``--out`` and, with ``tasks``, ``--tasks``
    (comma-separated; ``default``: all of them)."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description)
    parser.add_argument("--out", default=out, help="output folder")
    if tasks:
        help = "comma-separated: " + ", ".join(tasks)
        parser.add_argument("--tasks", default=default or ",".join(tasks), help=help)
    return parser


def add_run_options(
    parser: argparse.ArgumentParser,
    *,
    workers: bool = True,
    device: str | None = None,
    seed: bool = True,
    quick: str = "tiny budgets (tests)",
) -> None:
    r"""Adds ``--workers`` (parallel processes), ``--device`` (with this default, if given),
    ``--seed`` and ``--quick`` (with the help ``quick``)."""
    if workers:
        parser.add_argument("--workers", type=int, default=2, help="parallel processes")
    if device is not None:
        parser.add_argument("--device", default=device)
    if seed:
        parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=quick)


def benchmark_parser(prog: str, description: str) -> argparse.ArgumentParser:
    r"""The parser of a speed benchmark ``python -m prog``: ``--device``, ``--quick``, ``--out``."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds (the tests)")
    parser.add_argument("--out", default=None, help="JSON path")
    return parser


def save_benchmark(
    results: dict, out: str | os.PathLike, command: str, device: torch.device
) -> None:
    r"""Adds :func:`provenance` to a benchmark's ``results`` and writes them to ``out``."""
    results["provenance"] = provenance(command, device)
    save_json(results, out)
    print(f"wrote {out}")


def run_benchmark(
    prog: str,
    argv: Sequence[str] | None,
    parse: Callable[[list[str]], argparse.Namespace],
    run: Callable[[argparse.Namespace, torch.device], dict],
    out: Callable[[argparse.Namespace, torch.device], str],
) -> dict:
    r"""The body of a speed benchmark's ``main``.

    Parses the options ``argv`` (default: the command line's, see :func:`benchmark_argv`)
    with ``parse``, prints the device's name (:func:`device_name`), runs ``run(args,
    device)`` and writes its results, after the device's name, the torch version and the
    command line, to ``--out`` (default: ``out(args, device)``) with :func:`provenance`.

    Returns:
        The results.
    """
    argv = benchmark_argv(argv)
    args = parse(argv)
    device = torch.device(args.device)
    command = command_line(prog, argv)
    results = {"device": device_name(device), "torch": torch.__version__, "command": command}
    results.update(run(args, device))
    save_benchmark(results, args.out or out(args, device), command, device)
    return results


# ---------------------------------------------------------------------- figures
def new_figure(**kwargs: Any) -> Figure:
    r"""A matplotlib figure on an Agg canvas (no pyplot, the backend is left alone)."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def scatter(ax: Any, pts: Any, title: str, color: str) -> None:
    r"""A small square scatter panel of ``(n, 2)`` points without ticks."""
    ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.5, color=color, rasterized=True)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------- timing
_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "17179869184", "MALLOC_TRIM_THRESHOLD_": "17179869184"}


def keep_freed_memory() -> None:
    r"""Restarts the program, once, with glibc told to keep freed memory.

    glibc returns large freed blocks to the OS, so every step page-faults its tensors back
    in; on VMs that dominates the timings and varies. The setting must be in place before
    start-up, hence the re-execution (with the original command line, ``-m`` included).
    Call it first in ``main()``.
    """
    if any(os.environ.get(k) != v for k, v in _MALLOC.items()):
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **_MALLOC})


def benchmark_argv(argv: Sequence[str] | None) -> list[str]:
    r"""The options of a speed benchmark: ``argv``, or else the command line's, after
    restarting the program with glibc keeping freed memory (:func:`keep_freed_memory`)."""
    if argv is None:
        keep_freed_memory()
        return sys.argv[1:]
    return list(argv)


def _synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def timeit(
    fn: Callable[[], Any], device: torch.device, repeats: int = 7, min_time: float = 0.2
) -> float:
    r"""Median wall time of ``fn()`` in ms over ``repeats`` batches of calls (each batch
    at least ``min_time / repeats`` seconds or 50 calls), after a warm-up call."""
    sync = _synchronizer(device)
    fn()
    sync()
    times = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            sync()
            el = time.perf_counter() - t0
            if el >= min_time / repeats or n >= 50:
                break
        times.append(el / n * 1e3)
    return statistics.median(times)


def median_seconds(
    fn: Callable[[], Any], device: torch.device, warmup: int, reps: int, warm_s: float = 0.3
) -> float:
    r"""Median wall time of single calls of ``fn()`` in seconds over ``reps`` calls.

    The warm-up runs at least ``warmup`` calls and, up to 100 calls, at least ``warm_s``
    seconds: on small VMs the first fraction of a second of a new workload shows sporadic
    stalls of about 0.3 s that a count alone does not absorb.
    """
    sync = _synchronizer(device)
    n, t0 = 0, time.perf_counter()
    while n < warmup or (n < 100 and time.perf_counter() - t0 < warm_s):
        fn()
        sync()
        n += 1
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def device_name(device: torch.device) -> str:
    r"""The GPU's name, or the CPU's with the number of threads torch uses; printed too."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    return name
