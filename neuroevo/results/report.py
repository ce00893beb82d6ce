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
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neuroevo.errors import NeuroevoError, printable
from neuroevo.genome import graph as G
from neuroevo.storage import fileio, rundir

log = logging.getLogger("neuroevo")

#: what the report reads of each file of a run directory, checked before it is used (see
#: :func:`_check`): a key ending in ``?`` may be absent, a kind ending in ``|null`` may be null
RECORD_FIELDS = {
    "generation": "count",
    "id": "count",
    "parent": "count|null",
    "mutation": "text|null",
    "born": "count",
    "signature": "text",
    "params": "count",
    "lr": "number",
    "validation_metric": "number|null",
    "island?": "count",
}
SUMMARY_FIELDS = {
    "metric": "text",
    "task?": "text",
    "seed": "integer",
    "best": "object",
    "generations_completed": "count",
    "stopped_by": "text",
    "wall_seconds": "number",
    "search_seconds": "number",
    "final_seconds": "number",
    "engine?": "text|null",
    "device?": "text|null",
    "islands?": "count",
    "final?": "object|null",
}
BEST_FIELDS = {
    "id": "count",
    "generation": "count",
    "params": "count",
    "signature": "text",
    "test_metric?": "number|null",
    "validation_metric?": "number|null",
    "island?": "count",
}
FINAL_FIELDS = {"choice?": "text|null", "members?": "counts|null", "refit?": "object|null"}
REFIT_FIELDS = {
    "rows": "count",
    "steps?": "counts|null",
    "folds?": "count|null",
    "out_of_fold_metric?": "number|null",
}
MIXING_FIELDS = {
    "ids": "counts",
    "retired_at": "counts-or-nulls",
    "race_steps": "counts",
    "steps": "count",
    "rule": "text",
    "metric?": "text",
    "seconds?": "number|null",
}
VERIFY_FIELDS = {
    "generation?": "count",
    "kendall_fitness?": "number|null",
    "regret?": "number|null",
    "time_ratio?": "number|null",
}
#: the fields of a history record the report reads
NEEDED = tuple(key for key in RECORD_FIELDS if not key.endswith("?"))
#: rows of the report's table of the best nets
TOP = 10
MAX_GENOME_BYTES = 64 << 20
MAX_VERIFY_BYTES = 64 << 20
#: the longest text the report takes from a run directory (a name, a net's signature), and
#: the largest count (an id, a generation, a net's parameters)
MAX_TEXT = 100_000
MAX_COUNT = 2**53
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
    _check_run(path)
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


def _check_run(path: Path) -> None:
    if not path.is_dir():
        raise NeuroevoError(f"{path}: no such run directory")
    rundir.check_no_links(path)
    if not (path / "history.jsonl").exists():
        raise NeuroevoError(
            f"{path}: no history.jsonl (not a run directory, or no generation completed yet)"
        )


