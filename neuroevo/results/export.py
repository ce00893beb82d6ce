"""``neuroevo export RUN_DIR --format onnx|torchscript``: the best net as one file that runs
without neuroevo.

The exported graph is :class:`neuroevo.results.model.Model`'s ``forward``: raw float32 features
``(rows, features)`` in; class probabilities, bit probabilities or regression values in the
targets' units out. The standardisation is part of the graph, as a subtraction and a division
before the network: folding it into the first layer's weights would change the float32 results.
The batch size is free. TorchScript comes with PyTorch (which now deprecates it: ONNX is the
format to keep); ONNX needs the ``onnx`` extra.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import torch

from neuroevo.errors import NeuroevoError
from neuroevo.results.model import Model, load
from neuroevo.storage import fileio, rundir

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
ONNX_HINT = "pip install 'neuroevo[onnx]'"


def export(
    run_dir: str | Path, fmt: str, out: str | Path | None = None, member: int | None = None
) -> Path:
    """Write the run's best net (``member``: that member of its front) in ``fmt`` to ``out``
    (default ``model.onnx`` or ``model.pt`` in its folder of the run directory, ``best/`` or
    ``front/N/``); return the path. The file is written whole or
    not at all (a device or a link named by ``out`` is written through: see
    :func:`fileio.write_output`)."""
    if fmt not in FORMATS:
        raise NeuroevoError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    model = load(run_dir, member)
    folder = Path(run_dir) / ("best" if member is None else f"{rundir.FRONT}/{member}")
    target = Path(out) if out is not None else folder / FORMATS[fmt]
    if out is None and target.exists():  # in the run directory: only a regular file replaced
        fileio.check_regular(target, what="exported model")
    if target.is_dir():
        raise NeuroevoError(f"{target}: is a directory; name the file to write")
    if not target.parent.is_dir():
        raise NeuroevoError(f"{target}: cannot write it: no such directory {target.parent}")
    data = (_onnx if fmt == "onnx" else _torchscript)(model)
    if out is None:  # in the run directory: never through a link planted meanwhile
        fileio.write_atomic(target, data)
    else:
        fileio.write_output(target, data, what="exported model")
    return target


def _example(model: Model) -> torch.Tensor:
    return torch.zeros(3, model.n_inputs)


def _torchscript(model: Model) -> bytes:
    with warnings.catch_warnings():  # PyTorch deprecates TorchScript; it still loads everywhere
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, (_example(model),), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _onnx(model: Model) -> bytes:
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
    # what program.save writes, without external data (a net is far below ONNX's 2 GB limit)
    return program.model_proto.SerializeToString()
