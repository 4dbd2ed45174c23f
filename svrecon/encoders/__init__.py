"""Image encoders and image-feature sampling."""

from .sampling import bilinear_sample, sample_features

__all__ = ["bilinear_sample", "sample_features"]
