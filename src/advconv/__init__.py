"""advconv: compact CIFAR-10 CNNs built from advanced convolutions.

The public names load on first use, so that ``import advconv`` and ``advconv --help`` do not pay
for torch before something needs it.
"""

import importlib

__version__ = "0.1.0"

_HOMES = {  # each public name and the module it lives in
    **dict.fromkeys(["fit", "lr_find", "load_model", "create_model", "resolve_model", "predict", "predict_files",
                     "summary", "check", "evaluate", "compare", "plot", "export", "explain", "demo", "receptive_fields", "calibrate", "space", "search",
                     "TrainedModel", "TrainResult", "RangeTest"], "api"),
    "Config": "config", "load_config": "config",
    "NetSpec": "nets.specs",
    **dict.fromkeys(["DepthwiseSeparableConv", "SpatiallySeparableConv", "conv_norm_act", "create_conv2d",
                     "get_conv_block"], "nets.blocks"),
    "check_rules": "nets.rules", "summarize": "nets.summary",
}
__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'advconv' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
