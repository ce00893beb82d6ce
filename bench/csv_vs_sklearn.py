"""A plain CSV with every recipe default: neuroevo against scikit-learn's simple models.

For iris, wine and digits, scikit-learn's bundled data sets are written as CSV files (the
features by name, the class as a word) and given to neuroevo with the shortest recipe there is
(a ``.csv`` path makes it the csv task):

    [task]
    path = "iris.csv"
    target = "class"

and every other key at its default, seeds 0-2. On the same split (the run's own: its training
and validation rows to fit, its test rows to score) scikit-learn fits ``MLPClassifier()``,
``LogisticRegression()``, ``RandomForestClassifier()`` and ``HistGradientBoostingClassifier()``
with their defaults (``random_state`` = the seed). Prints each case's test accuracy, neuroevo's
wall time, and per data set the medians and neuroevo's gap to the best of the four; writes the
same to ``bench/results/csv_vs_sklearn.md`` and ``.json`` (``--results DIR`` for another folder).

    .venv/bin/python bench/csv_vs_sklearn.py            # iris, wine, digits
    .venv/bin/python bench/csv_vs_sklearn.py --sets cancer synthetic
    .venv/bin/python bench/csv_vs_sklearn.py --set final.final=ensemble  # another default
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from record import Record, add_arguments
from sklearn import datasets
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.utils import Bunch

from neuroevo import tasks


def _synthetic() -> Bunch:
    """3,000 rows, 40 features (12 informative), 4 classes, 2% of labels flipped."""
    x, y = datasets.make_classification(
        n_samples=3000, n_features=40, n_informative=12, n_redundant=8, n_classes=4,
        flip_y=0.02, random_state=0,
    )  # fmt: skip
    return Bunch(data=x, target=y, target_names=np.array(["a", "b", "c", "d"]))


SETS = {
    "iris": datasets.load_iris,  # 150 rows, 4 features, 3 classes
    "wine": datasets.load_wine,  # 178 rows, 13 features, 3 classes
    "cancer": datasets.load_breast_cancer,  # 569 rows, 30 features, 2 classes
    "digits": datasets.load_digits,  # 1,797 rows, 64 features, 10 classes
    "synthetic": _synthetic,
}
#: the sets the README's table holds (issue goal: within 1 point of the best of the four)
TABLE = ["iris", "wine", "digits"]
MODELS = {
    "MLP": lambda seed: MLPClassifier(random_state=seed),
    "LogReg": lambda seed: LogisticRegression(random_state=seed),
    "Forest": lambda seed: RandomForestClassifier(random_state=seed),
    "HGB": lambda seed: HistGradientBoostingClassifier(random_state=seed),
}


def write_csv(name: str, folder: Path) -> Path:
    bunch = SETS[name]()
    features = [f"f{i}" for i in range(bunch.data.shape[1])]
    path = folder / f"{name}.csv"
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow([*features, "class"])
        for row, label in zip(bunch.data, bunch.target):
            out.writerow([*(repr(float(v)) for v in row), f"c{bunch.target_names[label]}"])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=TABLE, choices=list(SETS))
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
        help="a recipe override for every neuroevo run (to measure another default)",
    )  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    add_arguments(parser)
    args = parser.parse_args()
    record = Record(__file__, args)
    table = cases_table(record)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    head = f"{'case':>10} {'neuroevo':>9} {'seconds':>8} {'gens':>5} {'final':>9} "
    print(head + " ".join(f"{m:>7}" for m in MODELS))
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.sets:
            path = write_csv(name, folder)
            recipe = folder / f"{name}.toml"
            recipe.write_text(f'[task]\npath = "{path.name}"\ntarget = "class"\n')
            for seed in args.seeds:
                out = folder / f"{name}-{seed}"
                subprocess.run(
                    [sys.executable, "-m", "neuroevo.cli", "evolve", str(recipe), "--out",
                     str(out), "--quiet", "--set", f"run.seed={seed}",
                     *(a for o in args.overrides for a in ("--set", o))],
                    check=True, stdout=subprocess.DEVNULL,
                )  # fmt: skip
                summary = json.loads((out / "summary.json").read_text())
                ours = summary["best"]["test_metric"]
                task = tasks.build("csv", seed, path=str(path), target="class")
                x = np.concatenate([task.x_train.numpy(), task.x_valid.numpy()])
                y = np.concatenate([task.y_train.numpy(), task.y_valid.numpy()])
                theirs = {
                    m: float(make(seed).fit(x, y).score(task.x_test.numpy(), task.y_test.numpy()))
                    for m, make in MODELS.items()
                }
                results.setdefault(name, []).append((ours, max(theirs.values())))
                print(
                    f"{name + '/' + str(seed):>10} {ours:>9.4f} {summary['wall_seconds']:>8.0f} "
                    f"{summary['generations_completed']:>5} {summary['final']['choice']:>9} "
                    + " ".join(f"{v:>7.4f}" for v in theirs.values()),
                    flush=True,
                )
                table.add(
                    f"{name}/{seed}",
                    ours,
                    summary["wall_seconds"],
                    summary["generations_completed"],
                    summary["final"]["choice"],
                    *theirs.values(),
                )
                record.threads(summary.get("threads"))  # the runs', not this process's
    for name, rows in results.items():
        ours = statistics.median(r[0] for r in rows)
        best = statistics.median(r[1] for r in rows)
        medians = (
            f"{name}: median neuroevo {ours:.4f}, median best of the four {best:.4f} "
            f"(neuroevo {100 * (ours - best):+.1f} points)"
        )
        print(medians)
        record.note(medians)
    record.write()


def cases_table(record: Record):
    """The line printed per case: neuroevo's test accuracy, wall time, generations and final
    choice, then each scikit-learn model's test accuracy."""
    return record.table(
        "Test accuracy per case (data set/seed)",
        [
            "case",
            ("neuroevo", ".4f"),
            ("seconds", ".0f"),
            "gens",
            "final",
            *((m, ".4f") for m in MODELS),
        ],
    )


if __name__ == "__main__":
    main()
