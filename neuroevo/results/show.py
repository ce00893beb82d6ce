"""``neuroevo show``: a run, finished or not, in a few lines of text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neuroevo.errors import printable
from neuroevo.results import records
from neuroevo.results.records import num
from neuroevo.results.summary import Final, Summary, read
from neuroevo.storage import rundir

__all__ = ["describe", "final_model"]

#: rows of the table of the best nets
TOP = 10

#: a run directory's files ``show`` lists where present, with what each is for
FILES = [
    ("best/", "the best net: `neuroevo predict`, `neuroevo.load`, `neuroevo export`"),
    ("front/", "the front, a model per member: the same with `--member N` (`member=N`)"),
    ("report.html", "plots and tables (`neuroevo report` draws it again)"),
    ("history.jsonl", "every net of every generation"),
    ("checkpoints/", "`neuroevo resume` goes on from here"),
    ("verify.json", "`neuroevo verify`"),
]


def final_model(final: Final | None) -> str:
    """What a finished run's model is, in words: the best net or an ensemble, and the refit
    (``final``: :attr:`Summary.final`; None reads as the best net after final training)."""
    final = final or Final()
    if final.choice == "ensemble":
        what = f"an ensemble of {len(final.members)} nets "
        what += f"({', '.join(f'#{m}' for m in final.members)})"
        its = "their"
    elif final.choice == "front":
        what, its = "the front member final.pick names", "its"
    else:
        what, its = "the best net", "its"
    refit = final.refit
    if not refit:
        return f"{what}, after {its} final training"
    steps = refit.get("steps") or []
    folds = refit.get("folds")
    if folds:
        oof = refit.get("out_of_fold_metric")
        return (
            f"{what}, bagged: {len(steps)} copies trained from fresh weights, each on "
            f"{folds - 1} of {folds} folds of the {refit['rows']:,} training and validation "
            f"rows and stopped by the fold it left out (out-of-fold {num(oof)})"
        )
    if not any(steps):
        return (
            f"{what}, with {its} search weights: no step of final training beat them on "
            f"validation, so the refit on {refit['rows']:,} rows had 0 steps to train"
        )
    counts = "/".join(f"{n:,}" for n in steps)
    return f"{what}, refit on {refit['rows']:,} training and validation rows for {counts} steps"


def describe(path: str | Path, *, top: int = TOP) -> str:
    """``neuroevo show``: a run, finished or not, in a few lines of text."""
    path = Path(path)
    records.check_run(path)
    history = records.read_history(path)
    summary = read(path)
    scored = records.best_records(history)
    lines = [f"run {path}"]
    if summary:
        metric = summary.metric
        lines += _finished(summary)
    else:
        recorded = rundir.mixing_generations(path)
        metric = records.metric_of(path, recorded[-1]) if recorded else "validation metric"
        generations = max(r["generation"] for r in history) + 1
        lines.append(
            f"  unfinished: {generations} generation(s) in the history, no final training yet "
            f"(go on with `neuroevo resume {path}`)"
        )
    lines += _top(scored[:top], metric)
    lines.append("  files:")
    for name, what in FILES:
        if (path / name.rstrip("/")).exists():
            lines.append(f"    {path / name}  {what}")
    # text from the run directory (a task, a signature, its own name) reaches the terminal
    # with its control characters escaped: an escape sequence in it is shown, never obeyed
    return "\n".join(printable(line) for line in lines)


def _finished(summary: Summary) -> list[str]:
    best, metric = summary.best, summary.metric
    task = "?" if summary.task is None else summary.task
    lines = [
        f"  finished: {summary.generations_completed} generations, stopped by "
        f"{summary.stopped_by}; {summary.timing()}; seed {summary.seed}, "
        f"{summary.engine} engine on {summary.device}",
        f"  task {task}: test {metric} {num(best.test_metric)}, "
        f"validation {num(best.validation_metric)}",
        f"  best #{best.id} (generation {best.generation + 1}, {best.params:,} "
        f"parameters): {best.signature}",
        f"  final model: {final_model(summary.final)}",
    ]
    if summary.islands > 1:
        island = "?" if best.island is None else best.island
        lines.append(f"  {summary.islands} islands; the best net from island {island}")
    if summary.front:
        lines += _front(summary.front, metric)
    return lines


def _front(front: list[dict[str, Any]], metric: str) -> list[str]:
    """The table of the front of a run with several objectives (best/ marked)."""
    timed = any("latency_ms" in m for m in front)
    lines = [
        f"  front: {len(front)} members, none beaten on every objective "
        "(`--member N` to predict or export one)",
        f"    {'member':>6} {'id':>6} {'test':>8} {'valid':>8} {'params':>9} {'macs':>10}"
        + (f" {'ms':>8}" if timed else "")
        + "  net",
    ]
    for m in front:
        mark = "  <- best/" if m["picked"] else ""
        ms = f" {num(m.get('latency_ms'), '.4f'):>8}" if timed else ""
        lines.append(
            f"    {m['member']:>6} {m['id']:>6} {num(m['test_metric']):>8} "
            f"{num(m['validation_metric']):>8} {m['params']:>9,} {m['macs']:>10,}{ms}  "
            f"{m['signature']}{mark}"
        )
    return lines


def _top(scored: list[dict[str, Any]], metric: str) -> list[str]:
    """The table of the best nets (``scored``: one record each, best first)."""
    lines = [f"  top {len(scored)} by validation {metric}:"]
    islands = any("island" in r for r in scored)
    lines.append(
        f"    {'id':>6}{' island' if islands else ''} {'gen':>4} {metric:>12} {'params':>9}  net"
    )
    for r in scored:
        island = f" {r.get('island', ''):>6}" if islands else ""
        lines.append(
            f"    {r['id']:>6}{island} {r['generation'] + 1:>4} {num(r['validation_metric']):>12} "
            f"{r['params']:>9,}  {r['signature']}"
        )
    return lines
