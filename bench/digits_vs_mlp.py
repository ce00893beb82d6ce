"""neuroevo on scikit-learn's digits beside scikit-learn's MLPClassifier, on the same split.

Runs ``recipes/digits.toml`` with its defaults, then ``MLPClassifier()`` with default settings
trained on the same (standardised) training split, and prints both test accuracies, the
winning architecture and the wall times; also writes them to ``bench/results/digits_vs_mlp.md``
and ``.json`` (``--results DIR`` for another folder).

    .venv/bin/python bench/digits_vs_mlp.py     # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import tempfile
import time

from record import Record, add_arguments

from neuroevo import evolve, recipe, tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/digits.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    add_arguments(parser)
    args = parser.parse_args()

    r = recipe.load(args.recipe, args.overrides)
    record = Record(__file__, args)
    record.threads(r.run.threads)  # the search's; MLPClassifier's numpy has its own
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = evolve(r, out=out)
        evolve_seconds = time.perf_counter() - started

    from sklearn.neural_network import MLPClassifier

    task = tasks.build(r.task.name, r.run.seed, **r.task.options)
    started = time.perf_counter()
    mlp = MLPClassifier(random_state=r.run.seed).fit(task.x_train.numpy(), task.y_train.numpy())
    mlp_seconds = time.perf_counter() - started
    mlp_test = float((mlp.predict(task.x_test.numpy()) == task.y_test.numpy()).mean())

    best = result.summary.best
    split = (
        f"{r.task.name}: train {len(task.y_train)}, validation {len(task.y_valid)}, "
        f"test {len(task.y_test)} (seed {r.run.seed}, torch threads {r.run.threads})"
    )
    print(split)
    generations = result.summary.generations_completed
    print(
        f"neuroevo       test accuracy {best.test_metric:.4f}  {evolve_seconds:6.1f} s  "
        f"{best.signature} ({generations} generations)"
    )
    print(
        f"MLPClassifier  test accuracy {mlp_test:.4f}  {mlp_seconds:6.1f} s  "
        f"default settings (100 relu units, adam)"
    )
    difference = f"difference {best.test_metric - mlp_test:+.4f}"
    print(difference)

    table = results_table(record, split)
    table.add(
        "neuroevo",
        best.test_metric,
        evolve_seconds,
        f"{best.signature} ({generations} generations)",
    )
    table.add("MLPClassifier", mlp_test, mlp_seconds, "default settings (100 relu units, adam)")
    record.note(difference)
    record.write()


def results_table(record: Record, split: str):
    return record.table(
        "Test accuracy, the same split",
        ["model", ("test accuracy", ".4f"), ("seconds", ".1f"), "net"],
        note=split,
    )


if __name__ == "__main__":
    main()
