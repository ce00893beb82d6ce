"""The search space: the bounds every genome of a run lives in."""

from __future__ import annotations

import math
from dataclasses import dataclass

from neuroevo.errors import InvalidSetting, InvalidSpace
from neuroevo.schema import check, setting, settings

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

    width_min: int = setting(8, low=1, help="narrowest dense hidden layer")
    width_max: int = setting(256, low=1, high=MAX_WIDTH, help="widest dense hidden layer")
    layers_min: int = setting(1, low=0, help="fewest dense hidden layers")
    layers_max: int = setting(4, low=0, high=MAX_LAYERS, help="most dense hidden layers")
    lr_min: float = setting(1e-4, above=0.0, help="smallest learning rate")
    lr_max: float = setting(1e-1, above=0.0, help="largest learning rate")
    activations: tuple[str, ...] = setting(
        ("relu", "tanh", "sigmoid", "gelu"), choices=ACTIVATIONS, min_items=1,
        help="what a hidden layer may compute",
    )  # fmt: skip
    # convolutions, where the task's input has a shape (neuroevo.genome)
    conv_layers_min: int = setting(0, low=0, help="fewest convolutions")
    conv_layers_max: int = setting(3, low=0, high=MAX_LAYERS, help="most convolutions")
    channels_min: int = setting(4, low=1, help="fewest channels of a convolution")
    channels_max: int = setting(64, low=1, high=MAX_WIDTH, help="most channels of a convolution")
    kernel_sizes: tuple[int, ...] = setting(
        (3, 5), low=1, high=64, min_items=1, help="a convolution's kernel sizes (odd)"
    )
    strides: tuple[int, ...] = setting((1, 2), low=1, high=64, min_items=1, help="its strides")
    pools: tuple[int, ...] = setting(
        (1, 2), low=1, high=64, min_items=1, help="its max-pooling windows (1: none)"
    )

    def __post_init__(self) -> None:
        for name, spec in settings(type(self)).items():
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, value := tuple(value))
            _check_type(name, value, self.__dataclass_fields__[name].type)
            try:
                check(f"space.{name}", value, spec)
            except InvalidSetting as exc:
                raise InvalidSpace(str(exc)) from None
        for low, high in (
            ("width_min", "width_max"),
            ("layers_min", "layers_max"),
            ("lr_min", "lr_max"),
            ("conv_layers_min", "conv_layers_max"),
            ("channels_min", "channels_max"),
        ):
            if getattr(self, high) < getattr(self, low):
                raise InvalidSpace(
                    f"space.{high} ({getattr(self, high)}) is below space.{low} "
                    f"({getattr(self, low)})"
                )
        for k in self.kernel_sizes:
            if k % 2 == 0:
                raise InvalidSpace(f"space.kernel_sizes: {k} is even (kernels are odd)")

    def clamp_lr(self, lr: float) -> float:
        return min(max(lr, self.lr_min), self.lr_max)


def _check_type(name: str, value: object, hint: str) -> None:
    """``space.name`` holds what its annotation says (a recipe's values are coerced when read;
    this catches Python callers)."""
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if hint == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidSpace(f"space.{name} must be an integer, got {value!r}")
    if hint == "float" and not (number and math.isfinite(value)):
        raise InvalidSpace(f"space.{name} must be a finite number, got {value!r}")
    if hint.startswith("tuple[int") and not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise InvalidSpace(f"space.{name}: every value must be an integer, got {list(value)}")
