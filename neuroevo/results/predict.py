"""``neuroevo predict RUN_DIR DATA``: a finished run's best net on new raw data, as CSV.

DATA is a CSV file with the training features as named columns (in any order; other columns
are ignored, or copied to the output with ``--keep``), or a ``.npz`` file with an array ``x``
of the features in the training order. The output has one row per input row: the columns kept
with ``--keep``, the prediction under the target's name (``predicted_<target>`` where a kept
column has that name; class labels as the data named them, bits as 0/1, regression values in
the targets' units), then for classes and bits each probability as ``p(<name>)``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroevo.errors import NeuroevoError
from neuroevo.results.model import BadRow, Model, load
from neuroevo.storage import fileio
from neuroevo.tasks import files
from neuroevo.training import kinds


def predict_file(
    run_dir: str | Path,
    data: str | Path,
    *,
    out: str | Path | None = None,
    keep: Sequence[str] = (),
    member: int | None = None,
) -> str:
    """Predict every row of ``data`` with the run's best net (``member``: that member of its
    front, :func:`neuroevo.results.model.load`); write CSV to ``out`` (in one
    step, see :func:`fileio.write_output`) or return it. ``keep``: columns of a CSV input
    copied to the output first. The rows are checked as training checks its data: a value
    that is not a finite number, or too far from the training data to standardise, is an
    error naming the line (or row) and the column, not a NaN prediction."""
    model = load(run_dir, member)
    data = Path(data)
    if out is not None and Path(out).resolve() == data.resolve():
        raise NeuroevoError(f"{out}: is the input file; write the predictions elsewhere")
    if data.suffix.lower() == ".npz":
        if keep:
            raise NeuroevoError("--keep names CSV columns; a .npz input has none")
        x, kept = _npz(data, model), {}
    else:
        lines: list[int] = []
        x, kept = files.read_columns(str(data), model.features, keep=list(keep), lines=lines)
        try:
            model.rows(x)
        except BadRow as exc:
            raise NeuroevoError(
                f"{data}: line {lines[exc.row]}, column {exc.feature!r}: {exc.detail}"
            ) from None
    try:
        text = to_csv(model, x, kept)
    except NeuroevoError as exc:
        raise NeuroevoError(f"{data}: {exc}") from None
    if out is not None:
        fileio.write_output(out, text, what="predictions")
    return text


def to_csv(model: Model, x: np.ndarray, kept: dict[str, list[str]]) -> str:
    """The predictions for the rows ``x`` as CSV text (floats written exactly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    predicted = model.predict(x)
    header = list(kept)
    # predictions are named after the targets; next to a kept column of that name, predicted_
    names = [f"predicted_{t}" if t in kept else t for t in model.targets]
    kind = kinds.get(model.kind)
    if kind.labelled:
        proba = model.predict_proba(x)
        header += [names[0], *(f"p({c})" for c in model.classes)]
        columns = [predicted[:, None], proba]
    elif not kind.standardised:
        proba = model.predict_proba(x)
        header += [*names, *(f"p({t})" for t in model.targets)]
        columns = [predicted, proba]
    else:
        header += names
        columns = [predicted.reshape(len(x), -1)]
    writer.writerow(header)
    table = np.concatenate([np.asarray(c, dtype=object) for c in columns], axis=1)
    for i, row in enumerate(table):
        writer.writerow([*(kept[k][i] for k in kept), *(_cell(v) for v in row)])
    return buffer.getvalue()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back to the same float
    return str(value)


def _npz(path: Path, model: Model) -> np.ndarray:
    (x,) = files.npz_arrays(str(path), ("x",), row_size=model.n_inputs)
    try:
        return model.rows(x)
    except NeuroevoError as exc:
        raise NeuroevoError(f"{path}: array 'x': {exc}") from None
