"""Islands on Ray against one population, on logbits, in the same wall time.

Two runs of ``recipes/logbits.toml``, one after the other, each with the same search budget
(``evolution.time_budget``, 200 s by default) and the recipe's final training:

* ``1 island``: the recipe as it is (one population, one torch thread, one core);
* ``2 islands on ray``: ``islands.count = 2`` (a migrant every 5 generations),
  ``run.backend = "ray"`` on a local Ray cluster over the machine's cores (one island a core).

Prints per run the generations completed (island-generations: every island's), their rate per
minute, the best validation metric of the search, the final model's test metric, and what
migration and the Ray backend move: the bytes of one migrant (genome JSON and safetensors
weights) at logbits' sizes, and of an island's state, which travels to its worker and back
every generation. Writes the same to ``bench/results/islands.md`` and ``.json``
(``--results DIR`` for another folder).

    .venv/bin/pip install -c constraints.txt -e '.[ray]'
    .venv/bin/python bench/islands.py                       # about 15 minutes
    .venv/bin/python bench/islands.py --seconds 30 --set final.final_steps=2000  # smoke
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import Record, add_arguments
from safetensors.torch import load_file

from neuroevo.genome import graph as G
from neuroevo.search.individuals import Migrant
from neuroevo.search.islands import _pack
from neuroevo.storage import checkpoint, rundir

ROOT = Path(__file__).resolve().parent.parent
RUNS = {
    "1 island": [],
    "2 islands on ray": ["islands.count=2", 'run.backend="ray"'],
}


def run(out: Path, seconds: float, seed: int, extra: list[str]) -> tuple[dict, float]:
    sets = [
        f"evolution.time_budget={seconds}", "run.time_limit=0", f"run.seed={seed}",
        "run.report=false", *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "neuroevo.cli", "evolve", str(ROOT / "recipes" / "logbits.toml"),
         "--out", str(out), "--quiet", *(a for s in sets for a in ("--set", s))],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return rundir.read_summary(out), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=200.0, help="search budget of each run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], dest="overrides",
                        metavar="KEY=VALUE", help="a recipe override for both runs")  # fmt: skip
    add_arguments(parser)
    args = parser.parse_args()
    record = Record(__file__, args)
    table = runs_table(record)
    print(
        f"{'run':>18} {'generations':>11} {'per minute':>10} {'best valid':>10} "
        f"{'test':>7} {'search s':>8} {'wall s':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in RUNS.items():
            out = Path(tmp) / name.replace(" ", "-")
            summary, wall = run(out, args.seconds, args.seed, [*extra, *args.overrides])
            history = rundir.read_history(out)
            island_generations = len({(r["generation"], r.get("island", 0)) for r in history})
            best = max(r["validation_metric"] or 0.0 for r in history)
            rate = island_generations / summary["search_seconds"] * 60
            print(
                f"{name:>18} {island_generations:>11} {rate:>10.1f} {best:>10.4f} "
                f"{summary['best']['test_metric']:>7.4f} {summary['search_seconds']:>8.0f} "
                f"{wall:>7.0f}",
                flush=True,
            )
            table.add(
                name,
                island_generations,
                rate,
                best,
                summary["best"]["test_metric"],
                summary["search_seconds"],
                wall,
            )
            record.threads(summary.get("threads"))  # the runs' (each island's), not this one's
            if summary["islands"] > 1:
                snapshot = checkpoint.load_latest(out)
                island = snapshot.state["islands"][0]
                prefix = "island.0."
                tensors = {
                    k[len(prefix) :]: v for k, v in snapshot.tensors.items() if k.startswith(prefix)
                }
                packed = _pack(checkpoint.Snapshot(snapshot.generation, island, tensors))
                state_bytes = len(packed["state"]) + len(packed["tensors"])
                best_dir = out / "best"
                genome = json.loads((best_dir / "genome.json").read_text())
                migrant = Migrant.of(
                    G.from_dict(genome), load_file(str(best_dir / "weights.safetensors")), 0
                )
                moved = (
                    f"one migrant (the winner, {summary['best']['params']:,} parameters):"
                    f" {migrant.size:,} bytes; an island's state: {state_bytes:,} bytes each "
                    "way per generation"
                )
                print(f"{'':>18} {moved}")
                record.note(f"{name}: {moved}")
    record.write()


def runs_table(record: Record):
    """The line printed per run."""
    return record.table(
        "One population against islands on Ray, the same search budget",
        [
            "run",
            "generations",
            ("per minute", ".1f"),
            ("best valid", ".4f"),
            ("test", ".4f"),
            ("search s", ".0f"),
            ("wall s", ".0f"),
        ],
    )


if __name__ == "__main__":
    main()
