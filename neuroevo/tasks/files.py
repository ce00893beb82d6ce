"""The user's own data: CSV and NPZ files.

Nothing is silently dropped or coerced: an empty cell, a word where a number belongs, a
missing column or a file too small for the splits is an error naming the file, the column and
the row (counted as lines of the file, the header being line 1).
"""

from __future__ import annotations

import csv as csv_module
import io
import math
import zipfile
from pathlib import Path

import numpy as np

from neuroevo.registry import did_you_mean
from neuroevo.storage import fileio
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
    targets = _csv_targets(target, kind, delimiter, where)
    file = Path(path)
    rows = _csv_rows(file, path, delimiter)
    header = _header(rows[0], path)
    feature_names = _csv_features(header, targets, features, path, where)
    x_rows, y_rows = _csv_data(rows, header, feature_names, targets, kind, path)
    x = np.array(x_rows, dtype=np.float64)
    names: list[str] = []
    if kind == "classes":
        names = sorted(set(y_rows), key=_label_key)
        index = {name: i for i, name in enumerate(names)}
        y = np.array([index[v] for v in y_rows], dtype=np.int64)
    else:
        y = np.array(y_rows)
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
        features=feature_names,
        targets=targets,
    )


def _csv_targets(
    target: str | list[str] | None, kind: str, delimiter: str, where: str
) -> list[str]:
    """The target column names, checked with the delimiter before the file is read."""
    targets = _columns(target, "target", where)
    if targets is None:
        raise TaskError(f"{where}: task.target: name the target column(s)")
    if kind == "classes" and len(targets) != 1:
        raise TaskError(f"{where}: a classes task has one target column, got {targets}")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise TaskError(
            f'{where}: task.delimiter must be one character such as "," or ";", got {delimiter!r}'
        )
    return targets


def _csv_features(
    header: list[str], targets: list[str], features: list[str] | None, path: str, where: str
) -> list[str]:
    """The feature columns (default: every column but the targets), each in the header once."""
    for name in targets + (_columns(features, "features", where) or []):
        if name not in header:
            hint = did_you_mean(name, header)
            raise TaskError(f"{path}: no column {name!r}{hint}; columns: {', '.join(header)}")
    feature_names = _columns(features, "features", where) or [h for h in header if h not in targets]
    for name in feature_names:
        if name in targets:
            raise TaskError(
                f"{path}: task.features includes the target column {name!r}; a net would be "
                "handed the answer"
            )
    if len(set(feature_names)) != len(feature_names):
        raise TaskError(f"{path}: task.features names a column twice")
    if not feature_names:
        raise TaskError(f"{path}: no feature columns besides the target")
    return feature_names


def _csv_data(
    rows: list[list[str]],
    header: list[str],
    feature_names: list[str],
    targets: list[str],
    kind: str,
    path: str,
) -> tuple[list[list[float]], list]:
    """The data rows' inputs (numbers) and targets (a label each for ``classes``, else
    numbers; 0 or 1 for ``bits``), each cell checked and named by line and column."""
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
    return x_rows, y_rows


def _header(row: list[str], path: str) -> list[str]:
    """The column names of a header line, each once."""
    header = [h.strip() for h in row]
    seen: set[str] = set()
    for i, name in enumerate(header):
        if name in seen:
            raise TaskError(
                f"{path}: line 1: column {name!r} appears twice in the header (columns "
                f"{header.index(name) + 1} and {i + 1}); column names must be unique"
            )
        seen.add(name)
    return header


def _label_key(label: str) -> tuple:
    """The one order of class labels: labels that read as numbers first, by value, then by
    their text (so ``01``, ``1`` and ``1.0`` keep one order, whatever the hash seed); words
    after them, by text."""
    try:
        value = float(label)
    except ValueError:
        return (1, 0.0, label)
    return (0, value, label) if math.isfinite(value) else (1, 0.0, label)


#: the largest data file read
MAX_DATA_BYTES = 4 << 30
#: the largest array of a ``.npz`` file once decompressed (checked before decompressing)
MAX_ARRAY_BYTES = 4 << 30


