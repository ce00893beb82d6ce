"""The search space: the bounds every genome of a run lives in."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from neuroevo.errors import InvalidSpace

#: Activations a hidden layer may use. ``identity`` makes a layer linear.
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "identity")
#: upper bounds that keep one mistyped number from exhausting the machine's memory
MAX_WIDTH = 65_536
MAX_LAYERS = 64


@dataclass(frozen=True)
class SearchSpace:
    """Bounds on hidden-layer widths, the number of hidden layers, the learning rate and the
    activations a hidden layer may use.

    ``layers_min``/``layers_max`` count hidden nodes of the genome graph (a plain MLP with two
    hidden layers has two; a skip edge adds none).
    """

    width_min: int = 8
    width_max: int = 256
    layers_min: int = 1
    layers_max: int = 4
    lr_min: float = 1e-4
    lr_max: float = 1e-1
    activations: tuple[str, ...] = field(default=("relu", "tanh", "sigmoid", "gelu"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "activations", tuple(self.activations))
        for name in ("width_min", "width_max", "layers_min", "layers_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidSpace(f"space.{name} must be an integer, got {value!r}")
        if self.width_min < 1:
            raise InvalidSpace(f"space.width_min must be at least 1, got {self.width_min}")
        if self.width_max < self.width_min:
            raise InvalidSpace(
                f"space.width_max ({self.width_max}) is below space.width_min ({self.width_min})"
            )
        for name, high in (("width_max", MAX_WIDTH), ("layers_max", MAX_LAYERS)):
            if getattr(self, name) > high:
                raise InvalidSpace(
                    f"space.{name}: must be at most {high}, got {getattr(self, name)}"
                )
        if self.layers_min < 0:
            raise InvalidSpace(f"space.layers_min must be at least 0, got {self.layers_min}")
        if self.layers_max < self.layers_min:
            raise InvalidSpace(
                f"space.layers_max ({self.layers_max}) is below space.layers_min "
                f"({self.layers_min})"
            )
        for name in ("lr_min", "lr_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidSpace(f"space.{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise InvalidSpace(f"space.{name} must be a positive number, got {value!r}")
        if self.lr_max < self.lr_min:
            raise InvalidSpace(
                f"space.lr_max ({self.lr_max}) is below space.lr_min ({self.lr_min})"
            )
        if not self.activations:
            raise InvalidSpace("space.activations must list at least one activation")
        for act in self.activations:
            if act not in ACTIVATIONS:
                raise InvalidSpace(
                    f"space.activations: unknown activation {act!r} "
                    f"(known: {', '.join(ACTIVATIONS)})"
                )

    def clamp_lr(self, lr: float) -> float:
        return min(max(lr, self.lr_min), self.lr_max)
