"""The report of a run: ``plots/`` and one self-contained ``report.html`` in its directory.

``neuroevo report RUN_DIR`` draws it, and so does every ``evolve``/``resume`` at its end (unless
``run.report = false``), after the run's results are written: a failure to draw is a warning,
never a failed run. What it reads: ``history.jsonl`` (every individual of every generation),
``mixing/gen-N.safetensors`` (each mixer run's scores and mixing weights, recorded by the run),
``summary.json`` and ``best/genome.json`` of a finished run, and ``verify.json`` where
``neuroevo verify`` left one. The plots (:mod:`neuroevo.results.plots` draws them):

``race.gif``          the mixing weights over one generation's mixer run (the last by default)
``scores.png``        each net's score over that run, race points and retirements marked
``progress.png``      best and mean validation metric per generation, the final test point
``lineage.png``       the best net's ancestors back to generation 1, with each operator
``architecture.png``  the best net's graph
``pareto.png``        every net's parameters against its validation metric, the Pareto front
``verify.png``        drawn by ``neuroevo verify``: mixer fitness against training alone
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neuroevo.errors import NeuroevoError, printable
from neuroevo.genome import graph as G
from neuroevo.results import records
from neuroevo.results.records import noise_note, num
from neuroevo.results.summary import Summary
from neuroevo.results.summary import read as read_summary
from neuroevo.storage import fileio, rundir

__all__ = ["make", "write", "write_safely"]

log = logging.getLogger("neuroevo")

#: rows of the report's table of the best nets
TOP = 10
MAX_GENOME_BYTES = 64 << 20
#: the most the report draws of a mixer run, however large its record (a hand-made one can
#: hold any number of frames and nets): frames of race.gif, nets in race.gif and scores.png
#: (those that stayed longest in the race), points of each score line, race points, outputs
#: per net and bars per frame (more: each net's mean weight over its outputs, one bar a net)
DRAWN_FRAMES = 48
DRAWN_NETS = 30
DRAWN_POINTS = 2000
DRAWN_RACE_POINTS = 100
DRAWN_OUTPUTS = 16
DRAWN_BARS = 320


def make(path: str | Path, *, generation: int | None = None) -> list[Path]:
    """Draw the report of the run in ``path`` under its lock (``generation``: whose mixer run
    to animate, counted from 0; default the last). Returns the files written."""
    path = Path(path)
    records.check_run(path)
    with rundir.locked(path):
        return write(path, generation=generation)


def write_safely(path: Path) -> list[Path]:
    """:func:`write` for the end of a run: a failure is logged as a warning, not raised."""
    try:
        files = write(path)
    except Exception as exc:  # noqa: BLE001 - drawing must never fail a finished run
        log.warning(
            "no report: %s (the run's results are written; `neuroevo report %s` tries again)",
            printable(str(exc)),
            path,
        )
        return []
    log.info("report: %s", path / "report.html")
    return files


def write(path: Path, *, generation: int | None = None) -> list[Path]:
    """Draw every plot and ``report.html`` of the run in ``path`` (the caller holds its
    lock). Errors (a missing history, a run directory of an older format) are one line."""
    from neuroevo.results import plots  # matplotlib loads only when something is drawn

    records.check_run(path)
    history = records.read_history(path)
    recorded = rundir.mixing_generations(path)
    if not recorded:
        raise NeuroevoError(
            f"{path}: has no mixing records (mixing/): the run was written by a neuroevo from "
            "before runs recorded their mixer runs; run its recipe again to get a report"
        )
    last = max(r["generation"] for r in history)
    generation = last if generation is None else generation
    if generation not in recorded:
        raise NeuroevoError(
            f"{path}: generation {generation + 1} has no mixing record (recorded: "
            f"{_ranges(recorded)})"
        )
    summary = read_summary(path)
    metric = summary.metric if summary else records.metric_of(path, recorded[-1])
    drawn = _race_plots(plots, path, generation)
    generations = sorted({r["generation"] for r in history})
    drawn["progress.png"] = _progress_plot(plots, path, history, recorded, summary, metric)
    scored = records.best_records(history)
    best_id = summary.best.id if summary else (scored[0]["id"] if scored else history[-1]["id"])
    chain = _lineage(_first_records(history), best_id)
    drawn["lineage.png"] = plots.lineage_png(chain, metric=metric)
    if summary:
        drawn["architecture.png"] = plots.architecture_png(_best_genome(path))
    if scored:
        drawn["pareto.png"] = _pareto_plot(plots, scored, best_id, metric, history)
    volumes = {r["generation"]: r["hypervolume"] for r in history if "hypervolume" in r}
    if volumes:  # a run with several objectives
        drawn["hypervolume.png"] = plots.hypervolume_png(list(volumes), list(volumes.values()))
    written = [rundir.write_plot(path, name, data) for name, data in drawn.items()]
    page = _html(
        path,
        summary=summary,
        metric=metric,
        generation=generation,
        generations=len(generations),
        images={**drawn, **_existing(path / "plots" / "verify.png")},
        top=scored[:TOP],
        chain=chain,
        verify=records.read_verify(path),
    )
    written.append(rundir.write_report(path, page))
    return written


def _race_plots(plots: Any, path: Path, generation: int) -> dict[str, bytes]:
    """``race.gif`` and ``scores.png`` of ``generation``'s mixer run."""
    tensors, meta = records.read_mixing(path, generation)
    race = _drawn_race(tensors, meta)
    title = f"generation {generation + 1}, {meta['rule']} rule{race['shown']}"
    gif = plots.race_gif(
        race["frame_steps"],
        race["weights"],
        race["labels"],
        race["retired_at"],
        steps=meta["steps"],
        title=title,
    )
    scores = plots.scores_png(
        race["score_steps"],
        race["scores"],
        race["labels"],
        race["retired_at"],
        race["race_steps"],
        title=f"scores over the mixer run of {title}",
    )
    return {"race.gif": gif, "scores.png": scores}