def _csv_rows(file: Path, path: str, delimiter: str) -> list[list[str]]:
    """The rows of a CSV file, the header first; an empty file is an error."""
    try:
        text = _read(file, path).decode("utf-8-sig")
        rows = list(csv_module.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except (UnicodeDecodeError, csv_module.Error) as exc:
        raise TaskError(f"{path}: cannot read it as CSV ({exc})") from None
    if not rows:
        raise TaskError(f"{path}: the file is empty")
    return rows


def npz_arrays(
    path: str, keys: tuple[str, ...], *, row_size: int | None = None
) -> list[np.ndarray]:
    """The arrays ``keys`` of a ``.npz`` file, loaded without pickle; each must hold numbers,
    one value or row per row (with ``row_size``: rows of that many values). Each array's
    ``.npy`` header (shape, type) is checked before it is decompressed, so a small file that
    would inflate beyond :data:`MAX_ARRAY_BYTES` is refused unread. Errors name the file and
    the array."""
    raw = _read(Path(path), path)
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise TaskError(
            f"{path}: not a .npz file (a zip archive of .npy arrays, as numpy.savez writes)"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = archive.namelist()
            arrays = []
            for key in keys:
                name = f"{key}.npy" if f"{key}.npy" in names else key if key in names else None
                if name is None:
                    listed = ", ".join(n.removesuffix(".npy") for n in names)
                    raise TaskError(f"{path}: no array {key!r}; arrays: {listed}")
                arrays.append(_npy(archive, archive.getinfo(name), key, path, row_size))
    except TaskError:
        raise
    except Exception as exc:  # zipfile and numpy raise many kinds on a malformed member
        raise TaskError(
            f"{path}: cannot read it as .npz without pickle ({type(exc).__name__}: {exc})"
        ) from None
    return arrays


def _npy(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, path: str, row_size: int | None
) -> np.ndarray:
    """One member of a ``.npz`` archive, its header checked before its data is read."""
    where = f"{path}: array {key!r}"
    if info.file_size > MAX_ARRAY_BYTES:
        raise TaskError(
            f"{where} takes {info.file_size:,} bytes once decompressed, more than the limit "
            f"of {MAX_ARRAY_BYTES:,}"
        )
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
        except ValueError:
            raise TaskError(f"{where} is not a .npy array (as numpy.savez writes)") from None
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise TaskError(f"{where}: .npy format version {version} is not read here")
    if dtype.hasobject:
        raise TaskError(f"{where} holds Python objects; neuroevo reads .npz without pickle")
    if not (np.issubdtype(dtype, np.number) or dtype.kind == "b"):
        raise TaskError(f"{where} is {dtype}, not numbers")
    if not shape:
        raise TaskError(f"{where} is a single number; it must hold a value per row")
    size = math.prod(shape) * dtype.itemsize
    if size > info.file_size:
        raise TaskError(
            f"{where}: its header says shape {shape} of {dtype} ({size:,} bytes), more than "
            f"the {info.file_size:,} bytes it holds"
        )
    row = math.prod(shape[1:])
    if row_size is not None and not (row == row_size or shape == (row_size,)):
        raise TaskError(
            f"{where}: expected rows of {row_size} features, got an array of shape {shape}"
        )
    with archive.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _read(file: Path, path: str) -> bytes:
    try:
        return fileio.read_bytes(file, limit=MAX_DATA_BYTES, what="data file", follow=True)
    except fileio.UnsafeFile as exc:
        raise TaskError(str(exc)) from None


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
    the classes. Inputs of shape (n, channels, length) or (n, channels, height, width) are
    signals or images: each row is flattened and the task's ``shape`` is theirs. Arrays are
    loaded with ``allow_pickle=False``: object arrays are refused.
    """
    where = path or "task.path"
    if not path:
        raise TaskError("task.path: the npz task needs the path of a .npz file")
    kind = _kind(kind, where)
    file = Path(path)
    xa, ya = npz_arrays(path, (x, y))
    shape = None
    if xa.ndim in (3, 4):
        shape = [int(v) for v in xa.shape[1:]]
        xa = xa.reshape(len(xa), -1)
    if xa.ndim == 2 and not np.isfinite(xa).all():
        row, col = (int(v) for v in np.argwhere(~np.isfinite(xa))[0])
        raise TaskError(
            f"{path}: array {x!r} holds a missing or infinite value at row {row}, column {col}"
        )
    names: list[str] = []
    if kind == "classes":
        ya, names = _class_labels(ya, y, path)
    return from_arrays(
        file.stem,
        kind,
        xa,
        ya,
        seed=seed,
        split=split,
        standardize=standardize,
        classes=names,
        where=path,
        shape=shape,
    )


def _class_labels(ya: np.ndarray, y: str, path: str) -> tuple[np.ndarray, list[str]]:
    """Array ``y``'s class labels (integers, one per row) as 0..C-1, and the classes' names
    (the distinct values, sorted)."""
    if ya.ndim != 1:
        raise TaskError(
            f"{path}: array {y!r} must hold one class label per row for a "
            f"classes task, got shape {ya.shape}"
        )
    if np.issubdtype(ya.dtype, np.floating) and not np.isfinite(ya).all():
        row = int(np.argwhere(~np.isfinite(ya))[0][0])
        raise TaskError(f"{path}: array {y!r} row {row}: class label {ya[row]} is not finite")
    if np.iscomplexobj(ya):
        raise TaskError(f"{path}: array {y!r} holds complex numbers, not class labels")
    if np.issubdtype(ya.dtype, np.floating) and not np.all(ya == np.round(ya)):
        row = int(np.argwhere(ya != np.round(ya))[0][0])
        raise TaskError(f"{path}: array {y!r} row {row}: class label {ya[row]} is not an integer")
    values, labels = np.unique(ya, return_inverse=True)
    return labels.astype(np.int64), [str(v.item()) for v in values]


def read_columns(
    path: str,
    names: list[str],
    *,
    keep: list[str] = (),
    delimiter: str = ",",
    lines: list[int] | None = None,
) -> tuple[np.ndarray, dict[str, list[str]]]:
    """The columns ``names`` of a CSV file with a header line, as a float64 ``(rows,
    len(names))`` array (for predictions on new data), and the columns ``keep`` as their text.
    Other columns are ignored. A missing column, a column named twice, an empty cell or a word
    where a number belongs is an error naming the file, the column and the line. ``lines``:
    a list given is extended with each row's line in the file."""
    file = Path(path)
    rows = _csv_rows(file, path, delimiter)
    header = _header(rows[0], path)
    for name in [*names, *keep]:
        if name not in header:
            hint = did_you_mean(name, header)
            raise TaskError(f"{path}: no column {name!r}{hint}; columns: {', '.join(header)}")
    at = [header.index(n) for n in names]
    kept_at = {n: header.index(n) for n in keep}
    x, kept = [], {n: [] for n in keep}
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue  # a blank line (often the last) holds no row
        if len(row) != len(header):
            raise TaskError(f"{path}: line {line} has {len(row)} fields, the header {len(header)}")
        x.append([_number(row[i], path, line, header[i]) for i in at])
        if lines is not None:
            lines.append(line)
        for name, i in kept_at.items():
            kept[name].append(row[i])
    return np.array(x, dtype=np.float64).reshape(len(x), len(names)), kept
