"""How faithfully the mixer ranks a population, per mixer setting, over tasks and seeds.

Two populations per case (task x seed): the recipe's generation 0 (18 random genomes from the
default search space) and a late generation, the one a real run trains after ``--late``
generations of search (default 20; the search with the defaults and ``mixer.steps = --steps``),
when the population has converged to near-copies. Each population is trained every net alone
twice (the second time on another order of the same batches: the noise ceiling), then in one
mixer run per setting, on the same batches for the same steps (:mod:`neuroevo.search.verify`).

Printed per case at the defaults: Kendall tau-b between mixer fitness and the alone-trained
validation metric, the same for each net's own validation metric at the end of the mixer run,
the noise ceiling (alone against alone again), the parameter-count baseline (ranking by size),
the winner's regret (points of the metric) and the time ratio alone / mixer. Then per setting
and population the medians over cases. Both tables go to ``bench/results/fidelity.md`` and
``.json`` (``--results DIR`` for another folder); with ``--json`` the last line printed is one
JSON object of the headline figures.

    .venv/bin/python bench/fidelity.py                  # about 40 minutes on 1 thread
    .venv/bin/python bench/fidelity.py --tasks wine --seeds 0 --late 3 --steps 500
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics

import torch
from record import Record, add_arguments, busy_core

from neuroevo import recipe as R
from neuroevo import tasks
from neuroevo.search import verify
from neuroevo.search.evolution import Evolution
from neuroevo.training import mixer

#: the defaults before the metric rule: Hedge over experts on a batch every step, halving the
#: field at a quarter, a half and three quarters of the run
PREVIOUS = {
    "rule": "experts",
    "mix_every": 1,
    "mix_rows": 0,
    "race": mixer.STEPPING_RACE,
}
TREND = "trend share"  # not a recipe key: mixer.TREND_SHARE, set per run
SETTINGS = {  # one change at a time from the defaults (the rule: metric)
    "defaults": {},
    "metric, race off": {"race": None},
    "metric, 2 s.e. (keep .14)": {"race": mixer.Race(keep=0.14)},
    "metric, 3 s.e. (keep .05)": {"race": mixer.Race(keep=0.05)},
    "metric, race at .5 only": {"race": mixer.Race(points=(0.5,))},
    "metric, race .3 .6": {"race": mixer.Race(points=(0.3, 0.6))},
    "metric, no trend": {TREND: 0.0},
    "previous defaults (experts)": PREVIOUS,
}
TASK_OPTIONS = {"logbits": {"n_train": 4000, "n_valid": 2000, "n_test": 100}}
POPULATIONS = ("generation 1", "late")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["logbits", "digits", "wine", "diabetes"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument(
        "--late", type=int, default=20, help="generations of search before the late case (0: none)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--busy", action="store_true", help="another process uses a core")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    record = Record(__file__, args)
    populations = POPULATIONS if args.late else POPULATIONS[:1]
    setting = (
        f"generation 1 (18 random genomes) and the generation after {args.late} of search; "
        f"{args.steps} steps each way, {args.threads} thread(s)"
        f"{', another process busy on a core' if args.busy else ''}; tasks "
        f"{', '.join(args.tasks)}; seeds {args.seeds}"
    )
    print(setting, flush=True)
    per_case = cases_table(record, setting)
    cases: dict[tuple[str, str], dict[str, verify.Report]] = {
        (name, pop): {} for name in SETTINGS for pop in populations
    }
    with busy_core(args.busy):
        for task_name in args.tasks:
            for seed in args.seeds:
                label = f"{task_name}/{seed}"
                for pop, evo in _populations(task_name, seed, args):
                    measure(evo, label, pop, args.steps, cases, per_case)

    settings = settings_table(record)
    print(
        f"\n{'setting':>28} {'population':>12} {'tau':>7} {'metric':>7} {'ceiling':>7} "
        f"{'regret':>6} {'alone/mixer':>11}   tau per case"
    )
    for (name, pop), by_case in cases.items():
        reports = list(by_case.values())
        row = medians(reports)
        each = [r.kendall_fitness for r in reports]
        print(
            f"{name:>28} {pop:>12} {row['tau']:>+7.3f} {row['metric']:>+7.3f} "
            f"{row['ceiling']:>+7.3f} {row['regret']:>6.2f} {row['ratio']:>10.1f}x   "
            + " ".join(f"{t:+.2f}" for t in each)
        )
        settings.add(name, pop, row["tau"], row["metric"], row["ceiling"], row["regret"],
                     row["ratio"], each)  # fmt: skip
    labels = list(cases["defaults", populations[0]])
    cases_line = f"cases: {' '.join(labels)}; regret in points of the metric (x100)"
    print(cases_line)
    record.note(cases_line)
    headline = summary({pop: list(cases["defaults", pop].values()) for pop in populations})
    record.note("headline (defaults): " + json.dumps(headline))
    record.write()
    if args.json:
        print(json.dumps(headline))


def _populations(task_name: str, seed: int, args):
    """``(name, evolution)`` for each population of a case: generation 0, then (with
    ``--late``) the generation a run of the defaults trains after ``args.late`` of search."""
    options = TASK_OPTIONS.get(task_name, {})
    recipe = R.from_dict(
        {
            "task": {"name": task_name, **options},
            "run": {"seed": seed, "device": "cpu"},
            "mixer": {"steps": args.steps},
        }
    )
    task = tasks.build(task_name, seed, **options)
    yield POPULATIONS[0], Evolution(recipe, task)
    if args.late:
        evo = Evolution(recipe, task)
        for _ in range(args.late):
            evo.step()
        evo.next_population()
        yield POPULATIONS[1], evo


def measure(evo, label, pop, steps, cases, per_case) -> None:
    """Alone twice, then a mixer run per setting; the defaults' figures printed."""
    alone, alone_seconds = verify.train_each_alone(evo, steps=steps)
    again, _ = verify.train_each_alone(evo, steps=steps, order=1)
    defaults, default_trend = evo.recipe.mixer.config(), mixer.TREND_SHARE
    for name, change in SETTINGS.items():
        change = dict(change)
        mixer.TREND_SHARE = change.pop(TREND, default_trend)
        config = dataclasses.replace(defaults, **change)
        result, seconds = verify.replay_mixer(evo, steps=steps, config=config)
        mixer.TREND_SHARE = default_trend
        cases[name, pop][label] = verify.report(
            evo, result, alone, steps, label, seconds, alone_seconds, again
        )
    r = cases["defaults", pop][label]
    print(
        f"{label:>12} {pop:>12}: tau {r.kendall_fitness:+.3f} (mixer metric "
        f"{r.kendall_metric:+.3f}, ceiling {r.kendall_ceiling:+.3f}, parameters "
        f"{r.kendall_params:+.3f}), regret {_points(r)}, alone / mixer {r.time_ratio:.1f}x",
        flush=True,
    )
    per_case.add(label, pop, r.kendall_fitness, r.kendall_metric, r.kendall_ceiling,
                 r.kendall_params, None if r.regret is None else 100 * r.regret,
                 r.time_ratio)  # fmt: skip


