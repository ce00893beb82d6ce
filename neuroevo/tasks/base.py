"""The task object: data splits, sizes, and a kind that fixes loss, mixing and metric."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroevo import kinds


@dataclass(frozen=True)
class Task:
    """Train, validation and test tensors with their kind (``bits``, ``classes``,
    ``regression``). The test split is for the final score only: nothing else sees it."""

    name: str
    kind: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_inputs(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        if self.kind == "classes":
            return int(max(self.y_train.max(), self.y_valid.max(), self.y_test.max()).item()) + 1
        return self.y_train.shape[1]

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_train, self.y_train

    @property
    def valid(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_valid, self.y_valid

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_test, self.y_test

    @property
    def metric_name(self) -> str:
        return kinds.get(self.kind).metric_name
