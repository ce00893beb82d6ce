"""scikit-learn's bundled data sets, which ship inside the package and load offline.

scikit-learn is an optional extra: ``pip install 'neuroevo[sklearn]'``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from neuroevo.tasks.base import DEFAULT_SPLIT, Task, TaskError, from_arrays

#: task name -> (loader in sklearn.datasets, kind)
DATASETS = {
    "digits": ("load_digits", "classes"),
    "iris": ("load_iris", "classes"),
    "wine": ("load_wine", "classes"),
    "breast_cancer": ("load_breast_cancer", "classes"),
    "diabetes": ("load_diabetes", "regression"),
}


def _load(loader: str):
    try:
        datasets = importlib.import_module("sklearn.datasets")
    except ImportError:
        raise TaskError(
            "this task needs scikit-learn: pip install 'neuroevo[sklearn]' "
            "(or pip install scikit-learn)"
        ) from None
    return getattr(datasets, loader)()


def _builder(name: str, loader: str, kind: str) -> Callable[..., Task]:
    def build(
        *,
        seed: int,
        split: list[float] = list(DEFAULT_SPLIT),  # noqa: B006 (read only; its type is the schema)
        standardize: bool = True,
    ) -> Task:
        bunch = _load(loader)
        classes = [str(c) for c in getattr(bunch, "target_names", [])] if kind == "classes" else []
        return from_arrays(
            name,
            kind,
            bunch.data,
            bunch.target,
            seed=seed,
            split=split,
            standardize=standardize,
            classes=classes,
            where=f"task {name!r}",
            features=[str(f) for f in getattr(bunch, "feature_names", [])],
            targets=["target"] if kind == "regression" else ["label"],
        )

    build.__name__ = name
    build.__doc__ = f"scikit-learn's {name} data set ({kind}), split by ``seed``."
    return build


BUILDERS = {name: _builder(name, loader, kind) for name, (loader, kind) in DATASETS.items()}