def _progress_plot(
    plots: Any,
    path: Path,
    history: list[dict[str, Any]],
    recorded: list[int],
    summary: Summary | None,
    metric: str,
) -> bytes:
    """``progress.png``: best and mean validation metric and wall time per generation."""
    generations = sorted({r["generation"] for r in history})
    seconds = {g: records.read_mixing(path, g)[1].get("seconds") for g in recorded}
    by_generation: dict[int, list[float]] = {g: [] for g in generations}
    for r in history:
        if r["validation_metric"] is not None:
            by_generation[r["generation"]].append(r["validation_metric"])
    best_of, mean_of = [], []
    for g in generations:
        values = by_generation[g]
        best_of.append(max(values) if values else None)
        mean_of.append(sum(values) / len(values) if values else None)
    return plots.progress_png(
        generations,
        best_of,
        mean_of,
        [seconds.get(g) for g in generations],
        metric=metric,
        test=summary.best.test_metric if summary else None,
        final_validation=summary.best.validation_metric if summary else None,
        refit=bool(summary and summary.final and summary.final.refit),
    )


def _pareto_plot(
    plots: Any, scored: list[dict[str, Any]], best_id: int, metric: str, history: list[dict]
) -> bytes:
    params = [r["params"] for r in scored]
    metrics = [r["validation_metric"] for r in scored]
    front = plots.pareto_front(params, metrics)
    at = next((j for j, r in enumerate(scored) if r["id"] == best_id), 0)
    fronts = []
    if any("hypervolume" in r for r in history):  # several objectives: the front's progress
        last = max(r["generation"] for r in history)
        for g in sorted({round(last * f) for f in (0.0, 0.25, 0.5, 0.75)} - {last}):
            seen = [
                r for r in history if r["generation"] <= g and r["validation_metric"] is not None
            ]
            xs, ys = [r["params"] for r in seen], [r["validation_metric"] for r in seen]
            then = plots.pareto_front(xs, ys)
            fronts.append((g, [xs[j] for j in then], [ys[j] for j in then]))
    return plots.pareto_png(
        params, metrics, [r["born"] for r in scored], front, at, metric=metric, fronts=fronts
    )


