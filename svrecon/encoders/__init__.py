"""Image encoders and image-feature sampling."""

from .backbones import ResNetEncoder, VGG16FeaturePyramid, load_state_dict_file
from .discriminator import ProjectionDiscriminator
from .sampling import bilinear_sample, sample_features

__all__ = [
    "ProjectionDiscriminator",
    "ResNetEncoder",
    "VGG16FeaturePyramid",
    "load_state_dict_file",
    "bilinear_sample",
    "sample_features",
]
