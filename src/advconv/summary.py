"""Per-layer summary (shape, params, MACs, receptive field) and the assignment's rule checks.

Shapes come from forward hooks on one dummy batch; the receptive-field arithmetic is ours:
walking the leaf layers in execution order, a layer with kernel k, stride s, dilation d
grows the field by ``(d*(k-1)) * jump`` and multiplies the jump by s. That is exact for
chains, and for residual blocks whose skip is an identity (the longest path dominates).
Anything else (a projection shortcut, a concatenation, a functional op between layers, an
upsample) is detected from the data flow of that forward pass, and the summary then says
where it cannot follow instead of printing a field it cannot vouch for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .blocks import Residual, SqueezeExcite

PARAM_BUDGET = 200_000
COURSE_MIN_RF = 45        # the course asks a receptive field above 44 on its 32x32 images
BLOCK_NAMES = ("c1", "c2", "c3", "c4")  # the C1 C2 C3 C4 blocks of build_net, then the output


def within_budget(params: int, budget: int) -> bool:
    """The assignment's parameter rule: strictly fewer than the budget. Training and the
    check both use it, so a net that trains is a net that passes."""
    return params < budget


@dataclass
class LayerInfo:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    rf: tuple[int, int] | None      # None from the first place the chain cannot be followed
    jump: tuple[float, float] | None


@dataclass
class ModelSummary:
    layers: list[LayerInfo]
    total_params: int
    trainable_params: int
    input_size: int
    final_rf: tuple[int, int] | None      # None: not a chain the arithmetic can follow (see unseen)
    unseen: str | None = None             # where and why the receptive field cannot be followed
    functional_maxpools: int = 0          # max-pooling called as a function, not as a module

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def table(self) -> str:
        header = ("layer", "type", "output shape", "params", "MACs", "RF", "jump")
        rows = [header]
        for layer in self.layers:
            rows.append((
                layer.name, layer.kind, "x".join(map(str, layer.output_shape)), f"{layer.params:,}",
                f"{layer.macs:,}", *((_fmt_pair(layer.rf), _fmt_pair(layer.jump)) if layer.rf else ("?", "?")),
            ))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
        line = lambda r: "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(r, widths)))
        rule = "-" * len(line(header))
        out = [line(header), rule, *(line(r) for r in rows[1:]), rule]
        out.append(f"Total params: {self.total_params:,} (trainable {self.trainable_params:,})")
        out.append(f"Total MACs per image: {self.total_macs:,} ({self.total_macs / 1e6:.2f} M)")
        if self.final_rf is None:
            out.append(f"Final receptive field: not computed: {self.unseen}")
        else:
            out.append(f"Final receptive field: {_fmt_pair(self.final_rf)} on a "
                       f"{self.input_size}x{self.input_size} input")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _fmt_pair(pair: tuple) -> str:
    a, b = (int(v) if float(v).is_integer() else round(v, 3) for v in pair)
    return f"{a}" if a == b else f"{a}x{b}"


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


def _units(model: nn.Module) -> list[nn.Module]:
    """What the summary follows: leaf layers, squeeze-excite gates whole (their pooled side path
    is no step of the chain: the gate keeps the shape and the receptive field), and ``Residual``
    blocks, to see skips."""
    gated = {id(m) for se in model.modules() if isinstance(se, SqueezeExcite) for m in se.modules() if m is not se}
    return [m for m in model.modules()
            if id(m) not in gated and (_is_leaf(m) or isinstance(m, (Residual, SqueezeExcite)))]


def _rf_step(module: nn.Module, rf: tuple, jump: tuple, in_shape, out_shape) -> tuple[tuple, tuple]:
    """Receptive field and jump after ``module``, given them before it (per axis)."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s = _pair(module.kernel_size), _pair(module.stride)
        d = _pair(getattr(module, "dilation", 1))
        rf = tuple(r + d_ * (k_ - 1) * j for r, k_, d_, j in zip(rf, k, d, jump))
        jump = tuple(j * s_ for j, s_ in zip(jump, s))
    elif isinstance(module, nn.ConvTranspose2d):
        k, s, d = _pair(module.kernel_size), _pair(module.stride), _pair(module.dilation)
        # an output pixel sees ceil(k_eff / s) input pixels along each axis
        rf = tuple(r + (math.ceil((d_ * (k_ - 1) + 1) / s_) - 1) * j
                   for r, k_, d_, s_, j in zip(rf, k, d, s, jump))
        jump = tuple(j / s_ for j, s_ in zip(jump, s))
    elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and len(in_shape) == 4:
        # pooling to a smaller grid: each output cell covers in/out input cells
        for axis in (0, 1):
            cells = math.ceil(in_shape[2 + axis] / out_shape[2 + axis])
            rf = tuple(r + (cells - 1) * j if a == axis else r for a, (r, j) in enumerate(zip(rf, jump)))
        jump = tuple(j * in_shape[2 + a] / out_shape[2 + a] for a, j in enumerate(jump))
    return rf, jump