def _drawn_race(tensors: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """What the report draws of a mixer run: at most :data:`DRAWN_NETS` nets (those that stayed
    longest in the race, then by last score), :data:`DRAWN_FRAMES` frames,
    :data:`DRAWN_POINTS` points of each score line and :data:`DRAWN_RACE_POINTS` race points,
    each spread evenly over the run, the last kept; one bar a net (its mean weight) where its
    outputs are more than :data:`DRAWN_OUTPUTS` or the bars more than :data:`DRAWN_BARS`."""
    import numpy as np

    weights = np.nan_to_num(tensors["weights"].numpy(), nan=0.0, posinf=0.0, neginf=0.0)
    scores = np.nan_to_num(tensors["scores"].numpy(), nan=0.0, posinf=0.0, neginf=0.0)
    retired_at, ids = meta["retired_at"], meta["ids"]
    k = len(ids)
    nets = list(range(k))
    shown = ""
    if k > DRAWN_NETS:
        last = scores[-1]
        longest = sorted(
            nets,
            key=lambda i: (retired_at[i] is not None, -(retired_at[i] or 0), -float(last[i]), i),
        )
        nets = sorted(longest[:DRAWN_NETS])
        shown = f"\n(the {DRAWN_NETS} of its {k:,} nets longest in the race)"
    frames = _spread(weights.shape[0], DRAWN_FRAMES)
    points = _spread(scores.shape[0], DRAWN_POINTS)
    weights = weights[frames][:, nets]
    if weights.shape[-1] > DRAWN_OUTPUTS or weights.shape[-1] * len(nets) > DRAWN_BARS:
        weights = weights.mean(axis=-1, keepdims=True)
    race_steps = meta["race_steps"]
    return {
        "frame_steps": tensors["frame_steps"][frames].tolist(),
        "weights": weights,
        "score_steps": tensors["score_steps"][points].tolist(),
        "scores": scores[points][:, nets],
        "labels": [f"#{ids[i]}" for i in nets],
        "retired_at": [retired_at[i] for i in nets],
        "race_steps": [race_steps[i] for i in _spread(len(race_steps), DRAWN_RACE_POINTS)],
        "shown": shown,
    }


def _spread(n: int, most: int) -> list[int]:
    """At most ``most`` of ``range(n)``, evenly spread, the first and the last kept."""
    if n <= most:
        return list(range(n))
    return sorted({round(j * (n - 1) / (most - 1)) for j in range(most)})


# --------------------------------------------------------------------------- reading


def _ranges(values: list[int]) -> str:
    return f"{values[0] + 1}-{values[-1] + 1}" if len(values) > 1 else str(values[0] + 1)


def _first_records(history: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each individual's record of the generation it was first trained in."""
    first: dict[int, dict[str, Any]] = {}
    for record in history:
        first.setdefault(record["id"], record)
    return first


def _lineage(first: Mapping[int, dict[str, Any]], best_id: int) -> list[dict[str, Any]]:
    """The ancestors of ``best_id``, oldest first, each as first trained."""
    chain, seen, at = [], set(), best_id
    while at is not None and at in first and at not in seen:
        seen.add(at)
        chain.append(first[at])
        at = first[at]["parent"]
    return chain[::-1]


def _best_genome(path: Path):
    file = path / "best" / "genome.json"
    text = fileio.read_text(file, limit=MAX_GENOME_BYTES, what="genome")
    return G.from_json(text, source=str(file))  # deep or broken JSON: InvalidGenome naming it


def _existing(png: Path) -> dict[str, bytes]:
    if png.is_file() and not png.is_symlink():
        return {png.name: fileio.read_bytes(png, limit=64 << 20, what="plot")}
    return {}


# --------------------------------------------------------------------------- the page

_CAPTIONS = {
    "race.gif": "The mixing-weight race: each bar group is a net, one bar per output (or its "
    "mean weight where outputs are many); the weight a net earns is its fitness. Nets turn "
    "grey when they leave the race.",
    "scores.png": "Each net's score (its mixing weight; smoothed, for the rules that step) over "
    "the same mixer run; dashed lines are race points, a cross marks a net leaving.",
    "progress.png": "Best and mean validation metric per generation; the star is the test "
    "metric of the best net after its final training. Below: each generation's wall time.",
    "lineage.png": "The best net's ancestors back to generation 1, each with the mutation "
    "that made it and its validation metric when first trained.",
    "architecture.png": "The best net: layers left to right by depth, skip connections in orange.",
    "pareto.png": "Every net evaluated: parameters against validation metric; the Pareto "
    "front joins the nets no smaller net beats (with several objectives, thin lines: the "
    "front as it stood after earlier generations).",
    "hypervolume.png": "The front's hypervolume per generation: the area it dominates up to a "
    "metric of 0 and each cost at its constraint (or the largest net of the space).",
    "verify.png": "neuroevo verify: each net's mixer fitness against the validation metric it "
    "reaches trained alone.",
}

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
td, th { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
code { font-size: 0.85rem; }
figure { margin: 1.5rem 0; } img { max-width: 100%; }
figcaption { color: #555; font-size: 0.9rem; }
"""


# every value from the run directory is escaped where it enters the page: each cell is plain
# text, escaped here, or text in <code>, escaped here too


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _td(value: Any, *, code: bool = False) -> str:
    return f"<td><code>{_e(value)}</code></td>" if code else f"<td>{_e(value)}</td>"


def _html(
    path: Path,
    *,
    summary: Summary | None,
    metric: str,
    generation: int,
    generations: int,
    images: Mapping[str, bytes],
    top: list[dict[str, Any]],
    chain: list[dict[str, Any]],
    verify: dict[str, Any] | None,
) -> str:
    rows = _summary_rows(summary, metric, generations)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>neuroevo report: {_e(path.name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>neuroevo run <code>{_e(path.name)}</code></h1>",
        "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>",
    ]
    if verify:
        parts.append(_verify_paragraph(verify))
    parts += _figures(images, generation)
    parts += _top_table(top, metric)
    parts += _lineage_table(chain, metric)
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def _summary_rows(summary: Summary | None, metric: str, generations: int) -> list[tuple[str, str]]:
    """The rows of the page's first table: the run's summary (each value escaped)."""
    if not summary:
        state = f"unfinished: {generations} generation(s) completed, no final training yet"
        return [("state", _e(state)), ("metric", _e(metric))]
    best = summary.best
    rows = [
        ("task", _e("?" if summary.task is None else summary.task)),
        ("metric", _e(metric)),
        (f"test {metric}", _e(num(best.test_metric))),
        (f"validation {metric}", _e(num(best.validation_metric))),
        ("best net", f"#{_e(best.id)} <code>{_e(best.signature)}</code>"),
        ("parameters", _e(f"{best.params:,}")),
        (
            "generations",
            _e(f"{summary.generations_completed} (stopped by {summary.stopped_by})"),
        ),
        ("time", _e(summary.timing())),
        ("seed", _e(summary.seed)),
        ("engine, device", _e(f"{summary.engine}, {summary.device}")),
    ]
    if summary.islands > 1:
        island = "?" if best.island is None else best.island
        rows.append(("islands", _e(f"{summary.islands} (the best net from island {island})")))
    return rows


def _verify_paragraph(verify: dict[str, Any]) -> str:
    yardsticks = ""
    if verify.get("kendall_ceiling") is not None:
        yardsticks = (
            f" For scale: two alone runs of the same nets agree at tau "
            f"{num(verify.get('kendall_ceiling'), '+.3f')} (the noise ceiling), ranking by "
            f"parameter count reaches {num(verify.get('kendall_params'), '+.3f')}."
        )
    if verify.get("valid_rows"):  # checked: a count
        rows, ceiling = verify["valid_rows"], verify.get("kendall_ceiling")
        yardsticks += f" Validation rows: {rows} ({noise_note(rows, ceiling)})."
    return _e(
        f"neuroevo verify (generation {verify.get('generation', 0) + 1}): Kendall tau "
        f"{num(verify.get('kendall_fitness'), '+.3f')} between mixer fitness and "
        f"training alone, regret {num(verify.get('regret'))}, alone / mixer time "
        f"{num(verify.get('time_ratio'), '.1f')}x.{yardsticks}"
    ).join(("<p>", "</p>"))


def _figures(images: Mapping[str, bytes], generation: int) -> list[str]:
    """Each plot drawn, in the order of :data:`rundir.PLOTS`, inline with its caption."""
    parts = []
    for name in rundir.PLOTS:
        if name in images:
            kind = "gif" if name.endswith(".gif") else "png"
            data = base64.b64encode(images[name]).decode("ascii")
            caption = _CAPTIONS[name]
            if name == "race.gif":
                caption += f" (generation {generation + 1})"
            parts.append(
                f"<figure><img alt='{_e(name)}' src='data:image/{kind};base64,{data}'>"
                f"<figcaption>{_e(caption)}</figcaption></figure>"
            )
    return parts


def _top_table(top: list[dict[str, Any]], metric: str) -> list[str]:
    parts = [f"<h2>The {len(top)} best nets by validation {_e(metric)}</h2><table>"]
    islands = any("island" in r for r in top)
    parts.append(
        "<tr><th>#</th><th>id</th>"
        + ("<th>island</th>" if islands else "")
        + "<th>generation</th><th>signature</th><th>parameters</th>"
        f"<th>learning rate</th><th>{_e(metric)}</th></tr>"
    )
    for rank, r in enumerate(top, start=1):
        parts.append(
            "<tr>"
            + _td(rank)
            + _td(r["id"])
            + (_td(r.get("island", "")) if islands else "")
            + _td(r["generation"] + 1)
            + _td(r["signature"], code=True)
            + _td(f"{r['params']:,}")
            + _td(f"{r['lr']:.2e}")
            + _td(num(r["validation_metric"]))
            + "</tr>"
        )
    return parts


def _lineage_table(chain: list[dict[str, Any]], metric: str) -> list[str]:
    parts = [
        "</table><h2>Lineage of the best net</h2><table>",
        f"<tr><th>born</th><th>id</th><th>mutation</th><th>signature</th><th>{_e(metric)}</th></tr>",
    ]
    for r in chain:
        parts.append(
            "<tr>"
            + _td(r["born"] + 1)
            + _td(r["id"])
            + _td(r["mutation"] or "-")
            + _td(r["signature"], code=True)
            + _td(num(r["validation_metric"]))
            + "</tr>"
        )
    return parts
