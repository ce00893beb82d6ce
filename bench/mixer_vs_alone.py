"""The weighted mixer against training every net alone, on logbits (or another built-in task).

The 18 nets of the original 2017 demo (sigmoid MLPs, hidden width 16..56 step 8, 1..3 layers)
are trained once in one mixer run per update rule and once each alone, for the same number of
steps on the same batches (the ``metric`` rule at its defaults, scoring on the validation split
every 20 steps; the others on validation batches every ``--mix-every`` steps with the race they
were measured with, ``mixer.STEPPING_RACE``). Printed: each net's mixer fitness beside its
alone-trained validation metric, the Kendall rank correlation (tau-b) between them for each
rule, and the wall-time ratio (alone total / mixer); the same is written to
``bench/results/mixer_vs_alone.md`` and ``.json`` (``--results DIR`` for another folder).

    .venv/bin/python bench/mixer_vs_alone.py                 # about 2 minutes on 2 cores
    .venv/bin/python bench/mixer_vs_alone.py --mix-every 1 4  # compare mixing intervals
    .venv/bin/python bench/mixer_vs_alone.py --task digits --seed 1 --rules projected-gradient
"""

from __future__ import annotations

import argparse
import time

import torch
from record import Record, add_arguments

from neuroevo import tasks
from neuroevo.genome import graph as genome
from neuroevo.search.stats import kendall_tau_b
from neuroevo.training import mixer, network
from neuroevo.training.alone import train_alone

WIDTHS = range(16, 57, 8)
DEPTHS = (1, 2, 3)


def demo_nets(seed: int, n_in: int = 16, n_out: int = 16) -> tuple[list[str], list]:
    labels, nets = [], []
    for depth in DEPTHS:
        for width in WIDTHS:
            g = genome.mlp(n_in, n_out, [width] * depth, "sigmoid")
            labels.append(f"{width}x{depth}")
            nets.append(network.build(g, generator=torch.Generator().manual_seed(seed)))
    return labels, nets


def fixed_batches(x, y, steps, batch_size, seed):
    it = mixer.batches(x, y, batch_size, torch.Generator().manual_seed(seed))
    return [next(it) for _ in range(steps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--task", default="logbits", help="a built-in task")
    parser.add_argument(
        "--rules", nargs="+", default=list(mixer.RULES), help="mixer rules to compare"
    )
    parser.add_argument(
        "--mix-every",
        type=int,
        nargs="+",
        default=[1],
        help="mixing-weight update intervals to compare (mixer.mix_every)",
    )
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    record = Record(__file__, args)

    task = tasks.build(args.task, args.seed)
    n_in, n_out = task.n_inputs, task.n_outputs
    train = fixed_batches(*task.train, args.steps, args.batch_size, args.seed)
    valid = fixed_batches(*task.valid, args.steps, args.batch_size, args.seed + 1)
    labels, _ = demo_nets(args.seed, n_in, n_out)
    setting = (
        f"{args.task} (seed {args.seed}), {len(labels)} sigmoid MLPs, {args.steps} steps of "
        f"{args.batch_size}, Adam lr={args.lr}, {args.threads} thread(s)"
    )
    print(setting)

    start = time.perf_counter()
    alone_acc = [
        train_alone(
            net, args.lr, kind=task.kind, train=train, steps=args.steps, valid=task.valid
        ).validation_metric
        for net in demo_nets(args.seed, n_in, n_out)[1]
    ]
    alone_seconds = time.perf_counter() - start

    results = {}
    for every in args.mix_every:
        for rule in args.rules:
            if rule == "metric":  # at its defaults (every 20 steps, its rows and race), once
                if every != args.mix_every[0]:
                    continue
                config = mixer.MixerConfig()
                valid_data = task.valid
            else:  # on the batches, with the race they were measured with
                config = mixer.MixerConfig(
                    rule=rule, mix_every=every, mix_rows=0, race=mixer.STEPPING_RACE
                )
                valid_data = valid
            _, nets = demo_nets(args.seed, n_in, n_out)
            results[rule, config.mix_every] = mixer.run(
                nets,
                [args.lr] * len(nets),
                kind=task.kind,
                train=train,
                valid=valid_data,
                steps=args.steps,
                config=config,
                evaluate_on=task.valid,
            )

    header = f"{'net':>6} {'alone acc':>9}" + "".join(
        f" {f'{rule} /{every}':>22}" for rule, every in results
    )
    print("mixer fitness (steps trained) per rule / mix_every:")
    print(header)
    fitness = fitness_table(record, list(results), setting)
    for i, label in enumerate(labels):
        row = f"{label:>6} {alone_acc[i]:9.4f}"
        for r in results.values():
            n = r.nets[i]
            row += f" {n.fitness:11.4f} ({n.steps_trained:>5} st)"
        print(row)
        fitness.add(
            label,
            alone_acc[i],
            *([r.nets[i].fitness, r.nets[i].steps_trained] for r in results.values()),
        )
    best_alone = max(range(len(labels)), key=alone_acc.__getitem__)
    best_line = (
        f"best alone: {labels[best_alone]} ({alone_acc[best_alone]:.4f}); alone total "
        f"{alone_seconds:.1f} s"
    )
    print(best_line)
    record.note(best_line)
    agreement = agreement_table(record)
    for (rule, every), r in results.items():
        tau = kendall_tau_b(r.fitness, alone_acc)
        winner = r.ranking()[0]
        print(
            f"{rule:>19} mix_every={every}: Kendall tau {tau:+.3f}, winner {labels[winner]} "
            f"(alone acc {alone_acc[winner]:.4f}), mixer {r.wall_seconds:.1f} s, "
            f"time ratio alone/mixer {alone_seconds / r.wall_seconds:.2f}x"
        )
        agreement.add(
            rule,
            every,
            tau,
            labels[winner],
            alone_acc[winner],
            r.wall_seconds,
            alone_seconds / r.wall_seconds,
        )
    record.write()


def fitness_table(record: Record, runs: list[tuple[str, int]], setting: str):
    """The printed table: per net, alone-trained accuracy, then per mixer run [fitness,
    steps trained]."""
    return record.table(
        "Mixer fitness (steps trained) per rule / mix_every",
        [
            "net",
            ("alone acc", ".4f"),
            *((f"{rule} /{every}", lambda v: f"{v[0]:.4f} ({v[1]} st)") for rule, every in runs),
        ],
        note=setting,
    )


def agreement_table(record: Record):
    """The line printed per mixer run: its ranking against training alone, its wall time."""
    return record.table(
        "Ranking against training alone, per rule / mix_every",
        [
            "rule",
            "mix_every",
            ("Kendall tau", "+.3f"),
            "winner",
            ("winner alone acc", ".4f"),
            ("mixer s", ".1f"),
            ("alone / mixer", lambda v: f"{v:.2f}x"),
        ],
    )


if __name__ == "__main__":
    main()
