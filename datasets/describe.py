"""Measures the data sets and prints the numbers of the data cards as Markdown tables.

Run from the repository root::

    python datasets/describe.py [--data-dir ../shared/data] [--sets bsd,ct,w2bench,generated]

File sets (``bsd``, ``ct``, ``w2bench``) are read from the data folder; the PNG header gives
the stored bit depth and color type, :func:`otgrad.data.images.load_images` the pixels (as
the code sees them: float64 in [0, 1]). ``generated`` draws the toy sets, the gradient
fields, the Gaussian pairs (``applications.ot_maps.data``) and reads the header of the
scikit-learn sample images.
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
PNG_COLOR = {0: "gray", 2: "RGB", 3: "palette", 4: "gray+alpha", 6: "RGBA"}
FOLDERS = {
    "bsd": ("train", "Set68", "Set12"),
    "ct": ("train", "validation"),
}


def png_header(path: Path) -> tuple[int, int, int, str]:
    """``(height, width, bit depth, color type)`` from a PNG's IHDR chunk."""
    with open(path, "rb") as fh:
        head = fh.read(29)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    width, height, depth, color = struct.unpack(">IIBB", head[16:26])
    return height, width, depth, PNG_COLOR.get(color, str(color))


def jpeg_size(path: Path) -> tuple[int, int, int]:
    """``(height, width, components)`` from a JPEG's start-of-frame marker."""
    data = path.read_bytes()
    i = 2
    while i < len(data) - 9:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width, comps = struct.unpack(">HHB", data[i + 5 : i + 10])
            return height, width, comps
        i += 2 + length
    raise ValueError(f"no start-of-frame marker in {path}")


def describe_folder(folder: Path) -> str:
    """One Markdown table row for a folder of PNG images."""
    from otgrad.data.images import load_images

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    heads = Counter(png_header(p)[2:] for p in files)
    shapes = Counter(png_header(p)[:2] for p in files)
    images = load_images(folder)
    values = np.concatenate([im.ravel() for im in images])
    size = sum(p.stat().st_size for p in files)
    shape_text = ", ".join(f"{h}×{w} ({n})" for (h, w), n in sorted(shapes.items()))
    head_text = ", ".join(f"{d}-bit {c}" for d, c in heads)
    return (
        f"| `{folder.parent.name}/{folder.name}/` | {len(files)} | {shape_text} | {head_text} "
        f"| {values.min() * 255:.0f}–{values.max() * 255:.0f} | {values.mean():.4f} "
        f"| {values.std():.4f} | {values.size:,} | {size:,} |"
    )


def describe_images(data_dir: Path, name: str) -> None:
    """Prints the table of the image set ``name`` (``bsd`` or ``ct``)."""
    print(f"\n### {name}\n")
    print(
        "| folder | files | height×width (count) | stored as | range (0–255) "
        "| mean in [0, 1] | std | pixels | bytes |"
    )
    print("|---|---:|---|---|---|---:|---:|---:|---:|")
    for sub in FOLDERS[name]:
        folder = data_dir / name / sub
        print(describe_folder(folder) if folder.is_dir() else f"| `{name}/{sub}/` | missing |")


def describe_w2bench(data_dir: Path) -> None:
    """Prints the tables of the W2 benchmark arrays and checkpoints."""
    import torch

    root = data_dir / "w2bench"
    if not (root / "arrays").is_dir():
        print(f"\nw2bench: no arrays under {root}")
        return
    print("\n### w2bench arrays\n")
    print(
        "| file | bytes | X_train, Y_train | X_test, T_test | dtype | range of X "
        "| range of Y | Var(Y) = Σ var | Var(T_test) |"
    )
    print("|---|---:|---|---|---|---|---|---:|---:|")
    paths = sorted((root / "arrays").glob("D*.npz"), key=lambda p: int(p.stem[1:]))
    for path in paths:
        with np.load(path) as z:
            a = {k: z[k] for k in z.files}
        dtypes = ", ".join(sorted({str(v.dtype) for v in a.values()}))
        x = np.concatenate([a["X_train"], a["X_test"]])
        print(
            f"| `arrays/{path.name}` | {path.stat().st_size:,} | {a['X_train'].shape}, "
            f"{a['Y_train'].shape} | {a['X_test'].shape}, {a['T_test'].shape} | {dtypes} "
            f"| {x.min():.2f} … {x.max():.2f} | {a['Y_train'].min():.2f} … "
            f"{a['Y_train'].max():.2f} | {a['Y_train'].var(0).sum():.3f} "
            f"| {a['T_test'].var(0).sum():.3f} |"
        )
    print("\n### w2bench checkpoints\n")
    print("| files | tensors | parameters each | hidden sizes | bytes each |")
    print("|---|---:|---:|---|---:|")
    dims = sorted({int(p.name.split("_")[0]) for p in root.glob("*_v1.pt")})
    for d in dims:
        state = torch.load(root / f"{d}_v1.pt", map_location="cpu", weights_only=True)
        hidden = [tuple(state[f"quadratic_layers.{i}.weight"].shape)[0] for i in range(3)]
        count = sum(v.numel() for v in state.values())
        sizes = {(root / f"{d}_{v}.pt").stat().st_size for v in ("v1", "v2", "v1_conj", "v2_conj")}
        print(
            f"| `{d}_v1`, `{d}_v2`, `{d}_v1_conj`, `{d}_v2_conj` | {len(state)} | {count:,} "
            f"| {hidden} | {', '.join(f'{s:,}' for s in sorted(sizes))} |"
        )


