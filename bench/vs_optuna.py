"""neuroevo against Optuna on logbits, in the same run: the same splits, one core each, the
same wall clock.

For each seed two processes start together, each on one torch thread (one core each on a
2-core machine): ``neuroevo evolve recipes/logbits.toml --set run.seed=S`` (the whole run
within its ``run.time_limit`` of 10 minutes, the report drawn after) and an Optuna study (the
``bench`` extra) with 10 minutes. ``--busy`` runs a third CPU-bound process meanwhile, as on a
user's machine where something else uses a core. Optuna searches the recipe's space,
MLPs of 1-4 hidden layers of width 8..256, activations relu/tanh/sigmoid/gelu, learning rate
1e-4..2e-2 (log), with the TPE sampler and the Hyperband pruner: each trial trains with Adam at
batch 64 for up to 60,000 steps,
reporting its validation bit accuracy every 3,000 (Hyperband's rungs) and keeping the weights
with the best one; when the allowance is spent the running trial stops and the study ends. The
best trial by validation is then scored on the test split, once. Prints both test scores per
seed and the medians, and writes them to ``bench/results/vs_optuna.md`` and ``.json``
(``--results DIR`` for another folder; the Optuna child process writes nothing).

    .venv/bin/pip install -c constraints.txt -e '.[bench]'
    .venv/bin/python bench/vs_optuna.py --busy          # 3 seeds, about 30 minutes
    .venv/bin/python bench/vs_optuna.py --seeds 0 --seconds 40 \
        --recipe-set run.time_limit=40 --recipe-set final.final_steps=2000  # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from record import Record, add_arguments, busy_core

from neuroevo import tasks
from neuroevo.genome import graph as G
from neuroevo.training import kinds, mixer, network

ROOT = Path(__file__).resolve().parent.parent
STEPS, REPORT = 60_000, 3_000
ACTIVATIONS = ["relu", "tanh", "sigmoid", "gelu"]


def optuna_study(seed: int, seconds: float) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    task = tasks.build("logbits", seed)
    bits = kinds.get("bits")
    deadline = time.perf_counter() + seconds
    kept: dict[int, tuple[G.nx.DiGraph, dict]] = {}

    def objective(trial: optuna.Trial) -> float:
        layers = trial.suggest_int("layers", 1, 4)
        widths = [trial.suggest_int(f"width{i}", 8, 256, log=True) for i in range(layers)]
        activation = trial.suggest_categorical("activation", ACTIVATIONS)
        lr = trial.suggest_float("lr", 1e-4, 2e-2, log=True)
        genome = G.mlp(16, 16, widths, activation, lr=lr)
        net = network.build(genome, generator=torch.Generator().manual_seed(trial.number))
        batches = mixer.batches(*task.train, 64, torch.Generator().manual_seed(trial.number))
        optimizer = mixer.adam(net.parameters(), lr=lr)
        best, best_state = -1.0, None
        for rung in range(1, STEPS // REPORT + 1):
            for _ in range(REPORT):
                x, y = next(batches)
                optimizer.zero_grad(set_to_none=True)
                bits.loss(net(x), y).backward()
                optimizer.step()
            with torch.no_grad():
                value = bits.score(net(task.x_valid), task.y_valid) or 0.0
            if value > best:
                best, best_state = value, {k: v.clone() for k, v in net.state_dict().items()}
            kept[trial.number] = (genome, best_state)
            trial.report(value, rung)
            if time.perf_counter() > deadline:
                break  # the allowance is spent: this trial ends with what it has
            if trial.should_prune():
                raise optuna.TrialPruned()
        return best

    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=STEPS // REPORT)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(
        objective,
        timeout=seconds,
        callbacks=[lambda s, t: s.stop() if time.perf_counter() > deadline else None],
    )
    # the best trial by validation, pruned ones included (their best weights are kept too)
    best_trial = max(
        (t for t in study.trials if t.number in kept and t.intermediate_values),
        key=lambda t: max(t.intermediate_values.values()),
    )
    genome, state = kept[best_trial.number]
    net = network.build(genome, generator=torch.Generator())
    net.load_state_dict(state)
    with torch.no_grad():
        test = bits.score(net(task.x_test), task.y_test)
    return {
        "test": test,
        "validation": max(best_trial.intermediate_values.values()),
        "trials": len(study.trials),
        "net": G.signature(genome),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--seconds", type=float, default=600.0, help="Optuna's allowance")
    parser.add_argument("--recipe-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--optuna-only", type=int, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--busy", action="store_true", help="a third CPU-bound process runs")
    add_arguments(parser)
    args = parser.parse_args()
    if args.optuna_only is not None:
        print(json.dumps(optuna_study(args.optuna_only, args.seconds)))
        return
    record = Record(__file__, args)
    table = seeds_table(record)
    rows = []
    with busy_core(args.busy):
        for seed in args.seeds:
            rows.append(side_by_side(args, seed, table, record))
    ours_median = statistics.median(r[1]["best"]["test_metric"] for r in rows)
    theirs_median = statistics.median(r[2]["test"] for r in rows)
    medians = f"median test bit accuracy: neuroevo {ours_median:.4f}, Optuna {theirs_median:.4f}"
    if args.busy:
        medians += " (with a third CPU-bound process running)"
    print(medians)
    record.note(medians)
    record.write()


def side_by_side(args, seed: int, table, record: Record) -> tuple:
    """One seed: neuroevo's run and Optuna's study started together; each one's result."""
    with tempfile.TemporaryDirectory() as tmp:
        sets = [f"--set=run.seed={seed}", *(f"--set={s}" for s in args.recipe_set)]
        started = time.perf_counter()
        recipe = str(ROOT / "recipes" / "logbits.toml")
        evolve = ["-m", "neuroevo.cli", "evolve", recipe, "--out", f"{tmp}/run", "--quiet"]
        ours = subprocess.Popen([sys.executable, *evolve, *sets], stdout=subprocess.DEVNULL)
        ended: list[float] = []  # when neuroevo's process ended (its report drawn)
        waiter = threading.Thread(target=lambda: (ours.wait(), ended.append(time.perf_counter())))
        waiter.start()
        study = [__file__, "--optuna-only", str(seed), "--seconds", str(args.seconds)]
        theirs = subprocess.run(
            [sys.executable, *study], capture_output=True, text=True, check=True
        )
        optuna_seconds = time.perf_counter() - started
        waiter.join()
        process_seconds = ended[0] - started
        if ours.returncode != 0:
            raise SystemExit(f"neuroevo failed on seed {seed}")
        summary = json.loads(Path(f"{tmp}/run/summary.json").read_text())
        other = json.loads(theirs.stdout.strip().splitlines()[-1])
    print(
        f"seed {seed}: neuroevo {summary['best']['test_metric']:.4f} "
        f"({summary['wall_seconds']:.0f} s of run, {process_seconds:.0f} s with set-up and "
        f"report, {summary['generations_completed']} generations, "
        f"{summary['best']['signature']}); Optuna {other['test']:.4f} ({optuna_seconds:.0f} s, "
        f"{other['trials']} trials, {other['net']})",
        flush=True,
    )
    table.add(
        seed,
        summary["best"]["test_metric"],
        summary["wall_seconds"],
        process_seconds,
        summary["generations_completed"],
        summary["best"]["signature"],
        other["test"],
        optuna_seconds,
        other["trials"],
        other["net"],
    )
    record.threads(summary.get("threads"))  # neuroevo's run's; the Optuna child has 1
    return seed, summary, other, optuna_seconds


def seeds_table(record: Record):
    """The line printed per seed: each side's test bit accuracy, wall time, effort and net."""
    return record.table(
        "neuroevo and Optuna side by side, per seed",
        [
            "seed",
            ("neuroevo test", ".4f"),
            ("neuroevo s", ".0f"),
            ("with set-up, report", ".0f"),
            "generations",
            "neuroevo net",
            ("Optuna test", ".4f"),
            ("Optuna s", ".0f"),
            "trials",
            "Optuna net",
        ],
    )


if __name__ == "__main__":
    main()
