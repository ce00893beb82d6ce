"""What both estimators share: the constructor's knobs, the recipe they build, the run."""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroevo import tasks
from neuroevo.callbacks.progress import Progress
from neuroevo.errors import NeuroevoError
from neuroevo.recipe import Recipe, from_dict
from neuroevo.results.model import Model, load
from neuroevo.runner import evolve

#: how the estimators split the rows ``fit`` gets: training, validation (the search's), and a
#: small test split the run scores its final model on once (the user scores on their own)
SPLIT = (0.7, 0.2, 0.1)
_NAMES = itertools.count()


class Search(BaseEstimator):
    """A neuroevo search as a scikit-learn estimator (see the subclasses)."""

    #: the task kind the subclass fits
    kind = ""

    def __init__(
        self,
        *,
        time_limit: float = 60.0,
        random_state: int | None = None,
        population_size: int | None = None,
        space: Mapping[str, Any] | None = None,
        objectives: list[str] | None = None,
        recipe: Mapping[str, Mapping[str, Any]] | None = None,
        shape: tuple[int, ...] | None = None,
        out: str | None = None,
        verbose: int = 0,
    ) -> None:
        self.time_limit = time_limit
        self.random_state = random_state
        self.population_size = population_size
        self.space = space
        self.objectives = objectives
        self.recipe = recipe
        self.shape = shape
        self.out = out
        self.verbose = verbose

    # ------------------------------------------------------------------ the recipe

    def recipe_for(self, task_name: str) -> Recipe:
        """The recipe ``fit`` runs, as a TOML file with these settings would give it (the same
        checks, the same defaults): ``recipe=`` sections first, the named knobs over them."""
        sections: dict[str, dict[str, Any]] = {
            name: dict(part) for name, part in (self.recipe or {}).items()
        }
        if "task" in sections:
            raise NeuroevoError("recipe: the estimator's data is its task; give no [task] section")
        run = sections.setdefault("run", {})
        run.update(time_limit=float(self.time_limit), report=run.get("report", False))
        run["seed"] = 0 if self.random_state is None else int(self.random_state)
        if self.population_size is not None:
            sections.setdefault("population", {})["size"] = self.population_size
        if self.space is not None:
            sections["space"] = {**sections.get("space", {}), **dict(self.space)}
        if self.objectives is not None:
            sections.setdefault("evolution", {})["objectives"] = list(self.objectives)
        return from_dict({"task": {"name": task_name}, **sections}, source="estimator")

    # ------------------------------------------------------------------ fitting

    def _fit(self, x: np.ndarray, y: np.ndarray, classes: list[str] | None) -> Search:
        shape = self._shape(x)
        features = getattr(self, "feature_names_in_", None)
        names = [str(f) for f in features] if features is not None else []
        rows = x.reshape(len(x), -1).astype(np.float64)

        def build(*, seed: int) -> tasks.Task:
            return tasks.from_arrays(
                "arrays", self.kind, rows, y, seed=seed, split=SPLIT, classes=classes or (),
                features=names, shape=shape, where="the data given to fit",
            )  # fmt: skip

        name = f"estimator_{next(_NAMES)}"
        tasks.register_task(name)(build)
        try:
            recipe = self.recipe_for(name)
            with self._run_dir() as out:
                callbacks = [Progress(quiet=False, auto=True)] if self.verbose else []
                result = evolve(recipe, out=out, overwrite=True, callbacks=callbacks)
                self.model_: Model = load(out)
        finally:
            tasks.unregister(name)
        self.summary_ = result.summary
        return self

    def _shape(self, x: np.ndarray) -> list[int] | None:
        """Each row's shape: ``shape=``, or an array of 3 or 4 dimensions' own."""
        if self.shape is not None:
            return [int(s) for s in self.shape]
        return list(x.shape[1:]) if x.ndim > 2 else None

    @contextlib.contextmanager
    def _run_dir(self) -> Iterator[str]:
        if self.out is not None:
            yield str(self.out)
            return
        with tempfile.TemporaryDirectory(prefix="neuroevo-") as tmp:
            yield str(Path(tmp) / "run")

    def _validated(self, x: Any, y: Any = "no_validation", *, reset: bool) -> Any:
        """``x`` (and in ``fit`` ``y``) checked as scikit-learn checks them: finite numbers,
        at least one row, as many features as ``fit`` saw (and their names)."""
        nd = self.shape is not None or getattr(x, "ndim", 2) > 2
        extra = {} if isinstance(y, str) and y == "no_validation" else self._y
        return validate_data(self, x, y, reset=reset, allow_nd=nd, dtype=np.float64, **extra)

    #: validate_data's settings for y (the subclasses')
    _y: dict[str, Any] = {}

    def _rows(self, x: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        x = self._validated(x, reset=False)
        return x.reshape(len(x), -1)
