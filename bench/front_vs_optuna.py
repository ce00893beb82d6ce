"""neuroevo's front against an Optuna multi-objective study: validation metric against
parameters, on logbits and digits, in the same run: the same splits, one core each, the same
wall clock.

For each task and seed two processes start together, each on one torch thread (one core each
on a 2-core machine): ``neuroevo evolve recipes/<task>.toml --set
evolution.objectives=["metric","params"] --set run.seed=S --set run.time_limit=T`` (the whole
run, its front trained and scored, within T seconds) and an Optuna study (the ``bench`` extra)
with ``directions = ["maximize", "minimize"]`` over the recipe's space (dense MLPs of the
recipe's layers, widths, activations and learning rates) for T seconds, with its default
sampler (``--sampler nsga2`` for NSGA-II). Optuna cannot prune a multi-objective study, so each
trial trains for ``--trial-steps`` steps (Adam at batch 64, its validation metric measured every
500 steps and its best weights kept); the study's Pareto-optimal trials (``best_trials``) are
its front, each scored once on the test split.

Both fronts are measured by their hypervolume (``neuroevo.search.objectives``): the area
dominated up to a metric of 0 and the largest net of the space's parameters (the costs divided
by it), once with the fronts' validation metrics and once with their test metrics. Prints the
per-seed figures and the medians per task; writes ``bench/results/front_vs_optuna.md`` and
``.json`` (``--results DIR`` for another folder).

    .venv/bin/pip install -c constraints.txt -e '.[bench,sklearn]'
    .venv/bin/python bench/front_vs_optuna.py                    # 2 tasks x 3 seeds, ~20 min
    .venv/bin/python bench/front_vs_optuna.py --tasks logbits --seeds 0 --seconds 60  # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from record import Record, add_arguments, busy_core

from neuroevo import recipe as R
from neuroevo import tasks
from neuroevo.genome import graph as G
from neuroevo.search.objectives import Objectives
from neuroevo.training import kinds, mixer, network

ROOT = Path(__file__).resolve().parent.parent
#: seconds per task (both sides): the logbits and digits recipes' nets differ in cost
SECONDS = {"logbits": 240.0, "digits": 150.0}
CHECK = 500


def recipe_of(task: str) -> R.Recipe:
    return R.load(ROOT / "recipes" / f"{task}.toml", ['evolution.objectives=["metric","params"]'])


def objectives_of(task: str, seed: int) -> tuple[Objectives, tasks.Task]:
    recipe = recipe_of(task)
    data = tasks.build(recipe.task.name, seed, **recipe.task.options)
    return Objectives.of(recipe, data.n_inputs, data.n_outputs, data.shape), data


def optuna_study(task_name: str, seed: int, seconds: float, steps: int, sampler: str) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    recipe = recipe_of(task_name)
    objectives, task = objectives_of(task_name, seed)
    space, kind = recipe.space, kinds.get(task.kind)
    deadline = time.perf_counter() + seconds
    kept: dict[int, tuple] = {}

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        layers = trial.suggest_int("layers", space.layers_min, space.layers_max)
        widths = [
            trial.suggest_int(f"width{i}", space.width_min, space.width_max, log=True)
            for i in range(layers)
        ]
        activation = trial.suggest_categorical("activation", list(space.activations))
        lr = trial.suggest_float("lr", space.lr_min, space.lr_max, log=True)
        genome = G.mlp(task.n_inputs, task.n_outputs, widths, activation, lr=lr)
        net = network.build(genome, generator=torch.Generator().manual_seed(trial.number))
        batches = mixer.batches(*task.train, 64, torch.Generator().manual_seed(trial.number))
        optimizer = mixer.adam(net.parameters(), lr=lr)
        best, best_state = -1.0, None
        for step in range(1, steps + 1):
            x, y = next(batches)
            optimizer.zero_grad(set_to_none=True)
            kind.loss(net(x), y).backward()
            optimizer.step()
            if step % CHECK == 0 or step == steps or time.perf_counter() > deadline:
                with torch.no_grad():
                    value = kind.score(net(task.x_valid), task.y_valid) or 0.0
                if value > best:
                    best, best_state = value, {k: v.clone() for k, v in net.state_dict().items()}
                if time.perf_counter() > deadline:
                    break  # the allowance is spent: this trial ends with what it has
        kept[trial.number] = (genome, best_state)
        return best, G.n_parameters(genome)

    chosen = optuna.samplers.NSGAIISampler(seed=seed) if sampler == "nsga2" else None
    if chosen is None:
        chosen = optuna.samplers.TPESampler(seed=seed)  # create_study's default, seeded
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=chosen)
    study.optimize(
        objective,
        timeout=seconds,
        callbacks=[lambda s, t: s.stop() if time.perf_counter() > deadline else None],
    )
    front = []
    for trial in study.best_trials:
        genome, state = kept[trial.number]
        net = network.build(genome, generator=torch.Generator())
        net.load_state_dict(state)
        with torch.no_grad():
            test = kind.score(net(task.x_test), task.y_test)
        front.append({"validation": trial.values[0], "params": int(trial.values[1]), "test": test})
    return {"trials": len(study.trials), "front": front}


def volumes(objectives: Objectives, front: list[dict], metric: str) -> float:
    return objectives.hypervolume([(m[metric], -m["params"]) for m in front])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(SECONDS), choices=list(SECONDS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--seconds", type=float, help="each side's wall time (default: per task)")
    parser.add_argument("--trial-steps", type=int, default=4000, help="steps of an Optuna trial")
    parser.add_argument("--sampler", choices=["default", "nsga2"], default="default")
    parser.add_argument("--busy", action="store_true", help="a third CPU-bound process runs")
    parser.add_argument("--optuna-only", nargs=2, help=argparse.SUPPRESS)  # the child process
    add_arguments(parser)
    args = parser.parse_args()
    if args.optuna_only is not None:
        task, seed = args.optuna_only[0], int(args.optuna_only[1])
        seconds = args.seconds or SECONDS[task]
        print(json.dumps(optuna_study(task, seed, seconds, args.trial_steps, args.sampler)))
        return
    record = Record(__file__, args)
    table = record.table(
        "hypervolume of each side's front, per task and seed (validation; test)",
        [
            "task",
            "seed",
            ("seconds", ".0f"),
            ("neuroevo valid", ".4f"),
            ("neuroevo test", ".4f"),
            "front",
            "generations",
            ("Optuna valid", ".4f"),
            ("Optuna test", ".4f"),
            "Optuna front",
            "trials",
        ],
    )
    record.threads(1)  # each side's process: one torch thread
    rows = []
    with busy_core(args.busy):
        for task in args.tasks:
            for seed in args.seeds:
                rows.append(side_by_side(args, task, seed, table))
    for task in args.tasks:
        mine = [r for r in rows if r["task"] == task]
        line = (
            f"{task}: median hypervolume, validation: neuroevo "
            f"{statistics.median(r['ours_valid'] for r in mine):.4f}, Optuna "
            f"{statistics.median(r['theirs_valid'] for r in mine):.4f}; test: neuroevo "
            f"{statistics.median(r['ours_test'] for r in mine):.4f}, Optuna "
            f"{statistics.median(r['theirs_test'] for r in mine):.4f}"
        )
        print(line)
        record.note(line)
    record.write()


def side_by_side(args, task: str, seed: int, table) -> dict:
    """One task and seed: neuroevo's run and Optuna's study started together."""
    seconds = args.seconds or SECONDS[task]
    objectives, _ = objectives_of(task, seed)
    with tempfile.TemporaryDirectory() as tmp:
        sets = [
            'evolution.objectives=["metric","params"]',
            f"run.seed={seed}",
            f"run.time_limit={seconds}",
            "evolution.generations=100000",  # the time limit ends the search
            "run.report=false",
        ]
        recipe = str(ROOT / "recipes" / f"{task}.toml")
        evolve = ["-m", "neuroevo.cli", "evolve", recipe, "--out", f"{tmp}/run", "--quiet"]
        ours = subprocess.Popen(
            [sys.executable, *evolve, *(f"--set={s}" for s in sets)], stdout=subprocess.DEVNULL
        )
        study = [__file__, "--optuna-only", task, str(seed), "--seconds", str(seconds)]
        study += ["--trial-steps", str(args.trial_steps), "--sampler", args.sampler]
        theirs = subprocess.run(
            [sys.executable, *study], capture_output=True, text=True, check=True
        )
        if ours.wait() != 0:
            raise SystemExit(f"neuroevo failed on {task} seed {seed}")
        summary = json.loads(Path(f"{tmp}/run/summary.json").read_text())
    other = json.loads(theirs.stdout.strip().splitlines()[-1])
    front = [
        {"validation": m["validation_metric"], "test": m["test_metric"], "params": m["params"]}
        for m in summary["front"]
    ]
    row = {
        "task": task,
        "seed": seed,
        "ours_valid": volumes(objectives, front, "validation"),
        "ours_test": volumes(objectives, front, "test"),
        "theirs_valid": volumes(objectives, other["front"], "validation"),
        "theirs_test": volumes(objectives, other["front"], "test"),
    }
    print(
        f"{task} seed {seed}: neuroevo {row['ours_valid']:.4f} / {row['ours_test']:.4f} "
        f"({len(front)} on the front, {summary['generations_completed']} generations, "
        f"{summary['wall_seconds']:.0f} s); Optuna {row['theirs_valid']:.4f} / "
        f"{row['theirs_test']:.4f} ({len(other['front'])} on the front, {other['trials']} "
        "trials)",
        flush=True,
    )
    table.add(
        task,
        seed,
        seconds,
        row["ours_valid"],
        row["ours_test"],
        len(front),
        summary["generations_completed"],
        row["theirs_valid"],
        row["theirs_test"],
        len(other["front"]),
        other["trials"],
    )
    return row


if __name__ == "__main__":
    main()
