"""The end of a run, side by side on one search: one net after another, in the engine, and
with the end-of-run policy of before and of now.

Per recipe (``--recipes``; ``recipes/logbits.toml`` by default), one search
(``--search-seconds``; else its ``evolution.time_budget``, else half its ``run.time_limit``),
then the end of that run once per variant from the same hall of fame (without a deadline).
A variant is an engine and any ``[final]`` keys: by default the end as runs had it before
(``final.patience=0 final.refit_steps=best``) trained one net after another (``loop``, the
reference) and in the engine (``batched``: the final training of the kept nets,
the refit, the bagged copies each one population), and the end of now (the batched engine with
the recipe's own keys). Printed: each one's seconds, choice, validation and test metric and
the steps of the refit, and the ratio of the times to the first variant; written to
``bench/results/end_of_run.md`` and ``.json`` (``--results DIR`` for another folder).

    .venv/bin/python bench/end_of_run.py --busy     # the logbits quick start, about 17 minutes
    .venv/bin/python bench/end_of_run.py --busy --recipes recipes/logbits.toml \
        recipes/digits.toml recipes/digits_conv.toml --search-seconds 300 60 60   # 30 minutes
    .venv/bin/python bench/end_of_run.py --variants batched "batched final.patience=0"
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


OLD = "final.patience=0 final.refit_steps=best"  # the end of a run before patience and settled
DEFAULT_VARIANTS = [f"loop {OLD}", f"batched {OLD}", "batched"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipes", nargs="+", default=[str(ROOT / "recipes" / "logbits.toml")], metavar="TOML"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--search-seconds",
        type=float,
        nargs="+",
        default=None,
        help="per recipe (one value: for all); default: each recipe's time_budget, else half its "
        "time_limit",
    )
    parser.add_argument(
        "--busy", action="store_true", help="keep one more CPU-bound process running meanwhile"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=DEFAULT_VARIANTS,
        metavar="VARIANT",
        help="ends to compare: an engine, then any KEY=VALUE of the recipe's [final] "
        "(e.g. 'batched final.patience=0'); the first is the baseline of the ratios "
        f"(default: {' | '.join(DEFAULT_VARIANTS)})",
    )
    add_arguments(parser)
    args = parser.parse_args()
    record = Record(__file__, args)
    seconds = args.search_seconds or [None]
    if len(seconds) not in (1, len(args.recipes)):
        parser.error("--search-seconds takes one value, or one per recipe")
    with busy_core(args.busy):
        for i, path in enumerate(args.recipes):
            case(args, record, path, seconds[i if len(seconds) > 1 else 0])
    record.write()


def case(args: argparse.Namespace, record: Record, path: str, search_seconds: float | None):
    """One recipe: its search, then each variant's end from the same hall of fame."""
    recipe = R.load(path, args.set)
    budget = search_seconds or recipe.evolution.time_budget or recipe.run.time_limit / 2
    record.threads(recipe.run.threads)
    task = tasks.build(recipe.task.name, recipe.run.seed, **recipe.task.options)
    with engine.threads(recipe.run.threads):
        evo = islands.build(recipe, task, callbacks=[], device=torch.device("cpu"))
        started = time.perf_counter()
        while evo.generation < recipe.evolution.generations and (
            time.perf_counter() - started < budget
        ):
            evo.step()
        searched = time.perf_counter() - started
        name = Path(path).name
        print(f"{name}: {evo.generation} generations in {searched:.0f} s of search", flush=True)
        table = record.table(
            f"The end of one {name} run ({evo.generation} generations, {searched:.0f} s of "
            "search), from the same hall of fame",
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
            evo.recipe = R.load(path, [*args.set, f"mixer.engine={engine_name}", *keys])
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
    busy = " (with one more CPU-bound process running)" if args.busy else ""
    for variant in args.variants[1:]:
        line = f"{name}, {variant}: {seconds[base] / seconds[variant]:.2f}x faster than {base}"
        print(line)
        record.note(line + busy)


if __name__ == "__main__":
    main()
