"""Points where svrecon followed a seed's code or a slip instead of the paper
(seed-implementations.md section 7), each checked against a hand-worked value or the
formula written out here."""

import math

import numpy as np
import pytest
import torch

from svrecon.cameras import Rotation6DHead, matrix_to_rotation_6d, rotation_6d_to_matrix
from svrecon.fields import PositionalEncoding

f64 = torch.float64
S = 1 / math.sqrt(2)


def test_positional_encoding_is_exact_in_float64():
    # Section 7.12: pi * 2^k must follow the input's dtype.
    x = torch.linspace(-1, 1, 101, dtype=f64)[:, None].expand(-1, 3).contiguous()
    out = PositionalEncoding(10, "sdf_srn", include_input=False)(x)
    freq = np.pi * 2.0 ** np.arange(10)
    spectrum = x.numpy()[:, :, None] * freq  # [N, 3, L]
    expected = np.concatenate([np.sin(spectrum), np.cos(spectrum)], -1).reshape(101, -1)
    assert np.abs(out.numpy() - expected).max() < 1e-12
    nerf = PositionalEncoding(10, "nerf", include_input=False)(x)
    spectrum = x.numpy()[:, None, :] * 2.0 ** np.arange(10)[:, None]  # [N, L, 3]
    expected = np.stack([np.sin(spectrum), np.cos(spectrum)], -2).reshape(101, -1)
    assert np.abs(nerf.numpy() - expected).max() < 1e-12


def test_rotation_6d_rows_layout_is_disns():
    # DISN Eq. 1: x = N(a1), z = N(x cross a2), y = z cross x are the ROWS of R.
    # a1 = (1, 1, 0), a2 = (0, 0, 1): x = (1, 1, 0)/sqrt2, z = (1, -1, 0)/sqrt2, y = (0, 0, 1).
    d6 = torch.tensor([1.0, 1, 0, 0, 0, 1], dtype=f64)
    rows = torch.tensor([[S, S, 0], [0, 0, 1], [S, -S, 0]], dtype=f64)
    torch.testing.assert_close(rotation_6d_to_matrix(d6, "rows"), rows)
    torch.testing.assert_close(rotation_6d_to_matrix(d6), rows.T)  # Zhou et al.: columns
    first_two_rows = torch.tensor([S, S, 0, 0, 0, 1], dtype=f64)
    torch.testing.assert_close(matrix_to_rotation_6d(rows, "rows"), first_two_rows)
    torch.testing.assert_close(rotation_6d_to_matrix(first_two_rows, "rows"), rows)
    with pytest.raises(ValueError, match="layout"):
        rotation_6d_to_matrix(d6, "diagonal")


def test_disn_camera_head_reads_rows():
    head = Rotation6DHead(4).double()
    with torch.no_grad():
        head.linear.weight.zero_()
        head.linear.bias[:6] = torch.tensor([1.0, 1, 0, 0, 0, 1])
    pose, _ = head(torch.zeros(1, 4, dtype=f64))
    rows = torch.tensor([[S, S, 0], [0, 0, 1], [S, -S, 0]], dtype=f64)
    torch.testing.assert_close(pose[0, :, :3], rows)
    assert Rotation6DHead(4, layout="columns").layout == "columns"