def write(path: Path, *, generation: int | None = None) -> list[Path]:
    """Draw every plot and ``report.html`` of the run in ``path`` (the caller holds its
    lock). Errors (a missing history, a run directory of an older format) are one line."""
    from neuroevo.results import plots  # matplotlib loads only when something is drawn

    _check_run(path)
    history = _read_history(path)
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
    summary = _read_summary(path)
    metric = summary["metric"] if summary else _metric_of(path, recorded[-1])
    drawn: dict[str, bytes] = {}

    tensors, meta = _read_mixing(path, generation)
    race = _drawn_race(tensors, meta)
    title = f"generation {generation + 1}, {meta['rule']} rule{race['shown']}"
    drawn["race.gif"] = plots.race_gif(
        race["frame_steps"],
        race["weights"],
        race["labels"],
        race["retired_at"],
        steps=meta["steps"],
        title=title,
    )
    drawn["scores.png"] = plots.scores_png(
        race["score_steps"],
        race["scores"],
        race["labels"],
        race["retired_at"],
        race["race_steps"],
        title=f"scores over the mixer run of {title}",
    )

    generations = sorted({r["generation"] for r in history})
    seconds = {g: _read_mixing(path, g)[1].get("seconds") for g in recorded}
    by_generation: dict[int, list[float]] = {g: [] for g in generations}
    for r in history:
        if r["validation_metric"] is not None:
            by_generation[r["generation"]].append(r["validation_metric"])
    best_of, mean_of = [], []
    for g in generations:
        values = by_generation[g]
        best_of.append(max(values) if values else None)
        mean_of.append(sum(values) / len(values) if values else None)
    best = summary["best"] if summary else {}
    drawn["progress.png"] = plots.progress_png(
        generations,
        best_of,
        mean_of,
        [seconds.get(g) for g in generations],
        metric=metric,
        test=best.get("test_metric"),
        final_validation=best.get("validation_metric"),
        refit=bool(summary and (summary.get("final") or {}).get("refit")),
    )

    first = _first_records(history)
    scored = _best_records(history)
    best_id = best["id"] if best else (scored[0]["id"] if scored else history[-1]["id"])
    chain = _lineage(first, best_id)
    drawn["lineage.png"] = plots.lineage_png(chain, metric=metric)

    genome = _best_genome(path) if summary else None
    if genome is not None:
        drawn["architecture.png"] = plots.architecture_png(genome)

    if scored:
        params = [r["params"] for r in scored]
        metrics = [r["validation_metric"] for r in scored]
        front = plots.pareto_front(params, metrics)
        at = next((j for j, r in enumerate(scored) if r["id"] == best_id), 0)
        drawn["pareto.png"] = plots.pareto_png(
            params, metrics, [r["born"] for r in scored], front, at, metric=metric
        )

    written = [rundir.write_plot(path, name, data) for name, data in drawn.items()]
    verify_png = path / "plots" / "verify.png"
    page = _html(
        path,
        summary=summary,
        metric=metric,
        generation=generation,
        generations=len(generations),
        images={**drawn, **_existing(verify_png)},
        top=scored[:TOP],
        chain=chain,
        verify=_verify_summary(path),
    )
    written.append(rundir.write_report(path, page))
    return written


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


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return _is_integer(value) and 0 <= value <= MAX_COUNT


#: each kind of :data:`RECORD_FIELDS` and the others: its test, and its name in an error
_KINDS = {
    "count": (_is_count, "a whole number >= 0 (at most 2**53)"),
    "integer": (_is_integer, "a whole number"),
    "number": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        "a finite number",
    ),
    "text": (lambda v: isinstance(v, str) and len(v) <= MAX_TEXT, "text"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "counts": (
        lambda v: isinstance(v, list) and all(map(_is_count, v)),
        "a list of whole numbers >= 0 (at most 2**53)",
    ),
    "counts-or-nulls": (
        lambda v: isinstance(v, list) and all(x is None or _is_count(x) for x in v),
        "a list of whole numbers >= 0 (at most 2**53) or nulls",
    ),
}


