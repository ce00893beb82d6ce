"""A run's history as a pandas DataFrame (the ``pandas`` extra): ``neuroevo.history(run)``
and ``RunResult.history()``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neuroevo.errors import NeuroevoError
from neuroevo.results import records

PANDAS_HINT = "pip install 'neuroevo[pandas]'"


def history(run_dir: str | Path) -> Any:
    """Every net of every generation of the run in ``run_dir``, finished or not: one row per
    individual per generation, the columns of ``history.jsonl`` (``generation``, ``id``,
    ``parent``, ``mutation``, ``signature``, ``params``, ``lr``, ``fitness``,
    ``validation_metric``, ...), each record checked as ``neuroevo show`` checks it."""
    try:
        import pandas
    except ModuleNotFoundError:
        raise NeuroevoError(f"neuroevo.history needs pandas: {PANDAS_HINT}") from None
    path = Path(run_dir)
    if not (path / "history.jsonl").exists():
        raise NeuroevoError(f"{path}: not a run directory (no history.jsonl)")
    records.check_run(path)
    return pandas.DataFrame.from_records(records.read_history(path))