def medians(reports: list[verify.Report]) -> dict[str, float]:
    return {
        "tau": statistics.median(r.kendall_fitness for r in reports),
        "metric": statistics.median(r.kendall_metric for r in reports),
        "ceiling": statistics.median(r.kendall_ceiling for r in reports),
        "params": statistics.median(r.kendall_params for r in reports),
        "regret": statistics.median(r.regret or 0.0 for r in reports) * 100,
        "ratio": statistics.median(r.time_ratio for r in reports),
    }


def summary(by_population: dict[str, list[verify.Report]]) -> dict[str, float | int]:
    """The headline figures at the defaults: generation 1's medians (the ``median_*`` keys),
    the late generation's (``late_*``), and counts over every case of both."""
    first = medians(by_population[POPULATIONS[0]])
    out: dict[str, float | int] = {
        "median_kendall_tau": round(first["tau"], 4),
        "median_time_ratio": round(first["ratio"], 3),
        "median_kendall_metric": round(first["metric"], 4),
        "median_kendall_ceiling": round(first["ceiling"], 4),
        "median_kendall_params": round(first["params"], 4),
    }
    if POPULATIONS[1] in by_population:
        late = medians(by_population[POPULATIONS[1]])
        out.update(
            late_median_kendall_tau=round(late["tau"], 4),
            late_median_kendall_ceiling=round(late["ceiling"], 4),
            late_median_kendall_metric=round(late["metric"], 4),
            late_median_time_ratio=round(late["ratio"], 3),
        )
    every = [r for reports in by_population.values() for r in reports]
    first_reports = by_population[POPULATIONS[0]]
    out.update(
        cases=len(first_reports),
        regret_zero=sum(1 for r in first_reports if not r.regret),
        fitness_at_least_metric=sum(
            1 for r in every if r.kendall_fitness >= r.kendall_metric - 1e-9
        ),
        reports=len(every),
    )
    return out


def cases_table(record: Record, setting: str):
    """The line printed per case and population, at the defaults."""
    return record.table(
        "The defaults, per case (task/seed) and population",
        [
            "case",
            "population",
            ("tau", "+.3f"),
            ("mixer metric tau", "+.3f"),
            ("noise ceiling", "+.3f"),
            ("parameters", "+.3f"),
            ("regret pts", ".2f"),
            ("alone / mixer", lambda v: f"{v:.1f}x"),
        ],
        note=setting,
    )


def settings_table(record: Record):
    """The table printed per setting and population: medians over the cases."""
    return record.table(
        "Per setting and population, medians over the cases",
        [
            "setting",
            "population",
            ("median tau", "+.3f"),
            ("metric tau", "+.3f"),
            ("noise ceiling", "+.3f"),
            ("regret", ".2f"),
            ("alone/mixer", lambda v: f"{v:.1f}x"),
            ("tau per case", lambda taus: " ".join(f"{t:+.2f}" for t in taus)),
        ],
    )


def _points(r: verify.Report) -> str:
    return "n/a" if r.regret is None else f"{100 * r.regret:.2f} pts"


if __name__ == "__main__":
    main()
