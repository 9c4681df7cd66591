"""advconv: compact CIFAR-10 CNNs built from advanced convolutions."""

__version__ = "0.1.0"

from .api import (RangeTest, TrainedModel, TrainResult, check, compare, create_model, evaluate, explain,  # noqa: E402
                  export, fit, load_model, lr_find, plot, predict, predict_files, resolve_model, summary)
from .blocks import (DepthwiseSeparableConv, SpatiallySeparableConv, conv_norm_act, create_conv2d,  # noqa: E402
                     get_conv_block)
from .config import Config, load_config  # noqa: E402
from .models import NetSpec  # noqa: E402
from .rules import check_rules  # noqa: E402
from .summary import summarize  # noqa: E402

__all__ = [
    "fit", "lr_find", "load_model", "create_model", "resolve_model", "predict", "predict_files", "summary", "check",
    "evaluate", "compare", "plot", "export", "explain", "TrainedModel", "TrainResult", "RangeTest",
    "Config", "load_config", "NetSpec",
    "DepthwiseSeparableConv", "SpatiallySeparableConv", "conv_norm_act", "create_conv2d", "get_conv_block",
    "check_rules", "summarize",
]
