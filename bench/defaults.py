"""The mixer's defaults against the previous ones, in the same run: whole searches, test scores.

For each case two ``neuroevo evolve`` processes start together, each on one torch thread (one
core each on a 2-core machine), on the same recipe and seed: **now**, the recipe as it is, and
**previous**, the same recipe with the mixer settings it had before the ``metric`` rule
(``--set`` overrides, :data:`PREVIOUS`). Cases: ``recipes/logbits.toml`` (the quick start's
10-minute run) and scikit-learn's bundled data sets as plain CSV files with every other key at
its default (as ``bench/csv_vs_sklearn.py`` writes them). Prints each case's test metric, the
generations each search completed and the medians; writes them to ``bench/results/defaults.md``
and ``.json`` (``--results DIR`` for another folder).

    .venv/bin/python bench/defaults.py                      # about 45 minutes
    .venv/bin/python bench/defaults.py --logbits-seeds --csv iris --seeds 0   # one CSV case
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from csv_vs_sklearn import SETS, TABLE, write_csv
from record import ROOT, Record, add_arguments

from neuroevo.training import mixer

#: the ``[mixer]`` settings before the ``metric`` rule: the ``experts`` rule on a batch of
#: ``batch_size`` rows every step, and a race halving the field at 1/4, 1/2 and 3/4
RACE = mixer.STEPPING_RACE
PREVIOUS = [
    "mixer.rule='experts'",
    "mixer.mix_every=1",
    "mixer.mix_rows=0",
    f"mixer.race_points={list(RACE.points)}",
    f"mixer.race_rule='{RACE.rule}'",
    f"mixer.race_keep={RACE.keep}",
]
#: what ``recipes/logbits.toml`` set before: its own rule and interval, the race as above
PREVIOUS_LOGBITS = [*PREVIOUS[3:], "mixer.rule='projected-gradient'", "mixer.mix_every=4",
                    "mixer.mix_rows=0"]  # fmt: skip
VARIANTS = ("now", "previous")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logbits-seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--csv", nargs="*", default=TABLE, choices=list(SETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="CSV seeds")
    add_arguments(parser)
    args = parser.parse_args()
    record = Record(__file__, args)
    table = record.table(
        "Test metric per case, the defaults now and before",
        [
            "case",
            ("now", ".4f"),
            ("previous", ".4f"),
            ("gens now", "d"),
            ("gens previous", "d"),
            ("seconds now", ".0f"),
            ("seconds previous", ".0f"),
        ],
        note="two searches at once, one core and one torch thread each; the same seed",
    )
    print(f"{'case':>12} {'now':>8} {'previous':>8} {'gens':>9} {'seconds':>9}")
    by_group: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = [("logbits", ROOT / "recipes" / "logbits.toml", s, PREVIOUS_LOGBITS)
                 for s in args.logbits_seeds]  # fmt: skip
        for name in args.csv:
            path = write_csv(name, folder)
            recipe = folder / f"{name}.toml"
            recipe.write_text(f'[task]\npath = "{path.name}"\ntarget = "class"\n')
            cases += [(name, recipe, s, PREVIOUS) for s in args.seeds]
        for name, recipe, seed, previous in cases:
            runs = {v: folder / f"{name}-{seed}-{v}" for v in VARIANTS}
            overrides = {"now": [], "previous": previous}
            procs = [subprocess.Popen(command(recipe, runs[v], seed, overrides[v]),
                                      stdout=subprocess.DEVNULL) for v in VARIANTS]  # fmt: skip
            for p in procs:
                if p.wait() != 0:
                    raise SystemExit(f"{name}/{seed}: a run failed (exit {p.returncode})")
            s = {v: json.loads((runs[v] / "summary.json").read_text()) for v in VARIANTS}
            test = [s[v]["best"]["test_metric"] for v in VARIANTS]
            gens = [s[v]["generations_completed"] for v in VARIANTS]
            secs = [s[v]["wall_seconds"] for v in VARIANTS]
            label = f"{name}/{seed}"
            print(f"{label:>12} {test[0]:>8.4f} {test[1]:>8.4f} {gens[0]:>4} {gens[1]:>4} "
                  f"{secs[0]:>4.0f} {secs[1]:>4.0f}", flush=True)  # fmt: skip
            table.add(label, *test, *gens, *secs)
            by_group.setdefault(name, []).append((test[0], test[1]))
            record.threads(1)
    for name, rows in by_group.items():
        now = statistics.median(r[0] for r in rows)
        before = statistics.median(r[1] for r in rows)
        line = (
            f"{name}: median test metric now {now:.4f}, previous {before:.4f} "
            f"({100 * (now - before):+.1f} points)"
        )
        print(line)
        record.note(line)
    record.write()


def command(recipe: Path, out: Path, seed: int, overrides: list[str]) -> list[str]:
    """One search: ``neuroevo evolve`` on one torch thread, quiet."""
    sets = [a for o in [f"run.seed={seed}", "run.threads=1", *overrides] for a in ("--set", o)]
    return [sys.executable, "-m", "neuroevo.cli", "evolve", str(recipe), "--out", str(out),
            "--quiet", *sets]  # fmt: skip


if __name__ == "__main__":
    main()