def _macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        k = _pair(module.kernel_size)
        return out[0].numel() * (module.in_channels // module.groups) * k[0] * k[1]
    if isinstance(module, nn.ConvTranspose2d):
        k = _pair(module.kernel_size)
        return inp[0].numel() * (module.out_channels // module.groups) * k[0] * k[1]
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    if isinstance(module, SqueezeExcite):  # two 1x1 convs on the pooled (C, 1, 1) vector
        return 2 * module.reduce.in_channels * module.reduce.out_channels
    return 0


MAXPOOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
AVGPOOLS = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)  # subclasses too: blocks.GlobalAvgPool
RF_KINDS = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class _MaxPoolCalls(TorchFunctionMode):
    """Counts max-pooling done by functions (``F.max_pool2d`` in a custom forward) during a pass."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.count += "max_pool" in getattr(func, "__name__", "")
        return func(*args, **(kwargs or {}))


def _chain_break(events: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]], x: torch.Tensor) -> str | None:
    """Where the forward pass stops being a chain of leaves (identity-skip ``Residual`` blocks
    allowed), following the tensors themselves; None if it never does."""
    current = x
    for name, module, inp, out in events:
        if isinstance(module, Residual):
            current = out  # x + body(x): the body's path is the longest, already walked
            continue
        if inp is not current:
            return f"{name} ({type(module).__name__}) takes a tensor that is not the previous layer's output " \
                   "(a branch, a merge or a functional op)"
        if not isinstance(module, RF_KINDS) and out.dim() == 4 and out.shape[-2:] != inp.shape[-2:]:
            return f"{name} ({type(module).__name__}) resizes the map in a way the arithmetic does not know"
        current = out
    return None


def summarize(model: nn.Module, input_size: int = 32, in_channels: int = 3) -> ModelSummary:
    """Run one 1-image forward pass in eval mode and tabulate every leaf layer."""
    events: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(module, inputs, output):
        events.append((names[module], module, inputs[0], output))

    handles = [m.register_forward_hook(hook) for m in _units(model)]
    was_training = model.training
    param = next(model.parameters(), None)
    x = torch.zeros(1, in_channels, input_size, input_size, device=param.device if param is not None else "cpu")
    try:
        model.eval()
        with torch.no_grad(), _MaxPoolCalls() as maxpools:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    unseen = _chain_break(events, x)
    layers, rf, jump, final_rf, followed = [], (1, 1), (1, 1), (1, 1), True
    for name, module, inp, out in events:
        if isinstance(module, Residual):
            continue
        followed = followed and not (unseen and unseen.startswith(f"{name} ("))
        rf, jump = _rf_step(module, rf, jump, tuple(inp.shape), tuple(out.shape))
        if out.dim() == 4 and out.shape[-1] > 1:
            final_rf = rf
        layers.append(LayerInfo(
            name=name, kind=type(module).__name__, output_shape=tuple(out.shape[1:]),
            params=sum(p.numel() for p in module.parameters()),
            macs=_macs(module, inp, out), rf=rf if followed else None, jump=jump if followed else None,
        ))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    module_pools = sum(isinstance(m, MAXPOOLS) for _, m, _, _ in events)  # calls made by modules
    return ModelSummary(layers, total, trainable, input_size, None if unseen else final_rf, unseen,
                        max(0, maxpools.count - module_pools))


@dataclass
class RuleResult:
    rule: str
    passed: bool
    detail: str


@dataclass
class RulesReport:
    results: list[RuleResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def __str__(self) -> str:
        lines = [f"[{'PASS' if r.passed else 'FAIL'}] {r.rule}: {r.detail}" for r in self.results]
        failed = sum(not r.passed for r in self.results)
        lines.append("All rules pass." if not failed else f"{failed} rule(s) failed.")
        return "\n".join(lines)


def _is_depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


def _closing_conv(block: nn.Module) -> nn.Module | None:
    """A block's last conv with a kernel larger than 1x1: the one that strides or dilates
    (a depthwise-separable layer's depthwise half, not its pointwise half)."""
    spatial = [m for m in block.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and max(_pair(m.kernel_size)) > 1]
    return spatial[-1] if spatial else None


def _closes(conv: nn.Module | None) -> str | None:
    """How a block's closing conv shrinks or widens the view (stride 2+, dilation 2+), or None."""
    if conv is None or isinstance(conv, nn.ConvTranspose2d):
        return None
    stride, dilation = max(_pair(conv.stride)), max(_pair(conv.dilation))
    return f"stride {stride}" if stride >= 2 else f"dilation {dilation}" if dilation >= 2 else None


def layout_rule(model: nn.Module) -> RuleResult:
    """Blocks C1 C2 C3 C4 then the output, C1-C3 each closing with a stride-2 or a dilated conv.
    Verified on nets laid out as ``build_net`` makes them (children named c1-c4); any other
    module is reported as not verifiable, naming what was found."""
    rule = "C1 C2 C3 C4 then the output, C1-C3 close strided or dilated"
    children = dict(model.named_children())
    names = list(children)
    if names[:len(BLOCK_NAMES)] != list(BLOCK_NAMES):
        return RuleResult(rule, False, f"cannot be verified: the net's first children are not blocks named "
                                       f"{', '.join(BLOCK_NAMES)} (found {', '.join(names[:5]) or 'none'})")
    extra = [n for n in names[len(BLOCK_NAMES):] if _closing_conv(children[n]) is not None]
    if extra:
        return RuleResult(rule, False, f"{', '.join(extra)} after c4 holds a conv larger than 1x1: "
                                       "only pooling and a 1x1 conv or linear layer may follow C4")
    closings = {n: _closes(_closing_conv(children[n])) for n in BLOCK_NAMES[:3]}
    open_ = [n for n, how in closings.items() if how is None]
    if open_:
        return RuleResult(rule, False, f"{', '.join(open_)} closes with neither a stride-2 nor a dilated conv")
    return RuleResult(rule, True, ", ".join(f"{n} closes with {how}" for n, how in closings.items()))


def check_rules(model: nn.Module, input_size: int = 32, max_params: int = PARAM_BUDGET) -> RulesReport:
    """The assignment's architecture rules, checked on the built module (not on its spec)."""
    s = summarize(model, input_size)
    mods = list(model.modules())
    maxpools = [n for n, m in model.named_modules() if isinstance(m, MAXPOOLS)]
    depthwise = [n for n, m in model.named_modules() if _is_depthwise(m)]
    dilated = [n for n, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and max(_pair(m.dilation)) > 1]
    avgpools = {n for n, m in model.named_modules() if isinstance(m, AVGPOOLS)}
    gap = [l.name for l in s.layers if l.name in avgpools and l.output_shape[-2:] == (1, 1)]
    has_pointwise_after_dw = any(
        isinstance(b, nn.Conv2d) and _pair(b.kernel_size) == (1, 1) and _is_depthwise(a)
        for a, b in zip(mods, mods[1:])
    )
    min_rf = max(COURSE_MIN_RF, input_size)
    report = RulesReport([
        layout_rule(model),
        RuleResult("no max-pooling", not maxpools and not s.functional_maxpools,
                   f"found {', '.join(maxpools + [f'{s.functional_maxpools} functional max-pool call(s)'] * bool(s.functional_maxpools))}"
                   if maxpools or s.functional_maxpools else "none found"),
        RuleResult("depthwise-separable conv", bool(depthwise) and has_pointwise_after_dw,
                   "no depthwise conv (groups == in_channels) found" if not depthwise
                   else f"{len(depthwise)} depthwise layer(s): {', '.join(depthwise)}" if has_pointwise_after_dw
                   else f"depthwise {', '.join(depthwise)} not followed by a 1x1 pointwise conv"),
        RuleResult("dilated conv", bool(dilated),
                   f"{len(dilated)} dilated layer(s): {', '.join(dilated)}" if dilated
                   else "no conv with dilation > 1 found"),
        RuleResult("global average pooling", bool(gap),
                   f"at {', '.join(gap)}" if gap else "no average pooling down to 1x1 found"),
        RuleResult(f"params < {max_params:,}", within_budget(s.total_params, max_params),
                   f"{s.total_params:,} parameters"),
        RuleResult(f"receptive field >= {min_rf}", s.final_rf is not None and min(s.final_rf) >= min_rf,
                   f"final receptive field {_fmt_pair(s.final_rf)}" if s.final_rf
                   else f"cannot be verified: {s.unseen}"),
    ])
    return report
