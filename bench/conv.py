"""Convolutional genomes against dense-only ones, in the same wall time, on images and signals.

``digits``: scikit-learn's 8x8 digits as 1x8x8 images, ``recipes/digits_conv.toml`` (300 s of
search, then final training, the ensemble if better on validation, and the refit), seeds 0-2.
Each seed runs twice at once, one core each: the recipe as it is, and the same recipe with
``space.conv_layers_max = 0`` and its initial CNNs without their convolutions (MLPs of the
same widths), so both searches get the same wall time.

``signal``: a 1-D task made here: 3,000 noisy signals of 64 samples, each holding one of four
8-sample motifs at a random place (the class); the same motif anywhere is the same class, so a
dense net must learn each place apart while a convolution learns the motif once. Written as a
``.npz`` of shape (n, 1, 64) (the task's shape comes from it); the conv and the dense-only
search run at once, one core each, 120 s of search each, seeds 0-2.

Prints per run the test accuracy, the generations, the wall time and the winner, and per case
the medians; writes the same to ``bench/results/conv.md`` and ``.json`` (``--results DIR`` for
another folder).

    .venv/bin/python bench/conv.py                    # both, about 35 minutes
    .venv/bin/python bench/conv.py --cases signal --seeds 0
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tomli_w
from record import Record, add_arguments

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

from neuroevo.genome import mutations
from neuroevo.storage import rundir

ROOT = Path(__file__).resolve().parent.parent
MOTIFS = np.array(
    [
        [1, 1, 1, 1, -1, -1, -1, -1],
        [-1, -1, -1, -1, 1, 1, 1, 1],
        [1, -1, 1, -1, 1, -1, 1, -1],
        [1, 1, -1, -1, 1, 1, -1, -1],
    ],
    dtype=float,
)

SIGNAL = """
[task]
name = "npz"
path = "signal.npz"

[space]
width_min = 16
width_max = 256
layers_min = 1
layers_max = 2
lr_min = 3e-4
lr_max = 1e-2
activations = ["relu", "gelu", "tanh"]
conv_layers_max = 3
channels_min = 4
channels_max = 32
kernel_sizes = [3, 5, 7]
strides = [1, 2]

[population]
size = 12

[evolution]
generations = 1000
elites = 3
time_budget = 120

[final]
final_steps = 6000

[mixer]
steps = 800

[run]
threads = 1
report = false
time_limit = 0  # the search's 120 s are compared; the end of the run is not
"""


def signals(n: int = 3000, length: int = 64, noise: float = 0.8, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(MOTIFS), size=n)
    x = rng.normal(0.0, noise, size=(n, 1, length))
    where = rng.integers(0, length - MOTIFS.shape[1] + 1, size=n)
    for i in range(n):
        x[i, 0, where[i] : where[i] + MOTIFS.shape[1]] += MOTIFS[y[i]]
    return x.astype(np.float32), y


def dense_only(recipe: Path, folder: Path) -> Path:
    """``recipe`` without convolutions: none allowed, none in the initial nets."""
    data = tomllib.loads(recipe.read_text())
    data.setdefault("space", {})["conv_layers_max"] = 0
    for net in data.get("population", {}).get("initial", []):
        net.pop("channels", None)
        net.pop("strides", None)
        net.pop("pools", None)
    for name in mutations.CONV_OPERATORS:
        data.get("mutations", {}).pop(name, None)
    path = folder / f"{recipe.stem}-dense.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def evolve(recipe: Path, out: Path, sets: list[str]) -> subprocess.Popen:
    args = [sys.executable, "-m", "neuroevo.cli", "evolve", str(recipe), "--out", str(out)]
    args += ["--quiet", *(a for s in sets for a in ("--set", s))]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["digits", "signal"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    add_arguments(parser)
    args = parser.parse_args()
    record = Record(__file__, args)
    table = runs_table(record)
    print(f"{'case':>10} {'search':>6} {'test':>7} {'gens':>5} {'wall s':>7}  winner")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recipes = {"digits": ROOT / "recipes" / "digits_conv.toml"}
        x, y = signals()
        np.savez(folder / "signal.npz", x=x, y=y)
        (folder / "signal.toml").write_text(SIGNAL)
        recipes["signal"] = folder / "signal.toml"
        dense = {case: dense_only(recipe, folder) for case, recipe in recipes.items()}
        for case in args.cases:
            scores: dict[str, list[float]] = {"conv": [], "dense": []}
            for seed in args.seeds:
                runs = {}
                for search, recipe in (("conv", recipes[case]), ("dense", dense[case])):
                    out = folder / f"{case}-{search}-{seed}"
                    runs[search] = (out, evolve(recipe, out, [f"run.seed={seed}"]))
                for search, (out, proc) in runs.items():
                    _, err = proc.communicate()
                    if proc.returncode:
                        raise SystemExit(f"{case} {search} seed {seed}: {err.decode()}")
                    s = rundir.read_summary(out)
                    scores[search].append(s["best"]["test_metric"])
                    name = f"{case}/{seed}"
                    print(
                        f"{name:>10} {search:>6} {s['best']['test_metric']:>7.4f} "
                        f"{s['generations_completed']:>5} {s['wall_seconds']:>7.0f}  "
                        f"{s['best']['signature']}",
                        flush=True,
                    )
                    table.add(
                        name,
                        search,
                        s["best"]["test_metric"],
                        s["generations_completed"],
                        s["wall_seconds"],
                        s["best"]["signature"],
                    )
                    record.threads(s.get("threads"))  # each run's own, one core each
            with_conv, without = (statistics.median(scores[k]) for k in ("conv", "dense"))
            medians = (
                f"{case}: median test accuracy, conv search {with_conv:.4f}, "
                f"dense-only {without:.4f}"
            )
            print(medians)
            record.note(medians)
    record.write()


def runs_table(record: Record):
    """The line printed per run."""
    return record.table(
        "Conv search against dense-only, per run",
        [
            "case",
            "search",
            ("test", ".4f"),
            "gens",
            ("wall s", ".0f"),
            "winner",
        ],
    )


if __name__ == "__main__":
    main()
