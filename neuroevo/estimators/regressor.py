"""``NeuroevoRegressor``: a neuroevo search as a scikit-learn regressor."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin

from neuroevo.estimators.search import Search


class NeuroevoRegressor(RegressorMixin, Search):
    """A regressor found by a neuroevo search, in one ``fit``: one target ``(n,)`` or several
    ``(n, targets)``, predicted in their own units. The parameters and attributes are
    :class:`~neuroevo.estimators.classifier.NeuroevoClassifier`'s (without ``classes_``)."""

    kind = "regression"
    _y = {"multi_output": True, "y_numeric": True}

    def fit(self, X: Any, y: Any) -> NeuroevoRegressor:
        X, y = self._validated(X, y, reset=True)
        return self._fit(X, y.astype(np.float64), None)

    def predict(self, X: Any) -> np.ndarray:
        rows = self._rows(X)  # first: it checks that the estimator is fitted
        return np.asarray(self.model_.predict(rows), dtype=np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # several targets, each in its own units
        return tags
