"""A fuzz of the losses by category (hypothesis): random sizes including empty sets,
and wrong shapes. Policy (docs/reliability.md): finite inputs give a finite value and
finite gradients (an empty set gives 0), and a wrong shape is a ValueError that names
the argument. A new loss is covered by adding its spec to SPECS."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from svrecon import losses as L

f64 = torch.float64


def rand(*shape, low=0.0, high=1.0):
    return (torch.rand(*shape, dtype=f64) * (high - low) + low).requires_grad_()


def mask(*shape):
    return torch.rand(*shape) > 0.5


# name -> (builder of valid arguments from (B, N), arguments' names in order)
SPECS = {
    "eikonal_loss": (lambda b, n: (rand(b, n, 3),), ["gradients"]),
    "masked_l1_loss": (lambda b, n: (rand(b, n, 3), rand(b, n, 3), mask(b, n)),
                       ["pred", "target", "mask"]),
    "masked_mse_loss": (lambda b, n: (rand(b, n, 3), rand(b, n, 3), mask(b, n)),
                        ["pred", "target", "mask"]),
    "occupancy_photometric_loss": (lambda b, n: (rand(b, n, 3), rand(b, n, 3), mask(b, n)),
                                   ["pred", "target", "mask"]),
    "occupancy_silhouette_loss": (lambda b, n: (rand(b, n), mask(b, n)), ["occupancy", "mask"]),
    "silhouette_sdf_loss": (lambda b, n: (rand(b, n, 4, low=-1), rand(b, n, 4), mask(b, n)),
                            ["sdf", "bound", "background"]),
    "ray_intersection_loss": (lambda b, n: (rand(b, n, 5, low=-1), mask(b, n)),
                              ["marched_values", "mask"]),
    "ray_free_space_loss": (lambda b, n: (rand(b, n, 5, low=-1),), ["marched_values"]),
    "disn_sdf_loss": (lambda b, n: (rand(b, n, low=-1), rand(b, n, low=-0.1, high=0.1)),
                      ["pred", "target"]),
    "soft_iou_loss": (lambda b, n: (rand(b, n), rand(b, n)), ["pred", "target"]),
    "generator_loss": (lambda b, n: (rand(b, low=-3, high=3),), ["fake_logits"]),
    "discriminator_loss": (lambda b, n: (rand(b, low=-3, high=3), rand(b, low=-3, high=3)),
                           ["real_logits", "fake_logits"]),
    "angle_range_loss": None,  # takes angles and bounds; covered in its own tests
}  # fmt: skip
SPECS = {k: v for k, v in SPECS.items() if v is not None}


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=15, deadline=None)
@given(b=st.integers(0, 3), n=st.integers(0, 6))
def test_finite_inputs_give_finite_values_and_gradients(name, b, n):
    build, _ = SPECS[name]
    args = build(b, n)
    value = getattr(L, name)(*args)
    assert value.dim() == 0 and torch.isfinite(value), (name, b, n, value)
    leaves = [a for a in args if a.requires_grad]
    grads = torch.autograd.grad(value, leaves, allow_unused=True)
    assert all(g is None or torch.isfinite(g).all() for g in grads), (name, b, n)
    if b * n == 0 and name not in ("generator_loss", "discriminator_loss"):
        assert value.item() == 0.0, (name, b, n)  # an empty set gives 0


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_wrong_shape_names_the_argument(name):
    build, names = SPECS[name]
    args = list(build(2, 4))
    for i, arg in enumerate(args):
        bad = list(args)
        # A second axis where one is expected, a batch that disagrees with the other
        # arguments, or an extra trailing axis.
        if arg.dim() == 1:
            bad[i] = arg[:, None].expand(-1, 2)
        else:
            bad[i] = arg[:1] if len(args) > 1 else arg[..., None]
        with pytest.raises(ValueError) as err:
            getattr(L, name)(*bad)
        assert any(n in str(err.value) for n in names), (name, names[i], str(err.value))
