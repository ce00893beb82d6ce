"""scikit-learn estimators: a search from arrays or a DataFrame in three lines.

:class:`NeuroevoClassifier` and :class:`NeuroevoRegressor` (the ``sklearn`` extra) run a whole
neuroevo search in ``fit`` and predict with the model it ends with; they work in ``Pipeline``,
``clone``, ``cross_val_score`` and ``GridSearchCV`` like any estimator.
"""

from neuroevo.estimators.classifier import NeuroevoClassifier
from neuroevo.estimators.regressor import NeuroevoRegressor

__all__ = ["NeuroevoClassifier", "NeuroevoRegressor"]
