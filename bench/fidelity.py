"""How faithfully the mixer ranks a population, per mixer setting, over tasks and seeds.

For each case (task x seed) the recipe's generation 0 (18 random genomes from the default
search space) is trained every net alone once, then in one mixer run per setting, on the same
batches for the same steps (:mod:`neuroevo.search.verify`). Settings vary one at a time from the
defaults. Printed per setting: the median over cases of Kendall tau-b between mixer fitness and
alone-trained validation metric, of the same for each net's own validation metric at the end of
the mixer run, of the winner's regret (points of the metric) and of the time ratio alone / mixer;
then every case's tau. Both tables are also written to ``bench/results/fidelity.md`` and
``.json`` (``--results DIR`` for another folder).

    .venv/bin/python bench/fidelity.py                  # about 20 minutes on 1 thread
    .venv/bin/python bench/fidelity.py --tasks logbits --seeds 0 --steps 500
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import torch
from record import Record, add_arguments

from neuroevo import recipe as R
from neuroevo import tasks
from neuroevo.search import verify
from neuroevo.search.evolution import Evolution
from neuroevo.training import mixer

PG = {"rule": "projected-gradient"}
FORGETTING = "experts forgetting"  # not a recipe key: mixer.EXPERTS_FORGETTING, set per run
SETTINGS = {  # one change at a time from the defaults (the rule: experts), or from PG
    "defaults": {},
    "experts lr=0.5": {"mix_lr": 0.5},
    "experts, race off": {"race": None},
    "experts, keep 0.75": {"race": mixer.Race(keep=0.75)},
    "experts, race 1/2 3/4": {"race": mixer.Race(points=(0.5, 0.75))},
    "experts, race .3 .6 keep .4": {"race": mixer.Race(points=(0.3, 0.6), keep=0.4)},
    "experts smoothing=0": {"smoothing": 0.0},
    "experts forget .02": {FORGETTING: 0.02},
    "experts forget .01": {FORGETTING: 0.01},
    "projected-gradient": PG,
    "rule=hedge": {"rule": "hedge"},
    "rule=rebalance": {"rule": "rebalance"},
    "PG mix_every=4": {**PG, "mix_every": 4},
    "PG smoothing=0.5": {**PG, "smoothing": 0.5},
    "PG smoothing=0.99": {**PG, "smoothing": 0.99},
    "PG mix_lr=0.01": {**PG, "mix_lr": 0.01},
    "PG mix_lr=0.5": {**PG, "mix_lr": 0.5},
    "PG race off": {**PG, "race": None},
    "PG race keep 0.75": {**PG, "race": mixer.Race(keep=0.75)},
}
TASK_OPTIONS = {"logbits": {"n_train": 4000, "n_valid": 2000, "n_test": 100}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["logbits", "digits", "wine", "diabetes"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    record = Record(__file__, args)
    setting = (
        f"generation 0 of 18 random genomes, {args.steps} steps each way, "
        f"{args.threads} thread(s); tasks {', '.join(args.tasks)}; seeds {args.seeds}"
    )
    print(setting)
    per_case = cases_table(record, setting)
    cases: dict[str, dict[str, verify.Report]] = {name: {} for name in SETTINGS}
    default_forgetting = mixer.EXPERTS_FORGETTING
    for task_name in args.tasks:
        for seed in args.seeds:
            recipe = R.from_dict(
                {
                    "task": {"name": task_name, **TASK_OPTIONS.get(task_name, {})},
                    "run": {"seed": seed, "device": "cpu"},
                }
            )
            task = tasks.build(task_name, seed, **TASK_OPTIONS.get(task_name, {}))
            evo = Evolution(recipe, task)
            alone, alone_seconds = verify.train_each_alone(evo, steps=args.steps)
            label = f"{task_name}/{seed}"
            for name, change in SETTINGS.items():
                change = dict(change)
                mixer.EXPERTS_FORGETTING = change.pop(FORGETTING, default_forgetting)
                config = dataclasses.replace(recipe.mixer.config(), **change)
                result, seconds = verify.replay_mixer(evo, steps=args.steps, config=config)
                cases[name][label] = verify.report(
                    evo, result, alone, args.steps, label, seconds, alone_seconds
                )
            r = cases["defaults"][label]
            print(
                f"{label:>12}: tau {r.kendall_fitness:+.3f} "
                f"(mixer metric {r.kendall_metric:+.3f}), "
                f"regret {_points(r)}, alone / mixer {r.time_ratio:.1f}x",
                flush=True,
            )
            per_case.add(
                label,
                r.kendall_fitness,
                r.kendall_metric,
                None if r.regret is None else 100 * r.regret,
                r.time_ratio,
            )

    print(
        f"\n{'setting':>28} {'median tau':>10} {'metric tau':>10} {'regret':>7} "
        f"{'alone/mixer':>11}   tau per case"
    )
    settings = settings_table(record)
    for name, by_case in cases.items():
        reports = list(by_case.values())
        tau = statistics.median(r.kendall_fitness for r in reports)
        own = statistics.median(r.kendall_metric for r in reports)
        regret = statistics.median(r.regret or 0.0 for r in reports) * 100
        ratio = statistics.median(r.time_ratio for r in reports)
        each = " ".join(f"{r.kendall_fitness:+.2f}" for r in reports)
        print(f"{name:>28} {tau:>+10.3f} {own:>+10.3f} {regret:>7.2f} {ratio:>10.1f}x   {each}")
        settings.add(name, tau, own, regret, ratio, [r.kendall_fitness for r in reports])
    cases_line = f"cases: {' '.join(cases['defaults'])}; regret in points of the metric (x100)"
    print(cases_line)
    record.note(cases_line)
    record.write()


def cases_table(record: Record, setting: str):
    """The line printed per case, at the default setting."""
    return record.table(
        "The defaults, per case (task/seed)",
        [
            "case",
            ("tau", "+.3f"),
            ("mixer metric tau", "+.3f"),
            ("regret pts", ".2f"),
            ("alone / mixer", lambda v: f"{v:.1f}x"),
        ],
        note=setting,
    )


def settings_table(record: Record):
    """The table printed per setting: medians over the cases, then each case's tau."""
    return record.table(
        "Per setting, medians over the cases",
        [
            "setting",
            ("median tau", "+.3f"),
            ("metric tau", "+.3f"),
            ("regret", ".2f"),
            ("alone/mixer", lambda v: f"{v:.1f}x"),
            ("tau per case", lambda taus: " ".join(f"{t:+.2f}" for t in taus)),
        ],
    )


def _points(r: verify.Report) -> str:
    return "n/a" if r.regret is None else f"{100 * r.regret:.2f} pts"


if __name__ == "__main__":
    main()