def _what(value: Any) -> str:
    """What a JSON value is, in words (never the value itself: it may be huge or hostile)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return str(value) if abs(value) < 1e15 else "a number"
    if isinstance(value, str):
        long = len(value) > MAX_TEXT
        return f"text of {len(value):,} characters (at most {MAX_TEXT:,})" if long else "text"
    return "a list" if isinstance(value, list) else "an object"


def _check(data: Mapping[str, Any], fields: Mapping[str, str], where: str, key: str = "") -> None:
    """Each of ``fields`` of ``data`` holds what it says (see :data:`RECORD_FIELDS`), else one
    error naming ``where`` (the file, the line) and the dotted key (under ``key``)."""
    for name, kind in fields.items():
        optional, name = name.endswith("?"), name.rstrip("?")
        dotted = f"{key}.{name}" if key else name
        if name not in data:
            if optional:
                continue
            raise NeuroevoError(f"{where}: lacks {dotted} (edited, or not written by neuroevo)")
        nullable, kind = kind.endswith("|null"), kind.removesuffix("|null")
        value = data[name]
        test, words = _KINDS[kind]
        if not (test(value) or (nullable and value is None)):
            raise NeuroevoError(
                f"{where}: {dotted} must be {words}{' or null' if nullable else ''}, not "
                f"{_what(value)} (edited, or not written by neuroevo)"
            )


def _read_history(path: Path) -> list[dict[str, Any]]:
    """``history.jsonl``, each record checked (:data:`RECORD_FIELDS`)."""
    history = rundir.read_history(path)
    file = path / "history.jsonl"
    if not history:
        raise NeuroevoError(f"{file}: is empty (no generation completed yet)")
    for number, record in enumerate(history, start=1):
        missing = [key for key in NEEDED if key not in record]
        if missing:
            raise NeuroevoError(
                f"{file}: line {number} lacks {', '.join(missing)} (a history of "
                "an older format, or edited)"
            )
        _check(record, RECORD_FIELDS, f"{file}: line {number}")
    return history


def _read_summary(path: Path) -> dict[str, Any] | None:
    """``summary.json`` checked (:data:`SUMMARY_FIELDS` and those of its parts); None where
    the run is unfinished."""
    file = path / "summary.json"
    if not file.exists():
        return None
    summary = rundir.read_summary(path)
    _check(summary, SUMMARY_FIELDS, str(file))
    _check(summary["best"], BEST_FIELDS, str(file), "best")
    final = summary.get("final")
    if final:
        _check(final, FINAL_FIELDS, str(file), "final")
        if final.get("refit"):
            _check(final["refit"], REFIT_FIELDS, str(file), "final.refit")
    return summary


def _read_mixing(path: Path, generation: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A generation's mixing record (:func:`rundir.read_mixing`), its plain data checked
    (:data:`MIXING_FIELDS`) and its tensors shaped to be drawn."""
    tensors, meta = rundir.read_mixing(path, generation)
    where = str(rundir.mixing_path(path, generation))
    _check(meta, MIXING_FIELDS, where)
    if not len(tensors["frame_steps"]) or not len(tensors["score_steps"]):
        raise NeuroevoError(f"{where}: records no step of the mixer run")
    if tensors["weights"].shape[2] == 0:
        raise NeuroevoError(f"{where}: records the mixing weights of no output")
    return tensors, meta


def _metric_of(path: Path, generation: int) -> str:
    return _read_mixing(path, generation)[1].get("metric", "validation metric")


def _ranges(values: list[int]) -> str:
    return f"{values[0] + 1}-{values[-1] + 1}" if len(values) > 1 else str(values[0] + 1)


