"""A run directory's records as the report and ``neuroevo show`` read them, each field checked
before it is used: ``history.jsonl``, ``mixing/gen-N.safetensors`` and ``verify.json``
(``summary.json``: :mod:`neuroevo.results.summary`). A field that is missing or of the wrong
kind is one error naming the file, the line and the dotted key; a value is described, never
echoed (it may be huge or hostile)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neuroevo.errors import NeuroevoError
from neuroevo.storage import fileio, rundir

#: what is read of each file of a run directory, checked before it is used (see :func:`check`):
#: a key ending in ``?`` may be absent, a kind ending in ``|null`` may be null
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
    # with several objectives (neuroevo.search.objectives)
    "macs?": "count",
    "latency_ms?": "number",
    "front?": "flag",
    "hypervolume?": "number",
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
    "kendall_ceiling?": "number|null",
    "kendall_params?": "number|null",
    "valid_rows?": "count",
}
#: the fields of a history record that are read
NEEDED = tuple(key for key in RECORD_FIELDS if not key.endswith("?"))
MAX_VERIFY_BYTES = 64 << 20
#: the longest text taken from a run directory (a name, a net's signature), and the largest
#: count (an id, a generation, a net's parameters)
MAX_TEXT = 100_000
MAX_COUNT = 2**53


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
    "objects": (
        lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
        "a list of objects",
    ),
    "flag": (lambda v: isinstance(v, bool), "true/false"),
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


def check(data: Mapping[str, Any], fields: Mapping[str, str], where: str, key: str = "") -> None:
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


def check_run(path: Path) -> None:
    """``path`` is a run directory with a history, and holds no links."""
    if not path.is_dir():
        raise NeuroevoError(f"{path}: no such run directory")
    rundir.check_no_links(path)
    if not (path / "history.jsonl").exists():
        raise NeuroevoError(
            f"{path}: no history.jsonl (not a run directory, or no generation completed yet)"
        )


def read_history(path: Path) -> list[dict[str, Any]]:
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
        check(record, RECORD_FIELDS, f"{file}: line {number}")
    return history


def read_mixing(path: Path, generation: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A generation's mixing record (:func:`rundir.read_mixing`), its plain data checked
    (:data:`MIXING_FIELDS`) and its tensors shaped to be drawn."""
    tensors, meta = rundir.read_mixing(path, generation)
    where = str(rundir.mixing_path(path, generation))
    check(meta, MIXING_FIELDS, where)
    if not len(tensors["frame_steps"]) or not len(tensors["score_steps"]):
        raise NeuroevoError(f"{where}: records no step of the mixer run")
    if tensors["weights"].shape[2] == 0:
        raise NeuroevoError(f"{where}: records the mixing weights of no output")
    return tensors, meta


def metric_of(path: Path, generation: int) -> str:
    """The metric's name as a generation's mixing record gives it."""
    return read_mixing(path, generation)[1].get("metric", "validation metric")


def best_records(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per individual (its best validation metric), best first."""
    best: dict[int, dict[str, Any]] = {}
    for r in history:
        if r["validation_metric"] is None:
            continue
        if r["id"] not in best or r["validation_metric"] > best[r["id"]]["validation_metric"]:
            best[r["id"]] = r
    return sorted(best.values(), key=lambda r: (-r["validation_metric"], r["id"]))


def read_verify(path: Path) -> dict[str, Any] | None:
    """``verify.json`` where ``neuroevo verify`` left one, checked (:data:`VERIFY_FIELDS`)."""
    file = path / "verify.json"
    if not os.path.lexists(file):
        return None
    text = fileio.read_text(file, limit=MAX_VERIFY_BYTES, what="verify report")
    data = rundir.json_object(text, f"{file}:", "a verify report")
    check(data, VERIFY_FIELDS, str(file))
    return data


def num(value: Any, spec: str = ".4f") -> str:
    """A number as shown in the report and by ``neuroevo show`` (``n/a``: none)."""
    return "n/a" if not isinstance(value, (int, float)) else format(value, spec)


#: a noise ceiling below this: the alone ranking itself is mostly noise
NOISY_CEILING = 0.5


def noise_note(rows: int, ceiling: float | None) -> str:
    """How noisy the alone ranking itself is, in words: what one validation row weighs and,
    where the noise ceiling is low, that the ranking is mostly noise."""
    text = f"one row is {1 / rows:.3g} of the split" if rows > 0 else "n/a"
    if ceiling is not None and ceiling < NOISY_CEILING:
        text += (
            f"; two alone runs agree only at tau {ceiling:+.3f}, so the alone ranking itself "
            "is mostly noise here"
        )
    return text
