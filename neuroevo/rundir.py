"""The run directory: what a run leaves behind, written without pickle.

``recipe.toml``       the resolved recipe (overrides applied)
``history.jsonl``     one JSON object per individual per generation
``summary.json``      the best net, its validation and test metrics, times, seed
``best/genome.json``  the best genome; ``best/weights.safetensors`` its weights

Whole files are written under a temporary name and published with ``os.replace``, so a reader
(or a crash) never sees half a file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import torch
from safetensors.torch import save_file

from neuroevo import genome as G
from neuroevo.errors import NeuroevoError

RUN_FILES = ("recipe.toml", "history.jsonl", "summary.json", "best", "checkpoints")


class RunDirExists(NeuroevoError):
    """The output directory already holds a run."""


def write_atomic(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunDir:
    """A run's output folder. Refuses one that already holds a run unless ``overwrite`` (start
    afresh) or ``existing`` (go on with it)."""

    def __init__(
        self, path: str | Path, *, overwrite: bool = False, existing: bool = False
    ) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise NeuroevoError(f"{self.path}: exists and is not a directory")
        if existing:
            return
        existing = [n for n in RUN_FILES if (self.path / n).exists()]
        if existing and not overwrite:
            raise RunDirExists(
                f"{self.path}: already holds a run ({', '.join(existing)}); "
                "continue it with --resume (or neuroevo resume), choose another --out, "
                "or pass --overwrite to replace it"
            )
        for name in existing:
            target = self.path / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def history_path(self) -> Path:
        return self.path / "history.jsonl"

    def truncate_history(self, n_bytes: int) -> None:
        """Drop history lines written after the checkpoint being resumed from."""
        if self.history_path.exists() and self.history_path.stat().st_size > n_bytes:
            with open(self.history_path, "r+b") as f:
                f.truncate(n_bytes)
                os.fsync(f.fileno())

    def write_recipe(self, toml_text: str) -> None:
        write_atomic(self.path / "recipe.toml", toml_text)

    def append_history(self, records: Iterable[Mapping[str, Any]]) -> None:
        with open(self.history_path, "a", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_atomic(
            self.path / "summary.json",
            json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n",
        )

    def write_best(self, genome: nx.DiGraph, state: Mapping[str, torch.Tensor]) -> None:
        best = self.path / "best"
        best.mkdir(exist_ok=True)
        write_atomic(best / "genome.json", G.to_json(genome, indent=2) + "\n")
        tmp = best / "weights.safetensors.tmp"
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in state.items()},
            str(tmp),
            # one key: safetensors writes metadata in hash-map order, so several keys would
            # make the bytes of the file differ from run to run
            metadata={"neuroevo": json.dumps({"signature": G.signature(genome)})},
        )
        os.replace(tmp, best / "weights.safetensors")
