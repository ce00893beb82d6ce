"""logbits, the task of the original 2017 mixer demo.

Input: an integer x drawn uniformly from [1, 65534], as 16 bits, least significant first.
Target: y = int(1000 * ln(x)) (natural log, truncated), as 16 bits, least significant first.
"""

from __future__ import annotations

import numpy as np
import torch

from neuroevo.tasks.base import Task, TaskError

BITS = 16
MAX_ROWS = 10_000_000


def to_bits(values: np.ndarray) -> torch.Tensor:
    """Integers -> (n, 16) float tensor of 0/1, least significant bit first."""
    shifts = np.arange(BITS, dtype=np.int64)
    return torch.from_numpy(((values[:, None] >> shifts) & 1).astype(np.float32))


def draw(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = rng.integers(1, 65534, size=n, endpoint=True, dtype=np.int64)
    y = np.floor(1000.0 * np.log(x)).astype(np.int64)
    return to_bits(x), to_bits(y)


def logbits(
    *, seed: int = 0, n_train: int = 10_000, n_valid: int = 5_000, n_test: int = 10_000
) -> Task:
    """Fresh draws for each split from a generator seeded with ``seed``."""
    for key, n in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if not 1 <= n <= MAX_ROWS:
            raise TaskError(f"task.{key}: must be between 1 and {MAX_ROWS}, got {n}")
    rng = np.random.default_rng(seed)
    x_train, y_train = draw(n_train, rng)
    x_valid, y_valid = draw(n_valid, rng)
    x_test, y_test = draw(n_test, rng)
    return Task("logbits", "bits", x_train, y_train, x_valid, y_valid, x_test, y_test)
