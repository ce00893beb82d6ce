"""The task object and :func:`from_arrays`, which turns arrays into one.

A task holds train, validation and test tensors with their kind (``bits``, ``classes``,
``regression``), which fixes the loss, the mixing and the metric
(:mod:`neuroevo.training.kinds`). Splits are made once, from the recipe's seed; classification
splits are stratified; features (and regression targets) are standardised with statistics of
the training split only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from neuroevo.errors import NeuroevoError
from neuroevo.genome.validation import shape_problem
from neuroevo.training import kinds

DEFAULT_SPLIT = (0.6, 0.2, 0.2)


class TaskError(NeuroevoError):
    """Data that cannot make a task; the message names the source, column or row."""


@dataclass(frozen=True)
class Preprocessing:
    """How raw rows became a net's inputs, and its outputs become values in the data's units:
    the feature and target names, in order, and the training split's means and deviations the
    features (and regression targets) were standardised with (0 and 1 where they were not).
    What a saved model needs to take raw data (:mod:`neuroevo.results.model`)."""

    features: tuple[str, ...]
    targets: tuple[str, ...]
    x_mean: tuple[float, ...]
    x_std: tuple[float, ...]
    y_mean: tuple[float, ...] = ()  # regression only
    y_std: tuple[float, ...] = ()

    @classmethod
    def identity(cls, n_inputs: int, n_targets: int, kind: str) -> Preprocessing:
        """The tensors as they are (a task made without :func:`from_arrays`)."""
        regression = kind == "regression"
        return cls(
            features=tuple(f"x{i}" for i in range(n_inputs)),
            targets=tuple(f"y{i}" for i in range(n_targets)),
            x_mean=(0.0,) * n_inputs,
            x_std=(1.0,) * n_inputs,
            y_mean=(0.0,) * n_targets if regression else (),
            y_std=(1.0,) * n_targets if regression else (),
        )


@dataclass(frozen=True)
class Task:
    """Train, validation and test tensors with their kind. The test split is for the final
    score only: nothing else sees it.

    Inputs are float32 of shape (n, n_inputs). Targets: ``bits`` float32 0/1 of shape
    (n, n_outputs); ``classes`` int64 labels of shape (n,), with ``classes`` naming them;
    ``regression`` float32 of shape (n, n_outputs).
    """

    name: str
    kind: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...] = ()
    #: how raw data became these tensors (None: they are the data as given)
    preprocessing: Preprocessing | None = None
    #: the inputs' shape, ``(channels, length)`` or ``(channels, height, width)``: each row
    #: of ``x`` is that array flattened (C order); None: a flat row of features
    shape: tuple[int, ...] | None = None

    @property
    def n_inputs(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        if self.kind == "classes":
            if self.classes:
                return len(self.classes)
            return int(max(self.y_train.max(), self.y_valid.max(), self.y_test.max()).item()) + 1
        return self.y_train.shape[1]

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_train, self.y_train

    @property
    def valid(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_valid, self.y_valid

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_test, self.y_test

    def fingerprint(self) -> str:
        """SHA-256 of the kind, the class names and every split's tensors: resume refuses a
        run whose data changed, whether it came from a file, a built-in or a user task."""
        digest = hashlib.sha256(json.dumps([self.kind, list(self.classes)]).encode())
        for t in (self.x_train, self.y_train, self.x_valid, self.y_valid, self.x_test, self.y_test):
            digest.update(str((t.dtype, tuple(t.shape))).encode())
            digest.update(t.contiguous().numpy().tobytes())
        return digest.hexdigest()

    @property
    def metric_name(self) -> str:
        return kinds.get(self.kind).metric_name

    def data_format(self) -> dict:
        """What turns raw rows into predictions in the data's own terms, as plain data: the
        task's name, kind and metric, its :class:`Preprocessing` and its class labels."""
        n_targets = 1 if self.kind == "classes" else self.n_outputs
        prep = self.preprocessing or Preprocessing.identity(self.n_inputs, n_targets, self.kind)
        return {
            "task": self.name,
            "kind": self.kind,
            "metric": self.metric_name,
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "classes": list(self.classes)
            or ([str(c) for c in range(self.n_outputs)] if self.kind == "classes" else []),
            "features": list(prep.features),
            "targets": list(prep.targets),
            "x_mean": list(prep.x_mean),
            "x_std": list(prep.x_std),
            "y_mean": list(prep.y_mean),
            "y_std": list(prep.y_std),
        }

    def check(self) -> None:
        """Raise :class:`TaskError` unless shapes, dtypes and values are consistent."""
        if self.kind not in kinds.KINDS:
            raise TaskError(
                f"task {self.name!r}: unknown kind {self.kind!r} (known: {', '.join(kinds.KINDS)})"
            )
        if self.shape is not None:
            check_shape(self.shape, self.x_train.shape[1], f"task {self.name!r}: shape")
        for split in ("train", "valid", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 2 or x.shape[0] == 0:
                raise TaskError(
                    f"task {self.name!r}: x_{split} must be a non-empty (n, inputs) "
                    f"tensor, got shape {tuple(x.shape)}"
                )
            if x.shape[1] != self.n_inputs:
                raise TaskError(
                    f"task {self.name!r}: x_{split} has {x.shape[1]} inputs, "
                    f"x_train {self.n_inputs}"
                )
            if y.shape[0] != x.shape[0]:
                raise TaskError(
                    f"task {self.name!r}: x_{split} has {x.shape[0]} rows but "
                    f"y_{split} {y.shape[0]}"
                )
            if not torch.isfinite(x).all():
                raise TaskError(f"task {self.name!r}: x_{split} holds NaN or infinite values")
            if self.kind == "classes":
                if y.ndim != 1 or y.dtype != torch.int64 or (y < 0).any():
                    raise TaskError(
                        f"task {self.name!r}: y_{split} must be int64 class labels "
                        "0..C-1 of shape (n,)"
                    )
                if self.classes and (y >= len(self.classes)).any():
                    raise TaskError(
                        f"task {self.name!r}: y_{split} holds label {int(y.max())}, but the "
                        f"task names {len(self.classes)} classes "
                        f"(labels 0..{len(self.classes) - 1})"
                    )
            elif y.ndim != 2 or not torch.isfinite(y).all():
                raise TaskError(
                    f"task {self.name!r}: y_{split} must be a finite (n, outputs) "
                    f"tensor, got shape {tuple(y.shape)}"
                )
            if self.kind == "bits" and not ((y == 0) | (y == 1)).all():
                raise TaskError(f"task {self.name!r}: y_{split} must hold only 0 and 1")
        if self.kind == "classes":
            check_classes(self.n_outputs, f"task {self.name!r}")


#: the most classes a task may have: a net has one output per class (labels 0..C-1), so a
#: label of 10**6 would ask for a million outputs
#: the range of a column's statistics: the model computes in float32 (its forward, the
#: exports), so a deviation below ``F32_TINY`` or a statistic above ``F32_MAX`` would make a
#: model file that load refuses
F32_TINY = float(np.finfo(np.float32).tiny)
F32_MAX = float(np.finfo(np.float32).max)

MAX_CLASSES = 10_000


def check_classes(n_classes: int, where: str) -> None:
    """Raise :class:`TaskError` unless ``n_classes`` (the largest label + 1, or the classes
    named) is at most :data:`MAX_CLASSES`. :func:`from_arrays` (so every file task, on its
    distinct target values) and :meth:`Task.check` call it before a net is built."""
    if n_classes > MAX_CLASSES:
        raise TaskError(
            f"{where}: {n_classes:,} classes (labels 0..{n_classes - 1:,}, a net output "
            f"each), above the limit of {MAX_CLASSES:,} classes; labels are 0..C-1, and a "
            'number to predict is a task of kind "regression"'
        )


def _split_sizes(n: int, split: Sequence[float], where: str) -> tuple[int, int, int]:
    n_valid, n_test = round(split[1] * n), round(split[2] * n)
    n_train = n - n_valid - n_test
    if n_train < 2 or n_valid < 1 or n_test < 1:
        raise TaskError(
            f"{where}: {n} rows are too few for the splits "
            f"{'/'.join(f'{f:g}' for f in split)} (each split needs rows, training at least 2)"
        )
    return n_train, n_valid, n_test


def check_split(split: Sequence[float], where: str) -> tuple[float, float, float]:
    if len(split) != 3 or any(not isinstance(f, (int, float)) or f <= 0 for f in split):
        raise TaskError(
            f"{where}: split must be three positive fractions "
            f"[train, validation, test], got {list(split)}"
        )
    if abs(sum(split) - 1.0) > 1e-6:
        raise TaskError(
            f"{where}: split fractions must sum to 1, got {list(split)} (sum {sum(split):g})"
        )
    return tuple(float(f) for f in split)


def from_arrays(
    name: str,
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    split: Sequence[float] = DEFAULT_SPLIT,
    standardize: bool = True,
    classes: Sequence[str] = (),
    where: str | None = None,
    features: Sequence[str] = (),
    targets: Sequence[str] = (),
    shape: Sequence[int] | None = None,
) -> Task:
    """Split arrays into a task: shuffled by ``seed``, stratified for ``classes``, features
    (and regression targets) standardised with the training split's mean and deviation.

    ``x``: (n, inputs) numbers. ``y``: class labels 0..C-1 of shape (n,) for ``classes``,
    (n, outputs) 0/1 for ``bits``, (n, outputs) numbers for ``regression`` ((n,) is taken as
    one output). ``where`` names the data in error messages, ``features`` the input columns
    and ``targets`` the target columns (recorded with the standardisation statistics, so a
    saved model takes raw rows: :class:`Preprocessing`). ``shape``: each row's shape as
    ``(channels, length)`` or ``(channels, height, width)``, for convolutions.
    """
    where = where or f"task {name!r}"
    for what, a in (("inputs", x), ("targets", y)):
        if np.iscomplexobj(a):
            raise TaskError(f"{where}: {what} are complex numbers; neuroevo takes real numbers")
    if kind not in kinds.KINDS:
        raise TaskError(f"{where}: unknown kind {kind!r} (known: {', '.join(kinds.KINDS)})")
    split = check_split(split, where)
    x, y = _coerced(x, y, kind, where)
    rng = np.random.default_rng(seed)
    if kind == "classes":
        y, labels, index = _stratified(y, split, classes, rng, where)
    else:
        y, index = _shuffled(y, kind, split, rng, where)
        labels = []
    xt, yt, prep = _prepared(x, y, index, kind, standardize, where, features, targets)
    task = Task(
        name,
        kind,
        xt[0],
        yt[0],
        xt[1],
        yt[1],
        xt[2],
        yt[2],
        classes=tuple(labels),
        preprocessing=prep,
        shape=tuple(shape) if shape else None,
    )
    task.check()
    return task


def _coerced(x: Any, y: Any, kind: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``x`` as (n, inputs) float64 (finite), ``y`` with as many rows ((n, 1) for a flat
    target of a kind other than ``classes``)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise TaskError(f"{where}: inputs must be a 2-D array, got shape {x.shape}")
    y = np.asarray(y)
    if kind != "classes" and y.ndim == 1:
        y = y[:, None]
    if y.shape[0] != x.shape[0]:
        raise TaskError(f"{where}: {x.shape[0]} input rows but {y.shape[0]} target rows")
    _check_finite(x, where, "inputs")
    return x, y


def _stratified(
    y: np.ndarray, split: Sequence[float], classes: Sequence[str], rng: Any, where: str
) -> tuple[np.ndarray, list[str], list[np.ndarray]]:
    """Class labels checked (0..C-1, at least two classes of 3 rows or more each) and the
    rows of each split, drawn class by class: the labels as int64, the class names, the
    rows of train, validation and test."""
    n = y.shape[0]
    if y.ndim != 1:
        raise TaskError(f"{where}: class targets must be one label per row, got shape {y.shape}")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        row = int(np.argwhere(~np.isfinite(y))[0][0])
        raise TaskError(f"{where}: class label at row {row} is {y[row]}, not a class")
    y = y.astype(np.int64)
    if n and y.min() < 0:
        raise TaskError(
            f"{where}: class labels are 0..C-1; row {int(y.argmin())} holds {int(y.min())}"
        )
    n_classes = int(y.max()) + 1 if n else 0
    check_classes(max(n_classes, len(classes)), where)
    if classes and n_classes > len(classes):
        raise TaskError(
            f"{where}: a class label is {n_classes - 1}, but {len(classes)} classes are named"
        )
    labels = list(classes) or [str(c) for c in range(n_classes)]
    if len(np.unique(y)) < 2:
        raise TaskError(
            f"{where}: every row is of one class ({labels[int(y[0])] if n else '?'}); "
            "a classes task needs at least two"
        )
    parts: list[list[np.ndarray]] = [[], [], []]
    _split_sizes(n, split, where)
    for c in range(n_classes):
        members = np.flatnonzero(y == c)
        if len(members) < 3:
            raise TaskError(
                f"{where}: class {labels[c]!r} has {len(members)} row(s); stratified "
                "train/validation/test splits need at least 3 of each class"
            )
        members = rng.permutation(members)
        n_train, n_valid, n_test = _class_sizes(len(members), split)
        parts[0].append(members[:n_train])
        parts[1].append(members[n_train : n_train + n_valid])
        parts[2].append(members[n_train + n_valid :])
    index = [rng.permutation(np.concatenate(p)) for p in parts]
    return y, labels, index


def _shuffled(
    y: np.ndarray, kind: str, split: Sequence[float], rng: Any, where: str
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Targets checked (finite; 0 or 1 for ``bits``) as float64, and the rows of train,
    validation and test in a random order."""
    n = y.shape[0]
    y = y.astype(np.float64)
    _check_finite(y, where, "targets")
    if kind == "bits" and not np.isin(y, (0.0, 1.0)).all():
        row = int(np.argwhere(~np.isin(y, (0.0, 1.0)))[0][0])
        raise TaskError(f"{where}: bits targets must be 0 or 1; row {row} holds {y[row].tolist()}")
    n_train, n_valid, _ = _split_sizes(n, split, where)
    order = rng.permutation(n)
    index = [order[:n_train], order[n_train : n_train + n_valid], order[n_train + n_valid :]]
    return y, index


def _prepared(
    x: np.ndarray,
    y: np.ndarray,
    index: list[np.ndarray],
    kind: str,
    standardize: bool,
    where: str,
    features: Sequence[str],
    targets: Sequence[str],
) -> tuple[list[torch.Tensor], list[torch.Tensor], Preprocessing]:
    """The splits' tensors (standardised with the training split's statistics) and the
    :class:`Preprocessing` that records them."""
    x_parts = [x[i] for i in index]
    y_parts = [y[i] for i in index]
    n_in, n_targets = x.shape[1], (1 if kind == "classes" else y.shape[1])
    x_mean, x_std = np.zeros(n_in), np.ones(n_in)
    y_mean, y_std = (np.zeros(n_targets), np.ones(n_targets)) if kind == "regression" else ((), ())
    if standardize:
        x_parts, x_mean, x_std = _standardize(x_parts, where, "input", features)
        if kind == "regression":
            y_parts, y_mean, y_std = _standardize(y_parts, where, "target", ())
    for what, parts in (("input", x_parts), ("target", y_parts if kind != "classes" else [])):
        for p in parts:
            _check_float32(p, where, what, features if what == "input" else ())
    xt = [torch.from_numpy(p.astype(np.float32)) for p in x_parts]
    if kind == "classes":
        yt = [torch.from_numpy(p.astype(np.int64)) for p in y_parts]
    else:
        yt = [torch.from_numpy(p.astype(np.float32)) for p in y_parts]
    names = tuple(features) if len(features) == n_in else tuple(f"x{i}" for i in range(n_in))
    prep = Preprocessing(
        features=names,
        targets=tuple(targets)
        if len(targets) == n_targets
        else (("label",) if kind == "classes" else tuple(f"y{i}" for i in range(n_targets))),
        x_mean=tuple(float(v) for v in x_mean),
        x_std=tuple(float(v) for v in x_std),
        y_mean=tuple(float(v) for v in y_mean),
        y_std=tuple(float(v) for v in y_std),
    )
    return xt, yt, prep


def check_shape(shape: Any, n_inputs: int, where: str) -> None:
    """Raise :class:`TaskError` unless ``shape`` is ``[channels, length]`` or ``[channels,
    height, width]`` of positive integers holding ``n_inputs`` values."""
    problem = shape_problem(shape, n_inputs)
    if problem is not None:
        raise TaskError(f"{where}: {problem}")


def with_shape(task: Task, shape: Sequence[int] | None, where: str) -> Task:
    """``task`` with its inputs' ``shape`` (checked against its inputs; empty: flat)."""
    if not shape:
        return task
    check_shape(shape, task.n_inputs, where)
    return dataclasses.replace(task, shape=tuple(shape))


def _column(i: int, names: Sequence[str]) -> str:
    return f"column {names[i]!r}" if i < len(names) else f"column {i}"


def _standardize(
    parts: list[np.ndarray], where: str, what: str, names: Sequence[str]
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Standardise with the first (training) part's mean and deviation (returned with the
    parts; a constant column keeps deviation 1); a column whose statistics overflow (values
    near 1e200) is an error naming it, not a column of zeros."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = parts[0].mean(axis=0), parts[0].std(axis=0)
        bad = ~(np.isfinite(mean) & np.isfinite(std)) | (np.abs(mean) > F32_MAX) | (std > F32_MAX)
        tiny = (std > 0) & (std < F32_TINY)  # a constant column (deviation 0) is fine
        if tiny.any():
            i = int(np.argwhere(tiny)[0][0])
            raise TaskError(
                f"{where}: {what} {_column(i, names)} varies by less than float32 can hold "
                f"(deviation {std[i]:.3g}); rescale it"
            )
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            raise TaskError(
                f"{where}: {what} {_column(i, names)} holds values too large to standardise "
                f"(up to {np.abs(parts[0][:, i]).max():.3g}); rescale it"
            )
        std = np.where(std == 0, 1.0, std)
        return [(p - mean) / std for p in parts], mean, std


def _check_float32(a: np.ndarray, where: str, what: str, names: Sequence[str]) -> None:
    """Values beyond float32's range would become infinite in training."""
    big = np.abs(a) > np.finfo(np.float32).max
    if big.any():
        i = int(np.argwhere(big)[0][-1]) if a.ndim == 2 else 0
        raise TaskError(
            f"{where}: {what} {_column(i, names)} holds values beyond float32's range "
            f"(about 3.4e38); rescale it or keep task.standardize = true"
        )


def _class_sizes(n: int, split: Sequence[float]) -> tuple[int, int, int]:
    n_valid = max(1, round(split[1] * n))
    n_test = max(1, round(split[2] * n))
    while n - n_valid - n_test < 1:  # small classes: keep one for training
        if n_valid >= n_test and n_valid > 1:
            n_valid -= 1
        else:
            n_test -= 1
    return n - n_valid - n_test, n_valid, n_test


def _check_finite(a: np.ndarray, where: str, what: str) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        row, col = (
            (int(v) for v in np.argwhere(bad)[0][:2])
            if a.ndim == 2
            else (int(np.argwhere(bad)[0][0]), 0)
        )
        raise TaskError(
            f"{where}: {what} hold a missing or infinite value at row {row}, column {col}"
        )
