"""The plain MLP builder shared by the fields."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn


def mlp(
    dims: Sequence[int],
    activation: Callable[[], nn.Module] = nn.ReLU,
    final_activation: bool = False,
) -> nn.Sequential:
    """Linear layers ``dims[0] -> ... -> dims[-1]`` with ``activation()`` between them
    (and after the last one when ``final_activation``)."""
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        mods.append(nn.Linear(a, b))
        if i < len(dims) - 2 or final_activation:
            mods.append(activation())
    return nn.Sequential(*mods)
