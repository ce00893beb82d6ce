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
    # convolutions, where the task's input has a shape (neuroevo.genome)
    conv_layers_min: int = 0
    conv_layers_max: int = 3
    channels_min: int = 4
    channels_max: int = 64
    kernel_sizes: tuple[int, ...] = field(default=(3, 5))
    strides: tuple[int, ...] = field(default=(1, 2))
    pools: tuple[int, ...] = field(default=(1, 2))  # max-pooling windows; 1: none

    def __post_init__(self) -> None:
        for name in ("activations", "kernel_sizes", "strides", "pools"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in (
            "width_min",
            "width_max",
            "layers_min",
            "layers_max",
            "conv_layers_min",
            "conv_layers_max",
            "channels_min",
            "channels_max",
        ):
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
        self._check_conv()
        if not self.activations:
            raise InvalidSpace("space.activations must list at least one activation")
        for act in self.activations:
            if act not in ACTIVATIONS:
                raise InvalidSpace(
                    f"space.activations: unknown activation {act!r} "
                    f"(known: {', '.join(ACTIVATIONS)})"
                )

    def _check_conv(self) -> None:
        for low, high in (("conv_layers_min", "conv_layers_max"), ("channels_min", "channels_max")):
            minimum = 1 if low == "channels_min" else 0
            if getattr(self, low) < minimum:
                raise InvalidSpace(
                    f"space.{low} must be at least {minimum}, got {getattr(self, low)}"
                )
            if getattr(self, high) < getattr(self, low):
                raise InvalidSpace(
                    f"space.{high} ({getattr(self, high)}) is below space.{low} "
                    f"({getattr(self, low)})"
                )
        for name, limit in (("conv_layers_max", MAX_LAYERS), ("channels_max", MAX_WIDTH)):
            if getattr(self, name) > limit:
                raise InvalidSpace(
                    f"space.{name}: must be at most {limit}, got {getattr(self, name)}"
                )
        for name, odd in (("kernel_sizes", True), ("strides", False), ("pools", False)):
            values = getattr(self, name)
            if not values:
                raise InvalidSpace(f"space.{name} must list at least one value")
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int) or v < 1 or v > 64:
                    raise InvalidSpace(f"space.{name}: {v!r} is not an integer in 1..64")
                if odd and v % 2 == 0:
                    raise InvalidSpace(f"space.kernel_sizes: {v} is even (kernels are odd)")

    def clamp_lr(self, lr: float) -> float:
        return min(max(lr, self.lr_min), self.lr_max)