def _first_records(history: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each individual's record of the generation it was first trained in."""
    first: dict[int, dict[str, Any]] = {}
    for record in history:
        first.setdefault(record["id"], record)
    return first


def _best_records(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per individual (its best validation metric), best first."""
    best: dict[int, dict[str, Any]] = {}
    for r in history:
        if r["validation_metric"] is None:
            continue
        if r["id"] not in best or r["validation_metric"] > best[r["id"]]["validation_metric"]:
            best[r["id"]] = r
    return sorted(best.values(), key=lambda r: (-r["validation_metric"], r["id"]))


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
    try:
        return G.from_json(text, source=str(file))
    except RecursionError:
        raise NeuroevoError(f"{file}: is not a genome (nested too deeply)") from None


def _existing(png: Path) -> dict[str, bytes]:
    if png.is_file() and not png.is_symlink():
        return {png.name: fileio.read_bytes(png, limit=64 << 20, what="plot")}
    return {}


def _verify_summary(path: Path) -> dict[str, Any] | None:
    """``verify.json`` where ``neuroevo verify`` left one, checked (:data:`VERIFY_FIELDS`)."""
    file = path / "verify.json"
    if not os.path.lexists(file):
        return None
    text = fileio.read_text(file, limit=MAX_VERIFY_BYTES, what="verify report")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise NeuroevoError(f"{file}: is not a verify report ({reason})") from None
    if not isinstance(data, dict):
        raise NeuroevoError(f"{file}: is not a verify report (not a JSON object)")
    _check(data, VERIFY_FIELDS, str(file))
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which neuroevo never writes")


# --------------------------------------------------------------------------- the page

_CAPTIONS = {
    "race.gif": "The mixing-weight race: each bar group is a net, one bar per output (or its "
    "mean weight where outputs are many); the weight a net earns is its fitness. Nets turn "
    "grey when they leave the race.",
    "scores.png": "Each net's score (its smoothed mixing weight) over the same mixer run; "
    "dashed lines are race points, a cross marks a net leaving.",
    "progress.png": "Best and mean validation metric per generation; the star is the test "
    "metric of the best net after its final training. Below: each generation's wall time.",
    "lineage.png": "The best net's ancestors back to generation 1, each with the mutation "
    "that made it and its validation metric when first trained.",
    "architecture.png": "The best net: layers left to right by depth, skip connections in orange.",
    "pareto.png": "Every net evaluated: parameters against validation metric; the Pareto "
    "front joins the nets no smaller net beats.",
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


def _html(
    path: Path,
    *,
    summary: dict[str, Any] | None,
    metric: str,
    generation: int,
    generations: int,
    images: Mapping[str, bytes],
    top: list[dict[str, Any]],
    chain: list[dict[str, Any]],
    verify: dict[str, Any] | None,
) -> str:
    # every value from the run directory is escaped where it enters the page: each cell is
    # plain text, escaped here, or text in <code>, escaped here too
    def e(value: Any) -> str:
        return html.escape(str(value), quote=True)

    def td(value: Any, *, code: bool = False) -> str:
        return f"<td><code>{e(value)}</code></td>" if code else f"<td>{e(value)}</td>"

    rows: list[tuple[str, str]] = []
    if summary:
        best = summary["best"]
        rows += [
            ("task", e(summary.get("task", "?"))),
            ("metric", e(metric)),
            (f"test {metric}", e(_num(best.get("test_metric")))),
            (f"validation {metric}", e(_num(best.get("validation_metric")))),
            ("best net", f"#{e(best['id'])} <code>{e(best['signature'])}</code>"),
            ("parameters", e(f"{best['params']:,}")),
            (
                "generations",
                e(f"{summary['generations_completed']} (stopped by {summary['stopped_by']})"),
            ),
            (
                "time",
                e(
                    f"{summary['wall_seconds']:.0f} s ({summary['search_seconds']:.0f} s "
                    f"search, {summary['final_seconds']:.0f} s final training)"
                ),
            ),
            ("seed", e(summary["seed"])),
            ("engine, device", e(f"{summary.get('engine')}, {summary.get('device')}")),
        ]
        if summary.get("islands", 1) > 1:
            rows.append(("islands", e(f"{summary['islands']} (the best net from island "
                         f"{best.get('island', '?')})")))  # fmt: skip
    else:
        rows += [
            (
                "state",
                e(f"unfinished: {generations} generation(s) completed, no final training yet"),
            ),
            ("metric", e(metric)),
        ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>neuroevo report: {e(path.name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>neuroevo run <code>{e(path.name)}</code></h1>",
        "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>",
    ]
    if verify:
        parts.append(
            e(
                f"neuroevo verify (generation {verify.get('generation', 0) + 1}): Kendall tau "
                f"{_num(verify.get('kendall_fitness'), '+.3f')} between mixer fitness and "
                f"training alone, regret {_num(verify.get('regret'))}, alone / mixer time "
                f"{_num(verify.get('time_ratio'), '.1f')}x."
            ).join(("<p>", "</p>"))
        )
    for name in rundir.PLOTS:
        if name in images:
            kind = "gif" if name.endswith(".gif") else "png"
            data = base64.b64encode(images[name]).decode("ascii")
            caption = _CAPTIONS[name]
            if name == "race.gif":
                caption += f" (generation {generation + 1})"
            parts.append(
                f"<figure><img alt='{e(name)}' src='data:image/{kind};base64,{data}'>"
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
    parts.append(f"<h2>The {len(top)} best nets by validation {e(metric)}</h2><table>")
    islands = any("island" in r for r in top)
    parts.append(
        "<tr><th>#</th><th>id</th>"
        + ("<th>island</th>" if islands else "")
        + "<th>generation</th><th>signature</th><th>parameters</th>"
        f"<th>learning rate</th><th>{e(metric)}</th></tr>"
    )
    for rank, r in enumerate(top, start=1):
        parts.append(
            "<tr>"
            + td(rank)
            + td(r["id"])
            + (td(r.get("island", "")) if islands else "")
            + td(r["generation"] + 1)
            + td(r["signature"], code=True)
            + td(f"{r['params']:,}")
            + td(f"{r['lr']:.2e}")
            + td(_num(r["validation_metric"]))
            + "</tr>"
        )
    parts.append("</table><h2>Lineage of the best net</h2><table>")
    parts.append(
        f"<tr><th>born</th><th>id</th><th>mutation</th><th>signature</th><th>{e(metric)}</th></tr>"
    )
    for r in chain:
        parts.append(
            "<tr>"
            + td(r["born"] + 1)
            + td(r["id"])
            + td(r["mutation"] or "-")
            + td(r["signature"], code=True)
            + td(_num(r["validation_metric"]))
            + "</tr>"
        )
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def _num(value: Any, spec: str = ".4f") -> str:
    return "n/a" if not isinstance(value, (int, float)) else format(value, spec)


# --------------------------------------------------------------------------- the terminal


def final_model(summary: dict[str, Any]) -> str:
    """What a finished run's model is, in words: the best net or an ensemble, and the refit."""
    final = summary.get("final") or {}
    members = final.get("members") or []
    if final.get("choice") == "ensemble":
        what = f"an ensemble of {len(members)} nets ({', '.join(f'#{m}' for m in members)})"
        its = "their"
    else:
        what, its = "the best net", "its"
    refit = final.get("refit")
    if not refit:
        return f"{what}, after {its} final training"
    steps = refit.get("steps") or []
    folds = refit.get("folds")
    if folds:
        oof = refit.get("out_of_fold_metric")
        return (
            f"{what}, bagged: {len(steps)} copies trained from fresh weights, each on "
            f"{folds - 1} of {folds} folds of the {refit['rows']:,} training and validation "
            f"rows and stopped by the fold it left out (out-of-fold {_num(oof)})"
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
    _check_run(path)
    history = _read_history(path)
    summary = _read_summary(path)
    generations = max(r["generation"] for r in history) + 1
    scored = _best_records(history)
    lines = [f"run {path}"]
    if summary:
        best = summary["best"]
        metric = summary["metric"]
        lines += [
            f"  finished: {summary['generations_completed']} generations, stopped by "
            f"{summary['stopped_by']}; {_duration(summary['wall_seconds'])} "
            f"({summary['search_seconds']:.0f} s search, {summary['final_seconds']:.0f} s final "
            f"training); seed {summary['seed']}, {summary.get('engine')} engine on "
            f"{summary.get('device')}",
            f"  task {summary.get('task', '?')}: test {metric} {_num(best.get('test_metric'))}, "
            f"validation {_num(best.get('validation_metric'))}",
            f"  best #{best['id']} (generation {best['generation'] + 1}, {best['params']:,} "
            f"parameters): {best['signature']}",
        ]
        lines.append(f"  final model: {final_model(summary)}")
        if summary.get("islands", 1) > 1:
            lines.append(
                f"  {summary['islands']} islands; the best net from island "
                f"{best.get('island', '?')}"
            )
    else:
        recorded = rundir.mixing_generations(path)
        metric = _metric_of(path, recorded[-1]) if recorded else "validation metric"
        lines.append(
            f"  unfinished: {generations} generation(s) in the history, no final training yet "
            f"(go on with `neuroevo resume {path}`)"
        )
    lines.append(f"  top {min(top, len(scored))} by validation {metric}:")
    islands = any("island" in r for r in scored[:top])
    lines.append(
        f"    {'id':>6}{' island' if islands else ''} {'gen':>4} {metric:>12} {'params':>9}  net"
    )
    for r in scored[:top]:
        island = f" {r.get('island', ''):>6}" if islands else ""
        lines.append(
            f"    {r['id']:>6}{island} {r['generation'] + 1:>4} {_num(r['validation_metric']):>12} "
            f"{r['params']:>9,}  {r['signature']}"
        )
    files = [
        ("best/", "the best net: `neuroevo predict`, `neuroevo.load`, `neuroevo export`"),
        ("report.html", "plots and tables (`neuroevo report` draws it again)"),
        ("history.jsonl", "every net of every generation"),
        ("checkpoints/", "`neuroevo resume` goes on from here"),
        ("verify.json", "`neuroevo verify`"),
    ]
    lines.append("  files:")
    for name, what in files:
        if (path / name.rstrip("/")).exists():
            lines.append(f"    {path / name}  {what}")
    # text from the run directory (a task, a signature, its own name) reaches the terminal
    # with its control characters escaped: an escape sequence in it is shown, never obeyed
    return "\n".join(printable(line) for line in lines)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
