"""Image encoders and image-feature sampling."""

from .backbones import ResNetEncoder, VGG16FeaturePyramid, load_state_dict_file
from .conv import ConvEncoder
from .discriminator import ProjectionDiscriminator
from .sampling import bilinear_sample, sample_features

__all__ = [
    "ConvEncoder",
    "ProjectionDiscriminator",
    "ResNetEncoder",
    "VGG16FeaturePyramid",
    "load_state_dict_file",
    "bilinear_sample",
    "sample_features",
]
