"""``NeuroevoClassifier``: a neuroevo search as a scikit-learn classifier."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from neuroevo.estimators.search import Search


class NeuroevoClassifier(ClassifierMixin, Search):
    """A classifier found by a neuroevo search, in one ``fit``.

    ``fit(X, y)`` runs a whole search on the rows (70% training, 20% validation, 10% a test
    split the run scores its final model on once) within ``time_limit`` seconds and keeps the
    model it ends with; ``predict`` gives labels as ``y`` held them (strings stay strings),
    ``predict_proba`` one column per class of ``classes_``. ``X`` may be a DataFrame (its column
    names are kept: ``feature_names_in_``) or arrays of shape ``(n, channels, length)`` or
    ``(n, channels, height, width)``, or flat rows with ``shape=``, to search convolutions.

    Parameters: ``time_limit`` (seconds of the whole search, ``run.time_limit``),
    ``random_state`` (``run.seed``; None is 0), ``population_size`` (``population.size``),
    ``space`` (``[space]`` keys), ``objectives`` (``evolution.objectives``), ``recipe`` (any
    other key: ``{"mixer": {"steps": 500}}``), ``shape``, ``out`` (keep the run directory there;
    a temporary one otherwise) and ``verbose`` (0: nothing printed; 1: progress bars and a line
    per generation, in a notebook too). After ``fit``: ``classes_``, ``n_features_in_``,
    ``model_`` (a :class:`neuroevo.Model`) and ``summary_`` (the run's ``summary.json``).
    """

    kind = "classes"
    _y = {"ensure_min_samples": 1}

    def fit(self, X: Any, y: Any) -> NeuroevoClassifier:
        X, y = self._validated(X, y, reset=True)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        return self._fit(X, encoded, [str(c) for c in self.classes_])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Each class's probability, in the order of ``classes_``."""
        rows = self._rows(X)  # first: it checks that the estimator is fitted
        return self.model_.predict_proba(rows)

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
