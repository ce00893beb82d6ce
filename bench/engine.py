"""The batched engine against the loop: samples x nets per second, from one run.

Populations: (a) the 18 sigmoid MLPs of the 2017 demo; (b) random populations of 18, 64 and
256 genomes from the logbits recipe's space, each after a few random mutations (skips, cuts,
mixed activations, as evolution makes them); (c) a wide population, 64 nets of 256x3 ReLU,
all on logbits; (d) conv populations of 12 and 48 nets as a generation of
``recipes/digits_conv.toml`` holds them (children of its initial nets after 0-2 random
mutations: channels, kernels, strides, pools, layers, skips), on its 1x8x8 digits, and (e) 24
nets drawn the same way from three random parents of ``bench/conv.py``'s 1-D signal space, on
its signals. Each is trained by both engines at mix_every 1 and 4, race off, on the same
batches.
Printed per row: samples x nets per second of each engine (whole engine calls, packing and the
final evaluation included), the ratio, and the useful GFLOP/s (matrix products of the real,
unpadded nets: forward and backward of training, forward of validation) as a percentage of a
1024x1024 matmul measured in the same run. The table is also written to
``bench/results/engine.md`` and ``.json`` (``--results DIR`` for another folder).

    .venv/bin/python bench/engine.py                  # about 5 minutes on 1 thread
    .venv/bin/python bench/engine.py --device cuda    # on a GPU
    .venv/bin/python bench/engine.py --json           # last line: one JSON object
    .venv/bin/python bench/engine.py --busy           # with one more CPU-bound process
"""

from __future__ import annotations

import argparse
import json
import random
import time

import tomllib
import torch
from conv import SIGNAL, signals
from record import Record, add_arguments, busy_core

from neuroevo import recipe, tasks
from neuroevo.genome import graph as G
from neuroevo.genome import mutations
from neuroevo.genome.space import SearchSpace
from neuroevo.tasks import logbits
from neuroevo.training import engine, mixer

RECIPE = "recipes/logbits.toml"
CONV_RECIPE = "recipes/digits_conv.toml"


def demo18() -> list:
    return [
        G.mlp(16, 16, [width] * depth, "sigmoid", lr=3e-3)
        for depth in (1, 2, 3)
        for width in range(16, 57, 8)
    ]


def drawn(count: int, seed: int) -> list:
    space = recipe.load(RECIPE).space
    rng = random.Random(seed)
    return [
        mutations.drift(G.random_genome(16, 16, space, rng), rng, space, rng.randint(0, 4))
        for _ in range(count)
    ]


def wide() -> list:
    return [G.mlp(16, 16, [256] * 3, "relu", lr=1e-3) for _ in range(64)]


def children(parents: list, count: int, space: SearchSpace, seed: int) -> list:
    """``count`` nets as a generation holds them: the parents' children (drawn in turn)
    after 0-2 random mutations each."""
    rng = random.Random(seed)
    return [
        mutations.drift(parents[i % len(parents)], rng, space, rng.randint(0, 2))
        for i in range(count)
    ]


def digits_conv(count: int, seed: int) -> list:
    r = recipe.load(CONV_RECIPE)
    parents = [
        G.mlp(64, 10, list(n.hidden), n.activation, lr=n.lr, shape=[1, 8, 8], convs=n.convs())
        for n in r.population.initial
    ]
    return children(parents, count, r.space, seed)


def signal_space() -> SearchSpace:
    return SearchSpace(**tomllib.loads(SIGNAL)["space"])


def signal_nets(count: int, seed: int) -> list:
    space = signal_space()
    rng = random.Random(seed)
    with_convs = SearchSpace(**{**space.__dict__, "conv_layers_min": 1})
    parents = [G.random_genome(64, 4, with_convs, rng, shape=[1, 64]) for _ in range(3)]
    return children(parents, count, space, seed)


def data(name: str) -> tuple:
    """(train, valid, kind) of a population's task."""
    if name == "digits":
        task = tasks.build("digits", 0, shape=[1, 8, 8])
    elif name == "signal":
        x, y = signals()
        x = torch.from_numpy(x.reshape(len(x), -1))
        y = torch.from_numpy(y).long()
        return (x[:2400], y[:2400]), (x[2400:], y[2400:]), "classes"
    else:
        task = logbits(seed=0)
    return (task.x_train, task.y_train), (task.x_valid, task.y_valid), task.kind


