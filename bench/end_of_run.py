"""The end of a run in the engine against one net after another, side by side on one search.

One search of a recipe (``recipes/logbits.toml`` by default, for its own ``time_budget`` or
``--search-seconds``), then the end of that run twice from the same hall of fame: each net
trained alone one after another (``mixer.engine = "loop"``: the reference, and how every run
ended before the end of the run moved into the engine), and the nets of each phase stacked
as one population (the batched engine: the final training of the kept nets, the refit, the
bagged copies); ``--variants`` compares other ends too (an engine and ``[final]`` keys).
Printed: each one's seconds, choice, validation and test metric and the
steps the refit took, and the ratio of the times; written to ``bench/results/end_of_run.md``
and ``.json`` (``--results DIR`` for another folder).

    .venv/bin/python bench/end_of_run.py --busy     # the logbits quick start, about 17 minutes
    .venv/bin/python bench/end_of_run.py --recipe recipes/digits.toml --search-seconds 60
    .venv/bin/python bench/end_of_run.py --variants batched "batched final.patience=5"
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from record import Record, add_arguments, busy_core

from neuroevo import recipe as R
from neuroevo import tasks
from neuroevo.search import final, islands
from neuroevo.training import engine

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "logbits.toml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--search-seconds", type=float, default=None, help="default: the recipe's time_budget"
    )
    parser.add_argument(
        "--busy", action="store_true", help="keep one more CPU-bound process running meanwhile"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["loop", "batched"],
        metavar="VARIANT",
        help="ends to compare: an engine, then any KEY=VALUE of the recipe's [final] "
        "(e.g. 'batched final.patience=5'); the first is the baseline of the ratios",
    )
    add_arguments(parser)
    args = parser.parse_args()
    recipe = R.load(args.recipe, args.set)
    budget = args.search_seconds or recipe.evolution.time_budget
    record = Record(__file__, args)
    record.threads(recipe.run.threads)
    task = tasks.build(recipe.task.name, recipe.run.seed, **recipe.task.options)
    with busy_core(args.busy), engine.threads(recipe.run.threads):
        evo = islands.build(recipe, task, callbacks=[], device=torch.device("cpu"))
        started = time.perf_counter()
        while evo.generation < recipe.evolution.generations and (
            time.perf_counter() - started < budget
        ):
            evo.step()
        searched = time.perf_counter() - started
        print(f"search: {evo.generation} generations in {searched:.0f} s", flush=True)
        table = record.table(
            f"The end of one {recipe.task.name} run ({evo.generation} generations, "
            f"{searched:.0f} s of search), from the same hall of fame",
            [
                "variant",
                ("seconds", ".1f"),
                "choice",
                ("validation", ".4f"),
                ("test", ".4f"),
                "refit steps",
            ],
        )
        seconds = {}
        for variant in args.variants:
            engine_name, *keys = variant.split()
            evo.recipe = R.load(args.recipe, [*args.set, f"mixer.engine={engine_name}", *keys])
            began = time.perf_counter()
            done = final.finish(evo)
            seconds[variant] = time.perf_counter() - began
            steps = (done.refit or {}).get("steps")
            table.add(
                variant,
                seconds[variant],
                done.choice,
                done.validation_metric,
                done.test_metric,
                steps,
            )
            print(
                f"{variant}: {seconds[variant]:.1f} s  {done.choice}  validation "
                f"{done.validation_metric:.4f}  test {done.test_metric:.4f}  refit steps {steps}",
                flush=True,
            )
    base = args.variants[0]
    for variant in args.variants[1:]:
        line = f"{variant}: {seconds[base] / seconds[variant]:.2f}x faster than {base}"
        print(line)
        record.note(line + (" (with one more CPU-bound process running)" if args.busy else ""))
    record.write()


if __name__ == "__main__":
    main()
