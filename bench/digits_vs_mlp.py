"""neuroevo on scikit-learn's digits beside scikit-learn's MLPClassifier, on the same split.

Runs ``recipes/digits.toml`` with its defaults, then ``MLPClassifier()`` with default settings
trained on the same (standardised) training split, and prints both test accuracies, the
winning architecture and the wall times.

    .venv/bin/python bench/digits_vs_mlp.py     # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import tempfile
import time

from neuroevo import evolve, recipe, tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/digits.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    r = recipe.load(args.recipe, args.overrides)
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

    best = result.summary["best"]
    print(
        f"{r.task.name}: train {len(task.y_train)}, validation {len(task.y_valid)}, "
        f"test {len(task.y_test)} (seed {r.run.seed}, torch threads {r.run.threads})"
    )
    print(
        f"neuroevo       test accuracy {best['test_metric']:.4f}  {evolve_seconds:6.1f} s  "
        f"{best['signature']} ({result.summary['generations_completed']} generations)"
    )
    print(
        f"MLPClassifier  test accuracy {mlp_test:.4f}  {mlp_seconds:6.1f} s  "
        f"default settings (100 relu units, adam)"
    )
    print(f"difference {best['test_metric'] - mlp_test:+.4f}")


if __name__ == "__main__":
    main()
