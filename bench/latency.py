"""How much a measured batch-1 latency moves: the noise of the ``latency_ms`` objective.

For three nets of the logbits space (16-[16]-16, 16-[64, 64]-16 and 16-[256 x 4]-16, ReLU)
``neuroevo.training.latency.measure`` runs ``--repeats`` times on an idle machine and again
with one more CPU-bound process (a busy core), one torch thread. Printed per net and setting:
the median, the smallest and largest time, and the spread (largest over smallest); also
written to ``bench/results/latency.md`` and ``.json`` (``--results DIR`` for another folder).

    .venv/bin/python bench/latency.py         # about 10 seconds
"""

from __future__ import annotations

import argparse
import statistics

import torch
from record import Record, add_arguments, busy_core

from neuroevo.genome import graph as G
from neuroevo.training import latency

NETS = {"16-[16]-16": [16], "16-[64, 64]-16": [64, 64], "16-[256 x 4]-16": [256] * 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    record = Record(__file__, args)
    record.threads(1)
    table = record.table(
        "batch-1 latency per measurement, ms",
        [
            "net",
            "machine",
            ("median", ".4f"),
            ("least", ".4f"),
            ("most", ".4f"),
            ("spread", ".2f"),
        ],
    )
    for machine, busy in (("idle", False), ("a busy core", True)):
        with busy_core(busy):
            for name, hidden in NETS.items():
                genome = G.mlp(16, 16, hidden, "relu", lr=1e-3)
                times = [latency.measure(genome) for _ in range(args.repeats)]
                row = (statistics.median(times), min(times), max(times), max(times) / min(times))
                table.add(name, machine, *row)
                print(f"{name} ({machine}): median {row[0]:.4f} ms, {row[1]:.4f}..{row[2]:.4f}")
    record.write()


if __name__ == "__main__":
    main()
