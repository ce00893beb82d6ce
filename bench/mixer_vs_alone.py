"""The weighted mixer against training every net alone, on logbits (or another built-in task).

The 18 nets of the original 2017 demo (sigmoid MLPs, hidden width 16..56 step 8, 1..3 layers)
are trained once in one mixer run per update rule and once each alone, for the same number of
steps on the same batches. Printed: each net's mixer fitness beside its alone-trained validation
metric, the Kendall rank correlation (tau-b) between them for each rule, and the wall-time
ratio (alone total / mixer).

    .venv/bin/python bench/mixer_vs_alone.py                 # about 2 minutes on 2 cores
    .venv/bin/python bench/mixer_vs_alone.py --mix-every 1 4  # compare mixing intervals
    .venv/bin/python bench/mixer_vs_alone.py --task digits --seed 1 --rules projected-gradient
"""

from __future__ import annotations

import argparse
import time

import torch

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
        "--rules", nargs="+", default=list(mixer.UPDATE_RULES), help="mixer rules to compare"
    )
    parser.add_argument(
        "--mix-every",
        type=int,
        nargs="+",
        default=[1],
        help="mixing-weight update intervals to compare (mixer.mix_every)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = tasks.build(args.task, args.seed)
    n_in, n_out = task.n_inputs, task.n_outputs
    train = fixed_batches(*task.train, args.steps, args.batch_size, args.seed)
    valid = fixed_batches(*task.valid, args.steps, args.batch_size, args.seed + 1)
    labels, _ = demo_nets(args.seed, n_in, n_out)
    print(
        f"{args.task} (seed {args.seed}), {len(labels)} sigmoid MLPs, {args.steps} steps of "
        f"{args.batch_size}, Adam lr={args.lr}, {args.threads} thread(s)"
    )

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
            _, nets = demo_nets(args.seed, n_in, n_out)
            results[rule, every] = mixer.run(
                nets,
                [args.lr] * len(nets),
                kind=task.kind,
                train=train,
                valid=valid,
                steps=args.steps,
                config=mixer.MixerConfig(rule=rule, mix_every=every),
                evaluate_on=task.valid,
            )

    header = f"{'net':>6} {'alone acc':>9}" + "".join(
        f" {f'{rule} /{every}':>22}" for rule, every in results
    )
    print("mixer fitness (steps trained) per rule / mix_every:")
    print(header)
    for i, label in enumerate(labels):
        row = f"{label:>6} {alone_acc[i]:9.4f}"
        for r in results.values():
            n = r.nets[i]
            row += f" {n.fitness:11.4f} ({n.steps_trained:>5} st)"
        print(row)
    best_alone = max(range(len(labels)), key=alone_acc.__getitem__)
    print(
        f"best alone: {labels[best_alone]} ({alone_acc[best_alone]:.4f}); alone total "
        f"{alone_seconds:.1f} s"
    )
    for (rule, every), r in results.items():
        tau = kendall_tau_b(r.fitness, alone_acc)
        winner = r.ranking()[0]
        print(
            f"{rule:>19} mix_every={every}: Kendall tau {tau:+.3f}, winner {labels[winner]} "
            f"(alone acc {alone_acc[winner]:.4f}), mixer {r.wall_seconds:.1f} s, "
            f"time ratio alone/mixer {alone_seconds / r.wall_seconds:.2f}x"
        )


if __name__ == "__main__":
    main()
