"""SHA-256 manifests of the reference data and of the generated data sets.

Run from the repository root::

    python datasets/checksums.py                          # verify every manifest
    python datasets/checksums.py --data-dir ../shared/data --sets bsd,ct
    python datasets/checksums.py --write                  # regenerate the manifests

Manifests live in ``datasets/manifests/`` in ``sha256sum`` format (``<hex>  <path>``):

* ``bsd.sha256``, ``ct.sha256``, ``w2bench.sha256``: every file under ``<data-dir>/<set>/``,
  paths relative to the data folder, so ``cd ../shared/data && sha256sum -c
  ../../main/datasets/manifests/bsd.sha256`` checks them too;
* ``packaged.sha256``: the image files of installed packages that otgrad reads (the
  scikit-learn sample images of the color-transfer task, the scikit-image images of the
  fallbacks), paths relative to the ``site-packages`` folder;
* ``generated.sha256``: one digest per generated array (toy sets, gradient fields, Gaussian
  pairs, the flows study's Gaussian mixture), named ``<family>/<case>``. The arrays are
  rounded to :data:`DECIMALS` decimals first, so that last-bit differences of math libraries
  between machines do not count as a change while a change of a generator does. The Gaussian
  generators live in the repository's ``applications`` package (not installed with otgrad);
  the script puts the repository root on ``sys.path`` to reach them.

A missing data folder is reported and skipped; a mismatch, a missing file or an extra file
makes the exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
MANIFESTS = ROOT / "manifests"
DEFAULT_DATA_DIR = ROOT.parent.parent / "shared" / "data"
FILE_SETS = ("bsd", "ct", "w2bench")
ALL_SETS = (*FILE_SETS, "packaged", "generated")
DECIMALS = 6

#: Installed package files read by otgrad: (package, path inside the package).
PACKAGED = (
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
    *(
        ("skimage", f"data/{name}")
        for name in (
            "astronaut.png",
            "camera.png",
            "chelsea.png",
            "coffee.png",
            "coins.png",
            "moon.png",
            "page.png",
            "phantom.png",
            "rocket.jpg",
            "text.png",
        )
    ),
)


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_array(array: np.ndarray) -> str:
    """The hex SHA-256 of an array rounded to :data:`DECIMALS` decimals, as little-endian
    float64 (``-0.0`` folded into ``0.0``)."""
    a = np.round(np.asarray(array, dtype=np.float64), DECIMALS) + 0.0
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f8").tobytes()).hexdigest()


def read_manifest(path: Path) -> dict[str, str]:
    """``{name: hex digest}`` of a ``sha256sum``-format file (``{}`` when it is absent)."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.lstrip("*").strip()] = digest
    return out


def write_manifest(path: Path, digests: dict[str, str]) -> None:
    """Writes ``digests`` sorted by name, one ``<hex>  <name>`` line each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{digests[k]}  {k}\n" for k in sorted(digests)))


def file_digests(data_dir: Path, name: str) -> dict[str, str] | None:
    """Digests of every file under ``data_dir/name``, or ``None`` without that folder."""
    folder = data_dir / name
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(data_dir).as_posix(): sha256_file(p) for p in files}


def site_packages(package: str) -> Path | None:
    """The folder that holds ``package`` (found without importing it), or ``None``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


def packaged_digests() -> dict[str, str] | None:
    """Digests of :data:`PACKAGED`, keyed ``<package>/<path>``; ``None`` if one is missing."""
    out = {}
    for package, rel in PACKAGED:
        base = site_packages(package)
        path = None if base is None else base / package / rel
        if path is None or not path.is_file():
            return None
        out[f"{package}/{rel}"] = sha256_file(path)
    return out


def _fields() -> dict[str, Callable[[], np.ndarray]]:
    import torch

    from otgrad.data import ConvexField, NonconvexField, PolyMax, unit_grid

    grid = unit_grid(100, dtype=torch.float64)

    def on_grid(field_cls: type) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            field = field_cls()
            return torch.cat([field.gradient(grid), field.potential(grid)[:, None]], 1).numpy()

        return run

    def polymax(d: int) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            field = PolyMax(d)
            gen = torch.Generator().manual_seed(0)
            x = torch.rand(1000, d, generator=gen, dtype=torch.float64)
            return np.append(field.gradient(x).numpy().ravel(), field.c)

        return run

    out: dict[str, Callable[[], np.ndarray]] = {
        "fields/unit_grid_100": lambda: grid.numpy(),
        "fields/convex_grid_100": on_grid(ConvexField),
        "fields/nonconvex_grid_100": on_grid(NonconvexField),
    }
    out.update({f"fields/polymax_d{d}_n1000_seed0": polymax(d) for d in (2, 32, 256)})
    return out


