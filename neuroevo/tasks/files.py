"""The user's own data: CSV and NPZ files.

Nothing is silently dropped or coerced: an empty cell, a word where a number belongs, a
missing column or a file too small for the splits is an error naming the file, the column and
the row (counted as lines of the file, the header being line 1).
"""

from __future__ import annotations

import csv as csv_module
import difflib
import math
import zipfile
from pathlib import Path

import numpy as np

from neuroevo.tasks.base import DEFAULT_SPLIT, Task, TaskError, from_arrays

_KINDS = ("classes", "regression", "bits")


def _kind(kind: str, where: str) -> str:
    if kind not in _KINDS:
        raise TaskError(f"{where}: task.kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    return kind


def _columns(value: str | list[str] | None, key: str, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise TaskError(f"{where}: task.{key} must be a column name or a list of them, got {value!r}")


def _number(text: str, path: str, line: int, column: str) -> float:
    if text.strip() == "":
        raise TaskError(f"{path}: line {line}, column {column!r}: missing value")
    try:
        value = float(text)
    except ValueError:
        raise TaskError(
            f"{path}: line {line}, column {column!r}: {text!r} is not a number"
        ) from None
    if not math.isfinite(value):
        raise TaskError(f"{path}: line {line}, column {column!r}: {text!r} is not a finite number")
    return value


def csv(
    *,
    seed: int,
    path: str = "",
    target: str | list[str] | None = None,
    kind: str = "classes",
    features: list[str] | None = None,
    split: list[float] = list(DEFAULT_SPLIT),  # noqa: B006 (read only; its type is the schema)
    standardize: bool = True,
    delimiter: str = ",",
) -> Task:
    """A CSV file with a header line.

    ``target``: the target column (or columns, for ``bits`` and multi-output ``regression``);
    ``kind``: ``classes`` (the target's distinct values, sorted, become the classes),
    ``regression`` or ``bits`` (0/1 columns); ``features``: the input columns (default: every
    other column); ``split``: train/validation/test fractions.
    """
    where = path or "task.path"
    if not path:
        raise TaskError("task.path: the csv task needs the path of a CSV file")
    kind = _kind(kind, where)
    targets = _columns(target, "target", where)
    if targets is None:
        raise TaskError(f"{where}: task.target: name the target column(s)")
    if kind == "classes" and len(targets) != 1:
        raise TaskError(f"{where}: a classes task has one target column, got {targets}")
    file = Path(path)
    if not file.is_file():
        raise TaskError(f"{path}: no such data file")
    try:
        with open(file, newline="", encoding="utf-8-sig") as f:
            rows = list(csv_module.reader(f, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv_module.Error) as exc:
        raise TaskError(f"{path}: cannot read it as CSV ({exc})") from None
    if not rows:
        raise TaskError(f"{path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    for name in targets + (_columns(features, "features", where) or []):
        if name not in header:
            close = difflib.get_close_matches(name, header, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TaskError(f"{path}: no column {name!r}{hint}; columns: {', '.join(header)}")
    feature_names = _columns(features, "features", where) or [h for h in header if h not in targets]
    if not feature_names:
        raise TaskError(f"{path}: no feature columns besides the target")
    feature_at = [header.index(n) for n in feature_names]
    target_at = [header.index(n) for n in targets]
    x_rows, y_rows = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            raise TaskError(f"{path}: line {line} is empty")
        if len(row) != len(header):
            raise TaskError(f"{path}: line {line} has {len(row)} fields, the header {len(header)}")
        x_rows.append([_number(row[i], path, line, header[i]) for i in feature_at])
        if kind == "classes":
            label = row[target_at[0]].strip()
            if not label:
                raise TaskError(f"{path}: line {line}, column {targets[0]!r}: missing value")
            y_rows.append(label)
        else:
            values = [_number(row[i], path, line, header[i]) for i in target_at]
            if kind == "bits":
                for i, v in zip(target_at, values):
                    if v not in (0.0, 1.0):
                        raise TaskError(
                            f"{path}: line {line}, column {header[i]!r}: bits "
                            f"targets must be 0 or 1, got {row[i]!r}"
                        )
            y_rows.append(values)
    if not x_rows:
        raise TaskError(f"{path}: no data rows after the header")
    x = np.array(x_rows, dtype=np.float64)
    if kind == "classes":
        names = sorted(set(y_rows), key=_label_key)
        index = {name: i for i, name in enumerate(names)}
        y = np.array([index[v] for v in y_rows], dtype=np.int64)
        return from_arrays(
            file.stem,
            kind,
            x,
            y,
            seed=seed,
            split=split,
            standardize=standardize,
            classes=names,
            where=path,
        )
    return from_arrays(
        file.stem,
        kind,
        x,
        np.array(y_rows),
        seed=seed,
        split=split,
        standardize=standardize,
        where=path,
    )


def _label_key(label: str) -> tuple:
    """Numeric labels in numeric order, words after them in text order."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def npz(
    *,
    seed: int,
    path: str = "",
    x: str = "x",
    y: str = "y",
    kind: str = "classes",
    split: list[float] = list(DEFAULT_SPLIT),  # noqa: B006 (read only; its type is the schema)
    standardize: bool = True,
) -> Task:
    """A NumPy ``.npz`` file with an inputs array (key ``x``) and a targets array (key ``y``).

    For ``classes`` the targets are integer labels (n,); their distinct values, sorted, become
    the classes. Arrays are loaded with ``allow_pickle=False``: object arrays are refused.
    """
    where = path or "task.path"
    if not path:
        raise TaskError("task.path: the npz task needs the path of a .npz file")
    kind = _kind(kind, where)
    file = Path(path)
    if not file.is_file():
        raise TaskError(f"{path}: no such data file")
    try:
        with np.load(file, allow_pickle=False) as data:
            for key in (x, y):
                if key not in data:
                    raise TaskError(f"{path}: no array {key!r}; arrays: {', '.join(data.files)}")
            xa, ya = data[x], data[y]
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise TaskError(f"{path}: cannot read it as .npz without pickle ({exc})") from None
    for key, a in ((x, xa), (y, ya)):
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise TaskError(f"{path}: array {key!r} is {a.dtype}, not numbers")
    if xa.ndim == 2 and not np.isfinite(xa).all():
        row, col = (int(v) for v in np.argwhere(~np.isfinite(xa))[0])
        raise TaskError(
            f"{path}: array {x!r} holds a missing or infinite value at row {row}, column {col}"
        )
    if kind == "classes":
        if ya.ndim != 1:
            raise TaskError(
                f"{path}: array {y!r} must hold one class label per row for a "
                f"classes task, got shape {ya.shape}"
            )
        if np.issubdtype(ya.dtype, np.floating) and not np.all(ya == np.round(ya)):
            row = int(np.argwhere(ya != np.round(ya))[0][0])
            raise TaskError(
                f"{path}: array {y!r} row {row}: class label {ya[row]} is not an integer"
            )
        values, labels = np.unique(ya, return_inverse=True)
        names = [str(v.item()) for v in values]
        return from_arrays(
            file.stem,
            kind,
            xa,
            labels.astype(np.int64),
            seed=seed,
            split=split,
            standardize=standardize,
            classes=names,
            where=path,
        )
    return from_arrays(
        file.stem, kind, xa, ya, seed=seed, split=split, standardize=standardize, where=path
    )
