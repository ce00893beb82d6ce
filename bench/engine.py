"""The batched engine against the loop: samples x nets per second, from one run.

Populations: (a) the 18 sigmoid MLPs of the 2017 demo; (b) random populations of 18, 64 and
256 genomes from the logbits recipe's space, each after a few random mutations (skips, cuts,
mixed activations, as evolution makes them); (c) a wide population, 64 nets of 256x3 ReLU.
Each is trained by both engines at mix_every 1 and 4, race off, on the same logbits batches.
Printed per row: samples x nets per second of each engine (whole engine calls, packing and the
final evaluation included), the ratio, and the useful GFLOP/s (matrix products of the real,
unpadded nets: forward and backward of training, forward of validation) as a percentage of a
1024x1024 matmul measured in the same run. The table is also written to
``bench/results/engine.md`` and ``.json`` (``--results DIR`` for another folder).

    .venv/bin/python bench/engine.py                  # about 5 minutes on 1 thread
    .venv/bin/python bench/engine.py --device cuda    # on a GPU
    .venv/bin/python bench/engine.py --json           # last line: one JSON object
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
from record import Record, add_arguments

from neuroevo import recipe
from neuroevo.genome import graph as G
from neuroevo.genome import mutations
from neuroevo.tasks import logbits
from neuroevo.training import engine, mixer

RECIPE = "recipes/logbits.toml"


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


def macs(genome) -> int:
    width = {n: d["width"] for n, d in genome.nodes(data=True)}
    return sum(width[u] * width[v] for u, v in genome.edges)


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


def measure(name, genomes, train, valid, *, steps, batch, every, device) -> float:
    """Seconds of one engine call."""
    members = [engine.Member(g, None, i) for i, g in enumerate(genomes)]
    config = mixer.MixerConfig(race=None, mix_every=every, batch_size=batch)
    _sync(device)
    start = time.perf_counter()
    engine.ENGINES[name](
        members,
        kind="bits",
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
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    record = Record(__file__, args)
    device = torch.device(args.device)
    task = logbits(seed=0)
    rate = matmul_rate(device)
    setting = (
        f"logbits, {args.steps} steps of {args.batch_size}, race off, {args.threads} thread(s), "
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
    }
    if args.only:
        populations = {k: v for k, v in populations.items() if k in args.only}
    for name in ("loop", "batched"):  # first calls pay one-time set-up costs: not timed
        measure(name, demo18(), task.train, task.valid, steps=5, batch=8, every=1, device=device)
    print(
        f"{'population':>10} {'every':>5} {'loop /s':>10} {'batched /s':>11} {'ratio':>6} "
        f"{'loop %mm':>8} {'batched %mm':>11}"
    )
    figures = {"matmul_gflops": rate / 1e9, "threads": args.threads, "device": str(device)}
    for label, genomes in populations.items():
        useful = sum(macs(g) for g in genomes)
        for every in (1, 4):
            seconds = {
                name: measure(
                    name,
                    genomes,
                    task.train,
                    task.valid,
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
    if "demo18_every1" in figures:
        figures["demo18_speedup"] = figures["demo18_every1"]["speedup"]
    if "wide64_every1" in figures:
        figures["wide_pct_of_matmul"] = figures["wide64_every1"]["batched_pct_of_matmul"]
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
