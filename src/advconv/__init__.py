"""advconv: compact CIFAR-10 CNNs built from advanced convolutions."""

from .api import check, fit, load_model, predict, resolve_model, summary
from .blocks import (
    DepthwiseSeparableConv,
    SpatiallySeparableConv,
    conv_norm_act,
    create_conv2d,
    get_conv_block,
)
from .config import Config, load_config
from .models import NetSpec, create_model
from .summary import check_rules, summarize

__version__ = "0.1.0"

__all__ = [
    "fit",
    "load_model",
    "predict",
    "summary",
    "check",
    "create_model",
    "resolve_model",
    "Config",
    "load_config",
    "NetSpec",
    "DepthwiseSeparableConv",
    "SpatiallySeparableConv",
    "conv_norm_act",
    "create_conv2d",
    "get_conv_block",
    "check_rules",
    "summarize",
]
