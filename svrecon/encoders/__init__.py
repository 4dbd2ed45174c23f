"""Image encoders and image-feature sampling."""

from .backbones import ResNetEncoder, VGG16FeaturePyramid, load_state_dict_file
from .sampling import bilinear_sample, sample_features

__all__ = [
    "ResNetEncoder",
    "VGG16FeaturePyramid",
    "load_state_dict_file",
    "bilinear_sample",
    "sample_features",
]