def _stats_row(name: str, x: np.ndarray) -> str:
    lo, hi = x.min(0), x.max(0)
    box = " × ".join(f"[{a:.2f}, {b:.2f}]" for a, b in zip(lo[:2], hi[:2], strict=True))
    mean = ", ".join(f"{m:.3f}" for m in x.mean(0)[:2])
    return f"| `{name}` | {x.shape} | {x.dtype} | {mean} | {x.var(0).sum():.3f} | {box} |"


def describe_generated() -> None:
    """Prints the tables of the generated sets (fixed sizes and seeds)."""
    import importlib.util

    import torch

    from otgrad.data import TOY2D, ConvexField, NonconvexField, PolyMax, sample_toy2d, unit_grid

    if str(REPO) not in sys.path:  # applications/ is not installed with otgrad
        sys.path.insert(0, str(REPO))
    from applications.ot_maps.data import gaussian_pair

    print("\n### toy2d: `sample_toy2d(name, 100_000, seed=0)`\n")
    print("| name | shape | dtype | mean | total variance | range (x1 × x2) |")
    print("|---|---|---|---|---:|---|")
    for name in TOY2D:
        print(_stats_row(name, sample_toy2d(name, 100_000, seed=0)))
    print("\n### gradient fields on `unit_grid(100)` (PolyMax: 10,000 uniform points)\n")
    print("| field | dim | points | range of ∇F | mean ‖∇F‖ | range of F |")
    print("|---|---:|---:|---|---:|---|")
    grid = unit_grid(100, dtype=torch.float64)
    cases = [("ConvexField", ConvexField(), grid), ("NonconvexField", NonconvexField(), grid)]
    gen = torch.Generator().manual_seed(1)
    for d in (2, 32, 256):
        x = torch.rand(10_000, d, generator=gen, dtype=torch.float64)
        cases.append((f"PolyMax({d})", PolyMax(d), x))
    for name, field, x in cases:
        g, f = field.gradient(x), field.potential(x)
        print(
            f"| `{name}` | {x.shape[1]} | {x.shape[0]:,} | {g.min():.3f} … {g.max():.3f} "
            f"| {g.norm(dim=-1).mean():.3f} | {f.min():.3f} … {f.max():.3f} |"
        )
    print("\n### gaussian_pair(d, 32768, 4096, seed=0)\n")
    print("| d | Var(Q) = tr Σ_t | eigenvalues of cov(X) | ‖m_t − m_s‖ | E‖T(x) − x‖² |")
    print("|---:|---:|---|---:|---:|")
    for d in (2, 4, 8, 16, 32, 64, 128, 256):
        p = gaussian_pair(d, 32768, 4096, seed=0)
        ev = np.linalg.eigvalsh(np.cov(p["X"].T).reshape(d, d))
        shift = np.linalg.norm(p["Y"].mean(0) - p["X"].mean(0))
        cost = ((p["T_test"] - p["X_test"]) ** 2).sum(1).mean()
        print(
            f"| {d} | {p['var']:.3f} | {ev.min():.3f} … {ev.max():.3f} | {shift:.3f} | {cost:.3f} |"
        )
    spec = importlib.util.find_spec("sklearn")
    if spec and spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
        print("\n### scikit-learn sample images\n")
        print("| file | bytes | height × width × channels |")
        print("|---|---:|---|")
        for name in ("china.jpg", "flower.jpg"):
            h, w, c = jpeg_size(base / name)
            print(f"| `{name}` | {(base / name).stat().st_size:,} | {h} × {w} × {c} |")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--sets", default="bsd,ct,w2bench,generated")
    args = parser.parse_args(argv)
    for name in [s for s in args.sets.split(",") if s]:
        if name in FOLDERS:
            describe_images(args.data_dir, name)
        elif name == "w2bench":
            describe_w2bench(args.data_dir)
        elif name == "generated":
            describe_generated()
        else:
            parser.error(f"unknown set {name!r}")


if __name__ == "__main__":
    main()
