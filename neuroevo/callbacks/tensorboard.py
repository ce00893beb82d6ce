"""A callback that writes a run to TensorBoard (the optional ``tensorboard`` extra).

``neuroevo evolve RECIPE --tensorboard DIR``, or ``evolve(..., callbacks=[TensorBoard(DIR)])``,
then ``tensorboard --logdir DIR``. Per generation (step = generation, counted from 1):
``search/best_metric``, ``search/mean_metric``, ``search/max_fitness``, ``search/seconds`` and
a histogram of the generation's validation metrics. Per recorded mixer step (step = mixer
steps since the run began, so generations follow one another): ``mixer/top_score``,
``mixer/live_nets`` and a histogram of the live nets' scores. At the end: ``final/test_metric``
and ``final/validation_metric``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from neuroevo.callbacks.base import Callback
from neuroevo.errors import NeuroevoError

HINT = "pip install 'neuroevo[tensorboard]'"


class TensorBoard(Callback):
    """Write per-generation scalars and per-step scores under ``log_dir``."""

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise NeuroevoError(f"the TensorBoard callback needs tensorboard: {HINT}") from None
        self.log_dir = Path(log_dir)
        self._writer_class = SummaryWriter
        self.writer: Any = None

    def on_run_begin(self, **kwargs: Any) -> None:
        self.writer = self._writer_class(log_dir=str(self.log_dir))
        recipe = kwargs.get("recipe")
        if recipe is not None:
            self.writer.add_text("recipe", "```\n" + recipe.to_toml() + "\n```", 0)

    def on_generation_end(self, *, summary: Any, **kwargs: Any) -> None:
        w, step = self.writer, summary.generation + 1
        metrics = [r["validation_metric"] for r in summary.records]
        metrics = [m for m in metrics if m is not None]
        for name, value in (
            ("search/best_metric", summary.best_metric),
            ("search/mean_metric", summary.mean_metric),
            ("search/seconds", summary.elapsed),
        ):
            if value is not None:
                w.add_scalar(name, value, step)
        fitness = [r["fitness"] for r in summary.records if r["fitness"] is not None]
        if fitness:
            w.add_scalar("search/max_fitness", max(fitness), step)
        if metrics:
            w.add_histogram(
                "search/validation_metric", torch.tensor(metrics, dtype=torch.float64), step
            )
        if summary.mixing is not None:
            tensors, meta = summary.mixing
            offset = summary.generation * meta["steps"]
            scores = tensors["scores"].float()
            for row, at in enumerate(tensors["score_steps"].tolist()):
                live = [i for i, left in enumerate(meta["retired_at"]) if left is None or at < left]
                if not live:
                    continue
                now = scores[row, live]
                w.add_scalar("mixer/top_score", float(now.max()), offset + at)
                w.add_scalar("mixer/live_nets", len(live), offset + at)
                w.add_histogram("mixer/scores", now, offset + at)
        w.flush()

    def on_run_end(self, *, result: Any, **kwargs: Any) -> None:
        best = result.summary.best
        step = result.summary.generations_completed
        for name in ("test_metric", "validation_metric"):
            if getattr(best, name) is not None:
                self.writer.add_scalar(f"final/{name}", getattr(best, name), step)
        self.writer.close()
