"""The progress callback: bars on stderr while a run goes (only on a terminal; ``tqdm`` is
imported when the first bar is drawn) and one line per generation on stdout."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from neuroevo.callbacks.base import Callback


class Progress(Callback):
    """Progress bars on stderr (only on a terminal) and one line per generation on stdout
    (none with ``quiet``). ``finish(result)``, where given, is called at the run's end once
    the bars are closed (the command line prints the run's last lines there). With ``auto``
    the bars are ``tqdm.auto``'s, drawn in a notebook as well as on a terminal."""

    def __init__(
        self, *, quiet: bool, finish: Callable[[Any], None] | None = None, auto: bool = False
    ) -> None:
        self.quiet = quiet
        self.finish = finish
        self.auto = auto
        self.bars = not quiet and (auto or sys.stderr.isatty())
        self.generation_bar = self.step_bar = None
        self.step_phase: tuple | None = None

    def _bar(self, **kwargs: Any):
        if self.auto:
            from tqdm.auto import tqdm as auto

            return auto(dynamic_ncols=True, **kwargs)
        from tqdm import tqdm

        return tqdm(file=sys.stderr, dynamic_ncols=True, **kwargs)

    def _say(self, line: str) -> None:
        if self.quiet:
            return
        if self.bars:
            from tqdm import tqdm

            tqdm.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def on_run_begin(self, *, recipe, task, out, engine, device, **kwargs: Any) -> None:
        budget, limit = recipe.evolution.time_budget, recipe.run.time_limit
        # a search that ends on a time budget counts generations without a total
        self.total = None if budget or limit else recipe.evolution.generations
        self.metric = task.metric_name
        length = f"up to {recipe.evolution.generations} generations"
        length += f" or {budget:g} s of search" if budget else ""
        length += f", the whole run within {limit:g} s" if limit else ""
        self._say(
            f"neuroevo: {recipe.task.name} ({task.kind}, {task.n_inputs} inputs, "
            f"{task.n_outputs} outputs), population {recipe.population.size}, {length}, "
            f"{recipe.mixer.steps} mixer steps a generation ({engine} engine, {device}), seed "
            f"{recipe.run.seed}; run directory {out}" + _islands_line(recipe)
        )
        if self.bars:
            self.generation_bar = self._bar(total=self.total, desc="generations", unit="gen")

    def on_generation_begin(self, *, generation, evolution, island=0, **kwargs: Any) -> None:
        if self.bars:
            if self.step_bar is not None:  # the previous island's
                self.step_bar.close()
            several = evolution.recipe.islands.count > 1
            desc = f"gen {generation + 1}" + (f" island {island}" if several else "")
            self.step_bar = self._bar(desc=desc, unit="step", leave=False)

    def on_mixer_step(self, *, step, steps, live, **kwargs: Any) -> None:
        if self.step_bar is not None:
            self.step_bar.total = steps
            self.step_bar.update(1)
            if step % 50 == 0:
                self.step_bar.set_postfix(live=live, refresh=False)

    def on_generation_end(self, *, summary, islands=(), **kwargs: Any) -> None:
        if self.step_bar is not None:
            self.step_bar.close()
            self.step_bar = None
        if self.generation_bar is not None:
            self.generation_bar.update(1)
        best = "n/a" if summary.best_metric is None else f"{summary.best_metric:.4f}"
        mean = "n/a" if summary.mean_metric is None else f"{summary.mean_metric:.4f}"
        per_island = ""
        if len(islands) > 1:
            per_island = "  islands " + " ".join(
                "n/a" if s.best_metric is None else f"{s.best_metric:.4f}" for s in islands
            )
        self._say(
            f"gen {summary.generation + 1}{f'/{self.total}' if self.total else ''}  "
            f"{self.metric} best {best} "
            f"mean {mean}  {summary.best_signature}  {summary.elapsed:.1f}s{per_island}"
        )

    def on_final_step(self, *, step, steps, **kwargs: Any) -> None:
        if self.generation_bar is not None:
            self.generation_bar.close()
            self.generation_bar = None
        if self.bars:
            phase = (bool(kwargs.get("refit")), kwargs.get("folds"))
            restarted = self.step_bar is not None and step <= self.step_bar.n
            if self.step_bar is not None and (phase != self.step_phase or restarted):
                self.step_bar.close()  # the last phase's nets stopped early, or the next net
                self.step_bar = None
            if self.step_bar is None:
                desc = "refit" if kwargs.get("refit") else "final training"
                nets, folds = kwargs.get("nets", 1), kwargs.get("folds")
                if folds:
                    desc = f"bagged refit ({folds} folds x {nets // folds} net(s))"
                elif nets > 1:
                    desc += f" ({nets} nets)"
                self.step_bar = self._bar(total=steps, desc=desc, unit="step", leave=False)
                self.step_phase = phase
            self.step_bar.update(1)
            if step == steps:
                self.step_bar.close()
                self.step_bar = None

    def on_run_end(self, *, result, **kwargs: Any) -> None:
        for bar in (self.step_bar, self.generation_bar):
            if bar is not None:
                bar.close()
        if self.finish is not None:
            self.finish(result)


def _islands_line(recipe: Any) -> str:
    section = recipe.islands
    if section.count == 1:
        return ""
    return (
        f"; {section.count} islands on {recipe.run.backend}, {section.migrants} migrant(s) "
        f"every {section.migrate_every} generation(s)"
    )
