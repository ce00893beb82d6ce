"""``neuroevo export RUN_DIR --format onnx|torchscript``: the best net as one file that runs
without neuroevo.

The exported graph is :class:`neuroevo.model.Model`'s ``forward``: raw float32 features
``(rows, features)`` in; class probabilities, bit probabilities or regression values in the
targets' units out. The standardisation is part of the graph, as a subtraction and a division
before the network: folding it into the first layer's weights would change the float32 results.
The batch size is free. TorchScript comes with PyTorch (which now deprecates it: ONNX is the
format to keep); ONNX needs the ``onnx`` extra.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch

from neuroevo.errors import NeuroevoError
from neuroevo.model import Model, load

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
ONNX_HINT = "pip install 'neuroevo[onnx]'"


def export(run_dir: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Write the run's best net in ``fmt`` to ``out`` (default ``best/model.onnx`` or
    ``best/model.pt`` in the run directory); return the path."""
    if fmt not in FORMATS:
        raise NeuroevoError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    model = load(run_dir)
    target = Path(out) if out is not None else Path(run_dir) / "best" / FORMATS[fmt]
    if target.is_dir():
        raise NeuroevoError(f"{target}: is a directory; name the file to write")
    if not target.parent.is_dir():
        raise NeuroevoError(f"{target.parent}: no such directory")
    # written beside the target, then moved into place: a failed export leaves nothing behind
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        (_onnx if fmt == "onnx" else _torchscript)(model, Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _example(model: Model) -> torch.Tensor:
    return torch.zeros(3, model.n_inputs)


def _torchscript(model: Model, path: Path) -> None:
    with warnings.catch_warnings():  # PyTorch deprecates TorchScript; it still loads everywhere
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, (_example(model),), check_trace=False)
        traced.save(str(path))


def _onnx(model: Model, path: Path) -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise NeuroevoError(f"ONNX export needs the onnx packages: {ONNX_HINT}") from None
    rows = torch.export.Dim("rows", min=1)
    # the exporter logs what it skips (torchvision's operators) and warns of its own
    # deprecations; neither concerns this graph
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (_example(model),),
                dynamo=True,
                input_names=["features"],
                output_names=["probabilities" if model.kind != "regression" else "values"],
                dynamic_shapes=({0: rows},),
                external_data=False,
                verbose=False,
            )
    finally:
        quiet.setLevel(level)
    program.save(str(path), external_data=False)
