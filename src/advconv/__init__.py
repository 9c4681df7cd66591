"""advconv: compact CIFAR-10 CNNs built from advanced convolutions."""

from .blocks import (
    DepthwiseSeparableConv,
    SpatiallySeparableConv,
    conv_norm_act,
    create_conv2d,
    get_conv_block,
)
from .models import NetSpec, create_model
from .summary import check_rules, summarize

__version__ = "0.1.0"

__all__ = [
    "DepthwiseSeparableConv",
    "SpatiallySeparableConv",
    "conv_norm_act",
    "create_conv2d",
    "get_conv_block",
    "NetSpec",
    "create_model",
    "check_rules",
    "summarize",
]