def _toy2d() -> dict[str, Callable[[], np.ndarray]]:
    from otgrad.data import TOY2D, sample_toy2d

    def toy(name: str) -> Callable[[], np.ndarray]:
        return lambda: sample_toy2d(name, 1000, seed=0)

    return {f"toy2d/{name}_n1000_seed0": toy(name) for name in TOY2D}


def _gaussians() -> dict[str, Callable[[], np.ndarray]]:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from applications.flows.study import gaussian_mixture
    from applications.ot_maps.data import gaussian_pair

    def pair(d: int) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            p = gaussian_pair(d, 256, 64, seed=0)
            keys = ("X", "Y", "X_test", "T_test", "A", "b", "var")
            return np.concatenate([np.ravel(p[k]) for k in keys])

        return run

    def mixture() -> np.ndarray:
        sample, log_prob = gaussian_mixture(16, 8, seed=0)
        x = sample(1000, 0)
        return np.concatenate([x.ravel(), log_prob(x)])

    out = {f"gaussian_pair/d{d}_n256_m64_seed0": pair(d) for d in (2, 16, 128)}
    out["gaussian_mixture/d16_k8_seed0_n1000"] = mixture
    return out


def generated_digests() -> dict[str, str]:
    """Digests of the generated arrays (see the module docstring), keyed by name. A family
    whose code cannot be imported is reported and left out (its entries then show as
    missing)."""
    makers: dict[str, Callable[[], np.ndarray]] = {}
    for family in (_toy2d, _fields, _gaussians):
        try:
            makers.update(family())
        except ImportError as e:
            print(f"generated: {family.__name__[1:]} left out ({e})")
    return {name: sha256_array(make()) for name, make in makers.items()}


def compute(name: str, data_dir: Path) -> dict[str, str] | None:
    """The current digests of set ``name`` (``None`` when its data are not available)."""
    if name in FILE_SETS:
        return file_digests(data_dir, name)
    if name == "packaged":
        return packaged_digests()
    return generated_digests()


def compare(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Human-readable differences between two digest tables (empty when they agree)."""
    problems = [
        f"changed: {k}" for k in sorted(expected) if k in actual and actual[k] != expected[k]
    ]
    problems += [f"missing: {k}" for k in sorted(set(expected) - set(actual))]
    problems += [f"extra:   {k}" for k in sorted(set(actual) - set(expected))]
    return problems


def run(sets: list[str], data_dir: Path, write: bool) -> int:
    """Verifies (or with ``write`` regenerates) the manifests of ``sets``; the exit status."""
    status = 0
    for name in sets:
        path = MANIFESTS / f"{name}.sha256"
        actual = compute(name, data_dir)
        if actual is None:
            print(f"{name}: skipped (no data at {data_dir / name if name in FILE_SETS else name})")
            continue
        if write:
            write_manifest(path, actual)
            print(f"{name}: wrote {len(actual)} digests to {path.relative_to(ROOT.parent)}")
            continue
        expected = read_manifest(path)
        if not expected:
            print(f"{name}: no manifest at {path} (run with --write)")
            status = 1
            continue
        problems = compare(expected, actual)
        ok = sum(actual.get(k) == v for k, v in expected.items())
        print(f"{name}: {ok} of {len(expected)} OK")
        for line in problems:
            print(f"  {line}")
        status = status or int(bool(problems))
    return status


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="the folder with bsd/, ct/ and w2bench/ (default ../shared/data)",
    )
    parser.add_argument("--write", action="store_true", help="regenerate the manifests")
    parser.add_argument(
        "--sets", default=",".join(ALL_SETS), help=f"comma-separated, of {', '.join(ALL_SETS)}"
    )
    args = parser.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    unknown = sorted(set(sets) - set(ALL_SETS))
    if unknown:
        parser.error(f"unknown sets {unknown}; choose from {', '.join(ALL_SETS)}")
    return run(sets, args.data_dir, args.write)


if __name__ == "__main__":
    sys.exit(main())