def matmul_rate(device: torch.device) -> float:
    a = torch.randn(1024, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)
    for _ in range(3):
        a @ b
    _sync(device)
    n, start = 20, time.perf_counter()
    for _ in range(n):
        a @ b
    _sync(device)
    return 2 * 1024**3 * n / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(name, genomes, train, valid, *, kind, steps, batch, every, device) -> float:
    """Seconds of one engine call."""
    members = [engine.Member(g, None, i) for i, g in enumerate(genomes)]
    config = mixer.MixerConfig(race=None, mix_every=every, batch_size=batch)
    _sync(device)
    start = time.perf_counter()
    engine.ENGINES[name](
        members,
        kind=kind,
        train=train,
        valid=valid,
        steps=steps,
        seed=0,
        config=config,
        device=device,
    )
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    parser.add_argument(
        "--only", nargs="+", help="population names to run (demo18 random18 random64 ...)"
    )
    parser.add_argument(
        "--busy", action="store_true", help="keep one more CPU-bound process running meanwhile"
    )
    add_arguments(parser)
    args = parser.parse_args()
    with busy_core(args.busy):
        run(args)


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    record = Record(__file__, args)
    device = torch.device(args.device)
    rate = matmul_rate(device)
    setting = (
        f"{args.steps} steps of {args.batch_size}, race off, {args.threads} thread(s), "
        f"{device}; dense 1024x1024 matmul: {rate / 1e9:.1f} GFLOP/s"
    )
    print(setting)
    table = rates_table(record, setting)
    populations = {
        "demo18": demo18(),
        "random18": drawn(18, 1),
        "random64": drawn(64, 2),
        "random256": drawn(256, 3),
        "wide64": wide(),
        "conv12": digits_conv(12, 4),
        "conv48": digits_conv(48, 5),
        "signal24": signal_nets(24, 6),
    }
    task_of = {"conv12": "digits", "conv48": "digits", "signal24": "signal"}
    if args.only:
        populations = {k: v for k, v in populations.items() if k in args.only}
    datasets = {name: data(name) for name in ("logbits", "digits", "signal")}
    for name in ("loop", "batched"):  # first calls pay one-time set-up costs: not timed
        for label in ("demo18", "conv12"):
            train, valid, kind = datasets[task_of.get(label, "logbits")]
            genomes = demo18() if label == "demo18" else digits_conv(4, 0)
            measure(
                name, genomes, train, valid, kind=kind, steps=5, batch=8, every=1, device=device
            )
    print(
        f"{'population':>10} {'every':>5} {'loop /s':>10} {'batched /s':>11} {'ratio':>6} "
        f"{'loop %mm':>8} {'batched %mm':>11}"
    )
    figures = {"matmul_gflops": rate / 1e9, "threads": args.threads, "device": str(device)}
    for label, genomes in populations.items():
        useful = sum(G.n_macs(g) for g in genomes)
        train, valid, kind = datasets[task_of.get(label, "logbits")]
        for every in (1, 4):
            seconds = {
                name: measure(
                    name,
                    genomes,
                    train,
                    valid,
                    kind=kind,
                    steps=args.steps,
                    batch=args.batch_size,
                    every=every,
                    device=device,
                )
                for name in ("loop", "batched")
            }
            samples = args.steps * args.batch_size * len(genomes)
            flops = 2 * args.batch_size * useful * (3 * args.steps + args.steps // every)
            rates = {name: samples / s for name, s in seconds.items()}
            pct = {name: 100 * flops / s / rate for name, s in seconds.items()}
            ratio = seconds["loop"] / seconds["batched"]
            print(
                f"{label:>10} {every:>5} {rates['loop']:>10,.0f} {rates['batched']:>11,.0f} "
                f"{ratio:>5.1f}x {pct['loop']:>7.1f}% {pct['batched']:>10.1f}%",
                flush=True,
            )
            table.add(
                label, every, rates["loop"], rates["batched"], ratio, pct["loop"], pct["batched"]
            )
            figures[f"{label}_every{every}"] = {
                "loop_samples_nets_per_s": rates["loop"],
                "batched_samples_nets_per_s": rates["batched"],
                "speedup": ratio,
                "loop_pct_of_matmul": pct["loop"],
                "batched_pct_of_matmul": pct["batched"],
            }
    for label in ("demo18", "random64", "random256", "conv12", "conv48", "signal24"):
        if f"{label}_every1" in figures:
            figures[f"{label}_speedup"] = figures[f"{label}_every1"]["speedup"]
    convs = [
        figures[f"{c}_every1"]["speedup"] for c in ("conv12", "conv48") if f"{c}_every1" in figures
    ]
    if convs:
        figures["conv_speedup"] = min(convs)
    if "wide64_every1" in figures:
        figures["wide_pct_of_matmul"] = figures["wide64_every1"]["batched_pct_of_matmul"]
    record.figures.update({k: v for k, v in figures.items() if not isinstance(v, dict)})
    record.write()
    if args.json:
        print(json.dumps(figures))


def rates_table(record: Record, setting: str):
    """The printed table: samples x nets per second, ratio and % of the matmul, per row."""
    return record.table(
        "Samples x nets per second, loop and batched engines",
        [
            "population",
            "every",
            ("loop /s", ",.0f"),
            ("batched /s", ",.0f"),
            ("ratio", lambda v: f"{v:.1f}x"),
            ("loop %mm", lambda v: f"{v:.1f}%"),
            ("batched %mm", lambda v: f"{v:.1f}%"),
        ],
        note=setting,
    )


if __name__ == "__main__":
    main()
