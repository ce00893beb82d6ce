"""What the race saves when it keeps the front: the share of a generation's net-steps each
race trains, with one objective and with two.

``recipes/logbits.toml`` for ``--generations`` generations (``run.time_limit = 0``, the same
seed), three ways: one objective with the race (the default), ``objectives = ["metric",
"params"]`` with the race (which also keeps every net no live net dominates on score and
parameters), and two objectives without a race (``mixer.race_points = []``). From each run's
``history.jsonl``: the net-steps trained over those of a run without a race (nets x
``mixer.steps``, per generation), the nets that finish a mixer run, and the mixer time per
generation. Printed and written to ``bench/results/race_front.md`` and ``.json``
(``--results DIR`` for another folder).

    .venv/bin/python bench/race_front.py          # about 3 minutes on one thread
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from record import Record, add_arguments

from neuroevo.storage import rundir

ROOT = Path(__file__).resolve().parent.parent
WAYS = {
    "one objective, race": [],
    "metric and params, race keeps the front": ['evolution.objectives=["metric","params"]'],
    "metric and params, no race": [
        'evolution.objectives=["metric","params"]',
        "mixer.race_points=[]",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    add_arguments(parser)
    args = parser.parse_args()
    record = Record(__file__, args)
    record.threads(1)  # the runs' own run.threads
    table = record.table(
        f"logbits, {args.generations} generations of 18 nets, seed {args.seed}",
        [
            "run",
            ("net-steps trained", ".0%"),
            ("nets finishing", ".1f"),
            ("mixer s / generation", ".2f"),
            ("best validation", ".4f"),
        ],
    )
    for name, sets in WAYS.items():
        with tempfile.TemporaryDirectory() as tmp:
            common = [
                f"run.seed={args.seed}",
                "run.time_limit=0",
                f"evolution.generations={args.generations}",
                "final.final_steps=0",
                "run.report=false",
            ]
            command = [sys.executable, "-m", "neuroevo.cli", "evolve"]
            command += [str(ROOT / "recipes" / "logbits.toml"), "--out", f"{tmp}/run", "--quiet"]
            command += [f"--set={s}" for s in common + sets]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            history = [json.loads(line) for line in open(f"{tmp}/run/history.jsonl")]
            steps = max(r["steps_trained"] for r in history)  # nets that finish train them all
            run = Path(f"{tmp}/run")
            seconds = [
                rundir.read_mixing(run, g)[1]["seconds"] for g in rundir.mixing_generations(run)
            ]
        share = sum(r["steps_trained"] for r in history) / (len(history) * steps)
        finishing = sum(r["steps_trained"] == steps for r in history) / args.generations
        best = max(r["validation_metric"] or 0.0 for r in history)
        table.add(name, share, finishing, statistics.mean(seconds), best)
        print(f"{name}: {share:.0%} of the net-steps, {finishing:.1f} nets finish, best {best:.4f}")
    record.write()


if __name__ == "__main__":
    main()
